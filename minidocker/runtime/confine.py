"""Docker's default confinement: which capabilities a container keeps, and
which parts of /proc and /sys it may not see or change.

Layer: runtime (policy).  runtime.py applies these inside the new namespaces
just before exec.  Root in a container is still uid 0, so these rules are what
keep it from loading kernel modules, reading kernel memory or rebooting the host.

References: capabilities(7); moby's oci/caps/defaults.go and oci/defaults.go
(the lists below are the same sets, written out here); the OCI runtime spec's
"maskedPaths" and "readonlyPaths".
"""
from minidocker import kernel
from minidocker.errors import InvalidArgument

# Capability numbers from <linux/capability.h>.
CAPS = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]

# The 14 capabilities a docker container keeps; every other one is dropped from every set.
DEFAULT_CAPS = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]

# Paths hidden from the container: files get /dev/null bound over them, directories an empty tmpfs.
MASKED_PATHS = [
    "/proc/asound",           # sound card state of the host
    "/proc/acpi",             # host power management
    "/proc/interrupts",       # every host CPU's interrupt counts, a side channel
    "/proc/kcore",            # the host's physical memory as an ELF core file
    "/proc/keys",             # the kernel keyring of every user
    "/proc/latency_stats",    # host scheduler latency, a side channel
    "/proc/timer_list",       # host timers, with kernel addresses
    "/proc/timer_stats",
    "/proc/sched_debug",      # every host task's scheduler state
    "/proc/scsi",             # host SCSI devices, and a way to rescan them
    "/sys/firmware",          # ACPI tables, EFI variables
    "/sys/devices/virtual/powercap",  # energy counters, a side channel (PLATYPUS)
]

# Paths the container may read but not write: they change the whole host.
READONLY_PATHS = [
    "/proc/bus", "/proc/fs", "/proc/irq",
    "/proc/sys",              # sysctls: most are global, not per namespace
    "/proc/sysrq-trigger",    # reboot, crash or sync the host
]


def cap_names(add=(), drop=(), privileged=False) -> list[str]:
    """The capability set after docker's --cap-add/--cap-drop rules (ALL allowed)."""
    def norm(name):
        name = name.upper()
        name = name[4:] if name.startswith("CAP_") else name
        if name != "ALL" and name not in CAPS:
            raise InvalidArgument(f"invalid capability: {name!r}")
        return name
    known = CAPS[:kernel.last_cap() + 1]
    add, drop = {norm(n) for n in add}, {norm(n) for n in drop}
    if privileged or "ALL" in add:
        caps = set(known)
    else:
        caps = set(DEFAULT_CAPS) | (add & set(known))
    if "ALL" in drop:
        caps = add & set(known) if "ALL" not in add else set()
    caps -= drop
    return [c for c in CAPS if c in caps]


def cap_mask(names) -> int:
    return sum(1 << CAPS.index(n) for n in names)


def drop_bounding(names) -> None:
    """Step 1, while still root: take every capability not named out of the
    bounding set, so no exec of a setuid or file-capability program can get it
    back; keep the others across the coming setuid (PR_SET_KEEPCAPS)."""
    keep = cap_mask(names)
    for number in range(kernel.last_cap() + 1):
        if not keep & (1 << number):
            kernel.prctl(kernel.PR_CAPBSET_DROP, number)
    kernel.prctl(kernel.PR_SET_KEEPCAPS, 1)


def set_caps(names) -> None:
    """Step 2, after setuid: effective = permitted = the names, inheritable and
    ambient empty.  For a non-root user, exec then empties them, as in docker."""
    keep = cap_mask(names) & _permitted_now()   # we cannot grant what we do not hold
    kernel.prctl(kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_CLEAR_ALL)
    kernel.capset(keep, keep, 0)


def _permitted_now() -> int:
    """Our own permitted set: on some hosts even root lacks one (e.g. CAP_SYS_RESOURCE)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return (1 << 64) - 1
