"""User namespaces: root in the container is an unprivileged uid on the host.

Layer: runtime (with a piece of storage).  `run --userns remap` gives the
container a new user namespace whose ids 0..65535 are the host's ids
START..START+65535 (user_namespaces(7)): the runtime unshares CLONE_NEWUSER and
the monitor, still root of the host, writes /proc/PID/uid_map and gid_map with
one line "0 START 65536" (what runc's parent does on SYNC_USERMAP_PLS).  A
process that is root inside owns nothing outside: a file it writes belongs to
uid START on the host, and an escape leaves it as that nobody.

Which range.  dockerd --userns-remap=default takes the range of its user
"dockremap" from /etc/subuid and /etc/subgid (subuid(5)).  minidocker takes the
range of the user "minidocker" there; without one, the first 65536 ids from
100000 on that no line of those files gives to anybody (100000 is where
useradd starts; here no user has one, so containers' root is 100000).

The image's files.  They belong to uid 0 on disk, which the container's root
cannot own: inside they would show as nobody (65534), and root could not change
them.  docker's userns-remap keeps a copy of every layer per range with the
owners shifted (/var/lib/docker/100000.100000/); so does minidocker, in
ROOT/remap/<uid>.<gid>/<hex>, made once per layer (a busybox layer: ~0.1 s).
The container's own dirs (upper, init, /etc/hosts) are chowned in place.  The
overlay is still mounted by root of the host (runtime.py), as dockerd does.

Why not an idmapped mount of each layer (mount_setattr(2) MOUNT_ATTR_IDMAP, no
copy at all)?  Measured on this host (kernel 6.18, ext4) it works, overlay on
top of it too, in 0.2 ms a layer; but it needs a user namespace with the mapping
before the mount and the new mount API (open_tree, move_mount), and the classroom
VM's kernel (6.1) cannot idmap tmpfs (only from 6.3), where the tests keep their
roots.  The copy works everywhere and is docker's own design; idmapping with the
copy as fallback is the next step.
"""
import errno
import os
import stat
import struct

from minidocker import config
from minidocker.errors import MinidockerError
from minidocker.runtime import rootfs

NAME = "minidocker"
DEFAULT_START, SIZE = 100000, 65536
CAPS = "security.capability"
KEPT_XATTRS = ("user.", rootfs.OPAQUE_XATTR, CAPS)   # what layers.extract writes


# -- the range --------------------------------------------------------------------------

def _ranges(path):
    """[(name, start, count)] from /etc/subuid or /etc/subgid (subuid(5))."""
    try:
        with open(path) as f:
            lines = [line.strip().split(":") for line in f if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []
    return [(p[0], int(p[1]), int(p[2])) for p in lines if len(p) == 3 and p[1].isdigit() and p[2].isdigit()]


def _pick(path):
    ranges = _ranges(path)
    for name, start, count in ranges:
        if name == NAME and count >= SIZE:
            return start
    start = DEFAULT_START
    while any(start < s + n and s < start + SIZE for _, s, n in ranges):
        start += SIZE                       # the next block nobody was given
    return start


def mapping() -> dict:
    """{"uid": START, "gid": START, "size": 65536} for this host."""
    return {"uid": _pick("/etc/subuid"), "gid": _pick("/etc/subgid"), "size": SIZE}


def spec_mappings(m: dict) -> dict:
    """The OCI runtime spec's linux.uidMappings / gidMappings for mapping m."""
    return {"uidMappings": [{"containerID": 0, "hostID": m["uid"], "size": m["size"]}],
            "gidMappings": [{"containerID": 0, "hostID": m["gid"], "size": m["size"]}]}


def write_maps(pid: int, spec: dict) -> None:
    """As root of the parent namespace: write pid's uid_map and gid_map (once each).
    setgroups stays "allow": the container's root may set its groups, as in docker."""
    for kind in ("uid", "gid"):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in spec[kind + "Mappings"])
        with open(f"/proc/{pid}/{kind}_map", "w") as f:
            f.write(lines)


# -- the files ------------------------------------------------------------------------------

def store(m: dict) -> str:
    """ROOT/remap/<uid>.<gid>: the layers owned by the range (docker: ROOT/<uid>.<gid>)."""
    path = config.path("remap", f"{m['uid']}.{m['gid']}")
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        os.chown(path, m["uid"], m["gid"])
        os.chmod(path, 0o700)
    return path


