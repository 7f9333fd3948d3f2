"""Control groups: how much memory, CPU, processes and disk bandwidth a container may use.

Layer: runtime (runc/crun: what crun's src/libcrun/cgroup.c does, over cgroup-v1.c
and cgroup-v2.c).  Namespaces decide what a container can *see*; cgroups decide
how much it can *use*, and let the engine find and kill every process of a
container, however often they fork.  The whole interface is a directory tree of
small text files: mkdir makes a group, writing a pid to cgroup.procs moves a
process into it, writing a number to a file sets a limit, rmdir removes the
(empty) group.

The kernel offers two layouts; version() tells which one /sys/fs/cgroup has, and
each has a module of its own, readable alone:

  v1.py  one hierarchy per controller (memory, cpu/cpuacct, pids, blkio, freezer,
         cpuset), so one container is one directory *per controller*:
             /sys/fs/cgroup/memory/minidocker/<id>/memory.limit_in_bytes
  v2.py  one tree, one directory per group, every controller's files side by side
         (memory.max, cpu.max, cpu.weight, pids.max, io.max, cgroup.freeze), handed
         down by each parent's cgroup.subtree_control:
             /sys/fs/cgroup/minidocker/<id>/memory.max
  utils.py  what both share: mounts, reading and writing the files.

This module is the interface: the Cgroup class, docker's rules for the values
(checked here once, for both layouts), and the counters `docker stats` shows
(read_counters: the one parser of them; engine/stats.py samples with it).

Limits use docker's HostConfig names; FILES shows the file each one becomes in
each layout.  Docker's conventions kept here: Memory 0 means "no limit";
MemorySwap is memory+swap and defaults to twice Memory; NanoCpus 1e9 is one CPU,
written as a CFS quota per 100 ms period; on v2, CpuShares and BlkioWeight are
converted to weights with the formulas runc and crun use.

In update(), a key that is absent, None or 0 is left as it is (the docker
client sends 0 for every flag not given); -1 means "unlimited".

Add a process before it starts the container's program: memory it used before
the move stays charged to its old group (v1 memory.move_charge_at_immigrate).
On v2 a group that holds processes cannot hand controllers to children, so
the parent group itself must never hold a process.

References: Documentation/admin-guide/cgroup-v2.rst, Documentation/admin-guide/
cgroup-v1/*.rst, Documentation/scheduler/sched-bwc.rst (CPU quota), cgroups(7).
"""
import errno
import os
import re
import signal
import time
from decimal import Decimal, InvalidOperation

from minidocker import config
from minidocker.errors import InvalidArgument, MinidockerError, NotFound
from minidocker.runtime.cgroups import v1, v2
from minidocker.runtime.cgroups.utils import (MOUNT, NO_LIMIT, block_device, cpu_list, fields,
                                              host_memory, mounts, number, read, write)

PERIOD = 100_000        # CFS period in microseconds: docker's default
MIN_MEMORY = 6 << 20    # docker refuses smaller memory limits
V1_CONTROLLERS, V2_CONTROLLERS = v1.CONTROLLERS, v2.CONTROLLERS

# Limit name -> (v1 controller, v1 file...), v2 file...  The first file that exists wins.
FILES = {key: (v1.LIMITS[key], *v2.LIMITS[key]) for key in v1.LIMITS}
# Counter name -> ((v1 controller, v1 file), v2 file): the files read_counters() reads.
COUNTERS = {name: (v1.COUNTERS[name], v2.COUNTERS[name]) for name in v1.COUNTERS}
IO_MAX_KEY = v2.IO_MAX_KEY

_host_memory = host_memory          # the old private name (engine/stats.py used it)


# --- which layout ----------------------------------------------------------

def version() -> int:
    """2 if /sys/fs/cgroup itself is a cgroup2 mount, else 1 (a v1 or hybrid system)."""
    return 2 if any(p == MOUNT and t == "cgroup2" for p, t, _ in mounts()) else 1


def layout(number_: int):
    """The module that speaks that version: v1 or v2."""
    return v2 if number_ == 2 else v1


# --- parsing docker's units ------------------------------------------------

