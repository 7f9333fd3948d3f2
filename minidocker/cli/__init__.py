"""The command line: `minidocker run ...` does what `docker run ...` does.

Layer: CLI (what the `docker` client is).  It parses flags with docker's names,
calls the containers and images layers, and prints docker's tables and messages.
Errors print one line and exit with docker's codes: 125 when the engine fails,
126/127 when the container's command cannot run / is not found, 1 for a failed
request in other commands (docker prints those as "Error response from daemon").
"""
import argparse
import json
import os
import signal
import sys

from minidocker import __version__
from minidocker.errors import MinidockerError, NotFound

PROG = "minidocker"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{PROG}: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(125)


def _fail(message, code):
    sys.stderr.write(message.rstrip() + "\n")
    sys.exit(code)


# -- run, create, start --------------------------------------------------------------

def _container_flags(p):
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
    _namespace_flags(p)
    _limit_flags(p)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _namespace_flags(p):
    """Share a namespace with the host or another container instead of a new one (namespaces.py)."""
    p.add_argument("--pid")                       # "" | host | container:ID
    p.add_argument("--network", "--net")          # default | none | host | container:ID
    p.add_argument("--ipc")                       # private | shareable | host | container:ID
    p.add_argument("--uts")                       # "" | host
    p.add_argument("--userns")                    # "" | host | remap
    p.add_argument("--cgroupns")                  # private | host


def _create(a):
    from minidocker.engine import containers
    labels = dict(item.partition("=")[::2] for item in a.label)
    kw = dict(name=a.name, entrypoint=a.entrypoint, env=a.env, workdir=a.workdir, user=a.user,
              hostname=a.hostname, tty=a.tty, stdin_open=a.interactive, auto_remove=a.rm,
              privileged=a.privileged, cap_add=a.cap_add, cap_drop=a.cap_drop,
              security_opt=a.security_opt, labels=labels, pid_mode=a.pid, network_mode=a.network,
              ipc_mode=a.ipc, uts_mode=a.uts, userns_mode=a.userns, cgroupns=a.cgroupns)
    kw["host_config"] = dict(kw.get("host_config") or {}, **_limit_args(a))
    try:
        return containers.create(a.image, a.command, **kw)
    except NotFound as e:
        if "image" not in str(e):
            raise
        from minidocker.image import store
        from minidocker.distribution import registry
        sys.stderr.write(f"Unable to find image '{store.normalize(a.image)}' locally\n")
        if registry.pulls_on_run(a.image):      # docker pulls it (to stderr), then creates
            registry.pull(a.image, out=sys.stderr)
            return containers.create(a.image, a.command, **kw)
        raise NotFound(f"{e} (minidocker makes its base images offline: "
                       f"run `{PROG} setup-images`; MINIDOCKER_ONLINE=1 pulls from Docker Hub)") from None


def cmd_create(a):
    print(_create(a).id)


def cmd_run(a):
    from minidocker.engine import containers
    if a.interactive and a.tty and not os.isatty(0):
        _fail("the input device is not a TTY", 1)
    c = _create(a)
    if a.detach:
        containers.start(c.id)
        print(c.id)
        return 0
    return _attach_and_wait(c.id, a.interactive, a.tty)


def _attach_and_wait(cid, interactive, tty):
    from minidocker.engine import containers
    with _raw_terminal(tty and interactive and os.isatty(0)):
        started = containers.start(cid, attach=True, interactive=interactive)
        if tty and started.shim_pid:     # the monitor copies our window size to the pty
            signal.signal(signal.SIGWINCH, lambda *a: _quiet_kill(started.shim_pid, signal.SIGWINCH))
        if not tty:                       # docker's --sig-proxy: our signals go to the container
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, lambda n, f: _quiet(containers.kill, cid, n))
        return started.wait_exit()


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


# -- ps, logs, inspect --------------------------------------------------------------------

def cmd_ps(a):
    from minidocker.engine import containers
    from minidocker import fmt
    rows = []
    for c in containers.list_containers(all=a.all):
        try:
            cfg, state = c.config, c.state
        except NotFound:
            continue
        if a.quiet:
            print(c.id if a.no_trunc else c.id[:12])
            continue
        command = " ".join([cfg["Path"]] + cfg["Args"])
        if not a.no_trunc and len(command) > 20:
            command = command[:19] + "…"
        rows.append([c.id if a.no_trunc else c.id[:12], cfg["Config"]["Image"], f'"{command}"',
                     fmt.human_duration(fmt.since(cfg["Created"])) + " ago",
                     _status(state), "", c.name])
    if not a.quiet:
        print(fmt.table(rows, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]))


