"""Starting and stopping containers: start, kill, stop, wait, exec.

Layer: engine (what dockerd's daemon/start.go, kill.go, wait.go and exec.go do).
`start` builds the runtime spec (engine/spec.py), then hands the container to
its monitor (shim.py), a program of its own; `kill` signals PID 1 through a
pidfd; `wait` sleeps on the monitor's pidfd; `exec` asks the runtime for one
more process in the container.  Every state change goes through the bundle
(runtime/bundle.py), under the container's lock.
"""
import os
import select
import signal
import sys
import time

from minidocker import config, fmt
from minidocker.runtime import bundle, cgroups, procs, runc
from minidocker.image import changes, store
from minidocker.errors import CannotInvoke, CommandNotFound, Conflict, InvalidArgument, MinidockerError, NotFound
from minidocker.engine import names, spec


# -- start: hand the container to its monitor --------------------------------------------

def start(cid: str, attach: bool = False, stdio=None, interactive: bool = False):
    """Start a created or exited container by launching its monitor (shim.py).

    The engine builds the runtime spec (spec.json), then launches the monitor, a
    separate program (fork+exec, never a fork of the caller, which may be a
    Jupyter kernel).  It daemonizes, so the container outlives the caller; it
    reports on a pipe: "started SHIM INIT" or "error CODE MESSAGE", then, for an
    attached start, "exited CODE" once all output is delivered.

    A container is started once at a time: a start while another is under way is
    refused (Conflict), as dockerd refuses; one of a running container does nothing.

    attach: the container's output is copied to stdio (default: our own 0,1,2),
    and the returned object's .wait_exit() gives the exit code.
    """
    cid = names.resolve(cid)
    if not _claim_start(cid):
        return _Attachment(cid, None)
    try:
        bundle.write_spec(cid, spec.build(cid))
    except MinidockerError as e:        # e.g. a corrupted layer, or a joined container gone
        _start_failed(cid, e)
        raise
    except BaseException:
        _restore_after_failed_start(cid)
        raise
    status_r = _launch_monitor(cid, attach, stdio, interactive)
    status = _StatusPipe(status_r)
    line = status.readline()
    if line.startswith("started"):
        return _Attachment(cid, status, int(line.split()[1]))
    status.close()
    _restore_after_failed_start(cid)
    if line.startswith("error"):
        _, code, message = line.split(" ", 2)
        raise _error_for(int(code), message.strip())
    raise MinidockerError(f"container {cid[:12]} did not start (monitor said {line!r})")


def _claim_start(cid) -> bool:
    """Mark the container "starting" under its lock; False if it runs already.
    A dead monitor's or starter's leftovers are first recorded as what they mean."""
    bundle.settle(cid, fmt.now())
    with bundle.changing_state(cid) as state:
        if state["Status"] == "running":
            return False
        if state["Status"] == "starting":
            raise Conflict(f"Cannot start container {cid[:12]}: it is already being started")
        state.update(Status="starting", StarterPid=os.getpid(),
                     StarterStart=procs.start_ticks(os.getpid()), ShimPid=0, ShimStart=0)
    return True


def _start_failed(cid, error):
    """The engine could not build the spec: back to "created" with the error, as the monitor does."""
    with bundle.changing_state(cid) as state:
        state.update(Status="created" if state["StartedAt"] == bundle.NEVER else "exited",
                     Running=False, Pid=0, ExitCode=error.code, Error=str(error))
    if bundle.read_config(cid)["HostConfig"].get("AutoRemove"):
        delete(cid)


def _launch_monitor(cid, attach, stdio, interactive) -> int:
    """fork+exec `python -m minidocker.shim ID STATUS_FD MODE`; return the status pipe's read end."""
    import subprocess                 # here, not at the top: costly, and only start needs it
    status_r, status_w = os.pipe()
    if attach:
        stdio = stdio or (0, 1, 2)
        fds = {"stdin": stdio[0] if interactive else subprocess.DEVNULL,
               "stdout": stdio[1], "stderr": stdio[2]}
    else:
        fds = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    env = dict(os.environ, MINIDOCKER_ROOT=config.root())
    flags = ("attach" if attach else "detach") + (",stdin" if attach and interactive else "")
    # The monitor needs only the standard library and this package: -S skips site-packages
    # and its start-up hooks (~45 ms of every run), PYTHONPATH still finds minidocker.
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    try:
        launcher = subprocess.Popen(
            [sys.executable, "-S", "-m", "minidocker.shim", cid, str(status_w), flags],
            pass_fds=(status_w,), start_new_session=True, env=env, **fds)
        launcher.wait()               # the monitor forks and its first process exits at once
    except BaseException:
        os.close(status_r)
        _restore_after_failed_start(cid)
        raise
    finally:
        os.close(status_w)
    return status_r


def _restore_after_failed_start(cid):
    """If the monitor died before saying anything, put the state back as it was."""
    try:
        with bundle.changing_state(cid) as state:
            if state["Status"] == "starting":
                state.update(Status="exited" if state["StartedAt"] != bundle.NEVER else "created")
    except NotFound:                      # --rm: the monitor already removed it
        pass