def prepare(root: dict, m: dict, own=()) -> dict:
    """The runtime spec's root for a remapped container.

    root is snapshots.root()'s: lowers relative to root["cwd"] (ROOT/l).  Each
    image layer is replaced by its shifted copy, named alike in the store, which
    becomes the cwd; the container's own dirs (absolute) and the files in `own`
    are chowned to the range's root."""
    base = store(m)
    lowers = []
    for name in root["lowers"]:
        path = os.path.join(root.get("cwd") or "/", name)
        real = os.path.realpath(path)
        if not real.startswith(config.path("layers") + os.sep):
            shift_in_place(real, m)         # the container's init layer: its own
            lowers.append(real)
            continue
        hexname = os.path.basename(real)
        copy = os.path.join(base, hexname)
        if not os.path.isdir(copy):
            _copy_layer(real, copy, m)
        link = os.path.join(base, os.path.basename(name))
        if os.path.basename(name) != hexname and _readlink(link) != hexname:
            _replace_link(hexname, link)
        lowers.append(os.path.basename(name))
    _forget_removed(base)
    upper, work = (os.path.normpath(os.path.join(root.get("cwd") or "/", root[k])) for k in ("upper", "work"))
    for path in (upper, *own):
        os.lchown(path, m["uid"], m["gid"])
    # The container's root walks through its dir once (to the bind of its root on
    # itself, runtime._mount_root): group search only, as docker's 0710 root:<gid>.
    cdir = os.path.dirname(root["mountpoint"])
    os.chown(cdir, -1, m["gid"])
    os.chmod(cdir, 0o710)
    return dict(root, cwd=base, lowers=lowers, upper=upper, work=work)


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _replace_link(target, link):
    tmp = f"{link}.tmp{os.getpid()}"
    os.symlink(target, tmp)
    os.rename(tmp, link)


def _forget_removed(base):
    """Drop shifted copies of layers the image store no longer has (after rmi)."""
    layers = config.path("layers")
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if len(name) == 64 and not os.path.exists(os.path.join(layers, name)):
            _rmtree(path)
        elif os.path.islink(path) and not os.path.exists(path):
            os.unlink(path)


def _rmtree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def shift_in_place(top: str, m: dict) -> None:
    """chown a container's own tree (its init layer) from host ids to the range."""
    for path in _walk(top):
        st = os.lstat(path)
        if st.st_uid < m["size"] and st.st_gid < m["size"]:
            os.lchown(path, st.st_uid + m["uid"], st.st_gid + m["gid"])


def _walk(top):
    yield top
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            yield os.path.join(dirpath, name)


def _copy_layer(src: str, dest: str, m: dict) -> None:
    """Copy layer src to dest with every owner shifted into the range, made in a
    scratch dir and renamed into place, so a half copy is never used."""
    tmp = f"{dest}.tmp{os.getpid()}"
    _rmtree(tmp)
    try:
        links = {}
        _copy_entry(src, tmp, m, links)
        for dirpath, dirs, files in os.walk(src):
            rel = os.path.relpath(dirpath, src)
            for name in dirs + files:
                _copy_entry(os.path.join(dirpath, name), os.path.join(tmp, rel, name), m, links)
        _set_dir_times(src, tmp)
        try:
            os.rename(tmp, dest)
        except OSError as e:                # another start made it first: use theirs
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    except OSError as e:
        raise MinidockerError(f"cannot make the remapped copy of layer {os.path.basename(src)}: {e}") from None
    finally:
        _rmtree(tmp)


def _copy_entry(src, dst, m, links):
    st = os.lstat(src)
    mode = st.st_mode
    key = (st.st_dev, st.st_ino)
    if stat.S_ISREG(mode) and st.st_nlink > 1 and key in links:
        os.link(links[key], dst)            # a hard link stays one
        return
    if stat.S_ISDIR(mode):
        os.mkdir(dst, 0o700)
    elif stat.S_ISREG(mode):
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                while os.sendfile(out, fd, None, 1 << 30):
                    pass
            finally:
                os.close(out)
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            links[key] = dst
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif rootfs.is_whiteout(st):
        os.mknod(dst, stat.S_IFCHR, 0)      # overlay's whiteout
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, 0o600)
    else:
        raise MinidockerError(f"{src}: unexpected file type in a layer")
    # owners first (chown clears setuid bits and file capabilities), then mode, xattrs, times
    os.lchown(dst, st.st_uid + m["uid"], st.st_gid + m["gid"])
    if not stat.S_ISLNK(mode):
        os.chmod(dst, stat.S_IMODE(mode))
        _copy_xattrs(src, dst, m)
    if not stat.S_ISDIR(mode):
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_xattrs(src, dst, m):
    for name in os.listxattr(src, follow_symlinks=False):
        value = os.getxattr(src, name, follow_symlinks=False)
        if not name.startswith(KEPT_XATTRS):
            continue
        if name == CAPS:
            value = _caps_v3(value, m["uid"])
        os.setxattr(dst, name, value, follow_symlinks=False)


def _caps_v3(value: bytes, rootid: int) -> bytes:
    """File capabilities (security.capability, a vfs_cap_data) for the range's root.

    Version 2 is honoured only for the host's root; version 3 names the root
    (rootid) it is honoured for, as the kernel itself writes them in a user
    namespace (capabilities(7) "Namespaced file capabilities")."""
    magic = struct.unpack_from("<I", value)[0]
    data = value[4:20]
    if magic >> 24 == 3:
        rootid += struct.unpack_from("<I", value, 20)[0]
    return struct.pack("<I", (0x03 << 24) | (magic & 0xFFFFFF)) + data + struct.pack("<I", rootid)


def _set_dir_times(src, dst):
    for dirpath, dirs, files in os.walk(src, topdown=False):
        st = os.lstat(dirpath)
        os.utime(os.path.join(dst, os.path.relpath(dirpath, src)), ns=(st.st_atime_ns, st.st_mtime_ns))
