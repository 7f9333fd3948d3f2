"""docker push: the layers, the config, then the manifest, into a registry.

Layer: distribution (docker's distribution/push_v2.go).  In the Registry HTTP API v2
(client.py; OCI distribution-spec spec.md, "Pushing blobs", "Pushing manifests"):

    HEAD /v2/<name>/blobs/<digest>                       does the registry have it? skip it
    POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>   cross-repository mount
    POST /v2/<name>/blobs/uploads/   PATCH <Location> ...   PUT <Location>&digest=<digest>
    PUT  /v2/<name>/manifests/<tag>                      the manifest last, once its blobs are there

The store keeps layers uncompressed; a registry wants them gzipped.  Compressing
is slow, so what a layer's gzip digest is and where it already is is remembered
(metadata.py) and a layer is compressed only when no registry has it yet.  The
config is pushed byte for byte, so the image ID (its digest) is the same everywhere.
"""
import gzip
import json
import os
import tempfile
import urllib.parse

from minidocker.distribution import credentials, metadata
from minidocker.distribution.client import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, Client,
                                            RegistryError, content_digest)
from minidocker.distribution.progress import Progress, short
from minidocker.errors import InvalidArgument, NotFound
from minidocker.image import reference, store

CHUNK = int(os.environ.get("MINIDOCKER_UPLOAD_CHUNK", 5 << 20))   # bytes per PATCH


def push(text: str, out=None, quiet=False) -> str:
    """docker push: each layer (skipped if the registry has it, mounted if another
    repository there has it, else gzipped and uploaded in chunks), the config, then
    the manifest.  Returns the manifest's digest."""
    ref = reference.parse(text)
    progress = Progress(out, quiet)
    if ref.digest:
        raise InvalidArgument("cannot push a digest reference")
    if not ref.tag:
        progress.say("Using default tag: latest")
    ref = ref.with_default_tag()
    try:
        image = store.get(ref.local())
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar}") from None
    progress.say(f"The push refers to repository [{ref.repository}]")
    client = Client(ref.domain, credentials.credentials(ref.domain))
    scopes = (f"repository:{ref.path}:pull,push",)
    ordered = list(zip(image.manifest["layers"], image.diff_ids))
    for _, diff_id in reversed(ordered):
        progress.layer(short(diff_id), "Preparing")
    pushed = [_push_layer(client, ref, diff_id, scopes, progress) for _, diff_id in ordered]
    config_bytes = store.read_blob(image.id)
    if not _exists(client, ref, image.id, scopes):
        _upload(client, ref, config_bytes, image.id, scopes)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG, "size": len(config_bytes), "digest": image.id},
                "layers": pushed}
    data = json.dumps(manifest, indent=3).encode()
    digest = content_digest(data)
    r = client.request("PUT", f"/v2/{ref.path}/manifests/{ref.tag}", scopes,
                       headers={"Content-Type": DOCKER_MANIFEST}, body=data)
    r.body
    if r.status != 201:
        raise RegistryError(f"manifest {ref}: {r.error()}")
    if r.headers.get("Docker-Content-Digest", digest) != digest:
        raise RegistryError(f"the registry stored the manifest as {r.headers['Docker-Content-Digest']}, "
                            f"not {digest}")
    metadata.remember_repo_digest(image.id, ref.familiar, digest)
    progress.say(f"{ref.tag}: digest: {digest} size: {len(data)}")
    return digest


def _exists(client, ref, digest, scopes) -> bool:
    r = client.request("HEAD", f"/v2/{ref.path}/blobs/{digest}", scopes)
    r.body
    if r.status in (401, 403):
        raise RegistryError(f"{r.error() if r.status == 403 else 'unauthorized: authentication required'}"
                            f" (pushing to {ref.repository}; run `minidocker login {ref.domain}`)")
    return r.status == 200


