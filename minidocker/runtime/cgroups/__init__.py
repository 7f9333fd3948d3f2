"""Control groups: how much memory, CPU, processes and disk bandwidth a container may use.

Layer: kernel interface.  Namespaces decide what a container can *see*; cgroups
decide how much it can *use*, and let the engine find and kill every process
of a container, however often they fork.  The whole interface is a directory
tree of small text files: mkdir makes a group, writing a pid to cgroup.procs
moves a process into it, writing a number to a file sets a limit, rmdir
removes the (empty) group.

The kernel offers two layouts; version() tells which one /sys/fs/cgroup has.

  v1 (this host, a "hybrid" system): one hierarchy per controller, each mounted
  on its own, so one container is one directory *per controller*, and a process
  must be written into every one of them:
      /sys/fs/cgroup/memory/minidocker/<id>/memory.limit_in_bytes
      /sys/fs/cgroup/cpu/minidocker/<id>/cpu.cfs_quota_us
      /sys/fs/cgroup/pids/minidocker/<id>/pids.max

  v2 (classroom VMs, current distributions): one tree, one directory per group,
  every controller's files side by side.  A parent hands controllers down to its
  children by writing "+memory +cpu ..." to its cgroup.subtree_control, and only
  leaves hold processes ("no internal processes"):
      /sys/fs/cgroup/minidocker/<id>/{memory.max, cpu.max, pids.max, io.max}

Limits use docker's HostConfig names; FILES below shows the file each one
becomes in each layout.  Docker's conventions kept here: Memory 0 means "no
limit"; MemorySwap is memory+swap and defaults to twice Memory; NanoCpus 1e9 is
one CPU, written as a CFS quota per 100 ms period; on v2, CpuShares and
BlkioWeight are converted to weights with the formulas runc and crun use.

In update(), a key that is absent, None or 0 is left as it is (the docker
client sends 0 for every flag not given); -1 means "unlimited".

Add a process before it starts the container's program: memory it used before
the move stays charged to its old group (v1 memory.move_charge_at_immigrate).
On v2 a group that holds processes cannot hand controllers to children, so
the parent group itself must never hold a process.

References: Documentation/admin-guide/cgroup-v1/{cgroups,memory,cpusets,pids,
blkio-controller,freezer-subsystem}.rst, Documentation/scheduler/sched-bwc.rst
(CPU quota), Documentation/admin-guide/cgroup-v2.rst, cgroups(7).
"""
import errno
import os
import re
import signal
import stat
import time
from decimal import Decimal, InvalidOperation

from minidocker import config
from minidocker.errors import InvalidArgument, MinidockerError, NotFound

MOUNT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "freezer")
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")
PERIOD = 100_000        # CFS period in microseconds: docker's default
MIN_MEMORY = 6 << 20    # docker refuses smaller memory limits
NO_LIMIT = 1 << 62      # v1 shows "no limit" as a huge number (9223372036854771712)

# Limit name -> (v1 controller, v1 file), (v2 file).  The first file that exists wins.
FILES = {
    "Memory": (("memory", "memory.limit_in_bytes"), "memory.max"),
    "MemorySwap": (("memory", "memory.memsw.limit_in_bytes"), "memory.swap.max"),
    "NanoCpus": (("cpu", "cpu.cfs_quota_us"), "cpu.max"),
    "CpuQuota": (("cpu", "cpu.cfs_quota_us"), "cpu.max"),
    "CpuPeriod": (("cpu", "cpu.cfs_period_us"), "cpu.max"),
    "CpuShares": (("cpu", "cpu.shares"), "cpu.weight"),
    "CpusetCpus": (("cpuset", "cpuset.cpus"), "cpuset.cpus"),
    "CpusetMems": (("cpuset", "cpuset.mems"), "cpuset.mems"),
    "PidsLimit": (("pids", "pids.max"), "pids.max"),
    "BlkioWeight": (("blkio", "blkio.weight", "blkio.bfq.weight"), "io.bfq.weight", "io.weight"),
    "BlkioDeviceReadBps": (("blkio", "blkio.throttle.read_bps_device"), "io.max"),
    "BlkioDeviceWriteBps": (("blkio", "blkio.throttle.write_bps_device"), "io.max"),
    "BlkioDeviceReadIOps": (("blkio", "blkio.throttle.read_iops_device"), "io.max"),
    "BlkioDeviceWriteIOps": (("blkio", "blkio.throttle.write_iops_device"), "io.max"),
}
IO_MAX_KEY = {"BlkioDeviceReadBps": "rbps", "BlkioDeviceWriteBps": "wbps",
              "BlkioDeviceReadIOps": "riops", "BlkioDeviceWriteIOps": "wiops"}