def _status(state):
    from minidocker import fmt
    if state["Status"] == "running":
        return "Up " + fmt.human_duration(fmt.since(state["StartedAt"]))
    if state["Status"] == "exited":
        return f"Exited ({state['ExitCode']}) {fmt.human_duration(fmt.since(state['FinishedAt']))} ago"
    return state["Status"].capitalize()


def cmd_logs(a):
    from minidocker.engine import containers
    tail = None if a.tail == "all" else int(a.tail)
    for stream, text, t in containers.read_logs(a.container, follow=a.follow, tail=tail):
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write((t + " " if a.timestamps else "") + text)
        out.flush()


def cmd_inspect(a):
    from minidocker.engine import containers
    from minidocker.image import store
    found, code = [], 0
    for ref in a.names:
        try:
            found.append(containers.get(ref).inspect())
        except NotFound:
            try:
                found.append(_image_inspect(store.get(ref)))
            except NotFound:
                sys.stderr.write(f"Error: No such object: {ref}\n")
                code = 1
    _print_inspected(found, a.format)
    return code


def _print_inspected(found, template):
    """docker inspect: a JSON list, or with -f a Go template applied to each object."""
    from minidocker import fmt
    if not template:
        print(json.dumps(found, indent=4))
        return
    for obj in found:
        try:
            print(fmt.go_template(template, obj))
        except ValueError as e:
            raise MinidockerError(str(e)) from None


def cmd_ns(a):
    """The namespaces of a container's PID 1 next to the host's (or another container's)."""
    from minidocker.engine import containers
    from minidocker import fmt
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

def _each(refs, action):
    code = 0
    for ref in refs:
        try:
            action(ref)
            print(ref)
        except MinidockerError as e:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            code = 1
    return code


def cmd_stop(a):
    from minidocker.engine import containers
    return _each(a.containers, lambda r: containers.stop(r, a.time))


def cmd_kill(a):
    from minidocker.engine import containers
    return _each(a.containers, lambda r: containers.kill(r, a.signal))


def cmd_rm(a):
    from minidocker.engine import containers
    return _each(a.containers, lambda r: containers.remove(r, a.force))


def cmd_wait(a):
    from minidocker.engine import containers
    for ref in a.containers:
        print(containers.wait(ref))


def cmd_exec(a):
    from minidocker.engine import containers
    if a.interactive and a.tty and not os.isatty(0):
        _fail("the input device is not a TTY", 1)
    kw = dict(env=a.env, workdir=a.workdir, user=a.user, tty=a.tty)
    if not a.tty:
        stdin = 0 if a.interactive else os.open("/dev/null", os.O_RDONLY)
        return containers.exec_process(a.container, a.command, stdio=(stdin, 1, 2), **kw)
    import socket
    from minidocker.runtime import runc
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def pump(_pid):                       # the process made a pty in the container: copy it
        theirs.close()
        master = runc.receive_console(ours)
        _copy_terminal(master, a.interactive)
    with _raw_terminal(a.interactive and os.isatty(0)):
        return containers.exec_process(a.container, a.command, on_started=pump,
                                       console=theirs.fileno(),
                                       console_size=runc.window_size(0), **kw)


