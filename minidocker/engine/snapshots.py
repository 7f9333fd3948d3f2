"""Snapshots: a container's file system is its image's layers plus one dir of its own.

Layer: engine (what docker's storage driver, overlay2, does).
Nothing is copied when a container is made: its root is one overlay mount
(kernel Documentation/filesystems/overlayfs.rst) of

    upper    ROOT/containers/<id>/upper  the container's writes, and whiteouts for deletes
    init     ROOT/containers/<id>/init   empty mount points (/etc/hosts, /proc, ...), as
                                         docker's "-init" layer, so they are no change of yours
    lowers   ROOT/l/<short>              the image's layers, top first (links to ROOT/layers/<hex>)

so a snapshot of a 1 GB image costs what a snapshot of a 10 MB one costs.

Why the short links: mount(2) copies at most one page (4096 bytes) of options,
and an absolute layer path is ~100 bytes, so ~40 layers would fit.  Like
overlay2, the runtime chdirs into ROOT/l and names each layer by a 6-letter
relative name, and up to overlayfs's own limit (500 lower dirs, OVL_MAX_STACK)
fits in one page.  An image can have at most 499 layers (store.MAX_LAYERS):
every container adds its init layer.

The verbs that read a snapshot:
    diff     docker diff: A/C/D, read from the upper dir (layers.diff)
    commit   docker commit: the upper dir becomes one more layer on top of the image's
    history  docker history: one row per step of the image's config history
"""
import hashlib
import json
import os
import tempfile

from minidocker import config, fmt
from minidocker.runtime import bundle, cgroups
from minidocker.runtime.rootfs import overlay_options
from minidocker.image import layers, store
from minidocker.image.changes import merge_env, parse_change
from minidocker.engine import names
from minidocker.errors import InvalidArgument

PAGE = 4096           # mount(2) copies one page of options (the last byte is the NUL)
MAX_LOWERS = 500      # overlayfs: OVL_MAX_STACK
IMAGE_KEYS = ("User", "Env", "Cmd", "Entrypoint", "WorkingDir", "Labels", "StopSignal")


# -- the overlay of a container -----------------------------------------------------

def root(cid: str, image: store.Image, binds=()) -> dict:
    """The runtime spec's `root`.  Every path but the mount point is relative to
    `cwd` (ROOT/l): the runtime chdirs there and then mounts, as overlay2 does."""
    base = config.path("l")
    os.makedirs(base, exist_ok=True)
    image.ensure_layers()
    init = init_layer(cid, binds)
    spec = {"cwd": base,
            "lowers": [os.path.relpath(init, base)]
                      + [store.layer_link(d) for d in reversed(image.diff_ids)],
            "upper": os.path.relpath(bundle.path(cid, "upper"), base),
            "work": os.path.relpath(bundle.path(cid, "work"), base),
            "mountpoint": bundle.path(cid, "rootfs")}
    if len(spec["lowers"]) > MAX_LOWERS:
        raise InvalidArgument(f"{len(spec['lowers'])} layers: overlayfs stacks at most "
                              f"{MAX_LOWERS} read-only dirs")
    if len(overlay_options(spec)) >= PAGE:
        raise InvalidArgument(f"the overlay's mount options need {len(overlay_options(spec))} "
                              f"bytes, more than one page ({PAGE})")
    return spec


