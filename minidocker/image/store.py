"""The image store: content-addressed blobs, image configs, tags.

Layer: containers & images (what containerd's content store and image service
do for docker).  An image is a file-system snapshot (a stack of layer tars)
plus a start-up command and settings (its config).  The store is an OCI image
layout, so other tools can read it:

    ROOT/image/oci-layout          {"imageLayoutVersion": "1.0.0"}
    ROOT/image/index.json          one descriptor per tag (annotation
                                   org.opencontainers.image.ref.name = "busybox:latest");
                                   an untagged ("dangling") image has no annotation
    ROOT/image/blobs/sha256/<hex>  layer tars, configs, manifests, named by their digest
    ROOT/layers/<hex>/             each layer extracted once (hex of its diff_id):
                                   the read-only lower dirs of every container's overlay
    ROOT/layers/<hex>.size         bytes of file data in it (docker's "SIZE")
    ROOT/l/<short>                 -> ../layers/<hex>: a short name per layer, so that
                                   hundreds of layers fit in one mount (see snapshots.py)
    ROOT/image/leases/<holder>     the manifest digest a holder (a container) uses: see lease()
    ROOT/image/leases/.ingest-<pid>-<start>  digests a process is writing and has not
                                   tagged yet (one a line; gone with the process)

Layers are stored uncompressed, so a layer blob's digest is its diff_id.  Every
read of a blob checks it against its digest (read_blob, open_blob), so a
corrupted store is noticed rather than run.  The image ID is the digest of its
config, as in docker.

Garbage collection works as containerd's does (containerd/docs/garbage-collection.md):
everything reachable from a root is kept, everything else is deleted.  The roots
are the images in index.json and every *lease*: a record that a holder (a
container) still needs an image, made with lease() and dropped with release().
So `rmi -f` of an image a stopped container uses takes its name away but keeps
its layers until the container is removed; a lease is the one place that says
"in use", read under the same lock as the deletion, never computed beforehand.
Content being written is leased too (the .ingest leases): a blob stored by a pull
or an import is reachable from no image until the image is registered, and a
collection in between must not take it.  The lesson of leases: reference
counting spread over callers races; one list of roots read under one lock does not.  References: https://github.com/opencontainers/image-spec
(image-layout.md, config.md, manifest.md).
"""
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading

from minidocker import config
from minidocker.errors import Conflict, InvalidArgument, MinidockerError, NotFound

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"
MAX_LAYERS = 499      # overlayfs's OVL_MAX_STACK is 500 lower dirs; containers add one
SHORT = 6             # hex digits in a layer's short name (ROOT/l/<short>)
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


# -- paths, locking, atomic writes ---------------------------------------------

def _layout(*parts):
    return config.path("image", *parts)