# --- which layout ----------------------------------------------------------

def _mounts():
    """(mount point, fstype, super options) of every cgroup mount, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _source, options = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                yield left.split()[4], fstype, options.split(",")


def version() -> int:
    """2 if /sys/fs/cgroup itself is a cgroup2 mount, else 1 (a v1 or hybrid system)."""
    return 2 if any(p == MOUNT and t == "cgroup2" for p, t, _ in _mounts()) else 1


def _v1_roots() -> dict:
    """Controller -> mount point of its v1 hierarchy (cpu and cpuacct may share one)."""
    roots = {}
    for point, fstype, options in _mounts():
        for name in options:
            if fstype == "cgroup" and name in V1_CONTROLLERS:
                roots.setdefault(name, point)
    return roots


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


def _cpu_list(text: str) -> set:
    """ "0-2,5" -> {0, 1, 2, 5}, the kernel's cpu list format (cpuset(7))."""
    cpus = set()
    for part in filter(None, text.strip().split(",")):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _number(key, value, low=None):
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise InvalidArgument(f"invalid {key}: {value!r}")
    return value


# --- files -----------------------------------------------------------------

def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        raise NotFound(f"no cgroup file {path}") from None
    except OSError as e:
        raise MinidockerError(f"cannot read {path}: {e.strerror}") from None