def _error_for(code, message):
    cls = {126: CannotInvoke, 127: CommandNotFound}.get(code, MinidockerError)
    return cls(message)


class _StatusPipe:
    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def readline(self) -> str:
        while b"\n" not in self.buf:
            try:
                chunk = os.read(self.fd, 4096)
            except InterruptedError:
                continue
            if not chunk:
                break
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def close(self):
        os.close(self.fd)


class _Attachment:
    """A started container; for an attached start, the pipe its monitor reports on."""

    def __init__(self, cid, status, shim_pid=None):
        self.id, self.status, self.shim_pid = cid, status, shim_pid

    def wait_exit(self) -> int:
        """For an attached start: block until the monitor reports the exit code."""
        if self.status is None:
            return wait(self.id)
        line = self.status.readline()
        self.status.close()
        if line.startswith("exited"):
            return int(line.split()[1])
        return wait(self.id)


# -- stop, kill, wait --------------------------------------------------------------------

SIGNALS = {s.name[3:]: s for s in signal.Signals if s.name.startswith("SIG") and "_" not in s.name}


def parse_signal(sig) -> int:
    if isinstance(sig, int):
        return sig
    text = str(sig).upper()
    text = text[3:] if text.startswith("SIG") else text
    if text.isdigit():
        return int(text)
    if text not in SIGNALS:
        raise InvalidArgument(f"Invalid signal: {sig}")
    return SIGNALS[text]


def kill(cid: str, sig="KILL") -> None:
    """docker kill: send a signal to the container's PID 1.

    Through a pidfd, after checking PID 1's start time (runtime/procs.py): the
    pid in state.json may have been reused by a stranger since PID 1 exited."""
    cid = names.resolve(cid)
    number = parse_signal(sig)
    state = bundle.state(cid)
    if state["Status"] != "running":
        raise Conflict(f"Cannot kill container: {cid}: Container {cid} is not running")
    procs.send_signal(state["Pid"], state.get("PidStart"), number)


def stop(cid: str, timeout: float | None = 10) -> None:
    """docker stop: the stop signal (SIGTERM) to PID 1, then SIGKILL after timeout seconds.

    A PID 1 gets no default signal actions: a shell or `sleep` that installed no
    handler ignores SIGTERM, so such a container takes the whole timeout to stop.
    """
    cid = names.resolve(cid)
    if bundle.state(cid)["Status"] != "running":
        return
    try:
        kill(cid, bundle.read_config(cid)["Config"].get("StopSignal") or "TERM")
    except Conflict:
        return
    if wait(cid, timeout=10 if timeout is None else timeout, only_running=True) is None:
        try:
            kill(cid, "KILL")
        except Conflict:
            pass
        wait(cid, only_running=True)


def wait(cid: str, timeout: float | None = None, only_running: bool = False):
    """Block until the container is not running; return its exit code, or None on timeout.

    While running, wait on a pidfd of its monitor (pidfd_open(2)): the monitor
    exits right after it records the container's end.
    """
    cid = names.resolve(cid)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            state = bundle.state(cid)
        except NotFound:
            return 0 if only_running else None
        if state["Status"] == "exited" or (only_running and state["Status"] == "created"):
            return state["ExitCode"]
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        if state["Status"] == "running":
            _wait_process(state["ShimPid"], state["ShimStart"], left)
        else:
            time.sleep(0.02 if left is None else min(0.02, left))


def _wait_process(pid, start_ticks, timeout):
    fd = procs.open_pidfd(pid, start_ticks)
    if fd is None:
        return
    try:
        select.select([fd], [], [], timeout)   # a pidfd is readable once its process exits
    finally:
        os.close(fd)


# -- the end of a container ----------------------------------------------------------------------

def delete(cid):
    """Kill what is left in the cgroup, delete the bundle, drop the image lease."""
    cgroups.Cgroup(cid).destroy()
    bundle.remove(cid)
    store.release(cid)


# -- exec ---------------------------------------------------------------------------------------

def exec_process(cid: str, cmd: list[str], *, env=(), workdir=None, user=None, tty=False,
                 stdio=(0, 1, 2), on_started=None, console=None, console_size=None) -> int:
    """docker exec: one more process in every namespace and the cgroup of a running container.

    Runs in the calling process (the CLI), which forks; the Python API goes through the CLI.
    """
    cid = names.resolve(cid)
    state = bundle.state(cid)
    if state["Status"] != "running" or not procs.alive(state["Pid"], state.get("PidStart")):
        raise Conflict(f"Container {cid} is not running")
    if not cmd:
        raise InvalidArgument("No command specified")
    names.check_workdir(workdir)
    runtime_spec = bundle.read_spec(cid)
    process = dict(runtime_spec["process"])
    process.update(args=list(cmd), terminal=tty,
                   env=changes.merge_env(process["env"], env),
                   cwd=workdir or process.get("cwd") or "/")
    if user is not None:
        process["user"] = user
    if console_size:
        process["consoleSize"] = console_size
    procs_files = [os.path.join(p, "cgroup.procs") for p in cgroups.Cgroup(cid).paths().values()]
    return runc.exec_in(state["Pid"], runtime_spec, process, stdio, procs_files, on_started, console)
