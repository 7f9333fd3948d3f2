"""A layer written by hand: the scratch dir where COPY, ADD and WORKDIR put their files.

Layer: build (docker's classic builder copies into the container's rootfs and
commits it; minidocker writes only the new files, into a directory laid out as a
layer on top of the image, and packs that with layers.create).  A parent
directory the image already has is made with the image's owner, mode and time,
so that the layer does not change it; a new one gets 0755 and the --chown owner.
"""
import os
import shutil
import stat
import tempfile

from minidocker.errors import InvalidArgument
from minidocker.image import layers, store


def mkdirs_like(base, parts, image_tree, owner=(0, 0), dir_times=None):
    """Make base/parts..., each dir the image has with the image's owner, mode and
    time (so an upper layer does not change them), the others 0755 `owner`."""
    for n in range(1, len(parts) + 1):
        path = os.path.join(base, *parts[:n])
        if os.path.isdir(path) and not os.path.islink(path):
            continue
        if os.path.lexists(path):
            os.unlink(path)
        os.mkdir(path)
        found = image_tree.find(parts[:n])
        if found and stat.S_ISDIR(found[1].st_mode):
            st = found[1]
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, stat.S_IMODE(st.st_mode))
            if dir_times is not None:
                dir_times[path] = st.st_mtime_ns
        else:
            os.chown(path, *owner)
            os.chmod(path, 0o755)


class LayerDir:
    """A scratch directory laid out as a layer on top of an image: parents that
    the image has are made with the image's owner and mode (so the layer does not
    change them), new ones with 0755 and the --chown owner."""

    def __init__(self, image_tree, owner=(0, 0), mode=None, keep_owner=False):
        self.path = tempfile.mkdtemp(dir=store.tmpdir(), prefix="build-")
        self.image, self.owner, self.mode, self.keep_owner = image_tree, owner, mode, keep_owner
        self.dir_times = {}

    def host(self, parts):
        return os.path.join(self.path, *parts)

    def mkdirs(self, parts):
        mkdirs_like(self.path, parts, self.image, self.owner, self.dir_times)

    def put(self, parts, src_path, st):
        """Copy one entry (file, symlink, dir, fifo) from src_path to parts."""
        self.mkdirs(parts[:-1])
        path = self.host(parts)
        if os.path.lexists(path) and not (stat.S_ISDIR(st.st_mode) and os.path.isdir(path)
                                          and not os.path.islink(path)):
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
        uid, gid = (st.st_uid, st.st_gid) if self.keep_owner else self.owner
        mode = self.mode if self.mode is not None else stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src_path), path)
            os.lchown(path, uid, gid)
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        if stat.S_ISDIR(st.st_mode):
            if not os.path.isdir(path):
                os.mkdir(path)
            self.dir_times[path] = st.st_mtime_ns
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(src_path, path, follow_symlinks=False)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(path)
        elif stat.S_ISSOCK(st.st_mode):
            return                                  # a tar cannot hold a socket
        else:
            raise InvalidArgument(f"{src_path}: device nodes cannot be copied into an image")
        os.chown(path, uid, gid)
        os.chmod(path, mode)                       # after chown, which clears setuid
        if not stat.S_ISDIR(st.st_mode):
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))

    def pack(self):
        """The layer tar (a temp file the caller removes); the scratch dir is removed."""
        try:
            for path in sorted(self.dir_times, key=len, reverse=True):   # children first
                os.utime(path, ns=(self.dir_times[path], self.dir_times[path]))
            return layers.create_file(self.path, store.tmpdir(), prefix="build-")
        finally:
            self.remove()

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)