def blob_path(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise InvalidArgument(f"invalid digest: {digest}")
    return _layout("blobs", "sha256", hexdigest)


def layer_dir(diff_id: str) -> str:
    return config.path("layers", diff_id.split(":", 1)[1])


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


def write_atomic(path: str, data: bytes) -> None:
    """Write to a temp file and rename it into place: readers see old or new, never half."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _init_layout():
    if not os.path.exists(_layout("oci-layout")):
        os.makedirs(_layout("blobs", "sha256"), exist_ok=True)
        write_atomic(_layout("oci-layout"), b'{"imageLayoutVersion": "1.0.0"}')
        write_atomic(_layout("index.json"), _json({"schemaVersion": 2, "manifests": []}))


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def put_blob(data: bytes) -> str:
    """Store a small blob (a config, a manifest); leased to this process until an
    image refers to it (register), so a concurrent collection leaves it alone."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with lock():
        _ingest_locked([digest])
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


def _index() -> dict:
    _init_layout()
    with open(_layout("index.json")) as f:
        return json.load(f)


def _save_index(index: dict) -> None:
    write_atomic(_layout("index.json"), json.dumps(index, indent=2).encode())


# -- references -------------------------------------------------------------------

def normalize(ref: str) -> str:
    """"busybox" -> "busybox:latest"; "docker.io/library/x" -> "x:latest"."""
    name, tag = split_ref(ref)
    return f"{name}:{tag}"


def split_ref(ref: str):
    if not ref or any(c.isspace() or c.isupper() for c in ref) or "@" in ref:
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    name, tag = ref, "latest"
    if ":" in ref.rsplit("/", 1)[-1]:
        name, tag = ref.rsplit(":", 1)
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if not name or not tag:
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    return name, tag


# -- images ---------------------------------------------------------------------------

class Image:
    """One image: its config (docker's "image JSON"), the manifest that names its
    layers, and the tags pointing at it."""

    def __init__(self, manifest_digest: str, tags=()):
        self.manifest_digest = manifest_digest
        self.manifest = json.loads(read_blob(manifest_digest))
        self.id = self.manifest["config"]["digest"]
        self.config = json.loads(read_blob(self.id))
        self.tags = list(tags)

    @property
    def short_id(self):
        return self.id.split(":")[1][:12]

    @property
    def diff_ids(self):
        return self.config["rootfs"]["diff_ids"]

    @property
    def size(self):
        """Bytes of file data in all its layers, as docker counts an image's size."""
        self.ensure_layers()
        return sum(layer_size(d) for d in self.diff_ids)

    def layer_dirs(self):
        """The extracted layers, top first (overlayfs lowerdir order)."""
        return [layer_dir(d) for d in reversed(self.diff_ids)]

    def ensure_layers(self) -> None:
        """Extract the layers not extracted yet.  Another tool writing to the layout
        (skopeo copy ... oci:ROOT/image:name) may store them gzip-compressed: those
        are checked, then stored uncompressed under their diff_id first."""
        for desc, diff_id in zip(self.manifest["layers"], self.diff_ids):
            if desc["digest"] != diff_id and not os.path.exists(blob_path(diff_id)):
                with open_blob(desc["digest"]):
                    pass
                store_layer(blob_path(desc["digest"]), expect=diff_id)
            ensure_layer(diff_id)

    def __repr__(self):
        return f"<Image {self.short_id} {self.tags}>"


def list_images() -> list[Image]:
    by_manifest = {}
    for desc in _index()["manifests"]:
        if desc.get("mediaType") in (INDEX, DOCKER_LIST):
            continue              # a multi-platform index, written by another tool
        tags = by_manifest.setdefault(desc["digest"], [])
        if desc.get("annotations", {}).get(REF_NAME):
            tags.append(desc["annotations"][REF_NAME])
    images = [Image(d, t) for d, t in by_manifest.items()]
    # Newest first, as docker lists them; equal times (base images share one) by name.
    images.sort(key=lambda i: (i.tags[:1], i.id))
    return sorted(images, key=lambda i: i.config.get("created", ""), reverse=True)


def get(ref: str) -> Image:
    """Find an image by name[:tag], full or short id, or manifest digest."""
    images = list_images()
    want = ref[7:] if ref.startswith("sha256:") else ref
    if len(want) >= 4 and all(c in "0123456789abcdef" for c in want):
        matches = [i for i in images if i.id[7:].startswith(want) or i.manifest_digest[7:] == want]
        if len(matches) == 1:
            return matches[0]
    try:
        name = normalize(ref)
    except InvalidArgument:
        raise NotFound(f"No such image: {ref}") from None
    for image in images:
        if name in image.tags:
            return image
    raise NotFound(f"No such image: {name}")


def add(layer_files: list[str], cfg: dict, ref: str | None = None, history=None) -> Image:
    """Store an image made of layer tar files (plain or gzip) and a config.

    Each layer is hashed, stored as a blob, and extracted once into its layer dir
    (into a temp dir first, renamed when complete, so a crash leaves no half layer).
    """
    base = list(cfg.get("rootfs", {}).get("diff_ids", []))
    check_depth(len(base) + len(layer_files))
    _init_layout()
    cfg = dict(cfg)
    cfg["rootfs"] = {"type": "layers", "diff_ids": base + [store_layer(p) for p in layer_files]}
    cfg.setdefault("created", now())
    cfg.setdefault("architecture", ARCH)
    cfg.setdefault("os", "linux")
    if history is not None:
        cfg["history"] = list(cfg.get("history", [])) + history
    return register(_json(cfg), ref)[0]


def check_depth(layers: int) -> None:
    """overlayfs stacks at most 500 read-only dirs (OVL_MAX_STACK); one is the container's own."""
    if layers > MAX_LAYERS:
        raise InvalidArgument(f"max depth exceeded: an image can have at most {MAX_LAYERS} layers, "
                              f"this one would have {layers} (overlayfs stacks at most 500 "
                              "read-only dirs, and every container adds one of its own)")


def register(config_bytes: bytes, ref: str | None = None):
    """Make an image of a config whose layers are in the store: write its manifest, tag it.

    The config is kept byte for byte, so its digest, the image ID, survives save and
    load.  Returns (image, ID of the image `ref` named until now, if another one).
    """
    diff_ids = _diff_ids(config_bytes)
    check_depth(len(diff_ids))
    with lock():                           # from here until tagged, no collection takes them
        missing = [d for d in diff_ids if not os.path.exists(blob_path(d))]
        if missing:
            raise NotFound(f"layer {missing[0]} is not in the store")
        _ingest_locked(diff_ids)
    for d in diff_ids:
        ensure_layer(d)
    config_digest = put_blob(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": [{"mediaType": LAYER, "digest": d, "size": os.path.getsize(blob_path(d))}
                           for d in diff_ids]}
    manifest_digest = put_blob(_json(manifest))
    name = normalize(ref) if ref else None
    with lock():
        index = _index()
        before = next((d["digest"] for d in index["manifests"]
                       if name and d.get("annotations", {}).get(REF_NAME) == name), None)
        if name:
            _untag_locked(index, name)
        desc = {"mediaType": MANIFEST, "digest": manifest_digest, "size": len(_json(manifest))}
        if name:
            desc["annotations"] = {REF_NAME: name}
        if name or not any(d["digest"] == manifest_digest for d in index["manifests"]):
            index["manifests"].append(desc)
        _save_index(index)
        _ingested_locked(diff_ids + [config_digest, manifest_digest])   # the index holds them now
        replaced = Image(before).id if before and before != manifest_digest else None
    return Image(manifest_digest, [name] if name else []), replaced


