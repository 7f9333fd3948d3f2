"""Docker's seccomp profiles: read one, and resolve it for one container.

Layer: runtime (what moby's profiles/seccomp package does for dockerd: the
daemon resolves the profile, runc only sees the OCI result).  A docker profile
(``--security-opt seccomp=PROFILE.json``, or seccomp_default.json here) is JSON:

  defaultAction, defaultErrnoRet   what a call no rule names gets (SCMP_ACT_ERRNO, 1 = EPERM)
  archMap / architectures          the ABIs it is written for
  syscalls: [{names, action, errnoRet, args: [{index, value, valueTwo, op}],
              includes: {caps, arches, minKernel}, excludes: {caps, arches}}]

A rule with ``includes.caps`` applies only if the container holds *all* those
capabilities (mount with CAP_SYS_ADMIN...), one with ``excludes.caps`` only if
it holds none of them (clone without CLONE_NEW* flags, unless CAP_SYS_ADMIN).
That is why a container run with --cap-add SYS_ADMIN may also call mount(2):
the capability is useless if the filter refuses the call.

resolve() keeps the rules that apply and returns the spec's ``linux.seccomp``
(the OCI form, https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#seccomp),
which seccomp.py compiles.  Run this module to print the default filter.
"""
import json
import os

from minidocker.errors import InvalidArgument
from minidocker.runtime import confine, seccomp

DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_default.json")
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}    # the names docker's includes.arches use
DEFAULT_CAPS_NAMES = confine.DEFAULT_CAPS


def default() -> dict:
    with open(DEFAULT_FILE) as f:             # our own file: tests/test_seccomp.py checks it
        return parse(f.read(), DEFAULT_FILE, check=False)


def parse(text: str, source: str = "the seccomp profile", check: bool = True) -> dict:
    """A docker profile from its JSON text.  With check (at create), it is also
    compiled once, so a bad action or comparison fails then, not at every start."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{source}: not JSON: {e}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument(f"{source}: a seccomp profile needs a defaultAction")
    if not isinstance(profile.get("syscalls") or [], list):
        raise InvalidArgument(f"{source}: syscalls must be a list")
    if not check:
        return profile
    try:                          # every action, comparison and index is known
        seccomp.compile_filter(resolve(profile, confine.CAPS))
    except InvalidArgument as e:
        raise InvalidArgument(f"{source}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InvalidArgument(f"{source}: invalid seccomp profile: {e!r}") from None
    return profile


def _kernel_at_least(version: str) -> bool:
    def numbers(v):
        return tuple(int(x) for x in v.split("-")[0].split(".")[:2] if x.isdigit())
    return numbers(os.uname().release) >= numbers(version)


def _applies(rule: dict, caps: set, goarch: str) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if exc.get("arches") and goarch in exc["arches"]:
        return False
    if any(_cap(c) not in caps for c in inc.get("caps") or []):
        return False
    if any(_cap(c) in caps for c in exc.get("caps") or []):
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
        return False
    return True


def _cap(name: str) -> str:
    name = name.upper()
    return name[4:] if name.startswith("CAP_") else name


def resolve(profile: dict, caps, arch: str | None = None) -> dict:
    """The OCI linux.seccomp for a container holding caps (names, with or without CAP_)."""
    arch = arch or seccomp.machine()
    caps = {_cap(c) for c in caps}
    native = seccomp.SCMP_ARCH.get(arch, arch)
    arches = [native]
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            arches += entry.get("subArchitectures") or []
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, caps, GOARCH.get(arch, arch)):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        out = {"names": list(names), "action": rule["action"]}
        if rule.get("args"):
            out["args"] = [dict(a) for a in rule["args"]]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    oci = {"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return oci


if __name__ == "__main__":        # the default filter of this machine, as the kernel gets it
    program = seccomp.compile_filter(resolve(default(), DEFAULT_CAPS_NAMES))
    print("\n".join(seccomp.disassemble(program)))
