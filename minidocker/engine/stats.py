"""Usage over time: the `minidocker stats` table, and a sampler that records a time series.

Layer: engine (what dockerd's stats endpoint and `docker stats` do).  The
kernel already counts, per cgroup, the memory a container holds, the CPU time
it used, its processes and the bytes it moved to and from disks; nothing here
measures anything itself.  A rate (CPU %) is the difference of two readings of
a counter divided by the time between them.

Why a file descriptor per counter: opening a cgroup file walks the path and
sets up a kernfs file each time (about 30 us here), while reading an already
open one again from offset 0 makes the kernel regenerate its text in a few
microseconds.  Reader opens its dozen files once and rereads them with
pread(2), as top(1) does with /proc, so a sample costs tens of microseconds
and sampling ten times a second costs well under 0.1% of one CPU
(Sampler.overhead() measures it; Cgroup.stats(), which opens every file, costs
about ten times more).

What docker shows (docker/cli cli/command/container/stats_helpers.go):
  CPU %      CPU time used / wall time elapsed * 100 (docker divides by the
             whole machine's CPU time from /proc/stat and multiplies by the
             number of CPUs: the same number).  200% is two whole CPUs.
  MEM USAGE  usage minus inactive file cache (cache the kernel would drop
             first); LIMIT is the memory limit, or the host's memory if none.
  BLOCK I/O  bytes read / written to block devices (on v1 only direct and
             synchronous I/O is charged; delayed writeback is charged on v2).
  NET I/O    0B / 0B until containers get networks.
Which files, and what their text means, is runtime/cgroups' to say (COUNTERS,
read_counters, in v1.py and v2.py): this module keeps them open and samples.
"""
import os
import threading
import time

from minidocker.runtime import cgroups
from minidocker import fmt
from minidocker.engine import containers
from minidocker.errors import MinidockerError, NotFound

# What one reading needs: name -> ((v1 controller, v1 file), v2 file).  The cgroup
# package owns the names and the parsing (cgroups.read_counters); this module only
# keeps the files open, samples, and draws the table.
FILES = cgroups.COUNTERS

# The columns a Sampler records, one value per sample.
COLUMNS = ("t", "memory", "anon", "file", "memory_limit", "cpu", "cpu_time", "cpus_limit",
           "pids", "pids_limit", "io_read", "io_write", "oom_kills")


class Gone(NotFound):
    """The container's cgroup is not there (not started yet, or ended)."""


