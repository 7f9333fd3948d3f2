"""The layer store: each layer's tar kept as a blob, and extracted once into a directory.

Layer: image (what moby's layer store, layer/layer_store.go, and containerd's
overlayfs snapshotter keep: read-only dirs that every container of an image
stacks under its own upper dir with overlayfs; see engine/snapshots.py).

    ROOT/image/blobs/sha256/<hex>  the layer tar, uncompressed: its digest is its diff_id
    ROOT/layers/<hex>/             the layer extracted (into a temp dir first, renamed
                                   when complete, so a crash leaves no half layer)
    ROOT/layers/<hex>.size         bytes of file data in it (docker's "SIZE")
    ROOT/l/<short>                 -> ../layers/<hex>: a short name per layer, so that
                                   hundreds of layers fit in one mount's options

A stored layer is leased to the process that stores it (content.py's ingest
leases) until an image refers to it, so a concurrent garbage collection keeps it.
"""
import hashlib
import os
import shutil
import stat
import tempfile

from minidocker import config
from minidocker.errors import Conflict, InvalidArgument
from minidocker.image import layers
from minidocker.image.content import (blob_path, file_digest, ingest_locked, layout, lock,
                                      open_blob, tmpdir, write_atomic)

SHORT = 6             # hex digits in a layer's short name (ROOT/l/<short>)


def layer_dir(diff_id: str) -> str:
    return config.path("layers", diff_id.split(":", 1)[1])


def store_layer(path: str, move: bool = False, expect: str | None = None,
                digest: str | None = None) -> str:
    """Put a layer tar (plain or gzip) into the store and extract it; return its diff_id.

    The file is hashed as it is copied, so what is stored is what was hashed.  With
    `move`, path is a plain tar of our own under ROOT/tmp: it is renamed, not copied.
    With `expect`, a layer whose diff_id is another is refused (and not stored);
    `digest`, when moving, is the digest we computed as we wrote the file.
    The layer stays leased to this process until an image that has it is
    registered (or the process ends): a collection in between keeps it.
    """
    os.makedirs(layout("blobs", "sha256"), exist_ok=True)
    tmp, digest = (path, digest or file_digest(path)) if move else _copy_in(path)
    try:
        if expect and digest != expect:
            raise InvalidArgument(f"invalid diffID: expected {expect}, got {digest}")
        with lock():                       # leased and renamed in one step, as GC sees it
            ingest_locked([digest])
            if not os.path.exists(blob_path(digest)):
                os.replace(tmp, blob_path(digest))
    finally:
        if not move and os.path.exists(tmp):
            os.unlink(tmp)
    ensure_layer(digest)
    return digest


def _copy_in(path):
    """Copy a layer into the blob dir as a plain tar; return (temp file, its digest)."""
    import gzip
    blobs = layout("blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=blobs, prefix=".tmp-")
    h = hashlib.sha256()
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as out:
            gzipped = src.read(2) == b"\x1f\x8b"         # gzip's magic (RFC 1952)
            src.seek(0)
            stream = gzip.GzipFile(fileobj=src) if gzipped else src
            while chunk := stream.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except (OSError, EOFError) as e:
        os.unlink(tmp)
        raise InvalidArgument(f"cannot read layer {path}: {e}") from None
    return tmp, "sha256:" + h.hexdigest()


def ensure_layer(diff_id: str) -> str:
    """The layer's dir; extracted from its blob first if missing (checking the digest)."""
    target = layer_dir(diff_id)
    if os.path.isdir(target):
        return target
    work = tempfile.mkdtemp(dir=tmpdir(), prefix="layer-")
    try:
        with open_blob(diff_id) as blob:
            size = layers.extract(blob, work)
        write_atomic(target + ".size", str(size).encode())
        os.makedirs(config.path("layers"), exist_ok=True)
        os.rename(work, target)
    except OSError:
        if not os.path.isdir(target):   # someone else won the race: fine
            raise
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work)
    return target


def layer_size(diff_id: str) -> int:
    """Bytes of file data in the extracted layer (what docker shows as SIZE)."""
    path = layer_dir(diff_id) + ".size"
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        pass
    size = 0
    for top, _, files in os.walk(ensure_layer(diff_id)):
        for name in files:
            st = os.lstat(os.path.join(top, name))
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    write_atomic(path, str(size).encode())
    return size


def layer_link(diff_id: str) -> str:
    """The layer's short name in ROOT/l, a symlink to ../layers/<hex> (docker's
    overlay2 keeps such links in l/ too): the first 6 hex digits, more if taken."""
    hexdigest = diff_id.split(":", 1)[1]
    target = os.path.join("..", "layers", hexdigest)
    os.makedirs(config.path("l"), exist_ok=True)
    for n in range(SHORT, len(hexdigest) + 1):
        try:
            os.symlink(target, config.path("l", hexdigest[:n]))
            return hexdigest[:n]
        except FileExistsError:
            if os.readlink(config.path("l", hexdigest[:n])) == target:
                return hexdigest[:n]
    raise Conflict(f"no short name is free for layer {diff_id}")
