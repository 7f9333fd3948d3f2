"""Processes by identity, not by number: start times and pidfds.

Layer: runtime (what runc's `kill` and `state` need).  A pid is only a number
the kernel hands out again once its process is reaped: a pid read from a file
may name a stranger by now.  A process is the pair (pid, start time), the
start time being field 22 of /proc/PID/stat, in clock ticks since boot
(proc(5)).  To signal it safely, open a pidfd first (pidfd_open(2)): the fd
names that one process for as long as it is open, even if the pid is reused;
then check the start time, then pidfd_send_signal(2) through the fd.
"""
import os
import signal


def start_ticks(pid) -> int:
    """The start time of process pid, in clock ticks since boot (proc(5), field 22)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def alive(pid, ticks) -> bool:
    """Is pid still the process that started at `ticks` (and not a zombie)?"""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and int(fields[19]) == ticks


def open_pidfd(pid, ticks) -> int | None:
    """A pidfd on process (pid, ticks), or None if that process is gone.

    The order matters: open the fd, then check the start time.  Once the fd is
    open it cannot come to name another process, so the check holds for it."""
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None
    if alive(pid, ticks):
        return fd
    os.close(fd)
    return None


def send_signal(pid, ticks, sig) -> bool:
    """Signal process (pid, ticks) through a pidfd; False if it is gone."""
    fd = open_pidfd(pid, ticks)
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def exit_code(status: int) -> int:
    """A waitpid(2) status as a shell (and docker) reports it: the exit code, or
    128+N for a process killed by signal N (137 for SIGKILL, 143 for SIGTERM)."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