def _copy_terminal(master, interactive):
    import select
    readers = [master] + ([0] if interactive else [])
    while master in readers:
        for fd in select.select(readers, [], [])[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                readers.remove(fd)
            elif fd == master:
                os.write(1, data)
            else:
                os.write(master, data)
    os.close(master)


class _raw_terminal:
    """Put our terminal in raw mode while a container owns it (like docker run -it)."""

    def __init__(self, active):
        self.active, self.saved = active, None

    def __enter__(self):
        if self.active:
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


# -- limits: run/create flags, update, stats -------------------------------------------

# Flag -> HostConfig key, as `docker run --help` names them (cgroups.py writes them to the kernel).
LIMIT_FLAGS = {"memory": "Memory", "memory_swap": "MemorySwap", "cpus": "NanoCpus",
               "cpu_shares": "CpuShares", "cpuset_cpus": "CpusetCpus", "pids_limit": "PidsLimit",
               "blkio_weight": "BlkioWeight", "device_read_bps": "BlkioDeviceReadBps",
               "device_write_bps": "BlkioDeviceWriteBps"}


def _limit_flags(p):
    p.add_argument("-m", "--memory", help="Memory limit (512m, 1g)")
    p.add_argument("--memory-swap", help="Memory plus swap; -1: unlimited swap")
    p.add_argument("--cpus", help="Number of CPUs (1.5)")
    p.add_argument("-c", "--cpu-shares", help="CPU shares (relative weight, default 1024)")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", help="Tune container pids limit (-1 for unlimited)")
    p.add_argument("--blkio-weight", help="Block IO (relative weight), between 10 and 1000")
    p.add_argument("--device-read-bps", action="append", default=[], metavar="PATH:RATE",
                   help="Limit read rate from a device (/dev/vda:1mb)")
    p.add_argument("--device-write-bps", action="append", default=[], metavar="PATH:RATE",
                   help="Limit write rate to a device (/dev/vda:1mb)")


def _limits(a) -> dict:
    """The limit flags given, as HostConfig keys and values (docker's units parsed)."""
    from minidocker.runtime import cgroups
    from minidocker.errors import InvalidArgument
    parse = {"memory": cgroups.parse_size, "cpus": cgroups.parse_cpus, "cpuset_cpus": str,
             "memory_swap": lambda v: -1 if str(v).strip() == "-1" else cgroups.parse_size(v),
             "device_read_bps": _rates, "device_write_bps": _rates,
             "pids_limit": lambda v: _integer(v) or -1}      # 0 and -1: no limit
    out = {}
    for attr, key in LIMIT_FLAGS.items():
        value = getattr(a, attr, None)
        if value is None or value == []:
            continue
        try:
            out[key] = parse.get(attr, _integer)(value)
        except InvalidArgument as e:
            flag = "--" + attr.replace("_", "-")
            raise InvalidArgument(f'invalid argument "{value if isinstance(value, str) else value[-1]}"'
                                  f' for "{flag}" flag: {e}') from None
    return out


def _integer(text) -> int:
    from minidocker.errors import InvalidArgument
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"not an integer: {text!r}") from None


def _rates(items) -> list:
    """["/dev/vda:1mb"] -> [{"Path": "/dev/vda", "Rate": 1048576}] (docker's ThrottleDevice)."""
    from minidocker.runtime import cgroups
    from minidocker.errors import InvalidArgument
    rules = []
    for item in items:
        path, sep, rate = item.rpartition(":")
        if not sep or not path.startswith("/dev/"):
            raise InvalidArgument(f"bad format: {item} (want /dev/DEVICE:RATE, like /dev/vda:1mb)")
        rules.append({"Path": path, "Rate": cgroups.parse_size(rate)})
    return rules


def _limit_args(a) -> dict:
    """_limits(a), or docker's message for a flag it cannot parse (exit 125)."""
    from minidocker.errors import InvalidArgument
    try:
        return _limits(a)
    except InvalidArgument as e:
        _fail(f"{PROG}: {e}\nSee '{PROG} {a.func.__name__[4:]} --help'.", 125)


def cmd_update(a):
    from minidocker.engine import containers
    limits = _limit_args(a)
    if not limits:
        _fail("You must provide one or more flags when using this command.", 1)
    return _each(a.containers, lambda r: containers.update(r, limits))


def cmd_stats(a):
    from minidocker.engine import containers, stats
    if a.containers:
        chosen = [containers.get(ref) for ref in a.containers]
    else:
        chosen = None
    readers = {}                      # files stay open between refreshes
    while True:
        shown = chosen if chosen is not None else containers.list_containers(all=a.all)
        text = stats.table(shown, 1.0, a.no_trunc, readers)
        if a.no_stream:
            print(text)
            return 0
        sys.stdout.write("\033[2J\033[H" + text + "\n")   # clear the screen, as docker does
        sys.stdout.flush()


# -- images ------------------------------------------------------------------------------

def cmd_images(a):
    from minidocker import fmt
    from minidocker.image import store
    rows = []
    for image in store.list_images():
        tags = image.tags or ["<none>:<none>"]
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            if a.quiet:
                print(image.id if a.no_trunc else image.short_id)
                continue
            rows.append([repo, t, image.id if a.no_trunc else image.short_id,
                         fmt.human_duration(fmt.since(image.config["created"])) + " ago",
                         fmt.human_size(image.size)])
    if not a.quiet:
        print(fmt.table(rows, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]))


