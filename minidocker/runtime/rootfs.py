"""The container's root file system: the overlay, /proc, /dev, /sys, pivot_root.

Layer: runtime (what runc's libcontainer/rootfs_linux.go does).  runc.py calls
mount_overlay() (in the middle process, for a user namespace) or mount_root()
(in PID 1, which ends standing in the new root, the old one detached), then
masks and makes read-only the /proc paths that would reveal or change the host
(confine.py lists them).  mount(2), pivot_root(2), mount_namespaces(7).
"""
import os
import stat

from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.runtime import namespaces

# overlayfs' two marks on disk (Documentation/filesystems/overlayfs.rst, "whiteouts and
# opaque directories"): the kernel's rules, so the runtime owns them; image/overlay.py
# builds the image-side rules on them and userns.py keeps them when it copies a layer.
OPAQUE_XATTR = "trusted.overlay.opaque"      # =y: nothing of the dirs below merges in


def is_whiteout(st) -> bool:
    """Is this lstat() result overlay's whiteout (a char device 0:0: NAME below is deleted)?"""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# Devices every container gets, bound from the host's /dev (works in a user namespace too).
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx", "core": "/proc/kcore"}


def overlay_options(root) -> str:
    """overlayfs's options; mount(2) copies at most one page (4096 bytes) of them."""
    return f"lowerdir={':'.join(root['lowers'])},upperdir={root['upper']},workdir={root['work']}"


def mount_overlay(spec):
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


def mount_root(spec):
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
        mount_overlay(spec)
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