def parse_size(text) -> int:
    """Docker's memory sizes: "512m" -> 536870912.  Units b, k, m, g, t (powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*", str(text), re.I)
    if not m:
        raise InvalidArgument(f"invalid size: {text!r} (use a number with b, k, m or g, like 512m)")
    scale = 1024 ** "bkmgt".index(m.group(2).lower() or "b")
    return int(Decimal(m.group(1)) * scale)


def parse_cpus(text) -> int:
    """Docker's --cpus: "1.5" -> 1500000000 NanoCpus (1e9 is one whole CPU)."""
    try:
        nano = Decimal(str(text).strip()) * 10**9
    except InvalidOperation:
        raise InvalidArgument(f"invalid CPU count: {text!r} (use a number like 1.5)") from None
    if not nano.is_finite() or nano < 0 or nano != nano.to_integral_value():
        raise InvalidArgument(f"invalid CPU count: {text!r} (a positive number, at most 9 decimals)")
    return int(nano)


# --- the counters --------------------------------------------------------------

def read_counters(version_: int, text) -> dict:
    """Every counter of one group, from text(name), the content of COUNTERS[name]
    ("" if this kernel lacks it).  Bytes, nanoseconds and counts; memory_limit and
    pids_limit None when unlimited.  The one parser of these files: Cgroup.stats()
    reads them by path, engine/stats.py's Reader from files it keeps open."""
    lay = layout(version_)
    anon, file, inactive = lay.MEMSTAT
    memstat = {k: int(v) for k, v in lay.MEMSTAT_LINES.findall(text("memory_stat"))}
    limit = text("memory_limit").strip()
    quota, period = lay.cpu_quota(text)
    pids_max = text("pids_max").strip()
    io_read, io_write = lay.io_bytes(text("io"))
    return {
        "memory": int(text("memory") or 0),
        "anon": memstat.get(anon, 0), "file": memstat.get(file, 0),
        "inactive_file": memstat.get(inactive, 0),
        "memory_limit": None if limit in ("", "max") or int(limit) >= NO_LIMIT else int(limit),
        "cpu_ns": lay.cpu_ns(text("cpu")),
        "cpus_limit": None if quota in ("", "max", "-1") else int(quota) / int(period),
        "pids": int(text("pids") or 0),
        "pids_limit": None if pids_max in ("", "max") else int(pids_max),
        "io_read": io_read, "io_write": io_write,
        "oom_kills": fields(text("memory_events")).get("oom_kill", 0),
    }


def _text_of(path) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise MinidockerError(f"cannot read {path}: {e.strerror}") from None


