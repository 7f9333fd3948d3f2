"""Namespaces one by one: each flag (--pid, --network, --ipc, --uts, --userns,
--cgroupns) asserted from what the kernel shows: /proc/<pid>/ns/* inodes,
/proc/<pid>/uid_map, owners of files on the host, /proc/sysvipc/shm."""
import ctypes
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from minidocker.runtime import namespaces, userns

libc = ctypes.CDLL(None, use_errno=True)
IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0


def ns(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def init_pid(cli, ref):
    return json.loads(cli("inspect", ref, check=True).stdout)[0]["State"]["Pid"]


def host_config(cli, ref):
    return json.loads(cli("inspect", ref, check=True).stdout)[0]["HostConfig"]


def run(cli, *args):
    proc = cli("run", "--rm", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def refused(proc, *words):
    """An engine error: exit 125, one line, no traceback, naming what is wrong."""
    assert proc.returncode == 125, proc
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.fixture
def start(images_root, cli):
    """start(name, *flags, cmd=...) -> host pid of PID 1; every container removed after."""
    names = []

    def start(name, *flags, cmd=("sleep", "60")):
        cli("run", "-d", "--name", name, *flags, "busybox", *cmd, check=True)
        names.append(name)
        return init_pid(cli, name)
    yield start
    if names:
        cli("rm", "-f", *reversed(names))


def shm_ids(cli, *flags):
    """The System V shared memory ids a new container sees (the kernel's list)."""
    lines = run(cli, *flags, "busybox", "cat", "/proc/sysvipc/shm").splitlines()[1:]
    return {int(line.split()[1]) for line in lines}


def make_segment_in(pid):
    """shmget(2) inside pid's ipc namespace, from a helper process that joins it
    with namespaces.open_all/enter (what exec does).  Returns the segment id."""
    code = textwrap.dedent(f"""
        import ctypes, sys
        sys.path.insert(0, {REPO!r})
        from minidocker.runtime import namespaces
        namespaces.enter(namespaces.open_all({pid}, ["ipc"]))
        print(ctypes.CDLL(None).shmget(0, 4096, 0o1600))
    """)
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout)


# -- the table ------------------------------------------------------------------------------

def test_ns_command_prints_the_kernels_inodes(cli, start):
    pid = start("sleeper")
    out = cli("ns", "sleeper", check=True).stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert set(rows) == set(namespaces.TYPES)
    for kind, (mine, host, shared) in rows.items():
        assert int(mine) == ns(pid, kind) and int(host) == ns("self", kind), kind
        assert (shared == "shared") == (ns(pid, kind) == ns("self", kind)), kind
    assert namespaces.of(pid) == {k: ns(pid, k) for k in namespaces.TYPES}
    assert cli("ns", "nosuchcontainer").returncode == 1


# -- processes --------------------------------------------------------------------------------

def test_pid_namespace_new_and_host(cli, start):
    pid = start("own-pid")
    with open(f"/proc/{pid}/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()[1:]
    assert nspid == [str(pid), "1"]                     # PID 1 inside, pid outside
    host = start("host-pid", "--pid", "host")
    assert ns(host, "pid") == ns("self", "pid") != ns(pid, "pid")
    with open(f"/proc/{host}/status") as f:
        assert next(line for line in f if line.startswith("NSpid:")).split()[1:] == [str(host)]
    # With the host's pid namespace the container's /proc lists our own process.
    assert cli("run", "--rm", "--pid", "host", "busybox", "test", "-d", f"/proc/{os.getpid()}").returncode == 0
    assert cli("run", "--rm", "busybox", "test", "-d", f"/proc/{os.getpid()}").returncode == 1
    assert host_config(cli, "host-pid")["PidMode"] == "host"


def test_pid_of_another_container(cli, start):
    first = start("first")
    second = start("second", "--pid", "container:first")
    assert ns(first, "pid") == ns(second, "pid")
    # first's PID 1 is visible (as PID 1) from the second container
    assert run(cli, "--pid", "container:first", "busybox", "cat", "/proc/1/cmdline") == "sleep\x0060\x00"


# -- the network -------------------------------------------------------------------------------

def test_network_none_and_host(cli, start):
    none = start("no-net", "--network", "none")
    host = start("host-net", "--network", "host")
    assert ns(none, "net") != ns("self", "net")
    assert ns(host, "net") == ns("self", "net")
    assert run(cli, "--network", "none", "busybox", "ls", "/sys/class/net").split() == ["lo"]
    assert set(run(cli, "--network", "host", "busybox", "ls", "/sys/class/net").split()) \
        == set(os.listdir("/sys/class/net"))
    assert host_config(cli, "host-net")["NetworkMode"] == "host"
    refused(cli("run", "--rm", "--network", "bridge", "busybox", "true"), "bridge")
    refused(cli("run", "--rm", "--network", "nonsense", "busybox", "true"), "invalid network mode")


# -- hostnames ----------------------------------------------------------------------------------

def test_uts_host(cli, start):
    pid = start("host-uts", "--uts", "host")
    assert ns(pid, "uts") == ns("self", "uts")
    assert run(cli, "--uts", "host", "busybox", "hostname").strip() == os.uname().nodename
    assert run(cli, "-h", "inside", "busybox", "hostname").strip() == "inside"
    refused(cli("run", "--rm", "--uts", "host", "-h", "x", "busybox", "true"), "hostname and the UTS mode")
    refused(cli("run", "--rm", "--uts", "private", "busybox", "true"), "--uts: invalid UTS mode")


# -- IPC ------------------------------------------------------------------------------------------

def test_ipc_host_sees_the_hosts_segments(cli, images_root):
    shmid = libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600)
    assert shmid >= 0
    try:
        assert shmid in shm_ids(cli, "--ipc", "host")
        assert shmid not in shm_ids(cli)                  # private: its own, empty list
        assert shm_ids(cli) == set()
    finally:
        assert libc.shmctl(shmid, IPC_RMID, None) == 0
    shm = "/dev/shm/minidocker-test-%d" % os.getpid()
    with open(shm, "w"):
        pass
    try:                                                   # docker binds the host's /dev/shm too
        assert cli("run", "--rm", "--ipc", "host", "busybox", "test", "-e", shm).returncode == 0
        assert cli("run", "--rm", "busybox", "test", "-e", shm).returncode == 1
    finally:
        os.unlink(shm)


def test_ipc_shareable_and_container(cli, start):
    donor = start("donor", "--ipc", "shareable")
    shmid = make_segment_in(donor)
    assert shmid not in {int(l.split()[1]) for l in open("/proc/sysvipc/shm").readlines()[1:]}
    joiner = start("joiner", "--ipc", "container:donor")
    assert ns(joiner, "ipc") == ns(donor, "ipc") != ns("self", "ipc")
    assert shm_ids(cli, "--ipc", "container:donor") == {shmid}
    assert shm_ids(cli) == set()
    out = cli("ns", "joiner", "donor", check=True).stdout
    assert next(l for l in out.splitlines() if l.startswith("ipc")).split()[-1] == "shared"
    assert next(l for l in out.splitlines() if l.startswith("pid")).split()[-1] == "new"
    # exec into the joiner joins the donor's ipc namespace too
    assert "%d" % shmid in cli("exec", "joiner", "cat", "/proc/sysvipc/shm", check=True).stdout


def test_ipc_container_must_be_running_and_shareable(cli, start):
    start("private", "--ipc", "private")
    refused(cli("run", "--rm", "--ipc", "container:private", "busybox", "true"), "non-shareable IPC")
    cli("create", "--name", "stopped", "--ipc", "shareable", "busybox", "true", check=True)
    try:
        refused(cli("run", "--rm", "--ipc", "container:stopped", "busybox", "true"), "non running container")
    finally:
        cli("rm", "stopped", check=True)
    refused(cli("run", "--rm", "--ipc", "container:nosuch", "busybox", "true"), "No such container")
    refused(cli("run", "--rm", "--ipc", "nonsense", "busybox", "true"), "--ipc: invalid IPC mode")


def test_ipc_donor_gone_at_start(cli, start):
    start("donor2", "--ipc", "shareable")
    donor_id = json.loads(cli("inspect", "donor2").stdout)[0]["Id"]
    cli("create", "--name", "late", "--ipc", "container:donor2", "busybox", "true", check=True)
    # docker keeps the donor's id, not its name (HostConfig.IpcMode "container:<id>")
    assert json.loads(cli("inspect", "late").stdout)[0]["HostConfig"]["IpcMode"] == "container:" + donor_id
    cli("rm", "-f", "donor2", check=True)
    start("donor2", "--ipc", "shareable")         # a stranger under the same name is not joined
    try:
        proc = cli("start", "-a", "late")
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert donor_id[:12] in proc.stderr and "No such container" in proc.stderr
        assert json.loads(cli("inspect", "late").stdout)[0]["State"]["Status"] == "created"
    finally:
        cli("rm", "late", check=True)


# -- users ------------------------------------------------------------------------------------------

def test_userns_remap_maps_root_to_an_unprivileged_range(cli, start, images_root):
    m = userns.mapping()
    pid = start("remapped", "--userns", "remap", cmd=("sh", "-c", "echo hi > /by-root; sleep 60"))
    assert ns(pid, "user") != ns("self", "user")
    assert namespaces.id_map(pid, "uid") == [(0, m["uid"], 65536)]
    assert namespaces.id_map(pid, "gid") == [(0, m["gid"], 65536)]
    with open(f"/proc/{pid}/status") as f:                 # the host's view of PID 1's ids
        status = dict(line.split(":", 1) for line in f)
    assert status["Uid"].split() == [str(m["uid"])] * 4
    assert status["Gid"].split() == [str(m["gid"])] * 4
    # A file written by root inside belongs to the range's root on the host.
    cid = json.loads(cli("inspect", "remapped").stdout)[0]["Id"]
    upper = os.path.join(images_root, "containers", cid, "upper")
    for _ in range(100):
        if os.path.exists(os.path.join(upper, "by-root")):
            break
        import time
        time.sleep(0.05)
    st = os.stat(os.path.join(upper, "by-root"))
    assert (st.st_uid, st.st_gid) == (m["uid"], m["gid"])
    # exec joins the user namespace too: the same mapping
    cli("exec", "remapped", "touch", "/by-exec", check=True)
    assert os.stat(os.path.join(upper, "by-exec")).st_uid == m["uid"]
    cli("exec", "-u", "1000", "remapped", "touch", "/tmp/by-1000", check=True)
    assert os.stat(os.path.join(upper, "tmp", "by-1000")).st_uid == m["uid"] + 1000
    # The image's files are still root's inside, and the shifted copy's on the host.
    assert cli("exec", "remapped", "stat", "-c", "%u:%g", "/bin/busybox", check=True).stdout == "0:0\n"
    store = os.path.join(images_root, "remap", f"{m['uid']}.{m['gid']}")
    copies = [d for d in os.listdir(store) if len(d) == 64]
    assert copies and all(os.stat(os.path.join(store, d, "bin", "busybox")).st_uid == m["uid"]
                          for d in copies if os.path.exists(os.path.join(store, d, "bin", "busybox")))
    assert host_config(cli, "remapped")["UsernsMode"] == "remap"


def test_userns_root_is_root_only_inside(cli, images_root):
    """Root of a remapped container has docker's capabilities, in its own user
    namespace: what the kernel checks against the host's (making a device node)
    or against ids outside the map (chown to 70000) is refused."""
    from minidocker.runtime import confine
    status = run(cli, "--userns", "remap", "busybox", "cat", "/proc/self/status")
    caps = int(next(l for l in status.splitlines() if l.startswith("CapEff:")).split()[1], 16)
    assert caps == confine.cap_mask(confine.DEFAULT_CAPS)
    assert caps & (1 << confine.CAPS.index("MKNOD"))
    assert cli("run", "--rm", "--userns", "remap", "busybox", "mknod", "/tmp/disk", "b", "7", "0").returncode == 1
    assert cli("run", "--rm", "--userns", "remap", "busybox", "sh", "-c",
               "touch /tmp/x && chown 70000 /tmp/x").returncode == 1
    assert cli("run", "--rm", "--userns", "remap", "busybox", "sh", "-c",
               "touch /tmp/x && chown 65535 /tmp/x").returncode == 0


def test_userns_host_and_refusals(cli, start):
    pid = start("not-remapped", "--userns", "host")
    assert ns(pid, "user") == ns("self", "user")
    refused(cli("run", "--rm", "--userns", "remap", "--pid", "host", "busybox", "true"), "--userns host")
    refused(cli("run", "--rm", "--userns", "remap", "--network", "host", "busybox", "true"), "--userns host")
    refused(cli("run", "--rm", "--userns", "remap", "--privileged", "busybox", "true"), "--userns host")
    refused(cli("run", "--rm", "--userns", "nonsense", "busybox", "true"), "--userns: invalid USER mode")


def test_userns_refusal_names_the_cause():
    """In a user namespace whose user.max_user_namespaces is 0 the kernel refuses
    a new one (ENOSPC); the message names the sysctl and the fix."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from minidocker import kernel
        from minidocker.runtime import namespaces
        try:
            kernel.unshare(kernel.CLONE_NEWUSER)
        except OSError as e:
            print(namespaces.refused(e))
    """)
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                           f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} -c \"$0\"",
                           code], capture_output=True, text=True)
    assert "user.max_user_namespaces=0" in proc.stdout and "sysctl -w" in proc.stdout, proc


