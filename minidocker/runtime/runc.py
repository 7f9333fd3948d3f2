"""The runtime: turn a container spec into an isolated, running process.

Layer: runtime (what runc does for docker).  The monitor (shim.py) calls
``create()`` once per container; ``exec_in()`` starts one more process inside a
running container.  Below us is only the kernel (kernel.py, os).

How a container's first process is made (the same dance as runc's nsexec.c):

    monitor ── fork ──> middle ── setns(joined) ── unshare(user?) ── unshare(the rest)
                          │      (the monitor writes uid_map/gid_map here)
           (waits for the     └── fork ──> init (PID 1 in the new pid namespace)
            monitor's "go")      mount the overlay root, /proc, /dev, /sys (rootfs.py)
                                 pivot_root, detach the old root
                                 mask /proc paths, drop capabilities, set user
                                 exec the command

unshare(CLONE_NEWPID) only applies to children, hence the middle process; it
reports init's pid and exits, and init is re-parented to the monitor, which is
a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER).  Errors before exec travel
back on a close-on-exec pipe: if exec succeeds the pipe just closes.

The middle process does nothing until the monitor writes "go" on a pipe, once
the monitor's own setup for it succeeded (it joined the cgroup).  If that fails,
the monitor kills and reaps it: without a go, a closed pipe means "exit", never
"carry on", so no container ever runs orphaned and outside its limits.

The spec is a dict shaped like the OCI runtime spec's config.json, cut down:
  process: args, env, cwd, user ("", "uid[:gid]" or "name[:group]"), terminal,
           capabilities (names), noNewPrivileges
  root:    lowers (top first), upper, work, mountpoint; cwd (lowers, upper and
           work may be relative to it)
  hostname, namespaces: a name from kernel.NAMESPACES for a new one, or
           {"type": name, "path": "/proc/PID/ns/name"} to join one; a kind not
           listed is the host's (engine/namespaces.py turns docker's --pid, --ipc... into this)
  uidMappings, gidMappings: [{containerID, hostID, size}] with a new user namespace
  maskedPaths, readonlyPaths, binds [(host file, container path)], devShm (a dir to bind)
  linux.resources: cgroup limits (the monitor applies them; runtime/cgroups)
  linux.seccomp:   the OCI seccomp filter, or none (seccomp.py; loaded just before exec)
See https://github.com/opencontainers/runtime-spec/blob/main/config.md
"""
import errno
import fcntl
import json
import os
import signal
import struct
import termios

from minidocker.runtime import confine, namespaces, procs, rootfs, seccomp, userns
from minidocker.runtime.users import resolve_user
from minidocker import config, kernel
from minidocker.errors import CannotInvoke, CommandNotFound, MinidockerError


# -- errors across the fork ------------------------------------------------------

def _report(fd, code, message):
    """In a child: send an error to the parent and exit."""
    try:
        os.write(fd, json.dumps({"code": code, "message": message}).encode())
    finally:
        os._exit(code or 1)


def _raise_reported(data: bytes):
    report = json.loads(data)
    cls = {126: CannotInvoke, 127: CommandNotFound}.get(report["code"], MinidockerError)
    raise cls(report["message"])


# -- the container's first process --------------------------------------------------

def create(spec: dict, stdin: int, stdout: int, stderr: int, before_start=None,
           console: int | None = None) -> int:
    """Start the container's init process; return its host pid once it has exec'd.

    before_start(middle_pid) runs in the caller while the child waits: the
    monitor uses it to put the child into the container's cgroup, so every
    process of the container is counted from its first instruction.

    With process.terminal, `console` is one end of a Unix socket pair: the
    container opens a pty in its *own* /dev/pts and sends the master end back
    over it (runc's --console-socket), so `tty` inside names /dev/pts/0.
    """
    go_r, go_w = os.pipe()
    pid_r, pid_w = os.pipe()
    err_r, err_w = os.pipe()          # all four are O_CLOEXEC (Python's default)
    user_r, user_w = os.pipe()        # "the user namespace is there: write its maps"
    middle = os.fork()
    if middle == 0:
        try:
            os.close(go_w), os.close(pid_r), os.close(err_r), os.close(user_r)
            _middle(spec, (stdin, stdout, stderr), go_r, pid_w, err_w, console, user_w)
        except BaseException as e:    # never let the child return into the caller's code
            _report(err_w, 125, _describe(e))
    os.close(go_r), os.close(pid_w), os.close(err_w), os.close(user_w)
    map_error = None
    try:
        if before_start:
            before_start(middle)
        os.write(go_w, b"go")         # the explicit go: without it the middle process exits
        if "user" in spec["namespaces"] and os.read(user_r, 1):
            try:                      # only root of the parent namespace may write them
                userns.write_maps(middle, spec)
            except OSError as e:
                map_error = MinidockerError(f"cannot write the container's uid_map/gid_map: {e}")
            os.write(go_w, b"no" if map_error else b"ok")
        os.close(go_w)
        go_w = None
        init = _read_all(pid_r)
        os.waitpid(middle, 0)
        error = _read_all(err_r)
    except BaseException:
        # Setup failed here (e.g. the cgroup refused the pid): the middle process
        # must not go on to make a container nobody watches.  Kill and reap it.
        if go_w is not None:
            _close_quietly(go_w)
        _kill_quietly(middle)
        _reap_quietly(middle)
        raise
    finally:
        for fd in (pid_r, err_r, user_r):
            _close_quietly(fd)
    if error or map_error:
        if init:                      # init died before exec: reap it (it is ours now)
            _reap_quietly(int(init))
        if map_error:
            raise map_error
        _raise_reported(error)
    if not init:
        raise MinidockerError("container init did not start")
    return int(init)