class Cgroup:
    """One group (a container's), in whichever layout the host has: self.layout is
    the v1 or v2 module, which knows the file names; this class knows docker's rules."""

    def __init__(self, name: str, parent: str | None = None):
        parent = config.cgroup_parent() if parent is None else parent
        parts = [p for p in parent.split("/") if p] + [name]
        for part in parts:
            if part in ("", ".", "..") or "/" in part or "\0" in part or len(part) > 255:
                raise InvalidArgument(f"invalid cgroup name: {'/'.join(parts)!r}")
        self.name, self.parent, self.relpath = name, parent.strip("/"), "/".join(parts)
        self.version = version()
        self.layout = layout(self.version)
        self._dirs = self.layout.dirs(self.relpath)

    def __repr__(self):
        return f"<Cgroup v{self.version} {self.relpath}>"

    def paths(self) -> dict:
        """Controller -> directory (on v2 all controllers share one directory)."""
        return dict(self._dirs)

    def _unique_dirs(self) -> list:
        return list(dict.fromkeys(self._dirs.values()))   # cpuset first, order kept

    def files(self) -> dict:
        """Limit name -> the kernel file that holds it, to show how v1 and v2 differ."""
        return {key: next((p for p in paths if os.path.exists(p)), paths[0])
                for key, paths in self.layout.limit_paths(self._dirs).items()}

    def counter_files(self) -> dict:
        """Counter name (COUNTERS) -> the kernel file, for readers that keep them open."""
        return self.layout.counter_paths(self._dirs)

    def _limit_file(self, key: str, required=True) -> str | None:
        path = self.files().get(key)
        if path is None or not os.path.exists(path):
            if not required:
                return None
            v1_names, *v2_names = FILES[key]
            names = " or ".join(v1_names[1:] if self.version == 1 else v2_names)
            raise MinidockerError(f"{key} is not supported by this kernel: no {names} in {self}")
        return path

    # --- lifecycle ---------------------------------------------------------

    def create(self, limits: dict | None = None) -> None:
        """Make the group (and its parents) in every hierarchy, then apply limits.  Idempotent."""
        self.layout.create(self._dirs, self.relpath)
        if limits:
            self._apply(limits, creating=True)

    def add(self, pid: int) -> None:
        """Move process pid (with its threads) into the group, in every hierarchy."""
        for d in self._unique_dirs():
            write(os.path.join(d, "cgroup.procs"), int(pid))

    def pids(self) -> list:
        """Every process in the group, from each hierarchy's cgroup.procs."""
        found = set()
        for d in self._unique_dirs():
            try:
                found.update(int(p) for p in read(os.path.join(d, "cgroup.procs")).split())
            except NotFound:
                pass
        return sorted(found)

    def freeze(self, frozen: bool = True, timeout=2.0) -> None:
        """Stop (or restart) every process, so that none can fork while being signalled
        or its files change while they are copied (v1 freezer.state, v2 cgroup.freeze)."""
        how = self.layout.freezer(self._dirs, frozen)
        if how is None or not os.path.exists(how[0]):
            return
        path, value, check, done = how
        write(path, value)
        deadline = time.monotonic() + timeout
        while done not in read(check) and time.monotonic() < deadline:
            time.sleep(0.005)   # a task in uninterruptible sleep freezes late; go on anyway


    def kill_all(self, sig=signal.SIGKILL) -> None:
        """Signal every process.  For SIGKILL, repeat until the group is empty."""
        deadline = time.monotonic() + 20
        kill = self.layout.KILL and os.path.join(self._unique_dirs()[0], self.layout.KILL)
        while self.pids():
            if sig == signal.SIGKILL and kill and os.path.exists(kill):
                write(kill, 1)            # the kernel kills the whole subtree, forks included
            else:
                self.freeze(True)
                try:
                    for pid in self.pids():
                        try:
                            os.kill(pid, sig)
                        except ProcessLookupError:
                            pass
                finally:
                    self.freeze(False)    # SIGKILL takes effect when the task thaws
            if sig != signal.SIGKILL:
                return
            settle = time.monotonic() + 0.5
            while self.pids() and time.monotonic() < settle:
                time.sleep(0.005)
            if time.monotonic() > deadline:
                raise MinidockerError(f"cgroup {self.relpath}: processes {self.pids()} survive SIGKILL")

    def destroy(self) -> None:
        """Kill everything in the group, then remove its directories.  Idempotent."""
        self.kill_all()
        for d in self._unique_dirs():
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    # EBUSY: a killed task has not quite left yet.
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise MinidockerError(f"cannot remove cgroup {d}: {e.strerror}") from None
                    time.sleep(0.01)

    # --- limits ------------------------------------------------------------

    def update(self, limits: dict) -> None:
        """Change limits of a live group; keys absent, None or 0 stay as they are."""
        self._apply(limits, creating=False)

    def _apply(self, limits: dict, creating: bool) -> None:
        # Check every value before writing any, so a bad value changes nothing.
        writes = self._memory_writes(limits, creating) + self._cpu_writes(limits) \
            + self._pids_writes(limits) + self._io_writes(limits)
        for path, value in writes:
            write(path, value)

    def _memory_writes(self, limits: dict, creating: bool) -> list:
        memory = number("Memory", limits.get("Memory") or 0, -1)
        swap = number("MemorySwap", limits.get("MemorySwap") or 0, -1)
        if 0 < memory < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        if swap > 0 and memory <= 0:
            raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
        if swap > 0 and swap < memory:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit")
        if creating and memory > 0 and swap == 0:
            swap = 2 * memory                     # docker's default: as much swap as memory
        if memory == -1:
            swap = -1
        if not memory and not swap:
            return []
        mem_file = self._limit_file("Memory")
        swap_file = self._limit_file("MemorySwap", required=(limits.get("MemorySwap") or 0) > 0)
        return self.layout.memory_writes(mem_file, swap_file, memory, swap)

    def _cpu_writes(self, limits: dict) -> list:
        writes = []
        nano = number("NanoCpus", limits.get("NanoCpus") or 0, 0)
        quota = number("CpuQuota", limits.get("CpuQuota") or 0, -1)
        period = number("CpuPeriod", limits.get("CpuPeriod") or 0, 0)
        if nano and (quota or period):
            raise InvalidArgument("Conflicting options: NanoCpus and CpuQuota/CpuPeriod cannot both be set")
        if nano:
            ncpu = os.cpu_count() or 1
            if not 10**7 <= nano <= ncpu * 10**9:
                raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only"
                                      f" {ncpu} CPUs available")
            quota, period = nano * PERIOD // 10**9, PERIOD
        if period and not 1000 <= period <= 1_000_000:
            raise InvalidArgument("CPU period must be between 1ms and 1s (1000-1000000)")
        if 0 < quota < 1000:
            raise InvalidArgument("CPU quota must be at least 1ms (1000)")
        if quota or period:
            files = {k: self._limit_file(k) for k in ("NanoCpus", "CpuQuota", "CpuPeriod")}
            writes += self.layout.cpu_writes(files, quota, period)
        shares = number("CpuShares", limits.get("CpuShares") or 0, 0)
        if shares:
            writes.append((self._limit_file("CpuShares"), self.layout.cpu_weight(shares)))
        for key in ("CpusetCpus", "CpusetMems"):
            value = limits.get(key)
            if value:
                if not isinstance(value, str) or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", value):
                    raise InvalidArgument(f"Invalid value {value!r} for {key} (use a list like 0-1,3)")
                self._check_available(key, value)
                writes.append((self._limit_file(key), value))
        return writes

    def _check_available(self, key: str, value: str) -> None:
        parent = os.path.dirname(self._dirs["cpuset"])
        kind = "cpus" if key == "CpusetCpus" else "mems"
        path = os.path.join(parent, self.layout.cpuset_effective(kind))
        if os.path.exists(path):
            available = read(path)
            if not cpu_list(value) <= cpu_list(available):
                what = "CPUs" if kind == "cpus" else "memory nodes"
                raise InvalidArgument(f"Requested {what} are not available - requested {value},"
                                      f" available: {available}")

    def _pids_writes(self, limits: dict) -> list:
        value = limits.get("PidsLimit")
        if value is None:
            return []
        value = number("PidsLimit", value, -1)
        return [(self._limit_file("PidsLimit"), "max" if value <= 0 else value)]

    def _io_writes(self, limits: dict) -> list:
        writes = []
        weight = number("BlkioWeight", limits.get("BlkioWeight") or 0, 0)
        if weight:
            if not 10 <= weight <= 1000:
                raise InvalidArgument("Range of blkio weight is from 10 to 1000")
            path = self._limit_file("BlkioWeight")
            writes.append((path, self.layout.io_weight(path, weight)))
        for key in IO_MAX_KEY:
            for rule in limits.get(key) or []:
                if not isinstance(rule, dict) or "Path" not in rule or "Rate" not in rule:
                    raise InvalidArgument(f"invalid {key}: {rule!r} (want {{'Path': ..., 'Rate': ...}})")
                rate = number(f"{key} rate", rule["Rate"], 0)
                dev = block_device(rule["Path"])
                writes.append((self._limit_file(key), self.layout.io_rule(key, dev, rate)))
        return writes

    # --- reading -----------------------------------------------------------

    def counters(self) -> dict:
        """read_counters() of this group, each file opened and read once."""
        paths = self.counter_files()
        return read_counters(self.version, lambda name: _text_of(paths[name]) if name in paths else "")

    def stats(self) -> dict:
        """Usage counters, in the units docker stats uses (bytes, nanoseconds, counts)."""
        if not os.path.isdir(self._unique_dirs()[0]):
            raise NotFound(f"no cgroup {self.relpath}")
        now = self.counters()
        stats = {
            "memory_usage": now["memory"],
            "memory_limit": now["memory_limit"] or host_memory(),   # docker shows the host's
            "memory_inactive_file": now["inactive_file"],
            "cpu_usage_ns": now["cpu_ns"],
            "pids_current": now["pids"],
            "pids_limit": now["pids_limit"],
            "io_read_bytes": now["io_read"],
            "io_write_bytes": now["io_write"],
            "oom_kills": now["oom_kills"],
        }
        peak = self.layout.peak_path(self._dirs)
        if peak and os.path.exists(peak):
            stats["memory_max_usage"] = int(read(peak))
        return stats

    def oom_killed(self) -> bool:
        """Has the kernel's OOM killer killed a process of this group?"""
        path = self.counter_files().get("memory_events")
        return bool(path) and fields(_text_of(path)).get("oom_kill", 0) > 0
