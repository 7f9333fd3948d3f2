"""The runtime spec of a container, built from its config at start.

Layer: engine (what dockerd's daemon/oci_linux.go does: it turns a container's
config and HostConfig into an OCI runtime spec, config.json of the bundle, and
hands it to containerd and runc).  The engine writes it to spec.json before it
launches the monitor; the monitor (shim.py) and the runtime only read it, so
neither needs to know docker's config, names or images.

The shape is the OCI runtime spec's, cut down (runtime/runc.py lists the keys;
https://github.com/opencontainers/runtime-spec/blob/main/config.md), plus:
  linux.resources   the cgroup limits, HostConfig's keys (runtime/cgroups)
  linux.seccomp     the seccomp profile resolved for the container's capabilities
                    (runtime/seccomp_profile.py), absent when unconfined or privileged
  annotations       what only the monitor needs: openStdin, autoRemove
"""

from minidocker.image import store
from minidocker.runtime import bundle, confine, seccomp_profile
from minidocker.engine import namespaces, snapshots
from minidocker.errors import InvalidArgument

# Limits that docker keeps in HostConfig and the cgroup module understands.
LIMIT_KEYS = ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
              "BlkioWeight", "BlkioDeviceReadBps", "BlkioDeviceWriteBps")


def limits(host_config: dict) -> dict:
    """The limits set in a HostConfig (a 0 or empty value is no limit)."""
    return {k: host_config[k] for k in LIMIT_KEYS if host_config.get(k)}


def build(cid: str) -> dict:
    """The runtime spec of container cid, from its config.json and its image.
    May extract a layer (and find it corrupted), or find a joined container gone."""
    cfg = bundle.read_config(cid)
    hc = cfg["HostConfig"]
    image = store.Image(cfg["ImageManifest"])
    binds = etc_files(cid, cfg["Config"]["Hostname"])
    privileged = hc.get("Privileged")
    spec = {
        "process": {"args": [cfg["Path"]] + cfg["Args"], "env": cfg["Config"]["Env"],
                    "cwd": cfg["Config"]["WorkingDir"] or "/", "user": cfg["Config"]["User"],
                    "terminal": cfg["Config"]["Tty"], "capabilities": cfg["Capabilities"],
                    "noNewPrivileges": cfg["NoNewPrivileges"]},
        "root": snapshots.root(cid, image, binds),
        "hostname": cfg["Config"]["Hostname"],
        "nodev": not privileged,         # device nodes made inside do not work (runc.py)
        "maskedPaths": [] if privileged else confine.MASKED_PATHS,
        "readonlyPaths": [] if privileged else confine.READONLY_PATHS,
        "binds": binds,
        "linux": {"resources": limits(hc)},
        "annotations": {"openStdin": bool(cfg["Config"]["OpenStdin"]),
                        "autoRemove": bool(hc.get("AutoRemove"))},
    }
    profile = seccomp(hc, cfg["Capabilities"])
    if profile:
        spec["linux"]["seccomp"] = profile
    namespaces.apply(spec, hc)        # new, the host's or another container's; a user namespace
    return spec


def seccomp(host_config: dict, caps) -> dict | None:
    """The OCI linux.seccomp of a container (docker's daemon/seccomp_linux.go WithSeccomp):
    none if unconfined or privileged, else its profile (or the default) resolved for caps."""
    chosen = None
    for opt in host_config.get("SecurityOpt") or []:
        key, _, value = opt.partition("=")
        if key == "seccomp":
            chosen = value
    if chosen == "unconfined" or host_config.get("Privileged"):
        return None
    if not _kernel_has_seccomp():         # as dockerd: the default is skipped, a profile refused
        if chosen:
            raise InvalidArgument("seccomp is not enabled in your kernel, cannot run a custom seccomp profile")
        return None
    profile = seccomp_profile.parse(chosen, check=False) if chosen else seccomp_profile.default()
    return seccomp_profile.resolve(profile, caps)


def _kernel_has_seccomp() -> bool:
    """A kernel built with CONFIG_SECCOMP shows a Seccomp: line in /proc/PID/status."""
    with open("/proc/self/status") as f:
        return any(line.startswith("Seccomp:") for line in f)


def etc_files(cid: str, hostname: str) -> list:
    """/etc/hostname and /etc/hosts, written per container and bound in, as docker does."""
    files = {"hostname": hostname + "\n",
             "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                      f"127.0.1.1\t{hostname}\n"}
    binds = []
    for name, text in files.items():
        binds.append((bundle.write_file(cid, name, text.encode()), "/etc/" + name))
    return binds