def cmd_rmi(a):
    from minidocker.engine import containers
    from minidocker.image import store
    code = 0
    for ref in a.images:
        try:
            for line in store.remove(ref, a.force, containers.images_in_use()):
                print(line)
        except MinidockerError as e:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            code = 1
    return code


def _image_inspect(image):
    from minidocker.distribution import registry
    cfg = image.config
    return {"Id": image.id, "RepoTags": image.tags, "Created": cfg.get("created"),
            "Architecture": cfg.get("architecture"), "Os": cfg.get("os"),
            "Config": cfg.get("config", {}), "Size": image.size,
            "RepoDigests": registry.repo_digests(image.id),
            "RootFS": {"Type": "layers", "Layers": image.diff_ids},
            "Metadata": {"ManifestDigest": image.manifest_digest}}


def cmd_image_inspect(a):
    from minidocker.image import store
    found = []
    for ref in a.images:
        found.append(_image_inspect(store.get(ref)))
    _print_inspected(found, a.format)


def cmd_import(a):
    from minidocker.image import store
    changes = {}
    for change in a.change:
        changes.update(parse_change(change))
    image = store.import_tar(a.file, a.reference, changes, a.message or "")
    print(image.id)


def cmd_tag(a):
    from minidocker.image import store
    store.tag(a.source, a.target)


def cmd_commit(a):
    from minidocker.engine import snapshots
    image = snapshots.commit(a.container, a.repository, a.change, a.message or "",
                             a.author or "", a.pause == "true")
    print(image.id)


def cmd_diff(a):
    from minidocker.engine import snapshots
    for kind, path in snapshots.diff(a.container):
        print(kind, path)


def cmd_history(a):
    from minidocker import fmt
    from minidocker.engine import snapshots
    rows = []
    for row in snapshots.history(a.image):
        image = row["id"] if a.no_trunc or row["id"] == "<missing>" else row["id"][7:19]
        if a.quiet:
            print(image)
            continue
        created = row["created"]
        if a.human == "true" and created:
            created = fmt.human_duration(fmt.since(created)) + " ago"
        by = row["created_by"].replace("\t", " ").replace("\n", " ")
        if not a.no_trunc and len(by) > 45:
            by = by[:44] + "…"
        rows.append([image, created, by, fmt.human_size(row["size"]), row["comment"]])
    if not a.quiet:
        print(fmt.table(rows, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]))


