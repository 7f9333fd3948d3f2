"""The runtime: turn a container spec into an isolated, running process.

Layer: runtime (what runc does for docker).  The monitor (shim.py) calls
``create()`` once per container; ``exec_in()`` starts one more process inside a
running container.  Below us is only the kernel (kernel.py, os).

How a container's first process is made (the same dance as runc's nsexec.c):

    monitor ── fork ──> middle ── setns(joined) ── unshare(user?) ── unshare(the rest)
                          │      (the monitor writes uid_map/gid_map here)
                          └── fork ──> init (PID 1 in the new pid namespace)
                                 mount the overlay root, /proc, /dev, /sys
                                 pivot_root, detach the old root
                                 mask /proc paths, drop capabilities, set user
                                 exec the command

unshare(CLONE_NEWPID) only applies to children, hence the middle process; it
reports init's pid and exits, and init is re-parented to the monitor, which is
a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER).  Errors before exec travel
back on a close-on-exec pipe: if exec succeeds the pipe just closes.

The spec is a dict shaped like the OCI runtime spec's config.json, cut down:
  process: args, env, cwd, user ("", "uid[:gid]" or "name[:group]"), terminal,
           capabilities (names), noNewPrivileges
  root:    lowers (top first), upper, work, mountpoint; cwd (lowers, upper and
           work may be relative to it)
  hostname, namespaces: a name from kernel.NAMESPACES for a new one, or
           {"type": name, "path": "/proc/PID/ns/name"} to join one; a kind not
           listed is the host's (namespaces.py turns docker's --pid, --ipc... into this)
  uidMappings, gidMappings: [{containerID, hostID, size}] with a new user namespace
  maskedPaths, readonlyPaths, binds [(host file, container path)], devShm (a dir to bind)
See https://github.com/opencontainers/runtime-spec/blob/main/config.md
"""
import errno
import fcntl
import json
import os
import signal
import struct
import termios

from minidocker.runtime import confine, namespaces, userns
from minidocker import kernel
from minidocker.errors import CannotInvoke, CommandNotFound, MinidockerError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Devices every container gets, bound from the host's /dev (works in a user namespace too).
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx", "core": "/proc/kcore"}


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
        _mount_overlay(spec)          # ...and we stand in it: our cwd goes along
        import socket                 # noqa: F401  now: the mapped root may not read the stdlib's dir
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
        _mount_root(spec)
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


def overlay_options(root) -> str:
    """overlayfs's options; mount(2) copies at most one page (4096 bytes) of them."""
    return f"lowerdir={':'.join(root['lowers'])},upperdir={root['upper']},workdir={root['work']}"


def _mount_overlay(spec):
    """Mount the container's root file system and its bound files, then go into it."""
    root = spec["root"]
    new = root["mountpoint"]
    # Our mounts must not leak back to the host, nor host mounts arrive later.
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    if root.get("cwd"):       # short relative layer names, so 500 fit in a page (snapshots.py)
        os.chdir(root["cwd"])
    # nodev: a device node made inside (CAP_MKNOD is a default capability) cannot be
    # opened, so `mknod /tmp/disk b 8 0` does not reach the host's disk.  Docker uses the
    # devices cgroup for this; a mount flag does it the same way on cgroup v1 and v2.
    kernel.mount("overlay", new, "overlay", kernel.MS_NODEV if spec.get("nodev") else 0,
                 overlay_options(root))
    for source, target in spec.get("binds", []):
        _bind_file(source, new + target)
    os.chdir(new)


def _mount_root(spec):
    if "user" in namespaces.new_kinds(spec):
        # The middle process mounted the root and left us standing in it.  Copied
        # into a mount table owned by a less privileged user namespace, that mount
        # is locked (mount_namespaces(7)), and pivot_root(2) refuses a locked new
        # root: a bind of it onto itself is a mount of our own, on top, which we
        # reach from its parent (runc does the same bind).
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount(".", ".", None, kernel.MS_BIND | kernel.MS_REC)
        os.chdir("../" + os.path.basename(spec["root"]["mountpoint"]))
    else:
        _mount_overlay(spec)
    _mount_proc_dev_sys(".", spec)
    kernel.pivot_root(".", ".")      # the old root is now stacked under the new one...
    kernel.umount2(".", kernel.MNT_DETACH)   # ...and this takes it away for good
    os.chdir("/")
    for path in spec.get("maskedPaths", []):
        _mask(path)
    for path in spec.get("readonlyPaths", []):
        _readonly(path)


