"""cgroup v1: one hierarchy per controller, so one directory per controller per group.

Layer: runtime (what crun's src/libcrun/cgroup-v1.c and runc's libcontainer/cgroups/fs
do).  On a v1 (or "hybrid") host every controller is a file system of its own,
mounted on /sys/fs/cgroup/<controller> (cpu and cpuacct often share one), so a
container is one directory in each, and a process must be written into each:

    /sys/fs/cgroup/memory/minidocker/<id>/memory.limit_in_bytes
    /sys/fs/cgroup/cpu/minidocker/<id>/cpu.cfs_quota_us       (with cpu.cfs_period_us)
    /sys/fs/cgroup/pids/minidocker/<id>/pids.max
    /sys/fs/cgroup/blkio/minidocker/<id>/blkio.throttle.write_bps_device
    /sys/fs/cgroup/freezer/minidocker/<id>/freezer.state

What is v1's own, as against v2.py:
  - memory.memsw.limit_in_bytes limits memory *plus* swap, and must never be
    below memory.limit_in_bytes, not even between two writes;
  - the CPU quota and its period are two files; cpu.shares is the weight (1024);
  - no limit reads as a huge number, not "max";
  - the counters that cover a whole subtree are memory.stat's total_* lines;
  - blkio charges only direct and synchronous I/O (writeback is not charged);
  - a new cpuset has no CPUs and no memory nodes: they are copied from the parent.

The Cgroup class in __init__.py checks docker's rules, then calls the functions
here for the file names and the values; v2.py has the same functions.
References: Documentation/admin-guide/cgroup-v1/{cgroups,memory,cpusets,pids,
blkio-controller,freezer-subsystem,cpuacct}.rst, Documentation/scheduler/sched-bwc.rst.
"""
import os

from minidocker.errors import InvalidArgument
from minidocker.runtime.cgroups.utils import mkdir, mounts, pick, read, write

VERSION = 1
CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "freezer")

# Limit name (docker's HostConfig) -> (controller, file, another name for it on some kernels).
LIMITS = {
    "Memory": ("memory", "memory.limit_in_bytes"),
    "MemorySwap": ("memory", "memory.memsw.limit_in_bytes"),
    "NanoCpus": ("cpu", "cpu.cfs_quota_us"),
    "CpuQuota": ("cpu", "cpu.cfs_quota_us"),
    "CpuPeriod": ("cpu", "cpu.cfs_period_us"),
    "CpuShares": ("cpu", "cpu.shares"),
    "CpusetCpus": ("cpuset", "cpuset.cpus"),
    "CpusetMems": ("cpuset", "cpuset.mems"),
    "PidsLimit": ("pids", "pids.max"),
    "BlkioWeight": ("blkio", "blkio.weight", "blkio.bfq.weight"),
    "BlkioDeviceReadBps": ("blkio", "blkio.throttle.read_bps_device"),
    "BlkioDeviceWriteBps": ("blkio", "blkio.throttle.write_bps_device"),
    "BlkioDeviceReadIOps": ("blkio", "blkio.throttle.read_iops_device"),
    "BlkioDeviceWriteIOps": ("blkio", "blkio.throttle.write_iops_device"),
}

# Counter -> (controller, file): what `docker stats` and the sampler read.
COUNTERS = {
    "memory": ("memory", "memory.usage_in_bytes"),
    "memory_limit": ("memory", "memory.limit_in_bytes"),
    "memory_stat": ("memory", "memory.stat"),
    "memory_events": ("memory", "memory.oom_control"),     # its oom_kill line
    "cpu": ("cpuacct", "cpuacct.usage"),                   # nanoseconds
    "cpu_max": ("cpu", "cpu.cfs_quota_us"),
    "cpu_period": ("cpu", "cpu.cfs_period_us"),
    "pids": ("pids", "pids.current"),
    "pids_max": ("pids", "pids.max"),
    "io": ("blkio", "blkio.throttle.io_service_bytes_recursive"),
}
PEAK = ("memory", "memory.max_usage_in_bytes")
# memory.stat: v1 prefixes the counters of the whole subtree with "total_".
MEMSTAT = ("total_rss", "total_cache", "total_inactive_file")     # anon, file, inactive file
MEMSTAT_LINES = pick(MEMSTAT)
KILL = None                       # no cgroup.kill on v1: kill_all signals every pid


