"""Layers: unpack an image layer (a tar) into a directory, and pack one back.

Why: an image is a stack of tar files (OCI image-spec, layer.md) and a
container's root is an overlay mount of those tars unpacked into directories
(kernel Documentation/filesystems/overlayfs.rst, mount(8) "overlay").
Unpacking a tar written by a stranger is the one place where the engine writes
paths chosen by someone else, so extract() walks every path itself with
directory fds and O_NOFOLLOW (openat(2)) and never lets the kernel follow a
symlink.  Its rules follow the spirit of CPython's tarfile extraction filters
(PEP 706); each one is a commented "rule:" line below.

Two spellings of "deleted": OCI layers say ``.wh.NAME`` (a file) and
``.wh..wh..opq`` (this dir hides lower layers); overlayfs says a char device
0:0 named NAME and the xattr trusted.overlay.opaque=y.  extract() translates
OCI -> overlay, create() overlay -> OCI, diff() reads the overlay form.
This module owns those rules: overlay.is_whiteout(), is_opaque() and the names are
what the builder and the engine use too; tarinfo() is the one maker of tar
headers (layers, `save` archives, base images).

extract() into a scratch dir and rename it into place: a refused entry stops
the extraction and leaves what was written so far (all of it inside dest).
create() expects an upper dir written by overlay without redirect_dir or
metacopy (the kernel defaults) and refuses the xattrs those leave.
"""
import errno
import os
import shutil
import stat
import tarfile
import tempfile

from minidocker.errors import InvalidArgument, MinidockerError
from minidocker.image import overlay

WHITEOUT = ".wh."                 # OCI: ".wh.NAME" deletes NAME of lower layers
OPAQUE = ".wh..wh..opq"          # OCI: this directory hides all lower entries
OPAQUE_XATTR = overlay.OPAQUE_XATTR
KEPT_XATTRS = ("user.", "security.capability")   # what a layer may carry
XATTR_PAX = "SCHILY.xattr."      # how GNU tar and docker store xattrs in PAX
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _refuse(entry, rule):
    return InvalidArgument(f"layer entry {entry!r} refused: {rule}")


def _parts(path, entry, what):
    """'./a//b/' -> ['a', 'b'], refusing paths that could leave the layer."""
    # rule: absolute names are refused (they name the host, not the layer)
    shown = what if path == entry else f"{what} {path!r}"
    if path.startswith("/"):
        raise _refuse(entry, f"{shown} is absolute")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    # rule: '..' components are refused (even ones that would stay inside)
    if ".." in parts:
        raise _refuse(entry, f"{shown} contains '..'")
    return parts


