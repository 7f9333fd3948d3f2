"""docker's namespace flags: --pid, --network, --ipc, --uts, --userns, --cgroupns.

Layer: engine (what dockerd's daemon/oci_linux.go and container_operations do
with HostConfig's *Mode fields).  The runtime only knows namespaces as kinds and
paths (runtime/namespaces.py); this module turns docker's modes into them:

  - modes() checks the flags at create time; `container:NAME` is resolved there
    and stored as `container:<full id>`, as docker does, so a later container
    that takes the same name is never joined by mistake;
  - spec_entries() says, at start, for each kind: a new one (its name), the
    host's (left out), or another container's ({"type", "path"}), as the OCI
    runtime spec's linux.namespaces does (config-linux.md "Namespaces").
"""
from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.runtime import bundle, cgroups, userns
from minidocker.engine import names

# Each flag: the HostConfig key, the values it takes, docker's default, docker's error.
MODES = {
    "pid": ("PidMode", ("", "host"), "", "--pid: invalid PID mode"),
    "network": ("NetworkMode", ("default", "none", "host"), "default", "invalid network mode"),
    "ipc": ("IpcMode", ("private", "shareable", "host"), "private", "--ipc: invalid IPC mode"),
    "uts": ("UTSMode", ("", "host"), "", "--uts: invalid UTS mode"),
    "userns": ("UsernsMode", ("", "host", "remap"), "", "--userns: invalid USER mode"),
    "cgroupns": ("CgroupnsMode", ("private", "host"), None, "--cgroupns: invalid CGROUP mode"),
}
JOINABLE = ("pid", "network", "ipc")          # these also take container:<name|id>
WHAT = {"ipc": "IPC", "pid": "PID namespace", "network": "network stack"}


def modes(privileged=False, **flags) -> dict:
    """docker's HostConfig fields for the namespace flags (None: docker's default).

    Checks each value; for container:<ref> checks that the container runs and,
    for --ipc, that it is shareable, as dockerd does, and keeps its full id.
    A new cgroup namespace is docker's default on cgroup v2 only."""
    out = {}
    for flag, (key, allowed, default, error) in MODES.items():
        value = flags.get(flag)
        if value is None:
            value = default if default is not None else ("private" if cgroups.version() == 2 else "host")
        if flag == "network" and value == "bridge":
            raise InvalidArgument('network mode "bridge" is not available yet: use none or host')
        if flag in JOINABLE and value.startswith("container:"):
            value = "container:" + donor(flag, value.split(":", 1)[1])
        elif value not in allowed:
            raise InvalidArgument(f"{error}: {value!r}")
        out[key] = value
    if out["UsernsMode"] == "remap":
        # As docker's --userns-remap: what needs the host's own ids or namespaces cannot be remapped.
        for key, why in (("PidMode", "--pid host"), ("NetworkMode", "--network host")):
            if out[key] == "host":
                raise InvalidArgument(f"{why} is incompatible with --userns remap "
                                      "(the host's namespaces belong to the host's root): add --userns host")
        if privileged:
            raise InvalidArgument("--privileged is incompatible with --userns remap: add --userns host")
    return out


def donor(flag: str, ref: str) -> str:
    """The id of the running container whose namespace `--FLAG container:REF` joins."""
    if not ref:
        raise InvalidArgument(f"--{flag}: container: needs a container name or id")
    cid = names.resolve(ref)
    state = bundle.state(cid)
    hc = bundle.read_config(cid)["HostConfig"]
    if state["Status"] != "running":
        raise Conflict(f"cannot join {WHAT[flag]} of a non running container: {ref[:12]}")
    if flag == "ipc" and hc.get("IpcMode") not in ("shareable", "host"):
        raise Conflict(f"cannot join IPC of container {cid[:12]}: non-shareable IPC "
                       "(hint: use --ipc shareable for the donor container)")
    return cid


def spec_entries(host_config: dict) -> list:
    """The runtime spec's namespaces for a container's HostConfig: a kind's name
    for a new namespace; {"type", "path"} to join another container's; nothing for
    the host's.  The mount namespace is always new."""
    entries = ["mnt"]
    for flag, kind in (("pid", "pid"), ("network", "net"), ("ipc", "ipc"), ("uts", "uts"),
                       ("userns", "user"), ("cgroupns", "cgroup")):
        key, _, default, _ = MODES[flag]
        value = host_config.get(key, default if default is not None else "host")
        if value.startswith("container:"):       # an id since create (modes)
            ref = value.split(":", 1)[1]
            try:
                pid = bundle.state(donor(flag, ref))["Pid"]
            except NotFound:
                raise NotFound(f"cannot join {WHAT[flag]} of container {ref[:12]}: "
                               "No such container (it was removed)") from None
            entries.append({"type": kind, "path": f"/proc/{pid}/ns/{kind}"})
        elif kind == "user":
            if value == "remap":
                entries.append(kind)
        elif value != "host":
            entries.append(kind)
    return entries


def apply(spec: dict, host_config: dict) -> None:
    """Fill a runtime spec's namespaces (and what goes with them) from a HostConfig."""
    spec["namespaces"] = spec_entries(host_config)
    if host_config.get("IpcMode") == "host":
        spec["devShm"] = "/dev/shm"       # docker binds the host's /dev/shm too
    if "user" in spec["namespaces"]:
        m = userns.mapping()
        spec.update(userns.spec_mappings(m))
        spec["root"] = userns.prepare(spec["root"], m, own=[src for src, _ in spec["binds"]])
