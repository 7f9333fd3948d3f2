"""The per-container monitor: one small process per running container.

Layer: shim (what containerd-shim does for docker).  The engine's start()
(engine/lifecycle.py) launches ``python -m minidocker.shim ID STATUS_FD MODE``; the monitor

  1. forks once and lets its parent exit, so the container outlives whoever
     started it (the CLI, a notebook); it becomes a child subreaper so the
     container's PID 1 is re-parented to it (prctl(2) PR_SET_CHILD_SUBREAPER);
  2. reads the runtime spec the engine wrote (spec.json, engine/spec.py), creates
     the container's cgroup, and asks the runtime to start PID 1;
  3. copies the container's stdout/stderr (or its pty) into json.log, docker's
     json-file format, and to the attached client if there is one;
  4. when PID 1 exits, records the exit code, the time and whether the OOM killer
     struck, removes the cgroup (and the container, for --rm), says "exited N".

Everything it reports goes on STATUS_FD, a pipe the starter reads.  It changes
the container's state only through the bundle (runtime/bundle.py), under its
lock, and knows nothing of the engine: no names, no images, no docker config.
"""
import errno
import fcntl
import json
import os
import select
import signal
import socket
import sys
import termios

from minidocker.runtime import bundle, cgroups, procs, runc
from minidocker.image import leases   # only the lease: the monitor never needs the store's tar code
from minidocker import fmt, kernel
from minidocker.errors import MinidockerError


def _fault(point: str, error=MinidockerError) -> None:
    """A failure on purpose, for the tests: MINIDOCKER_FAULT=<point> makes the monitor
    fail there, as a cgroup, a pipe or a disk could (tests/test_engine_races.py)."""
    if os.environ.get("MINIDOCKER_FAULT") == point:
        raise error(errno.EBADF, f"injected fault at {point}") if error is OSError \
            else error(f"injected fault at {point}")