def _mount_proc_dev_sys(new, spec):
    nosuid_nodev_noexec = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC
    try:                              # proc shows the pid namespace of whoever mounts it
        kernel.mount("proc", _mkdir(new + "/proc"), "proc", nosuid_nodev_noexec)
    except PermissionError:
        raise MinidockerError("cannot mount /proc: the pid namespace belongs to another user "
                              "namespace (share --pid only between --userns host containers)") from None
    dev = _mkdir(new + "/dev")
    nodev = kernel.MS_NODEV if spec.get("nodev") else 0   # the binds below keep working:
    kernel.mount("tmpfs", dev, "tmpfs",                       # each is a mount of its own
                 kernel.MS_NOSUID | kernel.MS_STRICTATIME | nodev, "mode=755,size=65536k")
    for name in DEVICES:
        _bind_file("/dev/" + name, f"{dev}/{name}")
    kernel.mount("devpts", _mkdir(dev + "/pts"), "devpts", kernel.MS_NOSUID | kernel.MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5")
    if spec.get("devShm"):            # --ipc host: the host's POSIX shared memory too
        kernel.mount(spec["devShm"], _mkdir(dev + "/shm"), None, kernel.MS_BIND)
    else:
        kernel.mount("shm", _mkdir(dev + "/shm"), "tmpfs", nosuid_nodev_noexec, "mode=1777,size=65536k")
    # mqueue shows the ipc namespace of whoever mounts it; one shared from a container
    # of another user namespace is not ours to mount: /dev/mqueue stays empty then.
    _mount_if_ours("mqueue", _mkdir(dev + "/mqueue"), "mqueue", nosuid_nodev_noexec)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    sys_dir = _mkdir(new + "/sys")
    # sysfs, like mqueue, shows the net namespace of whoever mounts it; for the host's
    # network (or one our user namespace does not own) the host's /sys is bound read-only.
    own_net = "net" in namespaces.new_kinds(spec) or "net" in namespaces.joined(spec)
    if not (own_net and _mount_if_ours("sysfs", sys_dir, "sysfs", nosuid_nodev_noexec | kernel.MS_RDONLY)):
        kernel.mount("/sys", sys_dir, None, kernel.MS_BIND | kernel.MS_REC)
        kernel.mount(None, sys_dir, None, kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY)


def _mount_if_ours(source, target, fstype, flags) -> bool:
    try:
        kernel.mount(source, target, fstype, flags)
        return True
    except PermissionError:
        return False


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    return path


def _bind_file(source, target):
    if not os.path.lexists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    kernel.mount(source, target, None, kernel.MS_BIND)


def _mask(path):
    if os.path.isdir(path):
        kernel.mount("tmpfs", path, "tmpfs", kernel.MS_RDONLY)
    elif os.path.exists(path):
        kernel.mount("/dev/null", path, None, kernel.MS_BIND)


def _readonly(path):
    if os.path.exists(path):
        kernel.mount(path, path, None, kernel.MS_BIND | kernel.MS_REC)
        kernel.mount(None, path, None,
                     kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY | kernel.MS_REC)


# -- the last steps before exec, shared by init and exec ---------------------------

def _exec_process(spec, process, err_w):
    uid, gid, groups, home = resolve_user(process.get("user", ""))
    env = _environment(process.get("env", []), spec.get("hostname"), home, process.get("terminal"))
    cwd = process.get("cwd") or "/"
    os.makedirs(cwd, exist_ok=True)       # docker creates a missing working directory
    confine.drop_bounding(process["capabilities"])
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    confine.set_caps(process["capabilities"])
    if process.get("noNewPrivileges"):
        kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(cwd)
    args = process["args"]
    path = _lookup(args[0], env)
    os.closerange(3, err_w)               # no descriptor of the engine reaches the container
    os.closerange(err_w + 1, 1 << 16)
    try:
        os.execve(path, args, env)
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        _report(err_w, code, f'exec: "{args[0]}": {os.strerror(e.errno).lower()}')


def _lookup(command, env):
    """execvp's search of $PATH, done here to tell 'not found' (127) from 'cannot run' (126)."""
    if "/" in command:
        return command
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CommandNotFound(f'exec: "{command}": executable file not found in $PATH')


def _environment(env_list, hostname, home, terminal):
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env_list)
    env.setdefault("PATH", DEFAULT_PATH)
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


# -- users -------------------------------------------------------------------------------

def resolve_user(user: str, root: str = "/"):
    """docker's -u: "", "uid", "uid:gid", "name" or "name:group", looked up in the
    container's /etc/passwd and /etc/group.  Returns (uid, gid, groups, home)."""
    name, _, group = (user or "0").partition(":")
    passwd = _read_db(root + "/etc/passwd")
    entry = next((e for e in passwd if e[0] == name or e[2] == name), None)
    if entry:
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5] or "/"
    elif name.isdigit():
        uid, gid, home = int(name), 0, "/"
    else:
        raise MinidockerError(f"unable to find user {name}: no matching entries in passwd file")
    groups_db = _read_db(root + "/etc/group")
    if group:
        match = next((g for g in groups_db if g[0] == group or g[2] == group), None)
        if match:
            gid = int(match[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise MinidockerError(f"unable to find group {group}: no matching entries in group file")
    username = entry[0] if entry else None
    extra = sorted({int(g[2]) for g in groups_db
                    if len(g) > 3 and username and username in g[3].split(",")} - {gid})
    return uid, gid, [gid] + extra, home


def _read_db(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f
                    if line.strip() and not line.startswith("#") and line.count(":") >= 2]
    except OSError:
        return []


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
    """exec's middle process: join the cgroup and the namespaces, fork, wait."""
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
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


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