# --- where the files are ------------------------------------------------------

def dirs(relpath: str) -> dict:
    """Controller -> the group's directory in that controller's hierarchy."""
    roots = {}
    for point, fstype, options in mounts():
        for name in options:
            if fstype == "cgroup" and name in CONTROLLERS:
                roots.setdefault(name, point)
    return {c: os.path.join(root, relpath) for c, root in roots.items()}


def limit_paths(dirs_: dict) -> dict:
    """Limit name -> candidate files (the first that exists is used)."""
    return {key: [os.path.join(dirs_[controller], name) for name in names]
            for key, (controller, *names) in LIMITS.items() if controller in dirs_}


def counter_paths(dirs_: dict) -> dict:
    return {name: os.path.join(dirs_[controller], file)
            for name, (controller, file) in COUNTERS.items() if controller in dirs_}


def peak_path(dirs_: dict):
    return os.path.join(dirs_[PEAK[0]], PEAK[1]) if PEAK[0] in dirs_ else None


# --- making a group -------------------------------------------------------------

def create(dirs_: dict, relpath: str) -> None:
    """mkdir the group and its parents in every hierarchy."""
    parts = relpath.split("/")
    for controller, leaf in dirs_.items():
        d = leaf[: len(leaf) - len(relpath) - 1]      # the hierarchy's mount point
        for part in parts:
            d = os.path.join(d, part)
            mkdir(d)
            if controller == "cpuset":
                # A new v1 cpuset starts with no CPUs and no memory nodes: no task may join it.
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not read(os.path.join(d, name)):
                        write(os.path.join(d, name), read(os.path.join(os.path.dirname(d), name)))


# --- limits: (file, value) pairs, written in order -------------------------------

def memory_writes(mem_file: str, swap_file, memory: int, swap: int) -> list:
    """memory and memory+swap (docker's MemorySwap is memory+swap, as v1's memsw is)."""
    if not swap or not swap_file:
        if swap_file and memory > int(read(swap_file)):
            raise InvalidArgument("Memory limit should be smaller than already set memoryswap"
                                  " limit, update the memoryswap at the same time")
        return [(mem_file, memory)]
    # v1 insists limit <= memsw at every moment: raise memsw first, or lower the limit first.
    if swap == -1 or swap >= int(read(swap_file)):
        return [(swap_file, swap)] + ([(mem_file, memory)] if memory else [])
    return ([(mem_file, memory)] if memory else []) + [(swap_file, swap)]


def cpu_writes(files: dict, quota: int, period: int) -> list:
    """The quota and the period are two files; -1 is no quota."""
    writes = []
    if period:
        writes.append((files["CpuPeriod"], period))
    if quota:
        writes.append((files["CpuQuota"], quota))
    return writes


def cpu_weight(shares: int) -> int:
    return shares                     # cpu.shares is docker's CpuShares itself (default 1024)


def io_weight(path: str, weight: int) -> int:
    return weight                     # blkio.weight takes docker's 10..1000 as is


def io_rule(key: str, device: str, rate: int) -> str:
    return f"{device} {rate}"         # one file per direction; rate 0 removes the rule


def cpuset_effective(kind: str) -> str:
    """The parent's file that lists what a child may use ("cpus" or "mems")."""
    return f"cpuset.effective_{kind}"


def freezer(dirs_: dict, frozen: bool):
    """(file to write, value, file to read, text that says done), or None without a freezer."""
    if "freezer" not in dirs_:
        return None
    path = os.path.join(dirs_["freezer"], "freezer.state")
    value = "FROZEN" if frozen else "THAWED"
    return path, value, path, value


# --- counters ---------------------------------------------------------------------

def cpu_ns(text: str) -> int:
    return int(text or 0)             # cpuacct.usage: nanoseconds


def cpu_quota(text) -> tuple:
    """(quota, period) from cpu.cfs_quota_us and cpu.cfs_period_us; quota -1 is none."""
    return text("cpu_max").strip(), text("cpu_period").strip()


def io_bytes(text: str) -> tuple:
    """(read, written) bytes from blkio.throttle.io_service_bytes_recursive."""
    read_ = write_ = 0
    for line in text.splitlines():    # "254:0 Read 4096"; a last line "Total N"
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read_ += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write_ += int(parts[2])
    return read_, write_
