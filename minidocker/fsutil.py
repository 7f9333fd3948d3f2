"""Files that change safely: atomic replacement and a lock file.

Layer: base (below the runtime; the bundle, the image store, the builder and the
credentials store all write through it).  Two rules keep minidocker's state whole
when a process dies at any instant or two commands race:

- a file is written under a temporary name in the same directory and renamed over
  the old one (rename(2) is atomic within a file system): a reader sees the old
  version or the new one, never half of one;
- a change that reads, decides and writes holds an flock(2) on a lock file for the
  whole sequence, so two writers cannot both read the old version.
"""
import contextlib
import fcntl
import os
import tempfile


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "wb", perms: int | None = None):
    """Yield a file object (opened with `mode`); when the with-block ends well the file
    replaces `path`, when it fails the file vanishes: `path` is old or new, never half.

    perms: the permission bits of the new file (mkstemp creates it 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        if perms is not None:
            os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str, data: bytes, perms: int | None = None) -> None:
    """Write `data` to `path` all at once, as far as any reader can tell."""
    with atomic_file(path, perms=perms) as f:
        f.write(data)


@contextlib.contextmanager
def locked(path: str):
    """Hold an exclusive flock(2) on `path` (created if missing) for the with-block."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