def _diff_ids(config_bytes):
    try:
        cfg = json.loads(config_bytes)
        diff_ids = cfg["rootfs"]["diff_ids"]
        for d in diff_ids:
            blob_path(d)                   # raises on a malformed digest
        return list(diff_ids)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidArgument("invalid image config: no rootfs.diff_ids") from None


# -- layers ---------------------------------------------------------------------------

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
    _init_layout()
    tmp, digest = (path, digest or _file_digest(path)) if move else _copy_in(path)
    try:
        if expect and digest != expect:
            raise InvalidArgument(f"invalid diffID: expected {expect}, got {digest}")
        with lock():                       # leased and renamed in one step, as GC sees it
            _ingest_locked([digest])
            if not os.path.exists(blob_path(digest)):
                os.replace(tmp, blob_path(digest))
    finally:
        if not move and os.path.exists(tmp):
            os.unlink(tmp)
    ensure_layer(digest)
    return digest


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _copy_in(path):
    """Copy a layer into the blob dir as a plain tar; return (temp file, its digest)."""
    import gzip
    blobs = _layout("blobs", "sha256")
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
        from minidocker.image import layers      # tarfile is slow to import; only imports need it
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


def import_tar(path: str, ref: str | None = None, changes: dict | None = None,
               message: str = "", created: str | None = None) -> Image:
    """docker import: one rootfs tarball becomes a one-layer image.

    `created` fixes the creation time (default: now); the same tar and time give
    the same config, so the same image ID, in every store."""
    if not os.path.isfile(path):
        raise NotFound(f"open {path}: no such file or directory")
    created = created or now()
    cfg = {"created": created,
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}
    cfg["config"].update(changes or {})
    history = [{"created": created, "comment": message or "Imported from " + os.path.basename(path)}]
    return add([path], cfg, ref, history)


def tag(source: str, target: str) -> None:
    image = get(source)
    with lock():
        index = _index()
        name = normalize(target)
        _untag_locked(index, name)
        index["manifests"].append({"mediaType": MANIFEST, "digest": image.manifest_digest,
                                   "size": os.path.getsize(blob_path(image.manifest_digest)),
                                   "annotations": {REF_NAME: name}})
        _save_index(index)


def _untag_locked(index, name):
    """Remove tag `name`; an image left with no tag stays as a dangling entry."""
    kept = []
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get(REF_NAME) == name:
            if not any(d is not desc and d["digest"] == desc["digest"] for d in index["manifests"]):
                desc = {k: v for k, v in desc.items() if k != "annotations"}
            else:
                continue
        kept.append(desc)
    index["manifests"] = kept


# -- leases ---------------------------------------------------------------------------

def _leases_dir() -> str:
    return _layout("leases")


