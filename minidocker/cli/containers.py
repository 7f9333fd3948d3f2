"""Container commands: run, create, start, ps, logs, inspect, ns, stop, kill, rm, wait, exec.

Layer: CLI (the `docker` client).  Each command parses docker's flags, asks the
engine (minidocker.engine.containers, dockerd's container service) and prints
what docker prints (docker-run(1), docker-ps(1), docker-exec(1) ...).

The engine is imported inside each command, not at the top: importing
minidocker.engine.containers costs 20-40 ms (it brings the runtime and the image
store), and `minidocker --version` or `minidocker images` should not pay for it.
"""
import argparse
import os
import signal
import sys

from minidocker.cli import output, terminal
from minidocker.cli.commands import PROG, command, fail, flag
from minidocker.cli.images import image_inspect
from minidocker.cli.limits import limit_args, limit_flags
from minidocker.errors import InvalidArgument, MinidockerError, NotFound


def container_flags(p):
    """The flags of `docker run` and `docker create`."""
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("--entrypoint")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    namespace_flags(p)
    limit_flags(p)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def namespace_flags(p):
    """Share a namespace with the host or another container instead of a new one."""
    p.add_argument("--pid")                       # "" | host | container:ID
    p.add_argument("--network", "--net")          # default | none | host | container:ID
    p.add_argument("--ipc")                       # private | shareable | host | container:ID
    p.add_argument("--uts")                       # "" | host
    p.add_argument("--userns")                    # "" | host | remap
    p.add_argument("--cgroupns")                  # private | host


# -- run, create, start --------------------------------------------------------------

def _create(a):
    from minidocker.engine import containers
    labels = dict(item.partition("=")[::2] for item in a.label)
    kw = dict(name=a.name, entrypoint=a.entrypoint, env=caller_env(a.env), workdir=a.workdir, user=a.user,
              hostname=a.hostname, tty=a.tty, stdin_open=a.interactive, auto_remove=a.rm,
              privileged=a.privileged, cap_add=a.cap_add, cap_drop=a.cap_drop,
              security_opt=a.security_opt, labels=labels, pid_mode=a.pid, network_mode=a.network,
              ipc_mode=a.ipc, uts_mode=a.uts, userns_mode=a.userns, cgroupns=a.cgroupns,
              host_config=limit_args(a))
    try:
        return containers.create(a.image, a.command, **kw)
    except NotFound as e:
        if "image" not in str(e):
            raise
        from minidocker.distribution import pull
        from minidocker.image import store
        sys.stderr.write(f"Unable to find image '{store.normalize(a.image)}' locally\n")
        if pull.pulls_on_run(a.image):      # docker pulls it (to stderr), then creates
            pull.pull(a.image, out=sys.stderr)
            return containers.create(a.image, a.command, **kw)
        raise NotFound(f"{e} (minidocker makes its base images offline: "
                       f"run `{PROG} setup-images`; MINIDOCKER_ONLINE=1 pulls from Docker Hub)") from None



def caller_env(items):
    """-e NAME (no "=") takes NAME's value from the caller's environment, or is dropped
    when the caller has none: the docker CLI does this before it sends the request,
    so the engine only ever sees NAME=VALUE (a bare NAME there removes NAME)."""
    out = []
    for item in items:
        if "=" in item or not item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out

@command("run", "Create and run a new container from an image", container_flags, codes=(125, 126, 127))
def cmd_run(a):
    from minidocker.engine import containers
    if a.interactive and a.tty and not os.isatty(0):
        fail("the input device is not a TTY", 1)
    c = _create(a)
    if a.detach:
        containers.start(c.id)
        print(c.id)
        return 0
    return _attach_and_wait(c.id, a.interactive, a.tty)


@command("create", "Create a new container", container_flags, codes=(125, 126, 127))
def cmd_create(a):
    print(_create(a).id)


def _attach_and_wait(cid, interactive, tty):
    from minidocker.engine import containers
    with terminal.raw_terminal(tty and interactive and os.isatty(0)):
        started = containers.start(cid, attach=True, interactive=interactive)
        if tty and started.shim_pid:     # the monitor copies our window size to the pty
            signal.signal(signal.SIGWINCH, lambda n, f: terminal.forward_window_size(n, started.shim_pid))
        if not tty:                       # docker's --sig-proxy: our signals go to the container
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, lambda n, f: _kill_quietly(cid, n))
        return started.wait_exit()


def _kill_quietly(cid, signum):
    from minidocker.engine import containers
    try:
        containers.kill(cid, signum)
    except MinidockerError:             # it has just exited: nothing to forward to
        pass


@command("start", "Start one or more stopped containers",
         flag("-a", "--attach", action="store_true"),
         flag("-i", "--interactive", action="store_true"),
         flag("containers", nargs="+"))
def cmd_start(a):
    from minidocker.engine import containers
    code = 0
    for ref in a.containers:
        if a.attach:
            c = containers.get(ref)
            code = _attach_and_wait(c.id, a.interactive, c.config["Config"]["Tty"])
        else:
            containers.start(ref)
            print(ref)
    return code


# -- ps, logs, inspect, ns ---------------------------------------------------------------

@command("ps", "List containers",
         flag("-a", "--all", action="store_true"),
         flag("-q", "--quiet", action="store_true"),
         flag("--no-trunc", action="store_true"))
