"""The image store: content-addressed blobs, image configs, tags.

Layer: image (what containerd's content store and image service
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
counting spread over callers races; one list of roots read under one lock does not.

The blobs themselves, the lock and atomic writes are content.py's (containerd's
content store); layer tars and their extracted dirs layerstore.py's; the leases'
files leases.py's.  This module is the image service above them: the index,
names, images, removal and garbage collection.  Their public names are kept
here too (store.lock, store.store_layer, store.lease ...) for the callers.
References: https://github.com/opencontainers/image-spec (image-layout.md,
config.md, manifest.md).
"""
import contextlib
import json
import os
import tempfile

from minidocker import config
from minidocker.fmt import now
from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.image import content, gc, leases as _leases, reference
# The content store's API, under the names its callers have always used (store.lock, ...).
from minidocker.image.content import (BlobReader, atomic_file, blob_path, file_digest,  # noqa: F401
                                      lock, open_blob, put_blob, read_blob, tmpdir, write_atomic)
from minidocker.image.leases import lease, leases, release                       # noqa: F401
from minidocker.image.layerstore import (SHORT, ensure_layer, layer_dir, layer_link,  # noqa: F401
                                         layer_size, store_layer)

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"
MAX_LAYERS = 499      # overlayfs's OVL_MAX_STACK is 500 lower dirs; containers add one
ARCH = config.ARCH               # the platform images are made and pulled for


# -- the layout -------------------------------------------------------------------

def _layout(*parts):
    return content.layout(*parts)


def _init_layout():
    """Make an empty OCI layout once.  Two processes may both find none: each links a
    complete empty index into place, and link(2) fails for the second, so neither
    overwrites an index the other has started to fill.  oci-layout comes last: its
    presence says the layout is whole."""
    if os.path.exists(_layout("oci-layout")):
        return
    os.makedirs(_layout("blobs", "sha256"), exist_ok=True)
    os.makedirs(_layout("leases"), exist_ok=True)     # part of every store, leased or not yet
    fd, tmp = tempfile.mkstemp(dir=_layout(), prefix=".tmp-index-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_json({"schemaVersion": 2, "manifests": []}))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, _layout("index.json"))
    finally:
        os.unlink(tmp)
    write_atomic(_layout("oci-layout"), b'{"imageLayoutVersion": "1.0.0"}')


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _index() -> dict:
    _init_layout()
    with open(_layout("index.json")) as f:
        return json.load(f)


def _save_index(index: dict) -> None:
    write_atomic(_layout("index.json"), json.dumps(index, indent=2).encode())


# -- references -------------------------------------------------------------------

def normalize(ref: str) -> str:
    """"busybox" -> "busybox:latest"; "docker.io/library/x" -> "x:latest" (image/reference.py)."""
    return reference.normalize(ref)


def split_ref(ref: str) -> tuple[str, str]:
    """(name, tag) of a reference by name, as the store keys its tags."""
    return reference.split(ref)


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
    diff_ids = config_diff_ids(config_bytes)
    check_depth(len(diff_ids))
    with lock():                           # from here until tagged, no collection takes them
        missing = [d for d in diff_ids if not os.path.exists(blob_path(d))]
        if missing:
            raise NotFound(f"layer {missing[0]} is not in the store")
        content.ingest_locked(diff_ids)
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
        content.ingested_locked(diff_ids + [config_digest, manifest_digest])   # the index holds them now
        replaced = Image(before).id if before and before != manifest_digest else None
    return Image(manifest_digest, [name] if name else []), replaced


def config_diff_ids(config_bytes) -> list[str]:
    """The layers an image config names (rootfs.diff_ids), each a well-formed digest."""
    try:
        cfg = json.loads(config_bytes)
        diff_ids = cfg["rootfs"]["diff_ids"]
        for d in diff_ids:
            blob_path(d)                   # raises on a malformed digest
        return list(diff_ids)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidArgument("invalid image config: no rootfs.diff_ids") from None


def import_tar(path: str, ref: str | None = None, changes: dict | None = None,
               message: str = "", created: str | None = None) -> Image:
    """docker import: one rootfs tarball becomes a one-layer image.

    `created` fixes the creation time (default: now); the same tar and time give
    the same config, so the same image ID, in every store."""
    if not os.path.isfile(path):
        raise NotFound(f"open {path}: no such file or directory")
    created = created or now()
    cfg = {"created": created,
           "config": {"Env": [f"PATH={config.DEFAULT_PATH}"]}}
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
    `running` only decides the refusal: a container that starts meanwhile is safe
    anyway, its lease keeps the layers.  (docker, given a *name* with -f while a
    running container uses the image, untags it and keeps the image; we refuse.)
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
        if not by_tag and len(image.tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) "
                           "- image is referenced in multiple repositories")
        holders = _leases.holders_locked(image.manifest_digest, image.id)
        live = [h for h in holders if h in running]
        _check_conflicts(ref, image, by_tag, force, holders, live, image.id in in_use)
        out = [f"Untagged: {t}" for t in image.tags]
        if image.id in in_use and not holders:        # the old way: keep it, dangling
            for name in image.tags:
                _untag_locked(index, name)
            _save_index(index)
            return out
        index["manifests"] = [d for d in index["manifests"] if d["digest"] != image.manifest_digest]
        _save_index(index)
        out.append(f"Deleted: {image.id}")
        gc.collect_locked(index)
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


def prune_dangling(in_use=()) -> tuple[list[str], int]:
    """Remove untagged images that no lease holds (nor, the old way, `in_use`
    names); return (ids, bytes freed)."""
    deleted = []
    with lock():
        index = _index()
        leased = {ds[0] for h, ds in _leases.read_locked().items() if not h.startswith(".") and ds}
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
        freed = gc.collect_locked(index)
    return deleted, freed