def _middle(spec, stdio, go_r, pid_w, err_w, console, user_w):
    if os.read(go_r, 2) != b"go":     # wait until we are in the cgroup; no go, no container
        os._exit(1)
    new = namespaces.new_kinds(spec)
    namespaces.join_paths(namespaces.joined(spec))   # while we are root of the host
    if "user" in new:
        # As root of the host, a mount table of our own with the container's root
        # mounted in it (docker's userns-remap mounts it on the host): the mapped
        # root could not reach the layers, nor overlay use trusted.* xattrs for it.
        kernel.unshare(kernel.CLONE_NEWNS)
        rootfs.mount_overlay(spec)          # ...and we stand in it: our cwd goes along
        import socket                 # noqa: F401  imported now: the mapped root may not read the stdlib's dir
        # Then the user namespace, which owns the namespaces made after it (as runc).
        try:
            kernel.unshare(kernel.CLONE_NEWUSER)
        except OSError as e:
            raise namespaces.refused(e) from None
        os.write(user_w, b"u")
        if os.read(go_r, 2) != b"ok":   # the monitor could not write our maps: it says why
            os._exit(1)
        os.setresgid(0, 0, 0)         # root in here: uid START out there
        os.setresuid(0, 0, 0)
    os.close(go_r), os.close(user_w)
    flags = 0
    for name in new - {"user"}:
        flags |= kernel.NAMESPACES[name]
    kernel.unshare(flags)
    if "net" in new:
        link_up("lo")
    init = os.fork()
    if init == 0:
        try:
            os.close(pid_w)
            _init(spec, stdio, err_w, console)
        except BaseException as e:
            _report(err_w, getattr(e, "code", 125), _describe(e))
    os.write(pid_w, str(init).encode())
    os._exit(0)


def _init(spec, stdio, err_w, console):
    """PID 1: build the root file system, confine, exec."""
    os.setsid()
    _reset_signals()
    process = spec["process"]
    if not process.get("terminal"):
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
    if "uts" in spec["namespaces"]:
        kernel.sethostname(spec["hostname"])
    if "mnt" in spec["namespaces"]:
        rootfs.mount_root(spec)
    if process.get("terminal"):
        _attach_console(console, process.get("consoleSize"))
    _exec_process(spec, process, err_w)


def _attach_console(console, size=None):
    """Open a pty in the container's devpts, make it our controlling terminal and
    our stdio, and send its master end to whoever holds the other socket end.
    The window size is set here, before exec, so the program starts with the
    right size instead of getting a SIGWINCH just after it drew its prompt."""
    import socket
    TIOCSPTLCK, TIOCGPTPEER = 0x40045431, 0x5441
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))          # unlockpt(3)
    slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    if size:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size["height"], size["width"], 0, 0))
    with socket.socket(fileno=os.dup(console)) as sock:
        socket.send_fds(sock, [b"pty"], [master])
    os.close(master)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)


def window_size(fd):
    """The size of the terminal on fd, as the OCI spec's process.consoleSize, or None."""
    try:
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    except OSError:
        return None
    return {"height": rows, "width": cols} if rows and cols else None


def receive_console(sock) -> int:
    """The other end of _attach_console: return the pty master fd."""
    import socket
    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        raise MinidockerError("the container did not send its terminal")
    return fds[0]


# -- the last steps before exec, shared by init and exec ---------------------------

