"""Garbage collection: delete the blobs and layer dirs that no image or lease needs.

Layer: image (containerd's garbage collector, containerd/docs/garbage-collection.md).
Everything reachable from a root is kept, everything else is deleted.  The roots
are the images of index.json and every lease (leases.py): a container's image, and
the content a pull or an import is still writing (.ingest leases).  Both functions
run under the store's lock, which every blob write takes too, so nothing is stored
between reading the roots and deleting: one list of roots read under one lock,
instead of reference counts spread over callers, which race.
"""
import json
import os
import shutil

from minidocker import config
from minidocker.errors import NotFound
from minidocker.image import leases
from minidocker.image.content import layout, read_blob


def reachable_locked(index) -> set:
    """Every digest a root reaches: the images of the index, the leased images,
    and what is being ingested (those digests alone)."""
    keep, manifests = set(), [d["digest"] for d in index["manifests"]]
    for holder, digests in leases.read_locked().items():
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


def collect_locked(index) -> int:
    """Delete blobs and layer dirs no root reaches; return bytes freed.  Runs under
    lock(), which every blob write takes too (put_blob, store_layer), so nothing
    is stored between reading the roots and deleting."""
    keep = reachable_locked(index)
    freed = 0
    blobs = layout("blobs", "sha256")
    for name in os.listdir(blobs):
        if "sha256:" + name not in keep and not name.startswith(".tmp-"):
            freed += os.path.getsize(os.path.join(blobs, name))
            os.unlink(os.path.join(blobs, name))
    layers_root = config.path("layers")
    for name in os.listdir(layers_root) if os.path.isdir(layers_root) else []:
        path = os.path.join(layers_root, name)
        if name.startswith(".tmp-"):
            continue                      # a .size being written (write_atomic's temp file)
        if "sha256:" + name.split(".")[0] not in keep:      # <hex>/ and <hex>.size
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    links = config.path("l")
    for name in os.listdir(links) if os.path.isdir(links) else []:
        if not os.path.exists(os.path.join(links, name)):    # its layer is gone
            os.unlink(os.path.join(links, name))
    return freed