def test_userns_remap_and_ipc_of_another_remapped_container(cli, start):
    donor = start("rdonor", "--userns", "remap", "--ipc", "shareable")
    shmid = make_segment_in(donor)
    joiner = start("rjoiner", "--userns", "remap", "--ipc", "container:rdonor")
    assert ns(joiner, "ipc") == ns(donor, "ipc")
    assert ns(joiner, "user") not in (ns(donor, "user"), ns("self", "user"))
    assert f"{shmid}" in cli("exec", "rjoiner", "cat", "/proc/sysvipc/shm", check=True).stdout


# -- cgroups ---------------------------------------------------------------------------------------

def test_cgroupns_private_and_host(cli, start):
    private = start("cg-private", "--cgroupns", "private")
    host = start("cg-host", "--cgroupns", "host")
    assert ns(private, "cgroup") != ns("self", "cgroup")
    assert ns(host, "cgroup") == ns("self", "cgroup")
    # In its own cgroup namespace the container's cgroup is the root of every hierarchy.
    inside = run(cli, "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup").splitlines()
    assert inside and all(line.rsplit(":", 1)[1] == "/" for line in inside), inside
    outside = run(cli, "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup").splitlines()
    assert any(line.rsplit(":", 1)[1] != "/" for line in outside), outside
    refused(cli("run", "--rm", "--cgroupns", "nonsense", "busybox", "true"), "--cgroupns: invalid CGROUP mode")


