"""Containers: their records, create, update, remove, prune, logs.

Layer: engine (what dockerd's daemon/create.go, update.go, delete.go and its
json-file log driver do).  The CLI and the Python API call these functions; a
daemon will too.  Starting, stopping and exec are in lifecycle.py.

A container is a directory ROOT/containers/<id>/, its bundle: runtime/bundle.py
owns its files (config.json, state.json, spec.json, json.log, the snapshot dirs)
and is the one way to change its state, under the container's lock.  The rootfs/
is mounted inside the container's own mount namespace only: when the container
ends, the mount ends with it.

Names are claimed under the store lock, so two `create --name x` cannot both win,
and the image is leased there too (store.lease), so `rmi` cannot take it away.
At start the engine builds the runtime spec (engine/spec.py) and hands it to the
container's monitor (shim.py); a second start while one is under way is refused.
"""
import json
import os
import sys
import time

from minidocker import config, fmt
from minidocker.runtime import bundle, cgroups, confine, seccomp_profile
from minidocker.image import changes, store
from minidocker.errors import Conflict, InvalidArgument, MinidockerError, NotFound
from minidocker.engine import lifecycle, names, namespaces, snapshots, spec
# The verbs that run containers live in lifecycle.py; their old names here too (the CLI uses them).
from minidocker.engine.lifecycle import (SIGNALS, exec_process, kill, parse_signal,  # noqa: F401
                                         start, stop, wait)
from minidocker.engine.names import random_name

LIMIT_KEYS = spec.LIMIT_KEYS
_dir = bundle.path                    # the old name, still used by tests and other modules


# -- records ------------------------------------------------------------------------