def _push_layer(client, ref, diff_id, scopes, progress) -> dict:
    """One layer: already there, mounted from another repository, or compressed and uploaded."""
    ident = short(diff_id)
    known = [e for e in metadata.known_blobs(diff_id) if e["repository"].split("/", 1)[0] == ref.domain]
    for e in sorted(known, key=lambda e: e["repository"] != ref.repository):
        desc = {"mediaType": DOCKER_LAYER, "size": e["size"], "digest": e["digest"]}
        if e["repository"] == ref.repository:
            if _exists(client, ref, e["digest"], scopes):
                progress.layer(ident, "Layer already exists")
                return desc
            continue
        source = e["repository"].split("/", 1)[1]
        query = urllib.parse.urlencode({"mount": e["digest"], "from": source})
        r = client.request("POST", f"/v2/{ref.path}/blobs/uploads/?{query}",
                           scopes + (f"repository:{source}:pull",))
        r.body
        if r.status == 201:
            metadata.remember_blob(diff_id, e["digest"], e["size"], DOCKER_LAYER, ref.repository)
            progress.layer(ident, f"Mounted from {source}")
            return desc
        if r.status == 202 and r.headers.get("Location"):   # no mount; an upload was opened: drop it
            client.request("DELETE", urllib.parse.urljoin(client.url("/"), r.headers["Location"]),
                           scopes).body
    path, digest, size = _compress(diff_id)
    try:
        desc = {"mediaType": DOCKER_LAYER, "size": size, "digest": digest}
        if _exists(client, ref, digest, scopes):
            progress.layer(ident, "Layer already exists")
        else:
            with open(path, "rb") as f:
                _upload(client, ref, f, digest, scopes, size, lambda n: progress.layer(ident, "Pushing", n, size))
            progress.layer(ident, "Pushed")
    finally:
        os.unlink(path)
    metadata.remember_blob(diff_id, digest, size, DOCKER_LAYER, ref.repository)
    return desc


def _compress(diff_id):
    """gzip a layer into ROOT/tmp; mtime 0 and no file name, so the same layer
    always compresses to the same bytes (and the same digest)."""
    fd, path = tempfile.mkstemp(dir=store.tmpdir(), prefix="push-", suffix=".tar.gz")
    try:
        with os.fdopen(fd, "wb") as f, store.open_blob(diff_id) as src:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as z:
                while chunk := src.read(1 << 20):
                    z.write(chunk)
        return path, store.file_digest(path), os.path.getsize(path)
    except BaseException:
        os.unlink(path)
        raise


def _upload(client, ref, source, digest, scopes, size=None, report=None) -> None:
    """POST to open an upload, PATCH it chunk by chunk (Content-Range), PUT ?digest= to
    close it; the registry checks the digest (spec.md "Pushing a blob in chunks")."""
    r = client.request("POST", f"/v2/{ref.path}/blobs/uploads/", scopes, headers={"Content-Length": "0"})
    r.body
    if r.status != 202 or "Location" not in r.headers:
        raise RegistryError(f"blob upload for {ref.repository}: {r.error()}")
    location = urllib.parse.urljoin(client.url("/"), r.headers["Location"])
    data = source if isinstance(source, bytes) else None
    offset = 0
    while True:
        chunk = data[offset:offset + CHUNK] if data is not None else source.read(CHUNK)
        if not chunk:
            break
        r = client.request("PATCH", location, scopes, body=chunk,
                           headers={"Content-Type": "application/octet-stream",
                                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                                    "Content-Length": str(len(chunk))})
        r.body
        if r.status != 202:
            raise RegistryError(f"blob upload for {ref.repository}: {r.error()}")
        offset += len(chunk)
        if r.headers.get("Range") and r.headers["Range"] != f"0-{offset - 1}":
            raise RegistryError(f"blob upload: the registry has {r.headers['Range']}, we sent 0-{offset - 1}")
        location = urllib.parse.urljoin(location, r.headers.get("Location", location))
        if report:
            report(offset)
        if data is not None and offset >= len(data):
            break
    sep = "&" if "?" in location else "?"
    r = client.request("PUT", location + sep + urllib.parse.urlencode({"digest": digest}), scopes,
                       headers={"Content-Length": "0"}, body=b"")
    r.body
    if r.status != 201:
        raise RegistryError(f"blob {digest}: {r.error()}")