def init_layer(cid: str, binds=()) -> str:
    """docker's init layer: the mount points the runtime needs, made here below the
    upper dir, so that they never show up in diff nor end up in a commit."""
    path = bundle.path(cid, "init")
    for name in ("dev", "proc", "sys"):
        os.makedirs(os.path.join(path, name), exist_ok=True)
    for source, target in binds:
        parts = [p for p in target.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise InvalidArgument(f"invalid mount point: {target!r}")
        full = os.path.join(path, *parts)
        if os.path.isdir(source):
            os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            open(full, "a").close()
    return path


def _lower_dirs(cid, image):
    return [bundle.path(cid, "init")] + image.layer_dirs()


# -- docker diff ---------------------------------------------------------------------

def diff(ref: str) -> list[tuple[str, str]]:
    """docker diff: [("A" | "C" | "D", path)], the container's changes to its image."""
    cid = names.resolve(ref)
    image = store.Image(bundle.read_config(cid)["ImageManifest"])
    return layers.diff(bundle.path(cid, "upper"), _lower_dirs(cid, image))


# -- docker commit ---------------------------------------------------------------------

def commit(ref: str, repository: str | None = None, changes=(), message: str = "",
           author: str = "", pause: bool = True) -> store.Image:
    """docker commit: a new image, the container's image plus its upper dir as one layer.

    The new image's config is the container's (its command, env, ...), then `changes`
    (Dockerfile instructions: 'CMD ["/hello.sh"]').  A running container is frozen
    while its upper dir is packed (the freezer cgroup), as docker pauses it; with
    pause=False it is packed as it is, and a file being written may be torn.
    """
    cid = names.resolve(ref)
    record = bundle.read_config(cid)
    image = store.Image(record["ImageManifest"])
    cfg = _child_config(cid, record, image, changes, author)
    upper = bundle.path(cid, "upper")
    empty = not os.listdir(upper)
    store.check_depth(len(image.diff_ids) + (0 if empty else 1))
    step = {"created": cfg["created"], "created_by": " ".join(record["Config"]["Cmd"] or [])}
    step.update({k: v for k, v in (("author", author), ("comment", message)) if v})
    if empty:                       # docker adds no layer for no change
        step["empty_layer"] = True
    cfg["history"] = list(image.config.get("history", [])) + [step]
    if not empty:
        cfg["rootfs"]["diff_ids"].append(_pack(cid, upper, pause))
    return store.register(json.dumps(cfg, separators=(",", ":")).encode(), repository)[0]


def _child_config(cid, record, image, changes, author):
    cfg = {k: v for k, v in image.config.items() if k not in ("history", "author", "comment")}
    cfg["rootfs"] = {"type": "layers", "diff_ids": list(image.diff_ids)}
    conf = dict(cfg.get("config") or {})
    conf.update({k: record["Config"].get(k) for k in IMAGE_KEYS if k in record["Config"]})
    for text in changes or ():
        for key, value in parse_change(text).items():
            conf[key] = merge_env(conf.get("Env") or [], value) if key == "Env" else value
    cfg.update(config=conf, created=fmt.now(), container=cid)
    if author:
        cfg["author"] = author
    return cfg


def _pack(cid, upper, pause):
    """Pack the upper dir into a layer tar (frozen, if running) and store it."""
    fd, tmp = tempfile.mkstemp(dir=store.tmpdir(), prefix="commit-", suffix=".tar")
    frozen = pause and bundle.state(cid)["Status"] == "running"
    group = cgroups.Cgroup(cid)
    try:
        if frozen:
            group.freeze(True)
        try:
            with os.fdopen(fd, "wb") as f:
                out = _Hashing(f)
                layers.create(upper, out)
        finally:
            if frozen:
                group.freeze(False)
        return store.store_layer(tmp, move=True, digest="sha256:" + out.hash.hexdigest())
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _Hashing:
    """A write()-only file that hashes what passes: the tar is read once less."""

    def __init__(self, f):
        self.f, self.hash = f, hashlib.sha256()

    def write(self, data):
        self.hash.update(data)
        return self.f.write(data)


# -- docker history ----------------------------------------------------------------------

def history(ref: str) -> list[dict]:
    """docker history: newest step first.  A step's IMAGE is the image that ends there,
    if one is in the store (else "<missing>"); SIZE is the file data its layer added."""
    image = store.get(ref)
    steps = image.config.get("history") or [{} for _ in image.diff_ids]
    ends = {_key(i.config.get("history") or [], i.diff_ids): i.id for i in store.list_images()}
    rows, layer = [], 0
    for n, step in enumerate(steps):
        size = 0
        if not step.get("empty_layer") and layer < len(image.diff_ids):
            size = store.layer_size(image.diff_ids[layer])
            layer += 1
        rows.append({"id": ends.get(_key(steps[:n + 1], image.diff_ids[:layer]), "<missing>"),
                     "created": step.get("created", image.config.get("created", "")),
                     "created_by": step.get("created_by", ""), "size": size,
                     "comment": step.get("comment", "")})
    if rows:
        rows[-1]["id"] = image.id
    return rows[::-1]


def _key(steps, diff_ids):
    return json.dumps([steps, list(diff_ids)], sort_keys=True)
