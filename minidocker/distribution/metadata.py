"""What minidocker remembers about registries: repo digests and compressed layers.

Layer: distribution (docker's distribution/metadata package: v2_metadata_service.go,
and the RepoDigests of `docker image inspect`).  Two small JSON files in ROOT/distribution:

    repodigests.json   image ID -> ["127.0.0.1:5000/busybox@sha256:<manifest digest>"]:
                       the manifests an image was pulled by or pushed as
    v2metadata.json    diff_id -> [{digest, size, mediaType, repository}]: where the
                       gzip form of a layer already is, so push can skip it (HEAD) or
                       mount it from another repository without compressing it again

Both are read-modify-written under the store lock, and replaced atomically.
"""
import json

from minidocker import config
from minidocker.image import store


def _path(name):
    return config.path("distribution", name)


def _read(name) -> dict:
    try:
        with open(_path(name)) as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update(name, change) -> None:
    with store.lock():
        data = _read(name)
        change(data)
        store.write_atomic(_path(name), json.dumps(data, indent=1).encode())


def repo_digests(image_id: str) -> list[str]:
    """docker's RepoDigests: "127.0.0.1:5000/busybox@sha256:..." for each manifest
    digest this image was pulled by or pushed as."""
    return _read("repodigests.json").get(image_id, [])


def remember_repo_digest(image_id: str, familiar: str, digest: str) -> None:
    """One repo digest per repository: a newer pull or push replaces the older."""
    def change(data):
        kept = [d for d in data.get(image_id, []) if d.split("@")[0] != familiar]
        data[image_id] = kept + [f"{familiar}@{digest}"]
    _update("repodigests.json", change)


def known_blobs(diff_id: str) -> list[dict]:
    """Where the compressed form of this layer is known to be: [{digest, size, repository}]."""
    return _read("v2metadata.json").get(diff_id, [])


def remember_blob(diff_id, digest, size, media_type, repository) -> None:
    """diff_id -> where its compressed form is (the last ten places)."""
    def change(data):
        entries = [e for e in data.get(diff_id, []) if (e["digest"], e["repository"]) != (digest, repository)]
        data[diff_id] = entries[-9:] + [{"digest": digest, "size": size, "mediaType": media_type,
                                         "repository": repository}]
    _update("v2metadata.json", change)
