"""Kernel primitives: the few system calls a container runtime needs.

Layer: kernel.  Everything above (runtime, cgroups, images) reaches the kernel
through this file or through the os module; nothing else uses ctypes.

Python 3.11's os module has fork, exec, mknod, chroot and friends, but not the
calls that make containers: unshare(2), setns(2), mount(2), umount2(2),
pivot_root(2), sethostname(2), capset(2) and a few prctl(2) options.  Each
wrapper here is one line of ctypes; a failed call raises OSError whose message
names the call and its arguments, so an error says *what* the kernel refused.
"""
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# Namespace flags, from <linux/sched.h>; see namespaces(7).
CLONE_NEWNS = 0x00020000      # mount table
CLONE_NEWCGROUP = 0x02000000  # view of /proc/self/cgroup
CLONE_NEWUTS = 0x04000000     # hostname and domain name
CLONE_NEWIPC = 0x08000000     # System V IPC, POSIX message queues
CLONE_NEWUSER = 0x10000000    # user and group ids, capabilities
CLONE_NEWPID = 0x20000000     # process ids
CLONE_NEWNET = 0x40000000     # network devices, addresses, routes, ports

# The name of each namespace under /proc/<pid>/ns/, and its flag.
NAMESPACES = {
    "user": CLONE_NEWUSER, "mnt": CLONE_NEWNS, "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
    "cgroup": CLONE_NEWCGROUP,
}

# mount(2) flags, from <linux/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _check(result, call, *args):
    if result != 0:
        err = ctypes.get_errno()
        shown = ", ".join(repr(a) for a in args)
        raise OSError(err, f"{call}({shown}): {os.strerror(err)}")


def _b(s):
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    """Move this process into new namespaces (unshare(2))."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that fd (an open /proc/PID/ns/X file) refers to (setns(2))."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns", fd, hex(nstype))


def mount(source, target, fstype=None, flags=0, data=None) -> None:
    """mount(2): attach a file system, or change a mount's flags or propagation."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           "mount", source, target, fstype, hex(flags), data)


def umount2(target, flags=0) -> None:
    """umount2(2); MNT_DETACH unhooks the mount now and frees it when unused."""
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), "umount2", target, flags)


def pivot_root(new_root, put_old) -> None:
    """pivot_root(2): make new_root the root of this mount namespace."""
    _check(_libc.pivot_root(_b(new_root), _b(put_old)), "pivot_root", new_root, put_old)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl", option, arg2, arg3)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets, each a 64-bit mask (capabilities(7))."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset",
           hex(effective), hex(permitted), hex(inheritable))


class _SockFprog(ctypes.Structure):
    """struct sock_fprog of <linux/filter.h>: the length and address of a BPF program."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


SECCOMP_MODE_FILTER = 2


def seccomp_filter(program: bytes) -> None:
    """Attach a classic BPF program (struct sock_filter[], 8 bytes each) as this
    thread's seccomp filter: prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog).
    Needs no_new_privs or CAP_SYS_ADMIN; see seccomp(2) and runtime/seccomp.py."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           "prctl", "PR_SET_SECCOMP", f"<{len(program) // 8} instructions>")


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())