class Container:
    """A handle on one container; every property reads the current files."""

    def __init__(self, cid: str):
        self.id = cid

    @property
    def config(self) -> dict:
        return bundle.read_config(self.id)

    @property
    def name(self) -> str:
        return self.config["Name"].lstrip("/")

    @property
    def state(self) -> dict:
        """The state as it is now; reading never writes (bundle.verdict)."""
        return bundle.state(self.id)

    @property
    def status(self) -> str:
        return self.state["Status"]

    def inspect(self) -> dict:
        cfg, state = self.config, self.state
        out = dict(cfg)
        out["State"] = {k: state.get(k) for k in (
            "Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
            "ExitCode", "Error", "StartedAt", "FinishedAt")}
        out["LogPath"] = _dir(self.id, "json.log")
        out["GraphDriver"] = {"Name": "overlay", "Data": {
            "LowerDir": ":".join(store.Image(cfg["ImageManifest"]).layer_dirs()),
            "UpperDir": _dir(self.id, "upper"), "WorkDir": _dir(self.id, "work"),
            "MergedDir": _dir(self.id, "rootfs")}}
        return out

    # The Python API: what docker-py's Container offers, spelled the same way.
    def start(self, **kw):
        return start(self.id, **kw)

    def wait(self, timeout=None) -> int:
        return wait(self.id, timeout)

    def stop(self, timeout=10):
        stop(self.id, timeout)

    def kill(self, sig="KILL"):
        kill(self.id, sig)

    def remove(self, force=False):
        remove(self.id, force)

    def logs(self, stdout=True, stderr=True, timestamps=False) -> str:
        streams = {s for s, want in (("stdout", stdout), ("stderr", stderr)) if want}
        return "".join((f"{t} " if timestamps else "") + text
                       for stream, text, t in read_logs(self.id) if stream in streams)

    def exec_run(self, cmd, **kw):
        """Run a command inside; returns (exit_code, output).  Goes through a helper
        process (the CLI), since a Jupyter kernel must never fork itself."""
        args = [sys.executable, "-m", "minidocker", "exec"]
        for k, v in (kw.get("environment") or {}).items():
            args += ["-e", f"{k}={v}"]
        if kw.get("user"):
            args += ["-u", kw["user"]]
        if kw.get("workdir"):
            args += ["-w", kw["workdir"]]
        import subprocess
        proc = subprocess.run(args + [self.id] + list(cmd), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return proc.returncode, proc.stdout

    def diff(self) -> list[dict]:
        """docker-py's diff(): [{"Path": "/tmp/x", "Kind": 1}], Kind 0 changed, 1 added, 2 deleted."""
        kinds = {"C": 0, "A": 1, "D": 2}
        return [{"Path": path, "Kind": kinds[kind]} for kind, path in snapshots.diff(self.id)]

    def commit(self, repository=None, tag=None, message="", author="", changes=(), pause=True):
        """docker-py's commit(): a new image of this container's changes; returns the Image."""
        ref = f"{repository}:{tag}" if repository and tag else repository
        changes = [changes] if isinstance(changes, str) else list(changes or ())
        return snapshots.commit(self.id, ref, changes, message or "", author or "", pause)

    def __repr__(self):
        return f"<Container {self.id[:12]} {self.name}>"


def get(ref: str) -> Container:
    """Find a container by full id, unique id prefix, or name."""
    return Container(names.resolve(ref))


def list_containers(all: bool = False) -> list[Container]:
    found = []
    for cid in bundle.ids():
        c = Container(cid)
        try:
            if all or c.status == "running":
                found.append((c.config["Created"], c))
        except (NotFound, ValueError):
            continue                  # being removed right now
    return [c for _, c in sorted(found, key=lambda p: p[0], reverse=True)]


def running_ids() -> frozenset:
    """The ids of the running (or starting) containers: images they use cannot be removed."""
    found = set()
    for cid in bundle.ids():
        try:
            if bundle.state(cid)["Status"] in ("running", "starting"):
                found.add(cid)
        except NotFound:
            continue
    return frozenset(found)


# -- create ------------------------------------------------------------------------

def create(image: str, command=None, *, name=None, entrypoint=None, env=(), workdir=None,
           user=None, hostname=None, tty=False, stdin_open=False, auto_remove=False,
           privileged=False, cap_add=(), cap_drop=(), security_opt=(), labels=None,
           host_config=None, pid_mode=None, network_mode=None, ipc_mode=None, uts_mode=None,
           userns_mode=None, cgroupns=None) -> Container:
    """docker create: resolve the image, decide the command, claim a name, make the snapshot dirs.

    pid_mode ... cgroupns are docker-py's names for --pid, --network, --ipc, --uts,
    --userns and --cgroupns (namespaces.modes)."""
    img = store.get(image)
    icfg = img.config.get("config", {})
    if entrypoint is not None:            # --entrypoint replaces the image's, and its Cmd
        entry = [entrypoint] if isinstance(entrypoint, str) and entrypoint else list(entrypoint or [])
        cmd = list(command) if command else []
    else:
        entry = list(icfg.get("Entrypoint") or [])
        cmd = list(command) if command else list(icfg.get("Cmd") or [])
    args = entry + cmd
    if not args:
        raise InvalidArgument("No command specified")
    names.check_workdir(workdir)
    security = _security_opts(security_opt)
    caps = confine.cap_names(cap_add, cap_drop, privileged)
    for item in env:
        if not item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable: {item!r}")
    merged_env = changes.merge_env(icfg.get("Env") or [], env)
    cid = os.urandom(32).hex()
    hc = {"AutoRemove": auto_remove, "Privileged": privileged, "CapAdd": list(cap_add),
          "CapDrop": list(cap_drop), "SecurityOpt": security["opts"], "NetworkMode": "default"}
    for key in LIMIT_KEYS:
        hc[key] = (host_config or {}).get(key, 0 if key != "BlkioDeviceReadBps" and
                                          key != "BlkioDeviceWriteBps" else [])
    hc.update({k: v for k, v in (host_config or {}).items() if k not in hc})
    _check_limits(hc)
    hc.update(namespaces.modes(privileged, pid=pid_mode, network=network_mode, ipc=ipc_mode,
                               uts=uts_mode, userns=userns_mode, cgroupns=cgroupns))
    if "host" in (hc["UTSMode"], hc["NetworkMode"]):    # docker: then the host's own name
        if hostname and hc["UTSMode"] == "host":
            raise InvalidArgument("Conflicting options: hostname and the UTS mode")
        hostname = hostname or os.uname().nodename
    record = {
        "Id": cid, "Created": fmt.now(), "Path": args[0], "Args": args[1:],
        "Image": img.id, "ImageManifest": img.manifest_digest,
        "Config": {"Hostname": hostname or cid[:12], "User": user if user is not None else icfg.get("User", ""),
                   "Env": merged_env, "Cmd": cmd or None, "Entrypoint": entry or None,
                   "WorkingDir": workdir if workdir else icfg.get("WorkingDir", "") or "",
                   "Tty": tty, "OpenStdin": stdin_open, "Image": image,
                   "Labels": dict(icfg.get("Labels") or {}, **(labels or {})),
                   "StopSignal": icfg.get("StopSignal", "SIGTERM")},
        "HostConfig": hc, "Capabilities": caps, "NoNewPrivileges": security["no-new-privileges"],
    }
    os.makedirs(config.path("containers"), exist_ok=True)
    with store.lock():
        if name is not None:
            _check_name(name)
        else:
            taken = {c.name for c in list_containers(all=True)}
            name = random_name()
            while name in taken:
                name = random_name()
        record["Name"] = "/" + name
        store.lease(cid, img.manifest_digest)   # under the lock: an rmi sees it or went first
        try:
            bundle.create(cid, record)
        except BaseException:
            store.release(cid)
            raise
    return Container(cid)


def _check_name(name):
    import re
    if not re.fullmatch(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+", name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    for c in list_containers(all=True):
        if c.name == name.lstrip("/"):
            raise Conflict(f'Conflict. The container name "/{name.lstrip("/")}" is already in use '
                           f'by container "{c.id}". You have to remove (or rename) that container '
                           "to be able to reuse that name.")


def _security_opts(opts):
    """docker's --security-opt: no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json.

    As docker's CLI does, a profile file is read now and its JSON kept in the
    option ("seccomp={...}"): the container does not depend on the file later,
    and inspect shows the profile it runs with (HostConfig.SecurityOpt)."""
    out = {"no-new-privileges": False, "opts": []}
    for opt in opts:
        key, _, value = opt.partition("=") if "=" in opt else opt.partition(":")
        if key == "no-new-privileges":
            out[key] = value in ("", "true")
        elif key == "seccomp" and value:
            opt = "seccomp=" + _seccomp_profile(value)
        else:
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")
        out["opts"].append(opt)
    return out


def _seccomp_profile(value):
    """'unconfined', or a profile's compact JSON, read from a file or given as JSON (the API's way)."""
    if value == "unconfined":
        return value
    if value.lstrip().startswith("{"):
        text, source = value, "the seccomp profile"
    else:
        try:
            with open(value) as f:
                text, source = f.read(), value
        except OSError as e:
            raise InvalidArgument(f"opening seccomp profile ({value}) failed: {e.strerror}") from None
    return json.dumps(seccomp_profile.parse(text, source), separators=(",", ":"))


# -- update: change limits ------------------------------------------------------------------

def update(cid: str, limits: dict) -> None:
    """docker update: change a container's limits (HostConfig keys, LIMIT_KEYS).

    A running container's cgroup changes at once: the kernel applies a lower
    memory limit by reclaiming (or refuses with EBUSY), a new CPU quota from the
    next period.  HostConfig keeps the new values for the next start.  As in
    docker, a value None or 0 leaves that limit as it is, -1 lifts it; device
    rules replace the rule for the same device, and Rate 0 removes it.
    """
    unknown = sorted(set(limits) - set(LIMIT_KEYS))
    if unknown:
        raise InvalidArgument(f"cannot update {', '.join(unknown)}: only {', '.join(LIMIT_KEYS)}")
    limits = {k: v for k, v in limits.items() if v is not None and v != 0 and v != []}
    c = get(cid)
    with bundle.locked(c.id):             # no state change (start, exit) while we change limits
        record, state = c.config, c.state
        if state["Status"] == "starting":
            raise Conflict(f"Cannot update container {c.id}: it is starting; try again")
        hc = dict(record["HostConfig"], **limits)
        for key in ("BlkioDeviceReadBps", "BlkioDeviceWriteBps"):
            if key in limits:                 # one rule per device, the newest wins
                rules = {r["Path"]: r for r in list(record["HostConfig"].get(key) or []) + limits[key]
                         if isinstance(r, dict) and "Path" in r}
                hc[key] = [r for r in rules.values() if r.get("Rate")]
        try:
            _check_limits(hc)
            if state["Status"] == "running":
                cgroups.Cgroup(c.id).update(limits)
        except MinidockerError as e:
            raise type(e)(f"Cannot update container {c.id}: {e}") from None
        record["HostConfig"] = hc
        bundle.write_json(bundle.path(c.id, "config.json"), record)


def _check_limits(hc: dict) -> None:
    """Let the kernel judge limits before they are kept: make a scratch cgroup with
    them and remove it, so a bad value fails now, not at the next start."""
    limits = {k: hc[k] for k in LIMIT_KEYS if hc.get(k)}
    if not limits:
        return
    scratch = cgroups.Cgroup("check-" + os.urandom(6).hex())
    try:
        scratch.create(limits)
    finally:
        scratch.destroy()


# -- remove, prune ---------------------------------------------------------------------------

def remove(cid: str, force: bool = False) -> None:
    """docker rm: delete a stopped container (with -f, kill it first)."""
    c = get(cid)
    if c.status in ("running", "starting"):
        if not force:
            raise Conflict(f"You cannot remove a running container {c.id}. Stop the container "
                           "before attempting removal or force remove")
        deadline = time.monotonic() + 30
        while c.status in ("running", "starting") and time.monotonic() < deadline:
            try:
                kill(c.id, "KILL")        # a starting container: kill it once it runs
            except Conflict:
                pass
            wait(c.id, timeout=0.2, only_running=True)
    lifecycle.delete(c.id)


def prune() -> tuple[list[str], int]:
    """Remove every stopped container; return (ids, bytes reclaimed)."""
    removed, freed = [], 0
    for c in list_containers(all=True):
        try:
            if c.status in ("exited", "created"):
                freed += _du(_dir(c.id, "upper")) + _du(_dir(c.id, "json.log"))
                lifecycle.delete(c.id)
                removed.append(c.id)
        except NotFound:
            continue
    return removed, freed


def _du(path) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for top, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total


def images_in_use() -> set[str]:
    return {c.config["Image"] for c in list_containers(all=True)}


def remove_image(ref: str, force: bool = False) -> list[str]:
    """docker rmi: refused for an image a running container uses, even with force;
    with force, an image a stopped container uses is untagged and its layers stay
    (the container's lease keeps them: image/store.py)."""
    # in_use: containers made before leases existed hold none; their images still count.
    return store.remove(ref, force, running=running_ids(), in_use=images_in_use())


# -- logs -------------------------------------------------------------------------------------

def read_logs(cid: str, follow: bool = False, tail: int | None = None):
    """Yield (stream, text, time) from docker's json-file log of the container."""
    c = get(cid)
    path = _dir(c.id, "json.log")
    try:
        f = open(path)
    except FileNotFoundError:
        return
    with f:
        lines = f.readlines()
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        for line in lines:
            if line.endswith("\n"):
                entry = json.loads(line)
                yield entry["stream"], entry["log"], entry["time"]
        partial = "".join(l for l in lines if not l.endswith("\n"))
        while follow:
            line = f.readline()
            if line:
                partial += line
                if partial.endswith("\n"):
                    entry = json.loads(partial)
                    partial = ""
                    yield entry["stream"], entry["log"], entry["time"]
                continue
            try:
                if c.status not in ("running", "starting"):
                    follow = False
                    continue
            except NotFound:
                return
            time.sleep(0.05)


