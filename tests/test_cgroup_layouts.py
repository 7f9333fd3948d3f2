"""The two cgroup layouts side by side: the same counters and limits, each in its own files.

The live tests (test_cgroups.py, test_limits.py) exercise the layout of the host they
run on; these check both layouts' parsing and values on this host too, from texts in
the kernel's formats (Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/*.rst), so a
v1 host still catches a broken v2 path before the v2 guest runs."""
import os

from minidocker.runtime import cgroups
from minidocker.runtime.cgroups import v1, v2
from minidocker.engine import stats

MiB = 1 << 20

V1_TEXTS = {
    "memory": "1234\n", "memory_limit": "9223372036854771712\n",
    "memory_stat": "rss 1\ncache 2\ntotal_rss 10\ntotal_cache 20\ntotal_inactive_file 5\n",
    "memory_events": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    "cpu": "1500000\n", "cpu_max": "50000\n", "cpu_period": "100000\n",
    "pids": "3\n", "pids_max": "10\n",
    "io": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
}
V2_TEXTS = {
    "memory": "1234\n", "memory_limit": "max\n",
    "memory_stat": "anon 10\nfile 20\nkernel 7\ninactive_anon 1\ninactive_file 5\n",
    "memory_events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n",
    "cpu": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n", "cpu_max": "50000 100000\n",
    "pids": "3\n", "pids_max": "max\n",
    "io": "8:0 rbytes=4096 wbytes=8000 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=0 wbytes=192\n",
}
SAME = {"memory": 1234, "anon": 10, "file": 20, "inactive_file": 5, "memory_limit": None,
        "cpu_ns": 1_500_000, "cpus_limit": 0.5, "pids": 3, "io_read": 4096, "io_write": 8192,
        "oom_kills": 2}


def test_both_layouts_read_to_the_same_counters():
    one = cgroups.read_counters(1, lambda n: V1_TEXTS.get(n, ""))
    two = cgroups.read_counters(2, lambda n: V2_TEXTS.get(n, ""))
    assert one == dict(SAME, pids_limit=10) and two == dict(SAME, pids_limit=None)
    nothing = cgroups.read_counters(2, lambda n: "")          # a kernel without the files
    assert nothing["memory"] == nothing["cpu_ns"] == 0 and nothing["memory_limit"] is None


def test_both_layouts_write_docker_values():
    # MemorySwap is memory+swap: v1's memsw takes it whole, v2's swap.max the swap alone.
    assert v2.memory_writes("m", "s", 64 * MiB, 128 * MiB) == [("m", 64 * MiB), ("s", 64 * MiB)]
    assert v2.memory_writes("m", "s", -1, -1) == [("m", "max"), ("s", "max")]
    assert v1.cpu_writes({"CpuPeriod": "p", "CpuQuota": "q"}, 50000, 100000) == [("p", 100000), ("q", 50000)]
    assert (v1.cpu_weight(1024), v2.cpu_weight(1024), v2.cpu_weight(2), v2.cpu_weight(262144)) == \
        (1024, 39, 1, 10000)                                  # runc's conversion
    assert (v2.io_weight("x/io.weight", 10), v2.io_weight("x/io.weight", 1000),
            v2.io_weight("x/io.bfq.weight", 500), v1.io_weight("x/blkio.weight", 500)) == (1, 10000, 500, 500)
    assert v2.io_rule("BlkioDeviceWriteBps", "8:0", 1024) == "8:0 wbps=1024"
    assert v2.io_rule("BlkioDeviceReadIOps", "8:0", 0) == "8:0 riops=max"
    assert v1.io_rule("BlkioDeviceWriteBps", "8:0", 0) == "8:0 0"


def test_both_layouts_name_every_limit_and_counter():
    assert set(v1.LIMITS) == set(v2.LIMITS) == set(cgroups.FILES)
    assert set(v1.COUNTERS) == set(v2.COUNTERS) == set(cgroups.COUNTERS)
    assert stats.FILES is cgroups.COUNTERS                   # one owner of the counter files
    d2 = v2.dirs("parent/x")
    assert set(d2.values()) == {os.path.join("/sys/fs/cgroup", "parent/x")}
    assert v2.limit_paths(d2)["NanoCpus"] == [os.path.join(d2["cpu"], "cpu.max")]
    assert v2.counter_paths(d2)["cpu"].endswith("/parent/x/cpu.stat")
    assert v2.freezer(d2, True)[1:] == ("1", os.path.join(d2["cpu"], "cgroup.events"), "frozen 1")


def test_stats_and_the_reader_agree(images_root, cli):
    cid = cli("run", "-d", "--memory", "64m", "--pids-limit", "7", "busybox", "sleep", "60",
              check=True).stdout.strip()
    try:
        reader = stats.Reader(cid)
        fast, slow = reader.read(), cgroups.Cgroup(cid).stats()
        reader.close()
        assert fast["memory_limit"] == slow["memory_limit"] == 64 * MiB
        assert fast["pids_limit"] == slow["pids_limit"] == 7
        assert fast["pids"] == slow["pids_current"] == 1
    finally:
        cli("rm", "-f", cid, check=True)