def _check_holder(holder: str) -> None:
    if (not isinstance(holder, str) or not holder or holder.startswith(".") or len(holder) > 200
            or any(c in holder for c in "/:\0") or holder.strip() != holder):
        raise InvalidArgument(f"invalid lease holder: {holder!r}")


def lease(holder: str, manifest_digest: str) -> None:
    """Record that `holder` (a container id) uses the image of `manifest_digest`:
    until release(holder), garbage collection keeps that manifest, its config, its
    layer blobs and extracted layer dirs, and remove() refuses or only untags
    (containerd's leases, docs/garbage-collection.md).  A holder has one lease;
    leasing again replaces it.  NotFound if the image is gone already (checked
    under the lock, so a concurrent rmi either sees the lease or wins before it)."""
    _check_holder(holder)
    path = blob_path(manifest_digest)
    with lock():
        if not os.path.exists(path):
            raise NotFound(f"No such image: {manifest_digest}")
        write_atomic(os.path.join(_leases_dir(), holder), (manifest_digest + "\n").encode())


def release(holder: str) -> None:
    """Drop holder's lease (idempotent).  Its image's content goes at the next
    collection (rmi, image prune) if no image name and no other lease keeps it."""
    _check_holder(holder)
    with lock():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(_leases_dir(), holder))


def leases() -> dict:
    """holder -> manifest digest, for every lease a holder made (not the .ingest ones)."""
    with lock():
        return {h: ds[0] for h, ds in _read_leases_locked().items() if not h.startswith(".") and ds}


def _read_leases_locked() -> dict:
    """file name -> digests it lists; ingest leases of processes that ended are deleted."""
    found = {}
    directory = _leases_dir()
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if name.startswith(".tmp-"):
            continue
        if name.startswith(".ingest-") and not _process_alive(name[len(".ingest-"):]):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                found[name] = f.read().split()
        except FileNotFoundError:
            pass
    return found


def _process_tag(pid: int) -> str:
    """ "<pid>-<start time>": a pid alone may be reused, the pair is not (proc(5), field 22)."""
    with open(f"/proc/{pid}/stat") as f:
        return f"{pid}-{f.read().rsplit(')', 1)[1].split()[19]}"


def _process_alive(tag: str) -> bool:
    try:
        return _process_tag(int(tag.split("-")[0])) == tag
    except (OSError, ValueError, IndexError):
        return False


def _ingest_path() -> str:
    return os.path.join(_leases_dir(), ".ingest-" + _process_tag(os.getpid()))


def _ingest_locked(digests) -> None:
    """Lease digests this process is writing (under lock())."""
    os.makedirs(_leases_dir(), exist_ok=True)
    with open(_ingest_path(), "a") as f:
        f.write("".join(d + "\n" for d in digests))


def _ingested_locked(digests) -> None:
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


def _holders_locked(image) -> list:
    """Holders whose lease names this image (by manifest or image id), sorted."""
    held = []
    for holder, digests in _read_leases_locked().items():
        if holder.startswith(".") or not digests:
            continue
        if digests[0] == image.manifest_digest:
            held.append(holder)
        else:
            with contextlib.suppress(MinidockerError, ValueError, KeyError):
                if json.loads(read_blob(digests[0]))["config"]["digest"] == image.id:
                    held.append(holder)
    return sorted(held)


# -- removal and garbage collection -------------------------------------------------

def remove(ref: str, force: bool = False, running=frozenset(), in_use=()) -> list[str]:
    """docker rmi: untag; when no tag is left, delete the image.  Returns lines
    "Untagged: x" / "Deleted: sha256:..." like docker (daemon/images/image_delete.go).

    Who uses the image is read from the leases, under the lock that deletes:
      - by a name that is one of several: only that name goes;
      - leased, without force: refused ("must force");
      - leased by a holder in `running` (ids of running containers): refused,
        even with force ("cannot be forced");
      - leased, with force: untagged and deleted from the index, but the layers
        stay as long as the lease does (the container keeps running from them).
    `in_use` (image IDs, the old way: computed by the caller before the lock) is
    still honoured until every container leases its image: such an image is
    refused without force, and with force only untagged (kept as dangling), since
    nothing else would keep its layers.  A set of image IDs passed as the third
    argument (the old signature) is taken as in_use."""
    running = frozenset(running)
    if any(str(r).startswith("sha256:") for r in running):
        in_use, running = frozenset(in_use) | running, frozenset()
    with lock():
        image = get(ref)
        index = _index()
        by_tag = ref not in (image.id, image.short_id) and not image.id[7:].startswith(ref)
        if by_tag and len(image.tags) > 1:
            name = normalize(ref)
            index["manifests"] = [d for d in index["manifests"]
                                  if d.get("annotations", {}).get(REF_NAME) != name]
            _save_index(index)
            return [f"Untagged: {name}"]
        holders = _holders_locked(image)
        live = [h for h in holders if h in running]
        _check_conflicts(ref, image, by_tag, force, holders, live, image.id in in_use)
        if not by_tag and len(image.tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) "
                           "- image is referenced in multiple repositories")
        out = [f"Untagged: {t}" for t in image.tags]
        if image.id in in_use and not holders:        # the old way: keep it, dangling
            for name in image.tags:
                _untag_locked(index, name)
            _save_index(index)
            return out
        index["manifests"] = [d for d in index["manifests"] if d["digest"] != image.manifest_digest]
        _save_index(index)
        out.append(f"Deleted: {image.id}")
        _collect_garbage_locked(index)
    return out


