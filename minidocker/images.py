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

The image ID is the digest of its config, as in docker.  References:
https://github.com/opencontainers/image-spec (layout.md, config.md, manifest.md).
"""
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import tempfile

from . import config
from .errors import Conflict, InvalidArgument, NotFound

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
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


@contextlib.contextmanager
def lock():
    """One lock for the names of things (tags, the index, container names)."""
    os.makedirs(config.root(), exist_ok=True)
    with open(config.path("lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
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
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
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
        return sum(layer["size"] for layer in self.manifest["layers"])

    def layer_dirs(self):
        """The extracted layers, top first (overlayfs lowerdir order)."""
        return [layer_dir(d) for d in reversed(self.diff_ids)]

    def __repr__(self):
        return f"<Image {self.short_id} {self.tags}>"


def list_images() -> list[Image]:
    by_manifest = {}
    for desc in _index()["manifests"]:
        tags = by_manifest.setdefault(desc["digest"], [])
        if desc.get("annotations", {}).get(REF_NAME):
            tags.append(desc["annotations"][REF_NAME])
    images = [Image(d, t) for d, t in by_manifest.items()]
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
    """Store an image made of uncompressed layer tar files and a config.

    Each layer is hashed, stored as a blob, and extracted once into its layer dir
    (into a temp dir first, renamed when complete, so a crash leaves no half layer).
    """
    _init_layout()
    descriptors, diff_ids = [], list(cfg.get("rootfs", {}).get("diff_ids", []))
    base_layers = len(diff_ids)
    for path in layer_files:
        digest, size = _store_layer_file(path)
        diff_ids.append(digest)
        descriptors.append({"mediaType": LAYER, "digest": digest, "size": size})
    cfg = dict(cfg)
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg.setdefault("created", now())
    cfg.setdefault("architecture", ARCH)
    cfg.setdefault("os", "linux")
    if history is not None:
        cfg["history"] = list(cfg.get("history", [])) + history
    config_digest = put_blob(_json(cfg))
    parent_layers = _descriptors_for(diff_ids[:base_layers])
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": config_digest,
                           "size": os.path.getsize(blob_path(config_digest))},
                "layers": parent_layers + descriptors}
    manifest_digest = put_blob(_json(manifest))
    with lock():
        index = _index()
        if ref:
            _untag_locked(index, normalize(ref))
        desc = {"mediaType": MANIFEST, "digest": manifest_digest,
                "size": os.path.getsize(blob_path(manifest_digest))}
        if ref:
            desc["annotations"] = {REF_NAME: normalize(ref)}
        if ref or not any(d["digest"] == manifest_digest for d in index["manifests"]):
            index["manifests"].append(desc)
        _save_index(index)
    return Image(manifest_digest, [normalize(ref)] if ref else [])


def _descriptors_for(diff_ids):
    out = []
    for d in diff_ids:
        out.append({"mediaType": LAYER, "digest": d, "size": os.path.getsize(blob_path(d))})
    return out


def _store_layer_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    target = blob_path(digest)
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = tempfile.mktemp(dir=os.path.dirname(target), prefix=".tmp-")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    if not os.path.isdir(layer_dir(digest)):
        work = tempfile.mkdtemp(dir=tmpdir(), prefix="layer-")
        try:
            from . import layers      # tarfile is slow to import; only imports need it
            layers.extract(target, work)
            os.makedirs(config.path("layers"), exist_ok=True)
            os.rename(work, layer_dir(digest))
        except OSError:
            if not os.path.isdir(layer_dir(digest)):   # someone else won the race: fine
                raise
        finally:
            if os.path.isdir(work):
                shutil.rmtree(work)
    return digest, os.path.getsize(target)


def import_tar(path: str, ref: str | None = None, changes: dict | None = None,
               message: str = "") -> Image:
    """docker import: one rootfs tarball becomes a one-layer image."""
    if not os.path.isfile(path):
        raise NotFound(f"open {path}: no such file or directory")
    cfg = {"config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}
    cfg["config"].update(changes or {})
    history = [{"created": now(), "created_by": "minidocker import " + os.path.basename(path),
                "comment": message or "Imported from " + os.path.basename(path)}]
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


def remove(ref: str, force: bool = False, in_use=()) -> list[str]:
    """docker rmi: untag; when no tag is left, delete the image.  Returns lines
    "Untagged: x" / "Deleted: sha256:..." like docker."""
    image = get(ref)
    out = []
    by_tag = ref not in (image.id, image.short_id) and not image.id[7:].startswith(ref)
    if image.id in in_use and (not by_tag or len(image.tags) <= 1) and not force:
        raise Conflict(f"conflict: unable to remove repository reference \"{ref}\" (must force) "
                       f"- container is using its referenced image {image.short_id}")
    with lock():
        index = _index()
        if by_tag and len(image.tags) > 1:
            name = normalize(ref)
            index["manifests"] = [d for d in index["manifests"]
                                  if d.get("annotations", {}).get(REF_NAME) != name]
            _save_index(index)
            return [f"Untagged: {name}"]
        if not by_tag and len(image.tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) "
                           "- image is referenced in multiple repositories")
        out += [f"Untagged: {t}" for t in image.tags]
        index["manifests"] = [d for d in index["manifests"] if d["digest"] != image.manifest_digest]
        _save_index(index)
        out.append(f"Deleted: {image.id}")
        _collect_garbage_locked(index)
    return out


def _collect_garbage_locked(index) -> int:
    """Delete blobs and layer dirs no image refers to; return bytes freed."""
    keep = set()
    for desc in index["manifests"]:
        keep.add(desc["digest"])
        manifest = json.loads(read_blob(desc["digest"]))
        keep.add(manifest["config"]["digest"])
        keep.update(layer["digest"] for layer in manifest["layers"])
    freed = 0
    blobs = _layout("blobs", "sha256")
    for name in os.listdir(blobs):
        if "sha256:" + name not in keep and not name.startswith(".tmp-"):
            freed += os.path.getsize(os.path.join(blobs, name))
            os.unlink(os.path.join(blobs, name))
    layers_root = config.path("layers")
    if os.path.isdir(layers_root):
        for name in os.listdir(layers_root):
            if "sha256:" + name not in keep:
                shutil.rmtree(os.path.join(layers_root, name))
    return freed


def prune_dangling(in_use=()) -> tuple[list[str], int]:
    """Remove untagged images that no container uses; return (ids, bytes freed)."""
    deleted = []
    with lock():
        index = _index()
        keep = []
        for desc in index["manifests"]:
            image = Image(desc["digest"])
            if REF_NAME not in desc.get("annotations", {}) and image.id not in in_use:
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
