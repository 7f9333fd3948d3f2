"""Namespaces: what a container's processes can see, one kernel object per kind.

Layer: runtime (kernel-level: inspection and joining).  A container is not a thing the kernel
knows: it is a process whose namespaces differ from the host's.  Each namespace
of a process is a file /proc/PID/ns/TYPE, and that file's inode number names
the namespace: two processes with the same number share it (namespaces(7)).

This module
  - reads them: of(pid), compare(a, b), id_map(pid) (`minidocker ns ID` prints them);
  - joins them: open_all(pid) + enter(fds), what `exec` does with setns(2);
  - reads a runtime spec's linux.namespaces (config-linux.md "Namespaces"):
    new_kinds() to create, joined() paths to setns(2) into.
docker's flags (--pid, --ipc container:NAME ...) become such a spec in the
engine (engine/namespaces.py): the runtime knows no container names.

What each kind isolates (the course's six, and cgroup):
  pid     process ids: the container's first process is PID 1 in it
  mnt     the mount table: the container's root file system, the "hard drive"
  net     network devices, addresses, routes, ports
  user    user and group ids: root inside is an unprivileged uid outside (userns.py)
  uts     the hostname and domain name
  ipc     System V IPC objects (shared memory, semaphores, queues), POSIX queues
  cgroup  the view of /proc/self/cgroup: the container's cgroup looks like the root
"""
import errno
import os

from minidocker import kernel
from minidocker.errors import MinidockerError, NotFound

# The notes' order, then cgroup.  (/proc/PID/ns also has time and *_for_children.)
TYPES = ("pid", "mnt", "net", "user", "uts", "ipc", "cgroup")

# setns(2) order for exec: user last.  As root of the host we may join any
# namespace; once in the container's user namespace we could no longer join one
# it does not own (an ipc namespace shared from the host or another container).
# mnt after the others, since it changes our root.
JOIN_ORDER = ("ipc", "uts", "net", "pid", "cgroup", "mnt", "user")


# -- reading ------------------------------------------------------------------------

def inode(pid, kind: str) -> int:
    """The inode number of /proc/PID/ns/KIND: the namespace's identity."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except FileNotFoundError:
        raise NotFound(f"no process {pid} (or no {kind} namespace in this kernel)") from None


def of(pid="self") -> dict:
    """{kind: inode} for every namespace kind of process pid (lsns(8) prints the same)."""
    return {kind: inode(pid, kind) for kind in TYPES}


def compare(a, b="self") -> dict:
    """{kind: (inode of a, inode of b)}; equal numbers mean a shared namespace."""
    mine, theirs = of(a), of(b)
    return {kind: (mine[kind], theirs[kind]) for kind in TYPES}


def id_map(pid, kind: str = "uid") -> list:
    """/proc/PID/uid_map (or gid_map) as [(inside, outside, count)] (user_namespaces(7))."""
    with open(f"/proc/{pid}/{kind}_map") as f:
        return [tuple(int(x) for x in line.split()) for line in f if line.strip()]


# -- joining --------------------------------------------------------------------------

def open_all(pid, kinds=TYPES) -> dict:
    """Open /proc/PID/ns/KIND for each kind whose namespace differs from ours.

    Done by the caller before it forks: the child then only calls enter()."""
    fds = {}
    try:
        for kind in kinds:
            if inode(pid, kind) != inode("self", kind):
                fds[kind] = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        close_all(fds)
        raise
    return fds


def enter(fds: dict) -> None:
    """setns(2) into each namespace of fds ({kind: fd}), in JOIN_ORDER; closes the fds.

    Only in a fresh single-threaded child (never in a Jupyter kernel): joining a
    user or mount namespace changes the whole process, and a new pid namespace
    applies to its children only, so the caller forks once more afterwards."""
    try:
        for kind in JOIN_ORDER:
            if kind in fds:
                try:
                    kernel.setns(fds[kind], kernel.NAMESPACES[kind])
                except OSError as e:
                    raise MinidockerError(f"cannot join the {kind} namespace: {e.strerror}") from None
    finally:
        close_all(fds)


def close_all(fds: dict) -> None:
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass


# -- a runtime spec's namespaces ------------------------------------------------------

def new_kinds(spec: dict) -> set:
    """The kinds the runtime creates (names in spec["namespaces"])."""
    return {e for e in spec["namespaces"] if isinstance(e, str)}


def joined(spec: dict) -> dict:
    """{kind: path} of the namespaces the runtime joins."""
    return {e["type"]: e["path"] for e in spec["namespaces"] if isinstance(e, dict)}


def join_paths(paths: dict) -> None:
    """In the runtime's middle process: setns(2) into each {kind: path}."""
    fds = {}
    try:
        for kind, path in paths.items():
            try:
                fds[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise MinidockerError(f"cannot join {path}: the process is gone") from None
    except BaseException:
        close_all(fds)
        raise
    enter(fds)


# -- when the kernel says no ------------------------------------------------------------

def _sysctl(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def refused(e: OSError) -> MinidockerError:
    """One line naming why unshare(CLONE_NEWUSER) failed, and the fix."""
    if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1" and e.errno == errno.EPERM:
        return MinidockerError(
            "cannot create a user namespace: AppArmor forbids it (kernel.apparmor_restrict_unprivileged_"
            "userns=1); fix: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or --userns host")
    if _sysctl("kernel.unprivileged_userns_clone") == "0" and e.errno == errno.EPERM:
        return MinidockerError(
            "cannot create a user namespace: kernel.unprivileged_userns_clone=0; "
            "fix: sysctl -w kernel.unprivileged_userns_clone=1, or --userns host")
    if e.errno == errno.ENOSPC:
        limit = _sysctl("user.max_user_namespaces")
        why = "they are disabled" if limit == "0" else f"the limit of {limit} is reached"
        return MinidockerError(f"cannot create a user namespace: {why} (user.max_user_namespaces={limit}); "
                               "fix: sysctl -w user.max_user_namespaces=15000, or --userns host")
    if e.errno == errno.EPERM:
        return MinidockerError("cannot create a user namespace: not permitted (is the engine itself in "
                               "a chroot or a restricted container?); fix: --userns host")
    return MinidockerError(f"cannot create a user namespace: {e.strerror}")