def cmd_ps(a):
    from minidocker import fmt
    from minidocker.engine import containers
    rows = []
    for c in containers.list_containers(all=a.all):
        try:
            cfg, state = c.config, c.state
        except NotFound:                # removed while we listed
            continue
        if a.quiet:
            print(c.id if a.no_trunc else c.id[:12])
            continue
        command_line = " ".join([cfg["Path"]] + cfg["Args"])
        if not a.no_trunc and len(command_line) > 20:
            command_line = command_line[:19] + "…"
        rows.append([c.id if a.no_trunc else c.id[:12], cfg["Config"]["Image"], f'"{command_line}"',
                     output.ago(cfg["Created"]), output.status(state), "", c.name])
    if not a.quiet:
        print(fmt.table(rows, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]))


def _tail(text):
    """--tail: "all" or a number of lines, checked while parsing (docker's flag error, exit 125)."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid value "{text}": a number of lines or "all"') from None


@command("logs", "Fetch the logs of a container",
         flag("-f", "--follow", action="store_true"),
         flag("-n", "--tail", type=_tail, default=None),
         flag("-t", "--timestamps", action="store_true"),
         flag("container"))
def cmd_logs(a):
    from minidocker.engine import containers
    for stream, text, t in containers.read_logs(a.container, follow=a.follow, tail=a.tail):
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write((t + " " if a.timestamps else "") + text)
        out.flush()


@command("inspect", "Return low-level information on containers or images",
         flag("-f", "--format"), flag("names", nargs="+"))
def cmd_inspect(a):
    from minidocker.engine import containers
    from minidocker.image import store
    found, code = [], 0
    for ref in a.names:
        try:
            found.append(containers.get(ref).inspect())
        except NotFound:
            try:
                found.append(image_inspect(store.get(ref)))
            except NotFound:
                sys.stderr.write(f"Error: No such object: {ref}\n")
                code = 1
    output.print_inspected(found, a.format)
    return code


@command("ns", "List a container's namespaces next to the host's (or another container's)",
         flag("container"), flag("other", nargs="?", help="another container (default: the host)"))
def cmd_ns(a):
    """The namespaces of a container's PID 1 next to the host's (or another container's)."""
    from minidocker import fmt
    from minidocker.engine import containers
    from minidocker.runtime import namespaces
    c = containers.get(a.container)
    pid = c.state["Pid"]
    if not pid:
        raise MinidockerError(f"Container {c.id[:12]} is not running")
    other, label = "self", "HOST"
    if a.other:
        d = containers.get(a.other)
        other, label = d.state["Pid"], d.name.upper()
        if not other:
            raise MinidockerError(f"Container {d.id[:12]} is not running")
    rows = [[kind, str(mine), str(theirs), "shared" if mine == theirs else "new"]
            for kind, (mine, theirs) in namespaces.compare(pid, other).items()]
    print(fmt.table(rows, ["NAMESPACE", c.name.upper(), label, "SHARED"]))
    if namespaces.inode(pid, "user") != namespaces.inode("self", "user"):
        for kind in ("uid", "gid"):
            for inside, outside, count in namespaces.id_map(pid, kind):
                print(f"{kind}_map: {inside} -> {outside} ({count} ids)")


# -- stop, kill, rm, wait, exec -------------------------------------------------------------

@command("stop", "Stop one or more running containers",
         flag("-t", "--time", "--timeout", type=float, default=10),
         flag("containers", nargs="+"))
def cmd_stop(a):
    from minidocker.engine import containers
    return output.each(a.containers, lambda r: containers.stop(r, a.time))


@command("kill", "Kill one or more running containers",
         flag("-s", "--signal", default="KILL"), flag("containers", nargs="+"))
def cmd_kill(a):
    from minidocker.engine import containers
    number = containers.parse_signal(a.signal)
    if not 0 < number < signal.NSIG:     # kill(2) would fail with EINVAL for each container
        raise InvalidArgument(f"Invalid signal: {a.signal}")
    return output.each(a.containers, lambda r: containers.kill(r, a.signal))


@command("rm", "Remove one or more containers",
         flag("-f", "--force", action="store_true"), flag("containers", nargs="+"))
def cmd_rm(a):
    from minidocker.engine import containers
    return output.each(a.containers, lambda r: containers.remove(r, a.force))


@command("wait", "Block until containers stop, then print their exit codes", flag("containers", nargs="+"))
def cmd_wait(a):
    from minidocker.engine import containers
    for ref in a.containers:
        print(containers.wait(ref))


@command("exec", "Execute a command in a running container",
         flag("-i", "--interactive", action="store_true"),
         flag("-t", "--tty", action="store_true"),
         flag("-e", "--env", action="append", default=[]),
         flag("-w", "--workdir"),
         flag("-u", "--user"),
         flag("container"),
         flag("command", nargs=argparse.REMAINDER),
         codes=(126, 127))
def cmd_exec(a):
    from minidocker.engine import containers
    if a.interactive and a.tty and not os.isatty(0):
        fail("the input device is not a TTY", 1)
    kw = dict(env=caller_env(a.env), workdir=a.workdir, user=a.user, tty=a.tty)
    if not a.tty:
        stdin = 0 if a.interactive else os.open("/dev/null", os.O_RDONLY)
        return containers.exec_process(a.container, a.command, stdio=(stdin, 1, 2), **kw)
    import socket           # lazy: only exec -t needs a socket (to receive the pty)
    from minidocker.runtime import runc
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def pump(_pid):                       # the process made a pty in the container: copy it
        theirs.close()
        terminal.copy_terminal(runc.receive_console(ours), a.interactive)
    with terminal.raw_terminal(a.interactive and os.isatty(0)):
        return containers.exec_process(a.container, a.command, on_started=pump,
                                       console=theirs.fileno(),
                                       console_size=runc.window_size(0), **kw)
