"""The per-container monitor: one small process per running container.

Layer: monitor (what containerd-shim does for docker).  containers.start()
launches ``python -m minidocker.shim ID STATUS_FD MODE``; the monitor

  1. forks once and lets its parent exit, so the container outlives whoever
     started it (the CLI, a notebook); it becomes a child subreaper so the
     container's PID 1 is re-parented to it (prctl(2) PR_SET_CHILD_SUBREAPER);
  2. builds the runtime spec from the container's config and image, creates the
     container's cgroup, and asks the runtime to start PID 1;
  3. copies the container's stdout/stderr (or its pty) into json.log, docker's
     json-file format, and to the attached client if there is one;
  4. when PID 1 exits, records the exit code, the time and whether the OOM killer
     struck, removes the cgroup (and the container, for --rm), says "exited N".

Everything it reports goes on STATUS_FD, a pipe the starter reads.
"""
import errno
import fcntl
import json
import os
import select
import signal
import sys
import termios

from minidocker.runtime import cgroups, confine, namespaces, runc
from minidocker.engine import containers, snapshots
from minidocker.image import store
from minidocker import kernel
from minidocker.errors import MinidockerError


def build_spec(c: containers.Container) -> dict:
    cfg = c.config
    image = store.Image(cfg["ImageManifest"])
    binds = _etc_files(c, cfg)
    privileged = cfg["HostConfig"].get("Privileged")
    spec = {
        "process": {"args": [cfg["Path"]] + cfg["Args"], "env": cfg["Config"]["Env"],
                    "cwd": cfg["Config"]["WorkingDir"] or "/", "user": cfg["Config"]["User"],
                    "terminal": cfg["Config"]["Tty"], "capabilities": cfg["Capabilities"],
                    "noNewPrivileges": cfg["NoNewPrivileges"]},
        "root": snapshots.root(c, image, binds),
        "hostname": cfg["Config"]["Hostname"],
        "nodev": not privileged,         # device nodes made inside do not work (runc.py)
        "maskedPaths": [] if privileged else confine.MASKED_PATHS,
        "readonlyPaths": [] if privileged else confine.READONLY_PATHS,
        "binds": binds,
    }
    namespaces.apply(spec, c)         # new, the host's or another container's; a user namespace
    return spec


def _etc_files(c, cfg):
    """/etc/hostname and /etc/hosts, written per container and bound in, as docker does."""
    hostname = cfg["Config"]["Hostname"]
    files = {"hostname": hostname + "\n",
             "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                      f"127.0.1.1\t{hostname}\n"}
    binds = []
    for name, text in files.items():
        path = containers._dir(c.id, name)
        store.write_atomic(path, text.encode())
        binds.append((path, "/etc/" + name))
    return binds


class Monitor:
    def __init__(self, cid, status_fd, mode):
        self.c = containers.Container(cid)
        self.status_fd = status_fd
        self.attached = mode.startswith("attach")
        self.stdin_attached = "stdin" in mode
        self.cgroup = cgroups.Cgroup(cid)
        self.log = None
        self.partial = {"stdout": b"", "stderr": b""}

    def say(self, line: str):
        if self.status_fd is not None:
            try:
                os.write(self.status_fd, (line + "\n").encode())
            except OSError:
                pass

    def run(self) -> None:
        cfg = self.c.config
        try:
            spec = build_spec(self.c)      # may extract a layer, and find it corrupted
        except MinidockerError as e:
            self._failed(e)
            return
        if cfg["Config"]["Tty"] and self.attached:       # start at the client's window size
            spec["process"]["consoleSize"] = runc.window_size(0)
        store.write_atomic(containers._dir(self.c.id, "spec.json"), json.dumps(spec, indent=1).encode())
        tty, open_stdin = cfg["Config"]["Tty"], cfg["Config"]["OpenStdin"]
        keep = []                       # fds we hold but never read (stdin kept open for -d -i)
        console = None
        if tty:                          # the container makes its own pty and sends us the master
            import socket
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
        limits = {k: cfg["HostConfig"].get(k) for k in containers.LIMIT_KEYS if cfg["HostConfig"].get(k)}
        try:
            self.cgroup.create(limits)
            pid = runc.create(spec, *stdio, before_start=self.cgroup.add,
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
        state = self.c.state
        state.update(Status="running", Running=True, Pid=pid, ExitCode=0, Error="",
                     OOMKilled=False, StartedAt=store.now(), FinishedAt="0001-01-01T00:00:00Z",
                     ShimPid=os.getpid(), ShimStart=containers.process_start_ticks(os.getpid()))
        containers._write_json(containers._dir(self.c.id, "state.json"), state)
        self.say(f"started {os.getpid()} {pid}")
        self.log = open(containers._dir(self.c.id, "json.log"), "ab")
        stdin_fd = 0 if (tty and open_stdin and self.stdin_attached) else None
        code = self._pump(pid, outputs, stdin_fd, master if tty else None)
        for fd in keep:
            os.close(fd)
        self._finish(code)

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
                    code = os.waitstatus_to_exitcode(status)
                    code = code if code >= 0 else 128 - code
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
                except OSError as e:       # EIO: the pty's last user closed it
                    data = b"" if e.errno in (errno.EIO, errno.EBADF) else b""
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
        entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": store.now()}
        self.log.write(json.dumps(entry).encode() + b"\n")
        self.log.flush()

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
        state = self.c.state
        state.update(Status="exited", Running=False, Pid=0, ExitCode=code, OOMKilled=oom,
                     FinishedAt=store.now())
        containers._write_json(containers._dir(self.c.id, "state.json"), state)
        self.say(f"exited {code}")
        if self.c.config["HostConfig"].get("AutoRemove"):
            containers._delete(self.c.id)

    def _failed(self, error):
        """The container could not start: docker leaves it 'created', with the error and code."""
        self.cgroup.destroy()
        state = self.c.state
        state.update(Status="created", Running=False, Pid=0, ExitCode=error.code, Error=str(error))
        containers._write_json(containers._dir(self.c.id, "state.json"), state)
        self.say(f"error {error.code} {str(error)}")
        if self.c.config["HostConfig"].get("AutoRemove"):
            containers._delete(self.c.id)


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
    except BaseException as e:           # never leave a cgroup or a "running" state behind
        try:
            monitor._failed(MinidockerError(f"monitor failed: {e}"))
        finally:
            monitor.cgroup.destroy()
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