class Reader:
    """One container's counters, read from files opened once."""

    def __init__(self, cid: str):
        self.cid = cid
        self.cgroup = cgroups.Cgroup(cid)
        self.version = self.cgroup.version
        self.fds = None

    def open(self) -> bool:
        """Open the files once the container's first process is in its cgroup (the
        monitor writes the limits before that); False if it is not there (yet)."""
        if self.fds is not None:
            return True
        try:
            if not self.cgroup.pids():
                return False
        except MinidockerError:
            return False
        fds = {}
        for name, path in self.cgroup.counter_files().items():
            try:
                fds[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue                  # a controller or file this kernel lacks
            except OSError:
                break
        else:
            self.fds = fds
            return True
        for fd in fds.values():
            os.close(fd)
        return False

    def close(self) -> None:
        for fd in (self.fds or {}).values():
            os.close(fd)
        self.fds = None

    def _text(self, name: str) -> str:
        fd = self.fds.get(name)
        if fd is None:
            return ""
        try:
            return os.pread(fd, 65536, 0).decode()
        except OSError:                   # ENODEV: the group was removed under us
            raise Gone(f"container {self.cid[:12]} has no cgroup any more") from None

    def read(self) -> dict:
        """Every counter now (cgroups.read_counters), and the time; raises Gone."""
        if not self.open():
            raise Gone(f"container {self.cid[:12]} is not running")
        now = time.monotonic()
        return dict(cgroups.read_counters(self.version, self._text), time=now)


# --- the sampler -------------------------------------------------------------

class Sampler:
    """Record a container's usage every `interval` seconds, in a thread.

        s = Sampler(c, interval=0.1).start()    # may start before the container does
        s.wait(10)                              # until the container ends (or 10 s)
        s.series["memory"], s.series["cpu"]     # lists, one value per sample

    Columns (COLUMNS): t seconds since start(); memory, anon, file bytes (anon
    and file, the page cache, make up most of memory); memory_limit bytes or
    None; cpu in % of one CPU over the last interval, cpu_time the CPU seconds
    used so far; cpus_limit in CPUs or None; pids and pids_limit; io_read and io_write cumulative bytes; oom_kills.
    A thread, not a process: a Jupyter kernel must not fork, and the work is
    a few reads.  After the container ends, exit_code and oom_killed tell how.
    """

    def __init__(self, container, interval: float = 0.1):
        c = container if hasattr(container, "id") else containers.get(container)
        if not interval > 0:
            raise MinidockerError(f"invalid interval: {interval!r} (seconds, more than 0)")
        self.id, self.name, self.interval = c.id, c.name, float(interval)
        self.reader = Reader(c.id)
        self.series = {k: [] for k in COLUMNS}
        self.exit_code = self.oom_killed = None
        self.ended = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._cpu_time = 0.0              # this thread's own CPU time spent sampling
        self._samples = 0
        self._t0 = self._t_end = None

    def __repr__(self):
        return f"<Sampler {self.name} every {self.interval}s, {len(self)} samples>"

    def __len__(self):
        return len(self.series["t"])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> "Sampler":
        if self._thread is None:
            self._t0 = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=f"sampler-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> "Sampler":
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.reader.close()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the container ends (True) or timeout seconds pass (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ended

    def snapshot(self) -> dict:
        """A copy of the series, every column the same length (safe while sampling)."""
        with self._lock:
            return {k: list(v) for k, v in self.series.items()}

    def cpu_percent(self, since: float = 0.0, until: float | None = None) -> float:
        """Average CPU % between two times (seconds since start()), from the counter
        itself: the mean of the per-interval rates would give a late sample the
        same weight as a punctual one."""
        data = self.snapshot()
        points = [(t, c) for t, c in zip(data["t"], data["cpu_time"])
                  if t >= since and (until is None or t <= until)]
        if len(points) < 2:
            raise MinidockerError(f"fewer than two samples between {since} s and {until} s")
        (t0, c0), (t1, c1) = points[0], points[-1]
        return 100 * (c1 - c0) / (t1 - t0)

    def overhead(self) -> dict:
        """What sampling cost: CPU time of the sampling thread, per sample and as a
        share of one CPU over the time it ran."""
        wall = ((self._t_end or time.monotonic()) - self._t0) if self._t0 else 0.0
        n = max(self._samples, 1)
        return {"samples": self._samples, "cpu_seconds": self._cpu_time,     # samples: attempts
                "per_sample_us": self._cpu_time / n * 1e6,
                "cpu_percent": 100 * self._cpu_time / wall if wall else 0.0}

    def _run(self):
        previous = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            c0 = time.thread_time()
            try:
                now = self.reader.read()
            except Gone:
                now = None
            self._cpu_time += time.thread_time() - c0
            self._samples += 1                # every attempt costs, a reading or a look for the group
            if now is not None:
                if previous is None:
                    previous = now
                elif now["time"] - previous["time"] >= self.interval / 2:
                    # A rate over a much shorter time would mostly show the counter's steps.
                    self._record(previous, now)
                    previous = now
            elif previous is not None or self._exited():   # it ran, and its cgroup is gone
                self._ended()
                break
            # Keep the beat; after a late wake-up (a busy machine) start a new one, no burst.
            next_at += self.interval
            if next_at < time.monotonic():
                next_at = time.monotonic() + self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        self._t_end = time.monotonic()
        self.reader.close()

    def _record(self, before, now):
        dt = now["time"] - before["time"]
        row = dict(now, t=now["time"] - self._t0, cpu_time=now["cpu_ns"] / 1e9,
                   cpu=100 * (now["cpu_ns"] - before["cpu_ns"]) / 1e9 / dt if dt > 0 else 0.0)
        with self._lock:
            for k in COLUMNS:
                self.series[k].append(row[k])

    def _exited(self) -> bool:
        try:
            return containers.Container(self.id).status == "exited"
        except MinidockerError:
            return True                       # removed

    def _ended(self):
        self._t_end = time.monotonic()
        try:
            # The monitor records the end right after it removes the cgroup.
            containers.wait(self.id, timeout=5)
            state = containers.Container(self.id).state
            self.exit_code, self.oom_killed = state["ExitCode"], state["OOMKilled"]
        except MinidockerError:
            pass                              # removed already (--rm)
        self.ended = True


def record(container, seconds: float, interval: float = 0.1) -> Sampler:
    """Sample for `seconds` (or until the container ends) and return the Sampler."""
    s = Sampler(container, interval).start()
    s.wait(seconds)
    return s.stop()


# --- the `stats` table -----------------------------------------------------------

HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


def bytes_binary(size: float) -> str:
    """docker's units.BytesSize: "1.5MiB", "23.47GiB" (4 significant digits, powers of 1024)."""
    return fmt.human_size(size, binary=True)


def row(c, before: dict | None, after: dict | None, no_trunc: bool = False) -> list:
    """One line of `docker stats` from two readings of the same container (None: not running)."""
    cid = c.id if no_trunc else c.id[:12]
    if before is None or after is None:
        return [cid, c.name, "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]
    dt = after["time"] - before["time"]
    cpu = 100 * (after["cpu_ns"] - before["cpu_ns"]) / 1e9 / dt if dt > 0 else 0.0
    used = after["memory"]
    if after["inactive_file"] < used:     # docker leaves out cache the kernel would drop first
        used -= after["inactive_file"]
    limit = after["memory_limit"] or cgroups.host_memory()
    return [cid, c.name, f"{cpu:.2f}%", f"{bytes_binary(used)} / {bytes_binary(limit)}",
            f"{100 * used / limit:.2f}%", "0B / 0B",
            f"{fmt.human_size(after['io_read'])} / {fmt.human_size(after['io_write'])}",
            str(after["pids"])]


def _try_read(reader):
    try:
        return reader.read()
    except (Gone, MinidockerError):
        return None


def _exists(c) -> bool:
    try:
        return bool(c.name)
    except NotFound:                      # removed while we watch
        return False


def table(containers_: list, interval: float = 1.0, no_trunc: bool = False, readers=None) -> str:
    """Read every container twice, `interval` seconds apart; return docker's table.
    Pass a dict as `readers` to keep files open between calls (the streaming view)."""
    readers = {} if readers is None else readers
    containers_ = [c for c in containers_ if _exists(c)]
    for gone in set(readers) - {c.id for c in containers_}:
        readers.pop(gone).close()         # removed (or stopped, for ps's view) since the last call
    for c in containers_:
        readers.setdefault(c.id, Reader(c.id))
    before = {c.id: _try_read(readers[c.id]) for c in containers_}
    if any(v is not None for v in before.values()):
        time.sleep(interval)
    rows = [row(c, before[c.id], _try_read(readers[c.id]), no_trunc) for c in containers_]
    return fmt.table(rows, HEADERS)


def disk_of(path: str) -> str | None:
    """The /dev node of the disk that holds path (what --device-write-bps must name
    for writes to it), or None on a filesystem without one (tmpfs, overlay, 9p)."""
    dev = os.stat(path).st_dev
    sys_dir = os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not os.path.isdir(sys_dir):
        return None
    if os.path.exists(os.path.join(sys_dir, "partition")):
        sys_dir = os.path.dirname(sys_dir)    # limits apply to whole disks, not partitions
    try:
        with open(os.path.join(sys_dir, "uevent")) as f:
            name = dict(line.split("=", 1) for line in f.read().split() if "=" in line)["DEVNAME"]
    except (OSError, KeyError):
        return None
    return f"/dev/{name}" if os.path.exists(f"/dev/{name}") else None
