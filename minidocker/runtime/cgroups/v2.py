"""cgroup v2: one unified tree, one directory per group, every controller's files in it.

Layer: runtime (what crun's src/libcrun/cgroup-v2.c and runc's libcontainer/cgroups/fs2
do).  On a v2 host /sys/fs/cgroup is a single cgroup2 mount, and a container is a
single directory:

    /sys/fs/cgroup/minidocker/<id>/{memory.max, memory.swap.max, cpu.max, cpu.weight,
                                    pids.max, io.max, cgroup.freeze, cgroup.kill}

What is v2's own, as against v1.py (Documentation/admin-guide/cgroup-v2.rst):
  - a controller works in a group only if every ancestor lists it in its
    cgroup.subtree_control ("Enabling and Disabling"), and a group that hands
    controllers down must hold no process itself ("no internal processes");
  - memory.swap.max limits swap alone (docker's MemorySwap minus Memory);
  - the quota and the period share one file, cpu.max ("50000 100000", or "max");
  - weights are 1..10000 (default 100): cpu.weight, io.weight, converted from
    docker's cpu shares (2..262144) and blkio weight (10..1000) as runc and crun do;
  - "max" means no limit; one io.max line per device holds rbps/wbps/riops/wiops;
  - the whole group freezes with cgroup.freeze, and dies with cgroup.kill (5.14+).

The Cgroup class in __init__.py checks docker's rules, then calls the functions
here for the file names and the values; v1.py has the same functions.
"""
import os

from minidocker.runtime.cgroups.utils import MOUNT, mkdir, pick, read, write

VERSION = 2
CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")

# Limit name (docker's HostConfig) -> file, or the files to try in order.
LIMITS = {
    "Memory": ("memory.max",),
    "MemorySwap": ("memory.swap.max",),
    "NanoCpus": ("cpu.max",),
    "CpuQuota": ("cpu.max",),
    "CpuPeriod": ("cpu.max",),
    "CpuShares": ("cpu.weight",),
    "CpusetCpus": ("cpuset.cpus",),
    "CpusetMems": ("cpuset.mems",),
    "PidsLimit": ("pids.max",),
    "BlkioWeight": ("io.bfq.weight", "io.weight"),      # the BFQ scheduler's, else the core one
    "BlkioDeviceReadBps": ("io.max",),
    "BlkioDeviceWriteBps": ("io.max",),
    "BlkioDeviceReadIOps": ("io.max",),
    "BlkioDeviceWriteIOps": ("io.max",),
}
IO_MAX_KEY = {"BlkioDeviceReadBps": "rbps", "BlkioDeviceWriteBps": "wbps",
              "BlkioDeviceReadIOps": "riops", "BlkioDeviceWriteIOps": "wiops"}

# Counter -> file: what `docker stats` and the sampler read (None: another file has it).
COUNTERS = {
    "memory": "memory.current",
    "memory_limit": "memory.max",
    "memory_stat": "memory.stat",
    "memory_events": "memory.events",     # its oom_kill line
    "cpu": "cpu.stat",                    # usage_usec, microseconds
    "cpu_max": "cpu.max",
    "cpu_period": None,                   # cpu.max holds both
    "pids": "pids.current",
    "pids_max": "pids.max",
    "io": "io.stat",
}
PEAK = "memory.peak"                      # Linux 5.19+
MEMSTAT = ("anon", "file", "inactive_file")
MEMSTAT_LINES = pick(MEMSTAT)
KILL = "cgroup.kill"


# --- where the files are ------------------------------------------------------

def dirs(relpath: str) -> dict:
    """Controller -> directory: the same one for every controller."""
    return {c: os.path.join(MOUNT, relpath) for c in CONTROLLERS}


def limit_paths(dirs_: dict) -> dict:
    """Limit name -> candidate files (the first that exists is used)."""
    return {key: [os.path.join(dirs_[names[0].split(".")[0]], name) for name in names]
            for key, names in LIMITS.items() if names[0].split(".")[0] in dirs_}   # io.max -> io


def counter_paths(dirs_: dict) -> dict:
    return {name: os.path.join(dirs_["memory"], file) for name, file in COUNTERS.items() if file}


def peak_path(dirs_: dict):
    return os.path.join(dirs_["memory"], PEAK)


# --- making a group -------------------------------------------------------------

def create(dirs_: dict, relpath: str) -> None:
    """mkdir the group and its parents; each ancestor hands the controllers down."""
    d = MOUNT
    for part in relpath.split("/"):
        available = read(os.path.join(d, "cgroup.controllers")).split()
        enabled = read(os.path.join(d, "cgroup.subtree_control")).split()
        wanted = [c for c in CONTROLLERS if c in available and c not in enabled]
        if wanted:
            write(os.path.join(d, "cgroup.subtree_control"), " ".join("+" + c for c in wanted))
        d = os.path.join(d, part)
        mkdir(d)


# --- limits: (file, value) pairs, written in order -------------------------------

def memory_writes(mem_file: str, swap_file, memory: int, swap: int) -> list:
    """memory.max, and memory.swap.max = docker's memory+swap minus memory."""
    writes = [(mem_file, "max" if memory == -1 else memory)] if memory else []
    if swap and swap_file:
        writes.append((swap_file, "max" if swap == -1 else swap - memory))
    return writes


def cpu_writes(files: dict, quota: int, period: int) -> list:
    """One file, "QUOTA PERIOD"; what is not given stays as it is."""
    old_quota, old_period = read(files["NanoCpus"]).split()
    q = "max" if quota == -1 else (quota or old_quota)
    return [(files["NanoCpus"], f"{q} {period or old_period}")]


def cpu_weight(shares: int) -> int:
    """cpu.shares 2..262144 -> cpu.weight 1..10000 (runc's ConvertCPUSharesToCgroupV2Value)."""
    shares = min(max(shares, 2), 262144)
    return 1 + (shares - 2) * 9999 // 262142


def io_weight(path: str, weight: int) -> int:
    """io.bfq.weight takes 10..1000 as v1 did; io.weight wants 1..10000, as runc converts."""
    return 1 + (weight - 10) * 9999 // 990 if path.endswith("io.weight") else weight


def io_rule(key: str, device: str, rate: int) -> str:
    return f"{device} {IO_MAX_KEY[key]}={rate or 'max'}"     # "8:0 wbps=1048576"


def cpuset_effective(kind: str) -> str:
    """The parent's file that lists what a child may use ("cpus" or "mems")."""
    return f"cpuset.{kind}.effective"


def freezer(dirs_: dict, frozen: bool):
    """(file to write, value, file to read, text that says done)."""
    d = dirs_["cpu"]
    return (os.path.join(d, "cgroup.freeze"), "01"[frozen], os.path.join(d, "cgroup.events"),
            "frozen 1" if frozen else "frozen 0")


# --- counters ---------------------------------------------------------------------

def cpu_ns(text: str) -> int:
    for line in text.splitlines():    # cpu.stat: "usage_usec 1234" first
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) * 1000
    return 0


def cpu_quota(text) -> tuple:
    """(quota, period) from cpu.max, "max 100000" when there is no quota."""
    quota, _, period = text("cpu_max").strip().partition(" ")
    return quota, period


def io_bytes(text: str) -> tuple:
    """(read, written) bytes from io.stat, summed over devices."""
    read_ = write_ = 0
    for line in text.splitlines():    # "254:0 rbytes=4096 wbytes=0 rios=1 ..."
        f = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        read_, write_ = read_ + int(f.get("rbytes", 0)), write_ + int(f.get("wbytes", 0))
    return read_, write_
