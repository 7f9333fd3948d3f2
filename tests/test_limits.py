"""Limits and accounting end to end: docker's flags, `update`, `stats`, the sampler.

Each limit is checked twice: in the kernel's own file (v1 names on this host,
v2 names in the classroom guest), and by behaviour: the memory hog really dies
with 137 and OOMKilled, the CPU quota really caps a busy loop, shares really
split a shared CPU, the fork bomb really stops at its pids limit, dd's
throughput really drops under --device-write-bps.

Standard library only (the v2 guest has pytest and nothing else); the plots
test skips where matplotlib is missing.
    scripts/vm-tests.sh tests/test_cgroups.py tests/test_limits.py -q
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import minidocker
from conftest import mounts_under, processes_of
from minidocker.runtime import cgroups
from minidocker.engine import containers, stats
from minidocker.errors import NotFound

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="limits need root")

MiB = 1 << 20
SLOW = 1 if cgroups.version() == 1 else 5     # the v2 guest is an emulated CPU (about 20x slower)


def quiet_host() -> bool:
    """Absolute CPU percentages only mean something when the CPUs were free for us;
    the relative checks (throttled periods, share ratios) hold on a busy host too."""
    return os.getloadavg()[0] < 0.75 * os.cpu_count()
BUSY = "while :; do :; done"
BUSY2 = f"{BUSY} & {BUSY}"                     # two busy loops: can use two CPUs
# Grows its heap by about 2 MB per step, so a sampler sees the climb.
HOG = ("exec awk 'BEGIN { while (1) { a[i++] = sprintf(\"%1000s\", i);"
       " if (i % 2000 == 0) system(\"sleep 0.05\") } }'")


def kernel(cid, key):
    """The kernel's file for a HostConfig limit of a running container."""
    with open(cgroups.Cgroup(cid).files()[key]) as f:
        return f.read().strip()


def inspect(cli, ref):
    return json.loads(cli("inspect", ref, check=True).stdout)[0]


