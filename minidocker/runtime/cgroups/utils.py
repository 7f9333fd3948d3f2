"""What both cgroup layouts share: finding the mounts, reading and writing cgroup files.

Layer: runtime (runc/crun).  crun keeps these in src/libcrun/cgroup-utils.c, next
to cgroup-v1.c and cgroup-v2.c; here they sit next to v1.py and v2.py.

Every cgroup file is small text the kernel makes on each read(2) and parses on
each write(2): a value the kernel refuses comes back as EINVAL or ERANGE from that
one write (Documentation/admin-guide/cgroup-v2.rst, "Interface Files"; cgroups(7)).
"""
import errno
import os
import re
import stat

from minidocker.errors import InvalidArgument, MinidockerError, NotFound

MOUNT = "/sys/fs/cgroup"
NO_LIMIT = 1 << 62      # v1 shows "no limit" as a huge number (9223372036854771712)


def mounts():
    """(mount point, fstype, super options) of every cgroup mount, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _source, options = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                yield left.split()[4], fstype, options.split(",")


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        raise NotFound(f"no cgroup file {path}") from None
    except OSError as e:
        raise MinidockerError(f"cannot read {path}: {e.strerror}") from None


def write(path: str, value) -> None:
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


def mkdir(path: str) -> None:
    """mkdir(2) makes a cgroup (the kernel fills it with its files); it may exist."""
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except OSError as e:
        raise MinidockerError(f"cannot create cgroup {path}: {e.strerror}") from None


def fields(text: str) -> dict:
    """ "oom_kill 3\\nunder_oom 0" -> {"oom_kill": 3, "under_oom": 0} (flat keyed files)."""
    return {k: int(v) for k, v in (line.split()[:2] for line in text.splitlines() if " " in line)}


def pick(names) -> re.Pattern:
    """A regular expression for just these lines of memory.stat (forty lines long):
    the sampler rereads it ten times a second, and parsing all of it costs more."""
    return re.compile(r"^(%s) (\d+)$" % "|".join(names), re.M)


def cpu_list(text: str) -> set:
    """ "0-2,5" -> {0, 1, 2, 5}, the kernel's cpu list format (cpuset(7))."""
    cpus = set()
    for part in filter(None, text.strip().split(",")):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def number(key, value, low=None):
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise InvalidArgument(f"invalid {key}: {value!r}")
    return value


def block_device(path) -> str:
    """ "/dev/vda" -> "254:0", the major:minor the blkio/io files want."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        raise InvalidArgument(f"no such device: {path!r}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidArgument(f"not a block device: {path}")
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def host_memory() -> int:
    """What docker shows as the LIMIT of a group without one: the machine's memory."""
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024     # "MemTotal:  24683952 kB"
