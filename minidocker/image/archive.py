"""save and load: images in one tar file, to carry them where no registry reaches.

Layer: image (docker save / docker load; moby's image/tarexport).
`save` writes one of two formats, and `load` reads both (plain or gzip):

  docker-archive (the default; what every `docker load` reads):
      manifest.json          [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                               "Layers": ["<chain>/layer.tar", ...]}]
      repositories           {"busybox": {"latest": "<chain of the top layer>"}}, for old dockers
      <hex>.json             the image config, named by its digest: the image ID
      <chain>/layer.tar      each layer, in a dir named by its ChainID (image-spec
      <chain>/VERSION, json  config.md), with the legacy files docker writes beside it

  oci-archive: an OCI image layout in a tar (image-spec image-layout.md):
      oci-layout, index.json (one descriptor per tag), blobs/sha256/<hex>,
      plus a manifest.json naming those blobs, so that `docker load` takes it too
      (docker 25+ writes the same).

The config is carried byte for byte, so an image keeps its ID through save and
load.  Every blob is checked against its digest when it is written out and when
it is read in (layers by their diff_id, as docker load does).  The archive is
unpacked with layers.extract(), which refuses absolute names, '..', and device
nodes; a file it names is opened only if it resolves inside the archive.
"""
import io
import json
import os
import shutil
import tarfile
import tempfile

from minidocker.image import store, layers
from minidocker.errors import InvalidArgument, NotFound

FORMATS = {"docker-archive": "docker-archive", "docker": "docker-archive",
           "oci-archive": "oci-archive", "oci": "oci-archive"}
INDEXES = (store.INDEX, store.DOCKER_LIST)
CONTAINERD_NAME = "io.containerd.image.name"


# -- save -------------------------------------------------------------------------------

def save_file(refs, path: str, fmt: str = "docker-archive") -> None:
    """save to a file: written beside it and renamed, so a failed save leaves nothing."""
    with store.atomic_file(path) as out:
        save(refs, out, fmt)