def _lstat(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_parent(dest_fd, parts, entry, create):
    """An fd of the directory that holds parts[-1], walked from dest_fd."""
    fd = os.dup(dest_fd)
    try:
        for p in parts[:-1]:
            try:
                new = os.open(p, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise _refuse(entry, f"parent {p!r} does not exist in this layer")
                os.mkdir(p, 0o755, dir_fd=fd)     # tars may omit parent dirs
                new = os.open(p, DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = _lstat(fd, p)
                kind = "a symlink" if st and stat.S_ISLNK(st.st_mode) else "not a directory"
                # rule: never follow a symlink while writing: a parent that is one is refused
                raise _refuse(entry, f"parent {p!r} is {kind}")
            os.close(fd)
            fd = new
        return fd
    except BaseException:
        os.close(fd)
        raise


def _make_room(dir_fd, name, is_dir):
    """Remove an earlier entry called name, unless dir meets dir."""
    st = _lstat(dir_fd, name)
    # rule: a later entry replaces an earlier one; a dir over a dir merges
    if st is None or (is_dir and stat.S_ISDIR(st.st_mode)):
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _xattrs(m):
    out = {}
    for key, value in sorted(m.pax_headers.items()):
        if not key.startswith(XATTR_PAX):
            continue
        name = key[len(XATTR_PAX):]
        # rule: trusted.* xattrs are overlayfs's own switches (opaque, redirect): refused
        if name.startswith("trusted."):
            raise _refuse(m.name, f"xattr {name!r} is reserved for overlayfs")
        if name.startswith(KEPT_XATTRS):       # others (selinux, acls) are dropped
            out[name] = value.encode("utf-8", "surrogateescape")
    return out


def _set_fd_attrs(fd, m, xattrs):
    # rule: owners are kept as numbers, and chmod comes after chown (chown clears setuid)
    os.fchown(fd, m.uid, m.gid)
    os.fchmod(fd, stat.S_IMODE(m.mode))
    for name, value in xattrs.items():       # after chown: it clears security.capability
        try:
            os.setxattr(fd, name, value)
        except OSError as e:                 # tmpfs before Linux 6.6 has no user.*: dropped,
            if e.errno != errno.EOPNOTSUPP:  # as docker drops them
                raise


def _ns(mtime):
    return round(mtime * 10**9)


def _hardlink(dest_fd, dir_fd, parts, m):
    target = _parts(m.linkname, m.name, "hardlink target")
    if not target:
        raise _refuse(m.name, "hardlink to the layer's root")
    tfd = _open_parent(dest_fd, target, m.name, create=False)
    try:
        st = _lstat(tfd, target[-1])
        # rule: a hardlink's target must be a regular file already in this layer
        if st is None or not stat.S_ISREG(st.st_mode):
            raise _refuse(m.name, f"hardlink target {m.linkname!r} is not a regular file in this layer")
        if target == parts:
            return
        _make_room(dir_fd, parts[-1], False)
        os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=dir_fd,
                follow_symlinks=False)
    finally:
        os.close(tfd)


def _whiteout(dir_fd, m, base):
    if base == OPAQUE:
        # rule: '.wh..wh..opq' marks its directory opaque (trusted.overlay.opaque=y)
        os.setxattr(dir_fd, OPAQUE_XATTR, b"y")
        return
    name = base[len(WHITEOUT):]
    if name in ("", ".", ".."):
        raise _refuse(m.name, "whiteout of no name")
    # rule: '.wh.NAME' becomes overlay's whiteout, a char device 0:0 named NAME
    _make_room(dir_fd, name, False)
    os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)
    os.chown(name, m.uid, m.gid, dir_fd=dir_fd, follow_symlinks=False)
    os.utime(name, ns=(_ns(m.mtime), _ns(m.mtime)), dir_fd=dir_fd, follow_symlinks=False)


def _extract_one(tf, m, dest_fd, dir_times):
    """Write one entry; return the bytes of regular file data written."""
    parts = _parts(m.name, m.name, "name")
    if not parts:    # rule: './' is dest itself, whose attributes are the caller's
        return 0
    base = parts[-1]
    if not base.startswith(WHITEOUT):
        # rule: device nodes are refused (a layer must not hand a container host devices)
        if m.ischr() or m.isblk():
            raise _refuse(m.name, "device node")
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
            raise _refuse(m.name, f"unknown entry type {m.type!r}")
    xattrs = _xattrs(m)
    dir_fd = _open_parent(dest_fd, parts, m.name, create=True)
    try:
        if base.startswith(WHITEOUT):
            _whiteout(dir_fd, m, base)
            return 0
        if m.islnk():
            _hardlink(dest_fd, dir_fd, parts, m)
            return 0
        _make_room(dir_fd, base, m.isdir())
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            written = 0
            with open(fd, "wb") as f:
                data = tf.extractfile(m)
                while chunk := data.read(1 << 20):
                    written += f.write(chunk)
                f.flush()                       # before utime: a late write moves mtime
                _set_fd_attrs(fd, m, xattrs)
                os.utime(fd, ns=(_ns(m.mtime), _ns(m.mtime)))
            return written
        if m.isdir():
            if _lstat(dir_fd, base) is None:
                os.mkdir(base, 0o700, dir_fd=dir_fd)
            fd = os.open(base, DIR_FLAGS, dir_fd=dir_fd)
            try:
                _set_fd_attrs(fd, m, xattrs)
            finally:
                os.close(fd)
            dir_times[tuple(parts)] = m.mtime   # set last: later entries touch it
            return 0
        if m.issym():
            # rule: symlinks are kept as written, absolute ones too; only the container resolves them
            os.symlink(m.linkname, base, dir_fd=dir_fd)
        else:
            # rule: fifos are allowed (they are only names)
            os.mkfifo(base, 0o600, dir_fd=dir_fd)
        os.chown(base, m.uid, m.gid, dir_fd=dir_fd, follow_symlinks=False)
        if m.isfifo():       # just made by us, so not a symlink: chmod by name is safe
            os.chmod(base, stat.S_IMODE(m.mode), dir_fd=dir_fd)
        os.utime(base, ns=(_ns(m.mtime), _ns(m.mtime)), dir_fd=dir_fd,
                 follow_symlinks=False)
        return 0
    finally:
        os.close(dir_fd)


def _set_dir_times(dest_fd, dir_times):
    for parts, mtime in dir_times.items():
        try:
            parent = _open_parent(dest_fd, parts, "/".join(parts), create=False)
            try:
                fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
        except (OSError, InvalidArgument):
            continue            # replaced or deleted by a later entry
        try:
            os.utime(fd, ns=(_ns(mtime), _ns(mtime)))
        finally:
            os.close(fd)


class _Prefixed:
    """A read()-only stream: `head` (already read to sniff the magic), then `f`."""

    def __init__(self, head, f):
        self.head, self.f = head, f

    def read(self, n=-1):
        if not self.head:
            return self.f.read(n)
        if n is None or n < 0:
            data, self.head = self.head + self.f.read(), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        return data + (self.f.read(n - len(data)) if n > len(data) else b"")


def extract(src, dest: str) -> int:
    """Unpack the layer tar `src` (path or binary file, plain or gzip) into dir `dest`."""
    f, dest_fd, written, dir_times, name = None, None, 0, {}, None
    try:
        f = open(src, "rb") if isinstance(src, (str, bytes, os.PathLike)) else src
        dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        head = f.read(2)
        mode = "r|gz" if head == b"\x1f\x8b" else "r|"      # gzip's magic (RFC 1952)
        with tarfile.open(fileobj=_Prefixed(head, f), mode=mode) as tf:
            for m in tf:
                name = m.name
                written += _extract_one(tf, m, dest_fd, dir_times)
        _set_dir_times(dest_fd, dir_times)
    except (tarfile.TarError, EOFError) as e:
        where = f" after entry {name!r}" if name else ""
        raise InvalidArgument(f"layer is not a valid tar archive{where}: {e}") from None
    except OSError as e:
        where = f"layer entry {name!r}" if name else f"layer {src!r} into {dest!r}"
        raise MinidockerError(f"{where}: {e.strerror or e}") from None
    finally:
        if dest_fd is not None:
            os.close(dest_fd)
        if f is not None and f is not src:
            f.close()
    return written


def tarinfo(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, mtime=0, size=0,
            linkname=""):
    """The one place a tar header is made.  Owners are numbers only (no user or
    group names: the names in a container are its own /etc/passwd's business);
    the defaults (root, time 0) make reproducible archives (save, base images)."""
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, linkname
    ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = uid, gid, "", "", mtime
    return ti


def tarinfo_for(name, st, kind):
    """A tar header for a file of a directory, from its lstat() result (the size of
    a regular file is set by the caller, who stats the open file)."""
    return tarinfo(name, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                   st.st_mtime_ns // 10**9)


def _pax_xattrs(fd, rel):
    headers = {}
    for name in sorted(os.listxattr(fd)):
        if name in ("trusted.overlay.redirect", "trusted.overlay.metacopy"):
            raise MinidockerError(f"{rel}: written by overlay with redirect_dir or "
                                  "metacopy on; minidocker cannot turn it into a layer")
        if name.startswith(KEPT_XATTRS):
            value = os.getxattr(fd, name).decode("utf-8", "surrogateescape")
            headers[XATTR_PAX + name] = value
    return headers


def _add_dir(tf, dir_fd, prefix, links):
    for name in sorted(os.listdir(dir_fd), key=os.fsencode):
        rel = prefix + name
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if name.startswith(WHITEOUT):
            raise InvalidArgument(f"{rel}: names starting with {WHITEOUT!r} are reserved "
                                  "for whiteouts in a layer")
        if overlay.is_whiteout(st):                  # overlay whiteout -> OCI ".wh.NAME"
            ti = tarinfo_for(prefix + WHITEOUT + name, st, tarfile.REGTYPE)
            ti.mode = 0o600
            tf.addfile(ti)
        elif stat.S_ISSOCK(st.st_mode):
            continue                          # tar cannot hold sockets (docker skips them too)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise InvalidArgument(f"{rel}: device nodes cannot be stored in a layer")
        elif stat.S_ISLNK(st.st_mode):
            ti = tarinfo_for(rel, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(name, dir_fd=dir_fd)
            tf.addfile(ti)
        elif stat.S_ISFIFO(st.st_mode):
            tf.addfile(tarinfo_for(rel, st, tarfile.FIFOTYPE))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in links:                  # another name of a file already stored
                ti = tarinfo_for(rel, st, tarfile.LNKTYPE)
                ti.linkname = links[key]
                tf.addfile(ti)
                continue
            if st.st_nlink > 1:
                links[key] = rel
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=dir_fd)
            with open(fd, "rb") as f:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != key:
                    raise MinidockerError(f"{rel}: changed while being packed")
                ti = tarinfo_for(rel, st, tarfile.REGTYPE)
                ti.size = st.st_size
                ti.pax_headers = _pax_xattrs(fd, rel)
                tf.addfile(ti, f)
        elif stat.S_ISDIR(st.st_mode):
            fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
            try:
                ti = tarinfo_for(rel, st, tarfile.DIRTYPE)
                ti.pax_headers = _pax_xattrs(fd, rel)
                tf.addfile(ti)
                try:
                    opaque = os.getxattr(fd, OPAQUE_XATTR) == b"y"
                except OSError:
                    opaque = False
                if opaque:                    # overlay opaque dir -> OCI ".wh..wh..opq"
                    ti = tarinfo_for(rel + "/" + OPAQUE, st, tarfile.REGTYPE)
                    ti.mode = 0o600
                    tf.addfile(ti)
                _add_dir(tf, fd, rel + "/", links)
            finally:
                os.close(fd)


def create(src_dir: str, out) -> None:
    """Write a deterministic PAX tar of src_dir's contents to the binary file `out`."""
    fd = os.open(src_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            _add_dir(tf, fd, "", {})
    except OSError as e:
        raise MinidockerError(f"cannot pack {src_dir}: {e}") from None
    finally:
        os.close(fd)


def create_file(src_dir: str, tmp_dir: str, prefix: str = "layer-") -> str:
    """create() into a new temp file in tmp_dir; return its path (the caller removes it)."""
    fd, tar = tempfile.mkstemp(dir=tmp_dir, prefix=prefix, suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as f:
            create(src_dir, f)
    except BaseException:
        os.unlink(tar)
        raise
    return tar


diff = overlay.diff         # where engine/snapshots.py looks for docker diff today