class Monitor:
    def __init__(self, cid, status_fd, mode):
        self.cid = cid
        self.status_fd = status_fd
        self.attached = mode.startswith("attach")
        self.stdin_attached = "stdin" in mode
        self.cgroup = cgroups.Cgroup(cid)
        self.spec = None
        self.started = False             # PID 1 exists: from now on a failure is an exit
        self.log = None
        self.partial = {"stdout": b"", "stderr": b""}

    def say(self, line: str):
        if self.status_fd is not None:
            try:
                os.write(self.status_fd, (line + "\n").encode())
            except OSError:
                pass

    def run(self) -> None:
        # Record ourselves at once: a start whose monitor is alive is not stale (bundle.verdict).
        bundle.update_state(self.cid, ShimPid=os.getpid(), ShimStart=procs.start_ticks(os.getpid()))
        try:
            spec = self.spec = bundle.read_spec(self.cid)
        except MinidockerError as e:
            self._failed(e)
            return
        process, notes = spec["process"], spec.get("annotations", {})
        tty, open_stdin = process["terminal"], notes.get("openStdin")
        if tty and self.attached:         # start at the client's window size
            process["consoleSize"] = runc.window_size(0)
        keep = []                       # fds we hold but never read (stdin kept open for -d -i)
        console = their_end = None
        if tty:                          # the container makes its own pty and sends us the master
            console, their_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            stdio, outputs = (their_end.fileno(),) * 3, {}
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if open_stdin and self.stdin_attached:
                stdin = 0
            elif open_stdin:
                stdin, hold = os.pipe()
                keep.append(hold)
            else:
                stdin = os.open("/dev/null", os.O_RDONLY)
            stdio, outputs = (stdin, out_w, err_w), {out_r: "stdout", err_r: "stderr"}
        master = None
        try:
            self.cgroup.create(spec.get("linux", {}).get("resources"))
            self.log = open(bundle.path(self.cid, "json.log"), "ab")
            pid = runc.create(spec, *stdio, before_start=self._before_start,
                              console=their_end.fileno() if console else None)
            if console:
                their_end.close()
                master = runc.receive_console(console)
                console.close()
                outputs = {master: "stdout"}
        except MinidockerError as e:
            self._failed(e)
            return
        for fd in set(stdio):
            if fd > 2 and not console:
                os.close(fd)
        self.started = True
        bundle.update_state(self.cid, Status="running", Running=True, Pid=pid,
                            PidStart=procs.start_ticks(pid), ExitCode=0, Error="",
                            OOMKilled=False, StartedAt=fmt.now(), FinishedAt=bundle.NEVER)
        self.say(f"started {os.getpid()} {pid}")
        stdin_fd = 0 if (tty and open_stdin and self.stdin_attached) else None
        code = self._pump(pid, outputs, stdin_fd, master)
        for fd in keep:
            os.close(fd)
        self._finish(code)

    def _before_start(self, pid):
        """In the runtime, between its fork and the go: the process joins the cgroup."""
        _fault("before_start")           # as if the kernel refused the pid
        self.cgroup.add(pid)

    def _pump(self, pid, outputs, stdin_fd, master):
        """Copy output to the log (and the client) until PID 1 exits and the pipes drain."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.signal(signal.SIGWINCH, lambda *a: None)
        code = None
        readers = dict(outputs)
        if stdin_fd is not None:
            readers[stdin_fd] = "stdin"
        while True:
            while True:                   # reap: PID 1, and anything re-parented to us
                try:
                    child, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if child == 0:
                    break
                if child == pid:
                    code = procs.exit_code(status)
            if code is not None and not any(s != "stdin" for s in readers.values()):
                return code
            timeout = 0.05 if code is not None else None
            try:
                ready, _, _ = select.select(list(readers) + [wake_r], [], [], timeout)
            except InterruptedError:
                continue
            if not ready and code is not None:
                return code               # PID 1 is gone and output went quiet
            for fd in ready:
                if fd == wake_r:
                    data = os.read(wake_r, 1024)
                    if master is not None and signal.SIGWINCH in data and self.attached:
                        _copy_winsize(0, master)
                    continue
                try:
                    data = os.read(fd, 65536)
                    _fault("read", OSError)
                    _fault("pump")
                except OSError as e:
                    if e.errno != errno.EIO:   # EIO: the pty's last user closed it, as expected
                        self._note(f"reading the container's {readers[fd]}: {e.strerror}")
                    data = b""
                if readers[fd] == "stdin":
                    if data:
                        _write_all(master, data)
                    else:
                        del readers[fd]
                    continue
                if not data:
                    del readers[fd]
                    continue
                self._output(readers[fd], data)

    def _output(self, stream, data):
        if self.attached:
            fd = 2 if stream == "stderr" else 1
            try:
                _write_all(fd, data)
            except OSError:
                self.attached = False      # the client went away; keep logging
        buf = self.partial[stream] + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._log(stream, line + b"\n")
        if len(rest) >= 16384:             # docker also cuts very long lines into pieces
            self._log(stream, rest)
            rest = b""
        self.partial[stream] = rest

    def _log(self, stream, data):
        entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": fmt.now()}
        self.log.write(json.dumps(entry).encode() + b"\n")
        self.log.flush()

    def _note(self, problem: str) -> None:
        """An error that does not stop the container: kept in State.Error, and logged."""
        print(f"minidocker monitor {self.cid[:12]}: {problem}", file=sys.stderr)
        with bundle.changing_state(self.cid) as state:
            state["Error"] = "; ".join(x for x in (state.get("Error"), problem) if x)

    def _finish(self, code):
        for stream, rest in self.partial.items():
            if rest:
                self._log(stream, rest)
        self.log.close()
        oom = False
        try:
            oom = self.cgroup.oom_killed()
        except (MinidockerError, OSError):
            pass
        self.cgroup.destroy()
        bundle.update_state(self.cid, Status="exited", Running=False, Pid=0, ExitCode=code,
                            OOMKilled=oom, FinishedAt=fmt.now())
        self.say(f"exited {code}")
        self._auto_remove()

    def _failed(self, error):
        """The container could not start: docker leaves it 'created', with the error and code.
        Once PID 1 existed, a failure ends it: exited 255, the error in State.Error."""
        self.cgroup.destroy()              # kills whatever of the container there is
        if self.log:
            self.log.close()
        code = 255 if self.started else error.code
        if self.started:
            changes = dict(Status="exited", ExitCode=255, FinishedAt=fmt.now())
        else:
            changes = dict(Status="created", ExitCode=error.code)
        bundle.update_state(self.cid, Running=False, Pid=0, Error=str(error), **changes)
        self.say(f"error {code} {str(error)}")
        self._auto_remove()

    def _auto_remove(self):
        """--rm: the container goes when it ends (dockerd does this; we have no daemon)."""
        if (self.spec or {}).get("annotations", {}).get("autoRemove"):
            bundle.remove(self.cid)
            leases.release(self.cid)


def _copy_winsize(src, dst):
    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def main(argv):
    cid, status_fd, mode = argv[0], int(argv[1]), argv[2]
    if os.fork():
        os._exit(0)                       # our starter sees us exit; our child carries on
    os.setsid()
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    monitor = Monitor(cid, status_fd, mode)
    try:
        monitor.run()
    except BaseException as e:           # never leave a cgroup, a process or a "running" state
        try:
            monitor._failed(MinidockerError(f"monitor failed: {type(e).__name__}: {e}"))
        finally:
            monitor.cgroup.destroy()
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