def _exec_process(spec, process, err_w):
    uid, gid, groups, home = resolve_user(process.get("user", ""))
    env = _environment(process.get("env", []), spec.get("hostname"), home, process.get("terminal"))
    cwd = process.get("cwd") or "/"
    os.makedirs(cwd, exist_ok=True)       # docker creates a missing working directory
    nnp = process.get("noNewPrivileges")
    profile = (spec.get("linux") or {}).get("seccomp")
    filter_ = seccomp.compile_filter(profile) if profile else None
    if filter_ and not nnp:
        # runc's order: without no_new_privs, loading a filter needs CAP_SYS_ADMIN,
        # so it goes in before the capabilities are dropped; the steps below then
        # run under it (the default profile allows them: setuid, capset, prctl...).
        kernel.seccomp_filter(filter_)
    confine.drop_bounding(process["capabilities"])
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    confine.set_caps(process["capabilities"])
    if nnp:
        kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(cwd)
    args = process["args"]
    path = _lookup(args[0], env)
    os.closerange(3, err_w)               # no descriptor of the engine reaches the container
    os.closerange(err_w + 1, 1 << 16)
    if filter_ and nnp:                   # with no_new_privs anyone may load it: as late as possible
        kernel.seccomp_filter(filter_)
    try:
        os.execve(path, args, env)
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        _report(err_w, code, f'exec: "{args[0]}": {os.strerror(e.errno).lower()}')


def _lookup(command, env):
    """execvp's search of $PATH, done here to tell 'not found' (127) from 'cannot run' (126)."""
    if "/" in command:
        return command
    for directory in env.get("PATH", config.DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CommandNotFound(f'exec: "{command}": executable file not found in $PATH')


def _environment(env_list, hostname, home, terminal):
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env_list)
    env.setdefault("PATH", config.DEFAULT_PATH)
    if hostname:
        env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    if terminal:
        env.setdefault("TERM", "xterm")
    return env


def _reset_signals():
    """Python ignores SIGPIPE and SIGXFSZ; an ignored signal survives exec, so undo that."""
    for sig in signal.Signals:
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


# -- exec: one more process in a running container ---------------------------------------

def exec_in(init_pid: int, spec: dict, process: dict, stdio, cgroup_procs=(), on_started=None,
            console: int | None = None) -> int:
    """Run process inside the namespaces of init_pid; wait and return its exit status.

    Like `runc exec`/`nsenter`: join its cgroup, then every namespace of the
    container that is not ours already (setns(2), in namespaces.JOIN_ORDER), then
    fork, because a new pid namespace applies only to children.
    """
    fds = namespaces.open_all(init_pid)   # NotFound if init is gone: nothing opened then
    try:
        err_r, err_w = os.pipe()
    except BaseException:
        namespaces.close_all(fds)
        raise
    try:
        middle = os.fork()
    except BaseException:
        namespaces.close_all(fds)
        os.close(err_r), os.close(err_w)
        raise
    if middle == 0:
        try:
            os.close(err_r)
            _exec_middle(process, spec, stdio, fds, err_w, cgroup_procs, console)
        except BaseException as e:
            _report(err_w, getattr(e, "code", 125), _describe(e))
    os.close(err_w)
    namespaces.close_all(fds)
    try:
        if on_started:
            on_started(middle)            # e.g. copy a terminal until the process ends
        error = _read_all(err_r)
    except BaseException:
        _kill_quietly(middle)
        _reap_quietly(middle)
        raise
    finally:
        os.close(err_r)
    status = wait_status(middle)
    if error:
        _raise_reported(error)
    return status


def _exec_middle(process, spec, stdio, fds, err_w, cgroup_procs, console):
    """exec's middle process: join the cgroup and the namespaces, fork, wait.

    First it makes itself non-dumpable, as runc does (PR_SET_DUMPABLE, prctl(2)): until
    the command's execve, this is a copy of the caller, a Python process with the
    caller's environment and the host's interpreter as /proc/PID/exe.  Non-dumpable,
    its /proc files belong to the host's root and need CAP_SYS_PTRACE, which a
    container lacks; execve makes the command dumpable again (CVE-2019-5736's lesson)."""
    kernel.prctl(kernel.PR_SET_DUMPABLE, 0)
    for path in cgroup_procs:
        with open(path, "w") as f:
            f.write("0")
    namespaces.enter(fds)
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            _reset_signals()
            if process.get("terminal"):
                _attach_console(console, process.get("consoleSize"))
            else:
                for target, fd in enumerate(stdio):
                    os.dup2(fd, target)
            _exec_process(spec, process, err_w)
        except BaseException as e:
            _report(err_w, getattr(e, "code", 125), _describe(e))
    os.close(err_w)
    for fd in set(stdio):             # a pty's last holder must be the process itself
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGINT, lambda *a: os.kill(child, signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *a: os.kill(child, signal.SIGTERM))
    os._exit(wait_status(child))


# -- small helpers -------------------------------------------------------------------------

def wait_status(pid: int) -> int:
    """waitpid(2), as a shell exit status: 128+N for death by signal N."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    return procs.exit_code(status)


def link_up(name: str) -> None:
    """Bring a network interface up with the SIOCSIFFLAGS ioctl (netdevice(7))."""
    import socket
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, (MinidockerError, OSError)) else f"{type(e).__name__}: {e}"


def _read_all(fd) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def _kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)      # our own child, not yet reaped: the pid is still its
    except ProcessLookupError:
        pass


def _reap_quietly(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