@pytest.fixture
def disk_root(images_root, monkeypatch):
    """A root whose containers write to a block device: the page cache and
    --device-*-bps need one.  The v2 guest's /tmp (pytest's tmp dir) is tmpfs,
    so there the images move to a fresh root under /var/tmp (its ext4 disk)."""
    if stats.disk_of(images_root):
        yield images_root
        return
    path = tempfile.mkdtemp(prefix="minidocker-test-", dir="/var/tmp")
    try:
        if stats.disk_of(path) is None:
            pytest.skip("neither pytest's tmp dir nor /var/tmp is on a block device")
        for sub in ("image", "layers"):
            subprocess.run(["cp", "-a", os.path.join(images_root, sub), path], check=True)
        monkeypatch.setenv("MINIDOCKER_ROOT", path)
        yield path
        deadline = time.monotonic() + 5
        while processes_of(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not processes_of(path) and not mounts_under(path), "leaked processes or mounts"
    finally:
        if not mounts_under(path):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run():
    """run(cmd, **create_args) -> a started busybox `sh -c cmd`, removed after the test
    (start=False: only created).  List it after the root fixture, so it ends first."""
    made = []

    def run(cmd, start=True, **kw):
        c = minidocker.create("busybox", ["sh", "-c", cmd], **kw)
        made.append(c)
        if start:
            c.start()
        return c
    yield run
    for c in made:
        try:
            c.remove(force=True)
        except NotFound:
            pass


@pytest.fixture
def cpu_first(images_root):
    """Give this session's containers (their parent cgroup) the top CPU weight, for
    CPU tests: on a busy machine (other tests, other users) the parent would
    otherwise weigh as much as one host process, and its loops would get less
    than their limits allow.  Then what they get is what their own limits say."""
    parent = cgroups.Cgroup(os.environ["MINIDOCKER_CGROUP_PARENT"], parent="")
    parent.create()
    path = parent.files()["CpuShares"]
    with open(path) as f:
        old = f.read().strip()
    parent.update({"CpuShares": 262144})
    yield
    with open(path, "w") as f:
        f.write(old)


# --- flags and the kernel's files --------------------------------------------------

def test_run_flags_reach_the_kernel(cli, images_root):
    disk = stats.disk_of("/")
    dev = [f"--device-read-bps={disk}:2mb", f"--device-write-bps={disk}:1mb"] if disk else []
    cid = cli("run", "-d", "--name", "limited", "--memory", "64m", "--memory-swap", "96m",
              "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "20",
              *dev, "busybox", "sleep", "60", check=True).stdout.strip()
    v1 = cgroups.Cgroup(cid).version == 1
    assert kernel(cid, "Memory") == str(64 * MiB)
    # v1 limits memory+swap together; v2 limits swap alone (96m - 64m).
    assert kernel(cid, "MemorySwap") == str((96 if v1 else 32) * MiB)
    assert kernel(cid, "NanoCpus") == ("50000" if v1 else "50000 100000")
    assert kernel(cid, "CpuShares") == ("512" if v1 else str(1 + (512 - 2) * 9999 // 262142))
    assert kernel(cid, "CpusetCpus") == "0"
    assert kernel(cid, "PidsLimit") == "20"
    if disk:
        st = os.stat(disk)
        major_minor = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        if v1:
            assert kernel(cid, "BlkioDeviceReadBps") == f"{major_minor} {2 * MiB}"
            assert kernel(cid, "BlkioDeviceWriteBps") == f"{major_minor} {MiB}"
        else:
            assert f"{major_minor} rbps={2 * MiB} wbps={MiB} " in kernel(cid, "BlkioDeviceWriteBps") + " "
    hc = inspect(cli, "limited")["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"]) == (64 * MiB, 96 * MiB, 500_000_000)
    assert (hc["CpuShares"], hc["CpusetCpus"], hc["PidsLimit"]) == (512, "0", 20)
    if disk:
        assert hc["BlkioDeviceWriteBps"] == [{"Path": disk, "Rate": MiB}]
    cli("rm", "-f", "limited", check=True)


def test_blkio_weight_applies_or_says_why(cli, images_root):
    proc = cli("run", "-d", "--name", "weighted", "--blkio-weight", "300", "busybox", "sleep", "60")
    if proc.returncode != 0:                  # no weight file on this kernel (this v1 host)
        assert proc.returncode == 125 and "BlkioWeight is not supported" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert cli("ps", "-aq").stdout == ""
        return
    cid = proc.stdout.strip()
    path = cgroups.Cgroup(cid).files()["BlkioWeight"]
    value = kernel(cid, "BlkioWeight").split()[-1]          # io.weight says "default N"
    assert value == (str(1 + (300 - 10) * 9999 // 990) if path.endswith("/io.weight") else "300")
    cli("rm", "-f", "weighted", check=True)


def test_bad_limits_are_refused_and_leave_nothing(cli, images_root):
    # The CLI's own parsing: the same on v1 and v2, so only checked on the host.
    parsing = [
        (["--memory", "lots"], 'invalid argument "lots" for "--memory" flag'),
        (["--cpus", "half"], 'invalid argument "half" for "--cpus" flag'),
        (["--cpu-shares", "x"], 'invalid argument "x" for "--cpu-shares" flag'),
        (["--pids-limit", "many"], 'invalid argument "many" for "--pids-limit" flag'),
        (["--device-write-bps", "/dev/vda"], "bad format"),
    ]
    # Values the engine checks against docker's rules and the kernel's files.
    checked = [
        (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
        (["--memory", "64m", "--memory-swap", "32m"],
         "Minimum memoryswap limit should be larger than memory limit"),
        (["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap"),
        (["--cpus", "99"], "Range of CPUs is from 0.01 to"),
        (["--cpuset-cpus", "0-4095"], "Requested CPUs are not available"),
        (["--blkio-weight", "5"], "Range of blkio weight is from 10 to 1000"),
        (["--device-write-bps", "/dev/null:1mb"], "not a block device: /dev/null"),
    ]
    for flags, message in (parsing if SLOW == 1 else []) + checked:
        proc = cli("run", "--rm", *flags, "busybox", "true")
        assert proc.returncode == 125, (flags, proc.stderr)
        assert message in proc.stderr, (flags, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    assert cli("ps", "-aq").stdout == ""


def test_update_live_and_for_the_next_start(cli, images_root):
    cid = cli("run", "-d", "--name", "upd", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20",
              "busybox", "sleep", "600", check=True).stdout.strip()
    v1 = cgroups.Cgroup(cid).version == 1
    proc = cli("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "1.5",
               "--pids-limit", "50", "--cpu-shares", "256", "upd")
    assert (proc.returncode, proc.stdout) == (0, "upd\n"), proc.stderr
    assert kernel(cid, "Memory") == str(128 * MiB)
    assert kernel(cid, "NanoCpus") == ("150000" if v1 else "150000 100000")
    assert kernel(cid, "PidsLimit") == "50"
    hc = inspect(cli, "upd")["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"], hc["CpuShares"]) == \
        (128 * MiB, 256 * MiB, 1_500_000_000, 50, 256)

    bad = cli("update", "--memory", "1m", "upd")
    assert bad.returncode == 1
    assert bad.stderr == (f"Error response from daemon: Cannot update container {cid}: "
                          "Minimum memory limit allowed is 6MB\n")
    assert kernel(cid, "Memory") == str(128 * MiB)
    assert inspect(cli, "upd")["HostConfig"]["Memory"] == 128 * MiB
    none = cli("update", "upd")
    assert (none.returncode, none.stderr) == (1, "You must provide one or more flags when using this command.\n")
    assert cli("update", "--cpus", "1", "nosuch").stderr == "Error response from daemon: No such container: nosuch\n"
    assert cli("update", "--cpus", "lots", "upd").returncode == 125

    # A stopped container keeps the new value in HostConfig; the next start applies it.
    cli("stop", "-t", "0", "upd", check=True)
    assert cli("update", "--pids-limit", "7", "--cpus", "0.25", "upd").returncode == 0
    cli("start", "upd", check=True)
    assert kernel(cid, "PidsLimit") == "7"
    assert kernel(cid, "NanoCpus") == ("25000" if v1 else "25000 100000")
    assert kernel(cid, "Memory") == str(128 * MiB)
    cli("rm", "-f", "upd", check=True)


# --- behaviour ---------------------------------------------------------------------------

def test_oom_killed_container_exits_137(cli, images_root):
    proc = cli("run", "--name", "hog", "--memory", "32m", "busybox", "sh", "-c", HOG, timeout=60 * SLOW)
    assert proc.returncode == 137
    state = inspect(cli, "hog")["State"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 137, True)
    assert "Exited (137)" in cli("ps", "-a").stdout
    # Killed by `minidocker kill` (SIGKILL, not the OOM killer): 137 too, but OOMKilled stays false.
    cli("run", "-d", "--name", "killed", "--memory", "32m", "busybox", "sleep", "60", check=True)
    cli("kill", "killed", check=True)
    assert cli("wait", "killed").stdout == "137\n"
    state = inspect(cli, "killed")["State"]
    assert (state["ExitCode"], state["OOMKilled"]) == (137, False)
    cli("rm", "hog", "killed", check=True)


def test_memory_flattens_at_the_limit_then_oom(disk_root, run):
    """Page cache is charged to the container but can be dropped: usage sits at
    the limit while dd writes 3x the limit.  A heap cannot be dropped (no swap):
    when it needs more than the limit, the OOM killer ends the container."""
    limit = 48 * MiB
    cmd = f"dd if=/dev/zero of=/cache bs=1M count=150 2>/dev/null; {HOG}"
    c = run(cmd, start=False, host_config={"Memory": limit})
    s = stats.Sampler(c, 0.05).start()
    c.start()
    assert s.wait(60 * SLOW), "the hog did not end"
    s.stop()
    assert (s.exit_code, s.oom_killed) == (137, True)
    mem, anon, file = s.series["memory"], s.series["anon"], s.series["file"]
    assert set(s.series["memory_limit"]) == {limit}
    assert max(mem) <= limit + MiB                           # v1's usage is batched per CPU
    at_limit = [i for i, m in enumerate(mem) if m >= 0.9 * limit]
    assert len(at_limit) >= 5, mem                           # it flattened there
    assert max(file[i] for i in at_limit) > limit / 4        # ...held up by page cache first
    assert max(anon) > limit / 2                             # ...then the heap took it over


def throttling(cid):
    """(periods, periods throttled, seconds held back) from the group's cpu.stat."""
    with open(os.path.join(cgroups.Cgroup(cid).paths()["cpu"], "cpu.stat")) as f:
        stat = {k: int(v) for k, v in (line.split() for line in f)}
    held = stat["throttled_usec"] / 1e6 if "throttled_usec" in stat else stat["throttled_time"] / 1e9
    return stat["nr_periods"], stat["nr_throttled"], held


def test_cpus_caps_a_busy_loop_and_update_lifts_it(cpu_first, run):
    """Two busy loops (they could use 2 CPUs) under --cpus 0.5, then 1.5 by update.
    The kernel's throttle counters show the cap at work on any machine; CPU time
    measured inside the emulated v2 guest is only roughly right when its host is
    busy (its clock runs on while its vCPUs wait), so the usage is asserted on the host."""
    c = run(BUSY2, name="busy", host_config={"NanoCpus": 500_000_000})
    s = stats.Sampler(c, 0.1).start()
    windows = []
    for cpus in (0.5, 1.5):
        if cpus == 1.5:
            containers.update(c.id, {"NanoCpus": 1_500_000_000})
        time.sleep(0.5 * SLOW)
        t0, before = time.monotonic(), throttling(c.id)
        time.sleep(2 * SLOW)
        t1, after = time.monotonic(), throttling(c.id)
        periods, throttled, held = (y - x for x, y in zip(before, after))
        windows.append((t0 - s._t0, t1 - s._t0, throttled / periods, held / (t1 - t0)))
    s.stop()
    (a0, a1, part_half, held_half), (b0, b1, part_more, held_more) = windows
    half, more = s.cpu_percent(a0, a1), s.cpu_percent(b0, b1)
    print(f"cgroup v{cgroups.version()}: --cpus 0.5 used {half:.1f}% (throttled in {part_half:.0%} of periods,"
          f" held back {held_half:.2f} s/s), --cpus 1.5 used {more:.1f}% (held back {held_more:.2f} s/s)")
    assert set(s.series["cpus_limit"]) == {0.5, 1.5}
    assert part_half > 0.8                                  # the cap held them back in most periods
    assert held_more < 0.6 * held_half                      # the higher cap held them back less
    assert half < 56 and more < 160                         # never above the caps
    if SLOW == 1 and quiet_host():
        assert 40 < half and 115 < more


def test_cpu_shares_split_a_shared_cpu(cpu_first, run):
    """Shares only matter when CPUs are scarce: both loops on CPU 0, 1024 vs 512."""
    heavy = run(BUSY, name="heavy", host_config={"CpuShares": 1024, "CpusetCpus": "0"})
    light = run(BUSY, name="light", host_config={"CpuShares": 512, "CpusetCpus": "0"})
    samplers = [stats.Sampler(c, 0.1).start() for c in (heavy, light)]
    time.sleep(3 * SLOW)
    for s in samplers:
        s.stop()
    h, l = (s.cpu_percent(0.5 * SLOW) for s in samplers)
    print(f"cgroup v{cgroups.version()}: shares 1024 used {h:.1f}%, 512 used {l:.1f}%, ratio {h / l:.2f}")
    assert h + l < 110                                      # they share one CPU
    if quiet_host():
        assert 80 < h + l
    assert 1.5 < h / l < 2.7                                # about 2:1


def test_pids_limit_stops_a_fork_bomb(cli, images_root):
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 600"
    cid = cli("run", "-d", "--name", "bomb", "--pids-limit", "30", "--cpus", "1", "busybox",
              "sh", "-c", bomb, check=True).stdout.strip()
    events = os.path.join(cgroups.Cgroup(cid).paths()["pids"], "pids.events")

    def refused():                                          # "max N": forks refused at pids.max
        with open(events) as f:
            return int(f.read().split()[1])
    try:
        reader = stats.Reader(cid)
        deadline = time.monotonic() + 20 * SLOW
        seen = [reader.read()["pids"]]
        while time.monotonic() < deadline and not refused():
            time.sleep(0.02)
            seen.append(reader.read()["pids"])
        assert refused() > 0, seen                          # it ran into the limit...
        for _ in range(20):                                 # ...and never got past it
            seen.append(reader.read()["pids"])
            time.sleep(0.05)
        reader.close()
        print(f"cgroup v{cgroups.version()}: fork bomb under --pids-limit 30: at most {max(seen)} processes,"
              f" {refused()} forks refused")
        assert 20 <= max(seen) <= 30, seen
        assert "can't fork" in cli("logs", "bomb").stderr
    finally:
        t0 = time.monotonic()
        cli("rm", "-f", "bomb", check=True)                 # and it can still be stopped
    assert time.monotonic() - t0 < 10 * SLOW


def _dd_seconds(cli, flags, mib):
    proc = cli("run", "--rm", *flags, "busybox", "sh", "-c",
               f"time dd if=/dev/zero of=/out bs=1M count={mib} oflag=direct", timeout=60 * SLOW)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"real\s+(\d+)m\s*([\d.]+)s", proc.stderr)
    return int(m.group(1)) * 60 + float(m.group(2))


def test_device_write_bps_throttles_dd(cli, disk_root):
    disk = stats.disk_of(disk_root)
    free = 16 / _dd_seconds(cli, [], 16)
    throttled = 4 / _dd_seconds(cli, ["--device-write-bps", f"{disk}:1mb"], 4)
    print(f"cgroup v{cgroups.version()}: dd oflag=direct to {disk}: {free:.0f} MiB/s free,"
          f" {throttled:.2f} MiB/s at --device-write-bps {disk}:1mb")
    assert throttled < 1.4
    assert free > 5 * throttled
    # The bytes are counted, and `stats` shows them.
    cli("run", "-d", "--name", "writer", "--device-write-bps", f"{disk}:8mb", "busybox", "sh", "-c",
        "dd if=/dev/zero of=/out bs=1M count=4 oflag=direct 2>/dev/null; echo done; sleep 600", check=True)
    deadline = time.monotonic() + 30 * SLOW
    while "done" not in cli("logs", "writer").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    row = cli("stats", "--no-stream", "writer", check=True).stdout.splitlines()[1]
    assert re.split(r"\s{2,}", row)[6].endswith(" / 4.19MB"), row
    cli("rm", "-f", "writer", check=True)


# --- stats and the sampler ------------------------------------------------------------------

def test_stats_table(cli, cpu_first):
    cid = cli("run", "-d", "--name", "st", "--memory", "64m", "--cpus", "0.5", "busybox",
              "sh", "-c", BUSY, check=True).stdout.strip()
    time.sleep(0.5 * SLOW)
    out = cli("stats", "--no-stream", "st", check=True).stdout.splitlines()
    assert re.split(r"\s{2,}", out[0]) == stats.HEADERS
    cells = re.split(r"\s{2,}", out[1])
    assert cells[:2] == [cid[:12], "st"] and cells[5:] == ["0B / 0B", "0B / 0B", "1"]
    assert 30 < float(cells[2].rstrip("%")) < 60, cells      # --cpus 0.5
    assert re.fullmatch(r"[\d.]+KiB / 64MiB", cells[3]) and cells[4].endswith("%"), cells
    cli("stop", "-t", "0", "st", check=True)
    rows = cli("stats", "--no-stream", "-a", "--no-trunc").stdout.splitlines()
    assert re.split(r"\s{2,}", rows[1]) == [cid, "st", "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
    missing = cli("stats", "--no-stream", "nosuch")
    assert (missing.returncode, missing.stderr) == (1, "Error response from daemon: No such container: nosuch\n")
    cli("rm", "st", check=True)


def test_sampler_costs_little_and_ends_with_the_container(images_root, run):
    c = run("sleep 2", start=False)
    s = stats.Sampler(c, 0.05).start()                     # before the container starts
    c.start()
    assert s.wait(20 * SLOW) and s.ended
    assert (s.exit_code, s.oom_killed) == (0, False)
    n = len(s)
    assert n >= (30 if SLOW == 1 else 10), n
    assert all(len(v) == n for v in s.series.values())
    assert all(b > a for a, b in zip(s.series["t"], s.series["t"][1:]))
    # One process: the runtime's middle process may show in the first samples, none in the last.
    assert max(s.series["pids"]) <= 2 and s.series["pids"].count(1) > n / 2
    assert set(s.series["memory_limit"]) == {None}
    cost = s.overhead()
    print(f"cgroup v{cgroups.version()}: sampler every 0.05 s: {cost['per_sample_us']:.0f} us a sample,"
          f" {cost['cpu_percent']:.2f}% of one CPU")
    assert cost["cpu_percent"] < (1.0 if SLOW == 1 else 20.0)   # a loop that never slept: 100


def test_open_files_are_cheaper_than_opening_each_time(images_root, run):
    c = run("sleep 60")
    reader, cg = stats.Reader(c.id), cgroups.Cgroup(c.id)
    reader.read()

    def cost(f, n=200):
        t0 = time.thread_time()
        for _ in range(n):
            f()
        return (time.thread_time() - t0) / n * 1e6
    kept, reopened = cost(reader.read), cost(cg.stats)
    print(f"cgroup v{cgroups.version()}: a reading with open files {kept:.0f} us,"
          f" opening every file {reopened:.0f} us")
    assert kept < reopened / 2
    reader.close()


def test_plots_and_dashboard(images_root, run):
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("ipywidgets")
    matplotlib.use("Agg")
    from minidocker.lab import plots
    c = run(BUSY, name="knobs", host_config={"NanoCpus": 10**9})
    d = plots.Dashboard(c, knobs=("cpus", "memory", "pids"), refresh=None)
    d.set(cpus=0.5, memory=64, pids=5)
    v1 = cgroups.Cgroup(c.id).version == 1
    assert kernel(c.id, "NanoCpus") == ("50000" if v1 else "50000 100000")
    assert kernel(c.id, "Memory") == str(64 * MiB)
    assert kernel(c.id, "PidsLimit") == "5"
    assert c.config["HostConfig"]["NanoCpus"] == 500_000_000
    assert d.message.value.startswith("minidocker update --pids-limit 5 knobs")
    time.sleep(1)
    d.stop()
    assert bytes(d.image.value[:4]) == b"\x89PNG"
    fig = plots.plot(d.sampler)
    assert [ax.get_ylabel() for ax in fig.axes] == [plots.PANELS[p][0] for p in ("memory", "cpu", "pids", "io")]


def test_streaming_stats_closes_the_readers_of_removed_containers(cli, images_root):
    """`stats` keeps each container's cgroup files open between refreshes; a container
    removed meanwhile must have its files closed and its reader dropped (before, the
    dict only grew and every removed container's descriptors stayed open)."""
    ids = [cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip() for _ in range(2)]
    readers = {}
    try:
        stats.table([containers.get(i) for i in ids], 0.05, readers=readers)
        assert set(readers) == set(ids)
        gone = readers[ids[0]]
        assert gone.fds, "the reader opened the counter files"
        held = set(gone.fds.values())
        cli("rm", "-f", ids[0], check=True)
        stats.table([containers.get(ids[1])], 0.05, readers=readers)
        assert set(readers) == {ids[1]}
        assert gone.fds is None
        def target(fd):
            try:
                return os.readlink(f"/proc/self/fd/{fd}")
            except FileNotFoundError:
                return ""
        assert [fd for fd in held if target(fd).startswith("/sys/fs/cgroup")] == []
    finally:
        for r in readers.values():
            r.close()
        for i in ids:
            cli("rm", "-f", i)