def _write(path: str, value) -> None:
    """One write(2) of value to a cgroup file; the kernel checks and applies it."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as e:
        kind = InvalidArgument if e.errno in (errno.EINVAL, errno.ERANGE) else MinidockerError
        raise kind(f"cannot write {str(value)!r} to {path}: {e.strerror}") from None


def _fields(text: str) -> dict:
    """ "oom_kill 3\\nunder_oom 0" -> {"oom_kill": 3, "under_oom": 0}"""
    return {k: int(v) for k, v in (line.split()[:2] for line in text.splitlines() if " " in line)}


class Cgroup:
    def __init__(self, name: str, parent: str | None = None):
        parent = config.cgroup_parent() if parent is None else parent
        parts = [p for p in parent.split("/") if p] + [name]
        for part in parts:
            if part in ("", ".", "..") or "/" in part or "\0" in part or len(part) > 255:
                raise InvalidArgument(f"invalid cgroup name: {'/'.join(parts)!r}")
        self.name, self.parent, self.relpath = name, parent.strip("/"), "/".join(parts)
        self.version = version()
        if self.version == 2:
            self._dirs = {c: os.path.join(MOUNT, self.relpath) for c in V2_CONTROLLERS}
        else:
            self._dirs = {c: os.path.join(root, self.relpath) for c, root in _v1_roots().items()}

    def __repr__(self):
        return f"<Cgroup v{self.version} {self.relpath}>"

    def paths(self) -> dict:
        """Controller -> directory (on v2 all controllers share one directory)."""
        return dict(self._dirs)

    def _unique_dirs(self) -> list:
        return list(dict.fromkeys(self._dirs.values()))   # cpuset first, order kept

    def _file(self, controller: str, *names: str) -> str:
        """The first of names that exists in controller's directory (else the first name)."""
        if controller not in self._dirs:
            raise MinidockerError(f"the {controller} cgroup controller is not mounted on this host")
        paths = [os.path.join(self._dirs[controller], n) for n in names]
        return next((p for p in paths if os.path.exists(p)), paths[0])

    def files(self) -> dict:
        """Limit name -> the kernel file that holds it, to show how v1 and v2 differ."""
        shown = {}
        for key, (v1, *v2) in FILES.items():
            controller = v1[0] if self.version == 1 else v2[0].split(".")[0]   # "io.max" -> io
            if controller in self._dirs:
                shown[key] = self._file(controller, *(v1[1:] if self.version == 1 else v2))
        return shown

    def _limit_file(self, key: str, required=True) -> str | None:
        path = self.files().get(key)
        if path is None or not os.path.exists(path):
            if not required:
                return None
            v1, *v2 = FILES[key]
            names = " or ".join(v1[1:] if self.version == 1 else v2)
            raise MinidockerError(f"{key} is not supported by this kernel: no {names} in {self}")
        return path

    # --- lifecycle ---------------------------------------------------------

    def create(self, limits: dict | None = None) -> None:
        """Make the group (and its parents) in every hierarchy, then apply limits.  Idempotent."""
        parts = self.relpath.split("/")
        if self.version == 2:
            self._create_v2(parts)
        else:
            for controller, leaf in self._dirs.items():
                root = leaf[: len(leaf) - len(self.relpath) - 1]
                self._create_v1(controller, root, parts)
        if limits:
            self._apply(limits, creating=True)

    @staticmethod
    def _mkdir(path: str) -> None:
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except OSError as e:
            raise MinidockerError(f"cannot create cgroup {path}: {e.strerror}") from None

    def _create_v2(self, parts: list) -> None:
        # Each ancestor must pass the controllers down (cgroup-v2.rst "Enabling and Disabling").
        d = MOUNT
        for part in parts:
            available = _read(os.path.join(d, "cgroup.controllers")).split()
            enabled = _read(os.path.join(d, "cgroup.subtree_control")).split()
            wanted = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
            if wanted:
                _write(os.path.join(d, "cgroup.subtree_control"), " ".join("+" + c for c in wanted))
            d = os.path.join(d, part)
            self._mkdir(d)

    def _create_v1(self, controller: str, root: str, parts: list) -> None:
        d = root
        for part in parts:
            d = os.path.join(d, part)
            self._mkdir(d)
            if controller == "cpuset":
                # A new v1 cpuset starts with no CPUs and no memory nodes: no task may join it.
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(os.path.join(d, name)):
                        _write(os.path.join(d, name), _read(os.path.join(os.path.dirname(d), name)))

    def add(self, pid: int) -> None:
        """Move process pid (with its threads) into the group, in every hierarchy."""
        for d in self._unique_dirs():
            _write(os.path.join(d, "cgroup.procs"), int(pid))

    def pids(self) -> list:
        """Every process in the group, from each hierarchy's cgroup.procs."""
        found = set()
        for d in self._unique_dirs():
            try:
                found.update(int(p) for p in _read(os.path.join(d, "cgroup.procs")).split())
            except NotFound:
                pass
        return sorted(found)

    def _freeze(self, frozen: bool, timeout=2.0) -> None:
        """Stop (or restart) every process, so that none can fork while being signalled."""
        if self.version == 2:
            path, value, done = "cgroup.freeze", "01"[frozen], ("frozen 1" if frozen else "frozen 0")
            check = os.path.join(self._dirs["cpu"], "cgroup.events")
        elif "freezer" in self._dirs:
            path, value = "freezer.state", ("FROZEN" if frozen else "THAWED")
            done, check = value, os.path.join(self._dirs["freezer"], "freezer.state")
        else:
            return
        path = os.path.join(os.path.dirname(check), path)
        if not os.path.exists(path):
            return
        _write(path, value)
        deadline = time.monotonic() + timeout
        while done not in _read(check) and time.monotonic() < deadline:
            time.sleep(0.005)   # a task in uninterruptible sleep freezes late; go on anyway

    def kill_all(self, sig=signal.SIGKILL) -> None:
        """Signal every process.  For SIGKILL, repeat until the group is empty."""
        deadline = time.monotonic() + 20
        kill_file = os.path.join(self._unique_dirs()[0], "cgroup.kill")   # v2, Linux 5.14+
        while self.pids():
            if sig == signal.SIGKILL and os.path.exists(kill_file):
                _write(kill_file, 1)      # the kernel kills the whole subtree, forks included
            else:
                self._freeze(True)
                try:
                    for pid in self.pids():
                        try:
                            os.kill(pid, sig)
                        except ProcessLookupError:
                            pass
                finally:
                    self._freeze(False)   # SIGKILL takes effect when the task thaws
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
            _write(path, value)

    def _memory_writes(self, limits: dict, creating: bool) -> list:
        memory = _number("Memory", limits.get("Memory") or 0, -1)
        swap = _number("MemorySwap", limits.get("MemorySwap") or 0, -1)
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
        if self.version == 2:
            writes = [(mem_file, "max" if memory == -1 else memory)] if memory else []
            if swap and swap_file:
                writes.append((swap_file, "max" if swap == -1 else swap - memory))
            return writes
        if not swap or not swap_file:
            if swap_file and memory > int(_read(swap_file)):
                raise InvalidArgument("Memory limit should be smaller than already set memoryswap"
                                      " limit, update the memoryswap at the same time")
            return [(mem_file, memory)]
        # v1 insists limit <= memsw at every moment: raise memsw first, or lower the limit first.
        if swap == -1 or swap >= int(_read(swap_file)):
            return [(swap_file, swap)] + ([(mem_file, memory)] if memory else [])
        return ([(mem_file, memory)] if memory else []) + [(swap_file, swap)]

    def _cpu_writes(self, limits: dict) -> list:
        writes = []
        nano = _number("NanoCpus", limits.get("NanoCpus") or 0, 0)
        quota = _number("CpuQuota", limits.get("CpuQuota") or 0, -1)
        period = _number("CpuPeriod", limits.get("CpuPeriod") or 0, 0)
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
            if self.version == 2:
                old_quota, old_period = _read(self._limit_file("NanoCpus")).split()
                q = "max" if quota == -1 else (quota or old_quota)
                writes.append((self._limit_file("NanoCpus"), f"{q} {period or old_period}"))
            else:
                if period:
                    writes.append((self._limit_file("CpuPeriod"), period))
                if quota:
                    writes.append((self._limit_file("CpuQuota"), quota))
        shares = _number("CpuShares", limits.get("CpuShares") or 0, 0)
        if shares:
            if self.version == 2:
                shares = min(max(shares, 2), 262144)
                writes.append((self._limit_file("CpuShares"), 1 + (shares - 2) * 9999 // 262142))
            else:
                writes.append((self._limit_file("CpuShares"), shares))
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
        name = f"cpuset.{kind}.effective" if self.version == 2 else f"cpuset.effective_{kind}"
        path = os.path.join(parent, name)
        if os.path.exists(path):
            available = _read(path)
            if not _cpu_list(value) <= _cpu_list(available):
                what = "CPUs" if kind == "cpus" else "memory nodes"
                raise InvalidArgument(f"Requested {what} are not available - requested {value},"
                                      f" available: {available}")

    def _pids_writes(self, limits: dict) -> list:
        value = limits.get("PidsLimit")
        if value is None:
            return []
        value = _number("PidsLimit", value, -1)
        return [(self._limit_file("PidsLimit"), "max" if value <= 0 else value)]

    def _io_writes(self, limits: dict) -> list:
        writes = []
        weight = _number("BlkioWeight", limits.get("BlkioWeight") or 0, 0)
        if weight:
            if not 10 <= weight <= 1000:
                raise InvalidArgument("Range of blkio weight is from 10 to 1000")
            path = self._limit_file("BlkioWeight")
            if path.endswith("io.weight"):          # v2 without BFQ: 1..10000, as runc converts
                weight = 1 + (weight - 10) * 9999 // 990
            writes.append((path, weight))
        for key in IO_MAX_KEY:
            for rule in limits.get(key) or []:
                if not isinstance(rule, dict) or "Path" not in rule or "Rate" not in rule:
                    raise InvalidArgument(f"invalid {key}: {rule!r} (want {{'Path': ..., 'Rate': ...}})")
                rate = _number(f"{key} rate", rule["Rate"], 0)
                dev = _block_device(rule["Path"])
                if self.version == 2:
                    writes.append((self._limit_file(key), f"{dev} {IO_MAX_KEY[key]}={rate or 'max'}"))
                else:
                    writes.append((self._limit_file(key), f"{dev} {rate}"))   # 0 removes the rule
        return writes

    # --- reading -----------------------------------------------------------

    def _get(self, controller: str, name: str):
        """Text of a file, or None if this host lacks the controller or the file."""
        d = self._dirs.get(controller)
        if d is None or not os.path.exists(os.path.join(d, name)):
            return None
        return _read(os.path.join(d, name))

    def stats(self) -> dict:
        """Usage counters, in the units docker stats uses (bytes, nanoseconds, counts)."""
        v2 = self.version == 2
        if not os.path.isdir(self._unique_dirs()[0]):
            raise NotFound(f"no cgroup {self.relpath}")
        get = self._get
        limit = get("memory", "memory.max" if v2 else "memory.limit_in_bytes")
        if limit in (None, "max") or int(limit) >= NO_LIMIT:
            limit = _host_memory()        # docker reports the host's memory when unlimited
        peak = get("memory", "memory.peak" if v2 else "memory.max_usage_in_bytes")
        if v2:
            cpu = _fields(get("cpu", "cpu.stat") or "").get("usage_usec", 0) * 1000
        else:
            cpu = int(get("cpuacct", "cpuacct.usage") or 0)
        pids_max = get("pids", "pids.max")
        read, write = self._io_bytes()
        events = get("memory", "memory.events" if v2 else "memory.oom_control") or ""
        memstat = _fields(get("memory", "memory.stat") or "")
        current = get("memory", "memory.current" if v2 else "memory.usage_in_bytes")
        stats = {
            "memory_usage": int(current or 0),
            "memory_limit": int(limit),
            "memory_inactive_file": memstat.get("inactive_file" if v2 else "total_inactive_file", 0),
            "cpu_usage_ns": cpu,
            "pids_current": int(get("pids", "pids.current") or 0),
            "pids_limit": None if pids_max in (None, "max") else int(pids_max),
            "io_read_bytes": read,
            "io_write_bytes": write,
            "oom_kills": _fields(events).get("oom_kill", 0),
        }
        if peak is not None:
            stats["memory_max_usage"] = int(peak)
        return stats

    def _io_bytes(self) -> tuple:
        read = write = 0
        if self.version == 2:
            for line in (self._get("io", "io.stat") or "").splitlines():
                f = dict(kv.split("=") for kv in line.split()[1:])
                read, write = read + int(f.get("rbytes", 0)), write + int(f.get("wbytes", 0))
        else:
            text = self._get("blkio", "blkio.throttle.io_service_bytes_recursive") or ""
            for line in text.splitlines():      # "254:0 Read 4096"
                parts = line.split()
                if len(parts) == 3 and parts[1] == "Read":
                    read += int(parts[2])
                elif len(parts) == 3 and parts[1] == "Write":
                    write += int(parts[2])
        return read, write

    def oom_killed(self) -> bool:
        """Has the kernel's OOM killer killed a process of this group?"""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return _fields(self._get("memory", name) or "").get("oom_kill", 0) > 0



def _block_device(path) -> str:
    """ "/dev/vda" -> "254:0", the major:minor the blkio/io files want."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        raise InvalidArgument(f"no such device: {path!r}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidArgument(f"not a block device: {path}")
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024     # "MemTotal:  24683952 kB"