# -- the hard drive: pivot_root, not chroot -----------------------------------------------------

ESCAPE = textwrap.dedent("""
    import os, sys
    # Be root somewhere: chroot into a directory, or join a container's mount namespace.
    if sys.argv[1] == "chroot":
        os.chroot(sys.argv[2]); os.chdir("/")
    else:
        fd = os.open(f"/proc/{sys.argv[2]}/ns/mnt", os.O_RDONLY)
        import ctypes; assert ctypes.CDLL(None).setns(fd, 0x00020000) == 0
    # The classic escape: a chroot deeper down, then climb with "..", then chroot there.
    os.makedirs("/escape", exist_ok=True)
    os.chroot("/escape")
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    print(os.path.exists(sys.argv[3]))           # a file of the host's, outside the jail
""")


def test_chroot_escape_works_but_not_from_pivot_root(cli, start, tmp_path):
    marker = tmp_path / "host-only"
    marker.write_text("x")
    jail = tmp_path / "jail"
    jail.mkdir()
    chroot = subprocess.run([sys.executable, "-c", ESCAPE, "chroot", str(jail), str(marker)],
                            capture_output=True, text=True)
    assert chroot.stdout.strip() == "True", chroot.stderr       # out: the host's files
    pid = start("jail")
    pivot = subprocess.run([sys.executable, "-c", ESCAPE, "setns", str(pid), str(marker)],
                           capture_output=True, text=True)
    assert pivot.stdout.strip() == "False", pivot.stderr        # still in the container
