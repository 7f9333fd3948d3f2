"""The content store: blobs named by their digest, written whole or not at all.

Layer: image (what containerd's content store is: content/local/store.go).  Every
blob (layer tar, image config, manifest) is a file named by the sha256 of its
bytes, ROOT/image/blobs/sha256/<hex> (the OCI image layout, image-layout.md).
What is written goes to a temp file first and is renamed into place (rename(2) is
atomic): a reader sees the old file or the new one, never half.  Every read checks
the digest, so a corrupted store is noticed rather than run.

Writing and collecting share one lock (lock(), an flock(2) on ROOT/lock).  A blob
being written is referenced by no image yet, so the writer *leases* it first
(containerd ingests under a lease too): its digest goes, under the lock, into
ROOT/image/leases/.ingest-<pid>-<start time>, which garbage collection reads as a
root; the store drops it once an image refers to the blob (store.register), and
the file goes with the process that wrote it.  Holders' leases: leases.py.
"""
import contextlib
import fcntl
import hashlib
import os
import threading

from minidocker import config
from minidocker.fsutil import atomic_file, write_atomic  # noqa: F401  (re-exported by store)
from minidocker.errors import InvalidArgument, MinidockerError, NotFound


def layout(*parts):
    return config.path("image", *parts)


def blob_path(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise InvalidArgument(f"invalid digest: {digest}")
    return layout("blobs", "sha256", hexdigest)


_held = threading.local()      # how deeply this thread holds lock(): it nests

@contextlib.contextmanager
def lock():
    """One lock for the names of things (tags, the index, leases, container names).

    flock(2) on a file of ROOT: it excludes other processes and the other threads
    of this one (each call opens the file anew); in the thread that holds it, it
    nests, so lease() may be called by code that already holds it."""
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    os.makedirs(config.root(), exist_ok=True)
    with open(config.path("lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(f, fcntl.LOCK_UN)


def tmpdir() -> str:
    path = config.path("tmp")
    os.makedirs(path, exist_ok=True)
    return path


# Write-then-rename has one owner, fsutil.py; the store re-exports it for its callers.
def put_blob(data: bytes) -> str:
    """Store a small blob (a config, a manifest); leased to this process until an
    image refers to it (register), so a concurrent collection leaves it alone."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with lock():
        ingest_locked([digest])
        if not os.path.exists(blob_path(digest)):
            write_atomic(blob_path(digest), data)
    return digest


def read_blob(digest: str) -> bytes:
    """Read a blob and check it against its name, so a corrupted store is noticed."""
    try:
        with open(blob_path(digest), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise NotFound(f"blob {digest} is missing from the store") from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise InvalidArgument(f"blob {digest} does not match its digest")
    return data


class BlobReader:
    """A blob opened for streaming (layers are too big for read_blob): read() hashes
    what passes; close() reads what is left and raises if the digest is wrong."""

    def __init__(self, digest: str, path: str | None = None):
        self.digest, self.hash = digest, hashlib.sha256()
        try:
            self.f = open(path or blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from the store") from None
        self.size = os.fstat(self.f.fileno()).st_size

    def read(self, n=-1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        return data

    def close(self) -> None:
        """Check the digest (after draining the rest); always closes the file."""
        try:
            while self.read(1 << 20):
                pass
        finally:
            self.f.close()
        if "sha256:" + self.hash.hexdigest() != self.digest:
            raise InvalidArgument(f"blob {self.digest} does not match its digest")

    def __enter__(self):
        return self

    def __exit__(self, kind, *rest):
        if kind is None or issubclass(kind, MinidockerError):
            self.close()         # a blob that fails its digest explains a failed read best
        else:
            self.f.close()


def open_blob(digest: str) -> BlobReader:
    """with open_blob(d) as f: copy f.read() somewhere; leaving the block checks the digest."""
    return BlobReader(digest)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# -- ingest leases: content being written ---------------------------------------

def leases_dir() -> str:
    return layout("leases")


def _process_tag(pid: int) -> str:
    """ "<pid>-<start time>": a pid alone may be reused, the pair is not (proc(5), field 22)."""
    with open(f"/proc/{pid}/stat") as f:
        return f"{pid}-{f.read().rsplit(')', 1)[1].split()[19]}"


def process_alive(tag: str) -> bool:
    try:
        return _process_tag(int(tag.split("-")[0])) == tag
    except (OSError, ValueError, IndexError):
        return False


def _ingest_path() -> str:
    return os.path.join(leases_dir(), ".ingest-" + _process_tag(os.getpid()))


def ingest_locked(digests) -> None:
    """Lease digests this process is writing (under lock())."""
    os.makedirs(leases_dir(), exist_ok=True)
    with open(_ingest_path(), "a") as f:
        f.write("".join(d + "\n" for d in digests))


def ingested_locked(digests) -> None:
    """Drop this process's ingest leases on digests an image in the index now holds."""
    path, done = _ingest_path(), set(digests)
    try:
        with open(path) as f:
            left = [d for d in f.read().split() if d not in done]
    except FileNotFoundError:
        return
    if left:
        write_atomic(path, "".join(d + "\n" for d in left).encode())
    else:
        os.unlink(path)