def cmd_save(a):
    from minidocker.image import archive
    if a.output:
        archive.save_file(a.images, a.output, a.format)
    elif os.isatty(1):
        _fail("Cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    else:
        archive.save(a.images, sys.stdout.buffer, a.format)


def cmd_load(a):
    from minidocker.image import archive
    if a.input:
        try:
            f = open(a.input, "rb")
        except OSError as e:
            raise NotFound(f"open {a.input}: {e.strerror.lower()}") from None
    elif os.isatty(0):
        _fail("requested load from stdin, but stdin is empty", 1)
    else:
        f = sys.stdin.buffer
    with f:
        for line in archive.load(f):
            print(line)


def parse_change(text: str) -> dict:
    """The Dockerfile instructions `import --change` accepts, as image config fields."""
    word, _, rest = text.strip().partition(" ")
    word, rest = word.upper(), rest.strip()

    def command():
        if rest.startswith("["):
            try:
                return [str(x) for x in json.loads(rest)]
            except ValueError:
                pass
        return ["/bin/sh", "-c", rest]
    if word in ("CMD", "ENTRYPOINT"):
        return {word.capitalize() if word == "CMD" else "Entrypoint": command()}
    if word == "ENV":
        key, _, value = rest.partition("=") if "=" in rest else rest.partition(" ")
        return {"Env": [f"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        f"{key}={value}"]}
    if word in ("WORKDIR", "USER", "STOPSIGNAL"):
        return {{"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}[word]: rest}
    raise MinidockerError(f"{word} is not a valid change command")


def cmd_build(a):
    from minidocker.build import builder
    return builder.main(a)


def _build_flags(s):
    from minidocker.build import builder
    builder.flags(s)


# -- registries: pull, push, login, logout (registry.py, auth.py) ---------------------

def cmd_pull(a):
    from minidocker.distribution import registry
    registry.pull(a.name, platform=a.platform, quiet=a.quiet)


def cmd_push(a):
    from minidocker.distribution import registry
    registry.push(a.name, quiet=a.quiet)


def cmd_login(a):
    import getpass
    from minidocker.distribution import registry
    user, password = a.username, a.password
    if a.password_stdin:
        if password:
            _fail("--password and --password-stdin are mutually exclusive", 1)
        if not user:
            _fail("Must provide --username with --password-stdin", 1)
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not user or not password:
        if not os.isatty(0):
            _fail("Error: Cannot perform an interactive login from a non TTY device", 1)
        user = user or input("Username: ").strip()
        password = password or getpass.getpass("Password: ")
    if not user or not password:
        _fail("Error: Username and password are required", 1)
    path = registry.login(a.server, user, password)
    sys.stderr.write(f"WARNING! Your password will be stored unencrypted in {path}.\n\n")
    print("Login Succeeded")


def cmd_logout(a):
    from minidocker.distribution import auth
    shown = a.server or auth.HUB
    if auth.erase(auth.server_key(a.server)):
        print(f"Removing login credentials for {shown}")
    else:
        print(f"Not logged in to {shown}")


def cmd_setup_images(a):
    from minidocker.image import setup
    for line in setup.install_base_images(force=a.force):
        print(line)


# -- system ------------------------------------------------------------------------------

def cmd_prune(a):
    from minidocker.engine import containers
    from minidocker import fmt
    from minidocker.image import store
    if not a.force:
        sys.stdout.write("WARNING! This will remove:\n  - all stopped containers\n"
                         "  - all dangling images\n\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed, freed = containers.prune()
    deleted, freed_images = store.prune_dangling(containers.images_in_use())
    if removed:
        print("Deleted Containers:")
        print("\n".join(removed) + "\n")
    if deleted:
        print("Deleted Images:")
        print("\n".join("deleted: " + d for d in deleted) + "\n")
    print(f"Total reclaimed space: {fmt.human_size(freed + freed_images)}")


def cmd_version(a):
    from minidocker.runtime import cgroups
    from minidocker import config
    import platform
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    print(f"""Client:
 Version:           {__version__}
 API version:       1.41
 Python version:    {platform.python_version()}
 OS/Arch:           linux/{arch}

Server: minidocker engine
 Engine:
  Version:          {__version__}
  Kernel:           {platform.release()}
  Storage driver:   overlay
  Cgroup version:   {cgroups.version()}
  Root dir:         {config.root()}""")


def cmd_info(a):
    from minidocker.runtime import cgroups
    from minidocker import config
    from minidocker.engine import containers
    from minidocker.image import store
    import platform
    all_ = containers.list_containers(all=True)
    states = [c.status for c in all_]
    print(f"""Client:
 Version:    {__version__}

Server:
 Containers: {len(all_)}
  Running: {states.count('running')}
  Paused: 0
  Stopped: {len(all_) - states.count('running')}
 Images: {len(store.list_images())}
 Server Version: {__version__}
 Storage Driver: overlay
 Logging Driver: json-file
 Cgroup Driver: cgroupfs
 Cgroup Version: {cgroups.version()}
 Kernel Version: {platform.release()}
 Architecture: {platform.machine()}
 CPUs: {os.cpu_count()}
 Total Memory: {_mem_total()}
 Minidocker Root Dir: {config.root()}""")


def _mem_total():
    from minidocker import fmt
    with open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
    return f"{kb / 1024 / 1024:.2f}GiB"


# -- the parser ---------------------------------------------------------------------------

def _run_flags(s):
    _container_flags(s)


def _start_flags(s):
    s.add_argument("-a", "--attach", action="store_true")
    s.add_argument("-i", "--interactive", action="store_true")
    s.add_argument("containers", nargs="+")


def _ps_flags(s):
    s.add_argument("-a", "--all", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--no-trunc", action="store_true")


def _logs_flags(s):
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("-n", "--tail", default="all")
    s.add_argument("-t", "--timestamps", action="store_true")
    s.add_argument("container")


def _stop_flags(s):
    s.add_argument("-t", "--time", "--timeout", type=float, default=10)
    s.add_argument("containers", nargs="+")


def _kill_flags(s):
    s.add_argument("-s", "--signal", default="KILL")
    s.add_argument("containers", nargs="+")


def _rm_flags(s):
    s.add_argument("-f", "--force", action="store_true")
    s.add_argument("containers", nargs="+")


def _containers_arg(s):
    s.add_argument("containers", nargs="+")


def _inspect_flags(s):
    s.add_argument("-f", "--format")
    s.add_argument("names", nargs="+")


def _ns_flags(s):
    s.add_argument("container")
    s.add_argument("other", nargs="?", help="another container (default: the host)")


def _exec_flags(s):
    s.add_argument("-i", "--interactive", action="store_true")
    s.add_argument("-t", "--tty", action="store_true")
    s.add_argument("-e", "--env", action="append", default=[])
    s.add_argument("-w", "--workdir")
    s.add_argument("-u", "--user")
    s.add_argument("container")
    s.add_argument("command", nargs=argparse.REMAINDER)


def _update_flags(s):
    _limit_flags(s)
    s.add_argument("containers", nargs="+")


def _stats_flags(s):
    s.add_argument("-a", "--all", action="store_true")
    s.add_argument("--no-stream", action="store_true")
    s.add_argument("--no-trunc", action="store_true")
    s.add_argument("containers", nargs="*")


def _images_flags(s):
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--no-trunc", action="store_true")


def _rmi_flags(s):
    s.add_argument("-f", "--force", action="store_true")
    s.add_argument("images", nargs="+")


def _image_inspect_flags(s):
    s.add_argument("-f", "--format")
    s.add_argument("images", nargs="+")


def _import_flags(s):
    s.add_argument("-c", "--change", action="append", default=[])
    s.add_argument("-m", "--message")
    s.add_argument("file")
    s.add_argument("reference", nargs="?")


def _commit_flags(s):
    s.add_argument("-a", "--author")
    s.add_argument("-c", "--change", action="append", default=[])
    s.add_argument("-m", "--message")
    s.add_argument("-p", "--pause", nargs="?", const="true", default="true", choices=["true", "false"])
    s.add_argument("container")
    s.add_argument("repository", nargs="?")


def _diff_flags(s):
    s.add_argument("container")


def _history_flags(s):
    s.add_argument("-H", "--human", nargs="?", const="true", default="true", choices=["true", "false"])
    s.add_argument("--no-trunc", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("image")


def _save_flags(s):
    s.add_argument("-o", "--output")
    s.add_argument("--format", default="docker-archive", choices=["docker-archive", "oci-archive",
                                                                  "docker", "oci"])
    s.add_argument("images", nargs="+")


def _load_flags(s):
    s.add_argument("-i", "--input")
    s.add_argument("-q", "--quiet", action="store_true")


def _pull_flags(s):
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image")
    s.add_argument("name")


def _push_flags(s):
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("name")


def _login_flags(s):
    s.add_argument("-u", "--username")
    s.add_argument("-p", "--password")
    s.add_argument("--password-stdin", action="store_true")
    s.add_argument("server", nargs="?")


def _logout_flags(s):
    s.add_argument("server", nargs="?")


def _tag_flags(s):
    s.add_argument("source")
    s.add_argument("target")


def _force_flag(s):
    s.add_argument("-f", "--force", action="store_true")


def _setup_flags(s):
    s.add_argument("--force", action="store_true")


def _none(s):
    pass


# name -> (function, one-line help, flags).  Groups ("image", "system") hold their own table.
COMMANDS = {
    "run": (cmd_run, "Create and run a new container from an image", _run_flags),
    "create": (cmd_create, "Create a new container", _run_flags),
    "start": (cmd_start, "Start one or more stopped containers", _start_flags),
    "ps": (cmd_ps, "List containers", _ps_flags),
    "logs": (cmd_logs, "Fetch the logs of a container", _logs_flags),
    "stop": (cmd_stop, "Stop one or more running containers", _stop_flags),
    "kill": (cmd_kill, "Kill one or more running containers", _kill_flags),
    "rm": (cmd_rm, "Remove one or more containers", _rm_flags),
    "wait": (cmd_wait, "Block until containers stop, then print their exit codes", _containers_arg),
    "inspect": (cmd_inspect, "Return low-level information on containers or images", _inspect_flags),
    "exec": (cmd_exec, "Execute a command in a running container", _exec_flags),
    "ns": (cmd_ns, "List a container's namespaces next to the host's (or another container's)",
           _ns_flags),
    "update": (cmd_update, "Update configuration (limits) of one or more containers", _update_flags),
    "stats": (cmd_stats, "Display a live stream of container(s) resource usage statistics", _stats_flags),
    "images": (cmd_images, "List images", _images_flags),
    "rmi": (cmd_rmi, "Remove one or more images", _rmi_flags),
    "import": (cmd_import, "Import a root file system tarball as an image", _import_flags),
    "tag": (cmd_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", _tag_flags),
    "commit": (cmd_commit, "Create a new image from a container's changes", _commit_flags),
    "diff": (cmd_diff, "Inspect changes to files or directories on a container's filesystem",
             _diff_flags),
    "history": (cmd_history, "Show the history of an image", _history_flags),
    "save": (cmd_save, "Save one or more images to a tar archive (streamed to STDOUT by default)",
             _save_flags),
    "load": (cmd_load, "Load an image from a tar archive or STDIN", _load_flags),
    "pull": (cmd_pull, "Download an image from a registry", _pull_flags),
    "push": (cmd_push, "Upload an image to a registry", _push_flags),
    "login": (cmd_login, "Log in to a registry", _login_flags),
    "logout": (cmd_logout, "Log out from a registry", _logout_flags),
    "build": (cmd_build, "Build an image from a Dockerfile", _build_flags),
    "setup-images": (cmd_setup_images, "Make the offline base images (busybox, hello-world)", _setup_flags),
    "version": (cmd_version, "Show the minidocker version information", _none),
    "info": (cmd_info, "Display system-wide information", _none),
}

GROUPS = {
    "image": ("Manage images", {
        "ls": (cmd_images, "List images", _images_flags),
        "list": (cmd_images, "List images", _images_flags),
        "rm": (cmd_rmi, "Remove one or more images", _rmi_flags),
        "inspect": (cmd_image_inspect, "Display detailed information on one or more images",
                    _image_inspect_flags),
        "import": (cmd_import, "Import a root file system tarball as an image", _import_flags),
        "tag": (cmd_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", _tag_flags),
        "pull": (cmd_pull, "Download an image from a registry", _pull_flags),
        "push": (cmd_push, "Upload an image to a registry", _push_flags),
        "history": (cmd_history, "Show the history of an image", _history_flags),
        "save": (cmd_save, "Save one or more images to a tar archive", _save_flags),
        "load": (cmd_load, "Load an image from a tar archive or STDIN", _load_flags),
    }),
    "system": ("Manage minidocker", {
        "prune": (cmd_prune, "Remove unused data", _force_flag),
        "info": (cmd_info, "Display system-wide information", _none),
    }),
}


def build_parser(only=None):
    """The argument parser; with `only`, just that command's (building all 30 costs 40 ms
    at every start, and a container start should not pay for `image inspect`'s flags)."""
    p = _Parser(prog=PROG, description="A small container engine that works like docker.")
    p.add_argument("-v", "--version", action="store_true", help="print the version and quit")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser, metavar="COMMAND")

    def add(table, subparsers, name):
        func, help_text, flags = table[name]
        s = subparsers.add_parser(name, help=help_text, add_help=False)
        s.add_argument("--help", action="help")
        s.set_defaults(func=func)
        flags(s)

    for name in COMMANDS:
        if only in (None, name):
            add(COMMANDS, sub, name)
    for group, (help_text, table) in GROUPS.items():
        if only in (None, group):
            g = sub.add_parser(group, help=help_text)
            gsub = g.add_subparsers(dest=group + "_cmd", parser_class=_Parser, metavar="COMMAND")
            for name in table:
                add(table, gsub, name)
    return p


# Commands whose failures docker reports with the engine's exit code (125, 126, 127).
ENGINE_CODES = {cmd_run, cmd_create}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((w for w in argv if not w.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS or first in GROUPS else None)
    a = parser.parse_args(argv)
    if a.version:
        print(f"minidocker version {__version__}")
        return 0
    func = getattr(a, "func", None)
    if func is None:
        parser.print_help()
        return 0 if a.cmd is None else 125
    try:
        code = func(a)
    except MinidockerError as e:
        if func in ENGINE_CODES:
            _fail(f"{PROG}: Error response from daemon: {e}", e.code)
        # Like docker, exec also exits 126/127 when the command cannot run / is not found.
        _fail(f"Error response from daemon: {e}",
              e.code if func is cmd_exec and e.code in (126, 127) else 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except PermissionError as e:
        _fail(f"{PROG}: permission denied: {e} (minidocker needs root)", 125)
    return code or 0


def _quiet(func, *args):
    try:
        func(*args)
    except MinidockerError:
        pass


def _quiet_kill(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