def _check_conflicts(ref, image, by_tag, force, holders, live, old_in_use) -> None:
    """docker's order: a name of a used image must be forced; a running user cannot be."""
    if by_tag and not force and (holders or old_in_use):
        who = f"container {holders[0][:12]}" if holders else "container"
        raise Conflict(f"conflict: unable to remove repository reference \"{ref}\" (must force) "
                       f"- {who} is using its referenced image {image.short_id}")
    if live:
        raise Conflict(f"conflict: unable to delete {image.short_id} (cannot be forced) "
                       f"- image is being used by running container {live[0][:12]}")
    if not force and (holders or old_in_use):
        who = f" {holders[0][:12]}" if holders else ""
        raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) "
                       f"- image is being used by stopped container{who}")


def _reachable_locked(index) -> set:
    """Every digest a root reaches: the images of the index, the leased images,
    and what is being ingested (those digests alone)."""
    keep, manifests = set(), [d["digest"] for d in index["manifests"]]
    for holder, digests in _read_leases_locked().items():
        if holder.startswith(".ingest-"):
            keep.update(digests)
        else:
            manifests += digests[:1]
    for digest in manifests:
        try:
            manifest = json.loads(read_blob(digest))
            cfg = json.loads(read_blob(manifest["config"]["digest"]))
        except NotFound:
            continue                      # a lease on an image whose content is gone
        keep.update([digest, manifest["config"]["digest"]])
        keep.update(layer["digest"] for layer in manifest["layers"])
        keep.update(cfg["rootfs"]["diff_ids"])
    return keep


def _collect_garbage_locked(index) -> int:
    """Delete blobs and layer dirs no root reaches; return bytes freed.  Runs under
    lock(), which every blob write takes too (put_blob, store_layer), so nothing
    is stored between reading the roots and deleting."""
    keep = _reachable_locked(index)
    freed = 0
    blobs = _layout("blobs", "sha256")
    for name in os.listdir(blobs):
        if "sha256:" + name not in keep and not name.startswith(".tmp-"):
            freed += os.path.getsize(os.path.join(blobs, name))
            os.unlink(os.path.join(blobs, name))
    layers_root = config.path("layers")
    for name in os.listdir(layers_root) if os.path.isdir(layers_root) else []:
        path = os.path.join(layers_root, name)
        if "sha256:" + name.split(".")[0] not in keep:      # <hex>/ and <hex>.size
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    links = config.path("l")
    for name in os.listdir(links) if os.path.isdir(links) else []:
        if not os.path.exists(os.path.join(links, name)):    # its layer is gone
            os.unlink(os.path.join(links, name))
    return freed


def prune_dangling(in_use=()) -> tuple[list[str], int]:
    """Remove untagged images that no lease holds (nor, the old way, `in_use`
    names); return (ids, bytes freed)."""
    deleted = []
    with lock():
        index = _index()
        leased = {ds[0] for h, ds in _read_leases_locked().items() if not h.startswith(".") and ds}
        keep = []
        for desc in index["manifests"]:
            image = Image(desc["digest"])
            used = image.id in in_use or desc["digest"] in leased
            if REF_NAME not in desc.get("annotations", {}) and not used:
                deleted.append(image.id)
            else:
                keep.append(desc)
        index["manifests"] = keep
        _save_index(index)
        freed = _collect_garbage_locked(index)
    return deleted, freed


def now() -> str:
    """RFC 3339 with nanoseconds, as docker writes times."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"