def save(refs, out, fmt: str = "docker-archive") -> None:
    """Write the images `refs` (names or IDs) as one tar to the binary file `out`."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r}: use docker-archive or oci-archive")
    chosen = _select(refs)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if FORMATS[fmt] == "docker-archive":
            _write_docker(tf, chosen)
        else:
            _write_oci(tf, chosen)


def _select(refs):
    """[(image, [tags])]: a name saves that tag, an ID saves the image untagged (as docker)."""
    chosen = {}
    for ref in refs:
        image = store.get(ref)
        entry = chosen.setdefault(image.id, (image, []))
        by_id = ref.startswith("sha256:") or image.id[7:].startswith(ref)
        name = None if by_id else store.normalize(ref)
        if name and name not in entry[1]:
            entry[1].append(name)
    return list(chosen.values())


def chain_ids(diff_ids) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    import hashlib
    chain = []
    for d in diff_ids:
        chain.append(d if not chain else
                     "sha256:" + hashlib.sha256(f"{chain[-1]} {d}".encode()).hexdigest())
    return chain


def _write_docker(tf, chosen):
    manifest, repositories, written = [], {}, set()
    for image, tags in chosen:
        paths, parent = [], None
        for diff_id, chain in zip(image.diff_ids, chain_ids(image.diff_ids)):
            name = chain[7:]
            if name not in written:
                written.add(name)
                _add_dir(tf, name)
                _add_bytes(tf, f"{name}/VERSION", b"1.0")
                legacy = {"id": name, "created": "1970-01-01T00:00:00Z", "os": "linux"}
                legacy.update({"parent": parent} if parent else {})
                _add_bytes(tf, f"{name}/json", _json(legacy))
                _add_blob(tf, f"{name}/layer.tar", diff_id)
            paths.append(f"{name}/layer.tar")
            parent = name
        _add_bytes(tf, image.id[7:] + ".json", store.read_blob(image.id))
        manifest.append({"Config": image.id[7:] + ".json", "RepoTags": tags or None,
                         "Layers": paths})
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = parent
    _add_bytes(tf, "manifest.json", _json(manifest))
    if repositories:
        _add_bytes(tf, "repositories", _json(repositories))


def _write_oci(tf, chosen):
    _add_bytes(tf, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
    _add_dir(tf, "blobs")
    _add_dir(tf, "blobs/sha256")
    index, manifest, written = [], [], set()
    for image, tags in chosen:
        digests = [image.manifest_digest, image.id] + image.diff_ids
        for d in digests:
            if d not in written:
                written.add(d)
                _add_blob(tf, "blobs/sha256/" + d[7:], d)
        desc = {"mediaType": store.MANIFEST, "digest": image.manifest_digest,
                "size": len(store.read_blob(image.manifest_digest))}
        for tag in tags or [None]:
            notes = {store.REF_NAME: tag, CONTAINERD_NAME: _full_name(tag)} if tag else {}
            index.append(dict(desc, annotations=notes) if notes else desc)
        manifest.append({"Config": "blobs/sha256/" + image.id[7:], "RepoTags": tags or None,
                         "Layers": ["blobs/sha256/" + d[7:] for d in image.diff_ids]})
    _add_bytes(tf, "index.json", _json({"schemaVersion": 2, "mediaType": store.INDEX, "manifests": index}))
    _add_bytes(tf, "manifest.json", _json(manifest))


def _full_name(tag):
    """busybox:latest -> docker.io/library/busybox:latest (how containerd names images)."""
    name = tag if "/" in tag else "library/" + tag
    first = name.split("/", 1)[0]
    return name if "." in first or ":" in first or first == "localhost" else "docker.io/" + name


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _info(name, kind=tarfile.REGTYPE, size=0):
    """Entries are the same on every run: owner 0, mtime 0 (so a save is reproducible)."""
    return layers.tarinfo(name, kind, 0o755 if kind == tarfile.DIRTYPE else 0o644, size=size)


def _add_dir(tf, name):
    tf.addfile(_info(name, tarfile.DIRTYPE))


def _add_bytes(tf, name, data):
    tf.addfile(_info(name, size=len(data)), io.BytesIO(data))


def _add_blob(tf, name, digest):
    with store.open_blob(digest) as blob:        # checked against its digest on the way
        tf.addfile(_info(name, size=blob.size), blob)


# -- load -------------------------------------------------------------------------------

def load(stream) -> list[str]:
    """docker load: read a docker-archive or OCI archive from the binary file `stream`.
    Returns docker's lines: "Loaded image: busybox:latest" (or "Loaded image ID: ...")."""
    work = tempfile.mkdtemp(dir=store.tmpdir(), prefix="load-")
    try:
        try:
            layers.extract(stream, work)
        except InvalidArgument as e:
            raise InvalidArgument(f"not an image archive: {e}") from None
        work = os.path.realpath(work)
        if os.path.exists(os.path.join(work, "manifest.json")):
            return _load_docker(work)
        if os.path.exists(os.path.join(work, "oci-layout")):
            return _load_oci(work)
        raise InvalidArgument("not an image archive: it has no manifest.json (docker-archive) "
                              "and no oci-layout (OCI)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _inside(work, name) -> str:
    """The path of a file the archive names, if it resolves inside the archive."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"invalid archive: bad file name {name!r}")
    path = os.path.realpath(os.path.join(work, name))
    if os.path.commonpath([path, work]) != work or not os.path.isfile(path):
        raise InvalidArgument(f"invalid archive: {name!r} is not a file in it")
    return path


def _read_json(path, what):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except ValueError as e:
        raise InvalidArgument(f"invalid archive: {what} is not JSON: {e}") from None


def _load_docker(work):
    manifest = _read_json(os.path.join(work, "manifest.json"), "manifest.json")
    if not isinstance(manifest, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    lines = []
    for item in manifest:
        if not isinstance(item, dict) or not isinstance(item.get("Layers"), list):
            raise InvalidArgument("invalid archive: a manifest.json entry has no Layers")
        with open(_inside(work, item.get("Config")), "rb") as f:
            config = f.read()
        _store_layers(config, item["Layers"], lambda name: _inside(work, name))
        lines += _name(config, item.get("RepoTags") or [])
    return lines


def _load_oci(work):
    index = _read_json(os.path.join(work, "index.json"), "index.json")
    lines = []
    for desc in index.get("manifests", []) if isinstance(index, dict) else []:
        notes = desc.get("annotations") or {}
        name = notes.get(CONTAINERD_NAME) or notes.get(store.REF_NAME)
        manifest = json.loads(_blob(work, _platform(work, desc)))
        config = _blob(work, manifest["config"])
        diff_ids = _diff_ids(config)
        # a plain layer is named by its diff_id, checked as it is stored; others here
        _store_layers(config, manifest.get("layers", []),
                      lambda d: _blob_path(work, d, check=d["digest"] not in diff_ids))
        lines += _name(config, [name] if name else [])
    return lines


def _platform(work, desc):
    """An index inside the index (a multi-platform image): pick our platform's manifest."""
    while desc.get("mediaType") in INDEXES:
        inner = json.loads(_blob(work, desc))
        ours = [d for d in inner.get("manifests", [])
                if d.get("platform", {}).get("architecture") == store.ARCH
                and d.get("platform", {}).get("os") == "linux"]
        if not ours:
            raise NotFound(f"no linux/{store.ARCH} image in {desc['digest']}")
        desc = ours[0]
    return desc


def _blob_path(work, desc, check=True) -> str:
    """The file of the blob a descriptor names; with check, read it to check its digest."""
    store.blob_path(desc["digest"])                  # refuses a malformed digest
    path = _inside(work, "blobs/sha256/" + desc["digest"][7:])
    if check:
        with store.BlobReader(desc["digest"], path):
            pass
    return path


def _blob(work, desc) -> bytes:
    path = _blob_path(work, desc, check=False)
    with store.BlobReader(desc["digest"], path) as blob:
        return blob.read()


def _diff_ids(config) -> list[str]:
    try:
        cfg = json.loads(config)
        diff_ids = list(cfg["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("invalid archive: an image config has no rootfs.diff_ids") from None
    if cfg.get("os", "linux") != "linux":
        raise InvalidArgument(f"cannot load {cfg['os']} image on linux")
    return diff_ids


def _store_layers(config, sources, path_of):
    """Store each layer the store lacks, checking its diff_id; path_of(source) -> its file."""
    diff_ids = _diff_ids(config)
    if len(sources) != len(diff_ids):
        raise InvalidArgument(f"invalid manifest, layers length mismatch: expected "
                              f"{len(sources)}, got {len(diff_ids)}")
    store.check_depth(len(diff_ids))
    for i, (source, diff_id) in enumerate(zip(sources, diff_ids)):
        if os.path.exists(store.blob_path(diff_id)):
            continue                                    # docker load skips those too
        path = path_of(source)
        _check_compression(path)
        try:
            store.store_layer(path, move=_plain(path), expect=diff_id)
        except InvalidArgument as e:
            raise InvalidArgument(f"layer {i}: {e}") from None


def _plain(path):
    with open(path, "rb") as f:
        return f.read(2) != b"\x1f\x8b"


def _check_compression(path):
    with open(path, "rb") as f:
        if f.read(4) == b"\x28\xb5\x2f\xfd":                # zstd's magic (RFC 8878)
            raise InvalidArgument("zstd-compressed layers are not supported (Python's "
                                  "standard library has no zstd): recompress with gzip")


def _name(config, tags) -> list[str]:
    if not tags:
        image, _ = store.register(config)
        return [f"Loaded image ID: {image.id}"]
    lines = []
    for tag in tags:
        image, replaced = store.register(config, tag)
        name = store.normalize(tag)
        if replaced:
            lines.append(f"The image {name} already exists, renaming the old one with ID "
                         f"{replaced} to empty string")
        lines.append(f"Loaded image: {name}")
    return lines
