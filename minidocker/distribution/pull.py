"""docker pull: a manifest, its config and its layers, from a registry into the store.

Layer: distribution (docker's distribution/pull_v2.go and xfer/download.go).  The
steps, in the Registry HTTP API v2 (client.py; OCI distribution-spec spec.md):

    HEAD /v2/<name>/manifests/<tag>      the digest the tag points at (nothing to do
                                         if our image was pulled by that digest)
    GET  /v2/<name>/manifests/<ref>      an index: pick our os/arch, GET that manifest
    GET  /v2/<name>/blobs/<config>       the config: its digest is the image ID
    GET  /v2/<name>/blobs/<layer>        each layer we lack, 3 at a time (docker's default)

Safety rules, one line each:
- every manifest and blob is hashed as it arrives and refused unless it matches its digest;
- a manifest or config that is not what the spec says is refused with one clear error;
- a blob downloads to ROOT/tmp/pull-<hex>.partial, is verified, then stored by
  store.store_layer (temp file + rename): the store never holds half a blob;
- an interrupted pull leaves the .partial file, and the next pull resumes it (Range: bytes=N-);
- two pulls of one blob (two terminals, two notebooks) take the blob's lock before they
  look at its partial file: one downloads, the other waits, then finds it stored;
- a blob may not grow past the size its descriptor declares (a registry cannot fill the disk).
"""
import contextlib
import fcntl
import http.client
import json
import os
import sys
import threading

from minidocker.distribution import credentials, metadata
from minidocker.distribution.client import (ACCEPT, INDEXES, MANIFESTS, SCHEMA1, Client,
                                            RegistryError, content_digest)
from minidocker.distribution.progress import Progress, short
from minidocker.errors import InvalidArgument, MinidockerError, NotFound
from minidocker.image import reference, store

MAX_MANIFEST = 4 << 20          # bytes; docker refuses bigger manifests and configs too
MAX_CONFIG = 8 << 20
DOWNLOADS = 3                   # parallel layer downloads (docker's max-concurrent-downloads)


def pulls_on_run(text: str) -> bool:
    """Should `run` pull this missing image?  Yes when the name says which registry
    (127.0.0.1:5000/x, localhost/x, host.org/x).  Docker Hub only with MINIDOCKER_ONLINE=1:
    classroom machines and CI are offline, and a name lookup that cannot succeed
    should not be tried for every typo."""
    try:
        ref = reference.parse(text)
    except InvalidArgument:
        return False
    return not ref.hub or os.environ.get("MINIDOCKER_ONLINE") == "1"


def pull(text: str, platform: str | None = None, out=None, quiet=False) -> store.Image:
    """docker pull: the manifest (through an index for our platform), the config, the
    layers not in the store yet; then tag the image.  Prints what docker prints."""
    ref = reference.parse(text)
    out = out or sys.stdout
    progress = Progress(out, quiet)
    want = _platform(platform)
    if ref.digest and not ref.digest.startswith("sha256:"):
        raise InvalidArgument(f"{ref}: only sha256 digests can be pulled (the store names blobs by sha256)")
    if not ref.tag and not ref.digest:
        progress.say("Using default tag: latest")
    ref = ref.with_default_tag()
    scopes = (f"repository:{ref.path}:pull",)
    client = Client(ref.domain, credentials.credentials(ref.domain))
    progress.say(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    top = ref.digest or head_manifest(client, ref, ref.tag, scopes)
    local = ref.local()
    if local and top and _up_to_date(local, ref, top):
        progress.say(f"Digest: {top}")
        progress.say(f"Status: Image is up to date for {ref}")
        out.write(f"{ref.repository}:{ref.tag}\n")
        return store.get(local)
    data, kind, top = get_manifest(client, ref, top or ref.tag, scopes)
    if kind in INDEXES:
        chosen = _select(_json_object(data, ref, "index"), want)
        data, kind, _ = get_manifest(client, ref, _descriptor(chosen, ref, "index entry")["digest"], scopes)
    if kind not in MANIFESTS:
        raise RegistryError(f"{ref.familiar}: unsupported manifest type {kind!r}")
    manifest = _json_object(data, ref, "manifest")
    config_bytes = _config(client, ref, _descriptor(manifest.get("config"), ref, "config"), scopes)
    diff_ids = store.config_diff_ids(config_bytes)
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != len(diff_ids):
        raise RegistryError(f"invalid manifest for {ref.familiar}: {len(layers) if isinstance(layers, list) else 'no'}"
                            f" layers but {len(diff_ids)} diff_ids in the config")
    store.check_depth(len(diff_ids))
    layers = [_descriptor(desc, ref, "layer") for desc in layers]
    _fetch_layers(client, ref, layers, diff_ids, scopes, progress)
    image, _ = store.register(config_bytes, local)
    metadata.remember_repo_digest(image.id, ref.familiar, top)
    progress.say(f"Digest: {top}")
    progress.say(f"Status: Downloaded newer image for {ref}")
    out.write(f"{ref.repository}{':' + ref.tag if ref.tag else '@' + top}\n")
    out.flush()
    return image


def _up_to_date(local, ref, digest) -> bool:
    try:
        image = store.get(local)
    except NotFound:
        return False
    return f"{ref.familiar}@{digest}" in metadata.repo_digests(image.id)


# -- manifests: what the tag points at, and the manifest for our platform ------------------

def _platform(text):
    parts = (text or f"linux/{store.ARCH}").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture: want os/arch[/variant]')
    return parts + [None] * (3 - len(parts))


def _select(index: dict, platform) -> dict:
    """The index's manifest for our os/arch[/variant] (image-index.md "platform")."""
    want_os, want_arch, want_variant = platform
    entries = index.get("manifests")
    for desc in entries if isinstance(entries, list) else []:
        p = desc.get("platform") if isinstance(desc, dict) else None
        p = p if isinstance(p, dict) else {}
        if (p.get("os"), p.get("architecture")) == (want_os, want_arch) and \
                (want_variant is None or p.get("variant") == want_variant):
            return desc
    name = "/".join(x for x in platform if x)
    raise NotFound(f"no matching manifest for {name} in the manifest list entries")


def _json_object(data: bytes, ref, what) -> dict:
    try:
        obj = json.loads(data)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise RegistryError(f"invalid {what} for {ref.familiar}: not a JSON object")
    return obj


def _descriptor(desc, ref, what) -> dict:
    """A descriptor as image-spec descriptor.md says: a sha256 digest, a size that is a
    number, a media type that is a string (or none)."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise RegistryError(f"invalid manifest for {ref.familiar}: a {what} has no digest")
    try:
        reference.check_digest(desc["digest"])
    except InvalidArgument as e:
        raise RegistryError(f"invalid manifest for {ref.familiar}: {what} {desc['digest']!r}: {e}") from None
    if not desc["digest"].startswith("sha256:"):
        raise RegistryError(f"invalid manifest for {ref.familiar}: {what} is not named by sha256")
    size = desc.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise RegistryError(f"invalid manifest for {ref.familiar}: {what} size {size!r} is not a number")
    if not isinstance(desc.get("mediaType", ""), str):
        raise RegistryError(f"invalid manifest for {ref.familiar}: {what} media type is not a string")
    return desc


def _manifest_failure(r, ref, tag_or_digest) -> MinidockerError:
    at = f"{ref.familiar}@{tag_or_digest}" if ":" in tag_or_digest else f"{ref.familiar}:{tag_or_digest}"
    why = r.error() if r.body else "manifest unknown: manifest unknown"   # a HEAD has no body
    if r.status == 404:
        return NotFound(f"manifest for {at} not found: {why}")
    if r.status in (401, 403):
        return RegistryError(f"pull access denied for {ref.familiar}, repository does not exist "
                             f"or may require 'minidocker login': {r.error()}")
    return RegistryError(f"manifest for {at}: {why}")


def head_manifest(client, ref, tag, scopes) -> str | None:
    """HEAD the tag: the digest it points at now (None if the registry does not say)."""
    r = client.request("HEAD", f"/v2/{ref.path}/manifests/{tag}", scopes, headers={"Accept": ACCEPT})
    r.body
    if r.status != 200:
        raise _manifest_failure(r, ref, tag)
    digest = r.headers.get("Docker-Content-Digest")
    with contextlib.suppress(InvalidArgument):
        if digest and reference.check_digest(digest).startswith("sha256:"):
            return digest
    return None


def get_manifest(client, ref, tag_or_digest, scopes) -> tuple[bytes, str, str]:
    """GET a manifest; return (bytes, media type, digest), the digest checked."""
    r = client.request("GET", f"/v2/{ref.path}/manifests/{tag_or_digest}", scopes,
                       headers={"Accept": ACCEPT})
    if r.status != 200:
        raise _manifest_failure(r, ref, tag_or_digest)
    if r.length() > MAX_MANIFEST:
        r.close()
        raise RegistryError(f"manifest for {ref.familiar} is too big")
    data = r.body
    if len(data) > MAX_MANIFEST:
        raise RegistryError(f"manifest for {ref.familiar} is too big")
    digest = content_digest(data)
    claimed = tag_or_digest if tag_or_digest.startswith("sha256:") else r.headers.get("Docker-Content-Digest")
    if claimed and claimed != digest:
        raise RegistryError(f"manifest verification failed for digest {claimed}: got {digest}")
    kind = _json_object(data, ref, "manifest").get("mediaType") or r.headers.get("Content-Type", "").split(";")[0]
    if kind in SCHEMA1:
        raise RegistryError(f"{ref.familiar}: schema 1 manifests are not supported "
                            "(docker dropped them too): push the image again with a newer client")
    return data, kind, digest


def _config(client, ref, desc, scopes) -> bytes:
    if (desc.get("size") or 0) > MAX_CONFIG:
        raise RegistryError(f"config of {ref.familiar} is too big: {desc['size']} bytes")
    r = client.request("GET", f"/v2/{ref.path}/blobs/{desc['digest']}", scopes)
    if r.status != 200:
        raise RegistryError(f"config blob {desc['digest']}: {r.error()}")
    data = r.body
    if content_digest(data) != desc["digest"]:
        raise RegistryError(f"config blob {desc['digest']} does not match its digest")
    return data


# -- layers: downloaded 3 at a time, each under its own lock --------------------------------

def _fetch_layers(client, ref, layers, diff_ids, scopes, progress):
    """Fetch the layers the store lacks (3 at a time), then say "Pull complete" in order."""
    todo = []
    for desc, diff_id in zip(layers, diff_ids):
        kind = desc.get("mediaType", "")
        if "zstd" in kind:
            raise RegistryError(f"layer {short(desc['digest'])} is zstd-compressed: Python's standard "
                                "library has no zstd; push it again with gzip")
        if "nondistributable" in kind or "foreign" in kind:
            raise RegistryError(f"layer {short(desc['digest'])} is a foreign layer ({kind}): not supported")
        if os.path.exists(store.blob_path(diff_id)):
            progress.layer(short(desc["digest"]), "Already exists")
        else:
            progress.layer(short(desc["digest"]), "Pulling fs layer")
            todo.append((desc, diff_id))
    if not todo:
        return
    import concurrent.futures                   # 50 ms to import: only when there is work
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(DOWNLOADS) as pool:
        futures = [pool.submit(_fetch_layer, client, ref, desc, diff_id, scopes, progress, stop)
                   for desc, diff_id in todo]
        try:
            for (desc, diff_id), future in zip(todo, futures):
                if future.result():
                    progress.layer(short(desc["digest"]), "Pull complete")
                metadata.remember_blob(diff_id, desc["digest"], desc.get("size"), desc.get("mediaType"),
                                       ref.repository)
        except BaseException:
            stop.set()                          # the other downloads stop at their next chunk
            raise


def _fetch_layer(client, ref, desc, diff_id, scopes, progress, stop) -> bool:
    """Download one layer, check it, store it.  False if another pull stored it first.

    Everything happens under the blob's lock, in this order: lock the partial file,
    then look at the store and at the partial file's size (both only true under the
    lock), download the rest, verify the digest, store the layer, delete the partial
    file.  A puller that waited finds the layer stored and just uses it."""
    ident = short(desc["digest"])
    partial = os.path.join(store.tmpdir(), f"pull-{desc['digest'][7:]}.partial")
    with _locked(partial, ident, progress, stop) as f:
        if os.path.exists(store.blob_path(diff_id)):
            os.unlink(partial)                  # stored by another pull while we waited
            progress.layer(ident, "Already exists")
            return False
        try:
            _download(client, ref, desc, scopes, progress, stop, f, partial)
        except BaseException:
            if os.path.exists(partial) and os.fstat(f.fileno()).st_size == 0:
                os.unlink(partial)              # nothing to resume: leave no empty file behind
            raise
        progress.layer(ident, "Verifying Checksum")
        if store.file_digest(partial) != desc["digest"]:
            os.unlink(partial)
            raise RegistryError(f"layer {ident}: filesystem layer verification failed for digest {desc['digest']}")
        progress.layer(ident, "Download complete")
        progress.layer(ident, "Extracting", 0, 0)          # a bar on a terminal only, as docker
        try:
            store.store_layer(partial, expect=diff_id)
        except InvalidArgument as e:        # it matched its digest, so the registry's image is bad
            raise RegistryError(f"layer {ident}: {e}") from None
        finally:
            os.unlink(partial)
    return True


@contextlib.contextmanager
def _locked(path, ident, progress, stop):
    """Open `path` (created if missing) and hold an exclusive flock(2) on it.

    The lock is taken before anything is read from the file.  Whoever holds it may
    delete the file; so once we hold it, we check that the file we locked is still
    the one at `path` (same inode), and start again if it was deleted meanwhile: a
    lock on a deleted file protects nothing.  While another pull holds it we show
    "Waiting", as docker does, and poll, so that a failed pull can stop us."""
    while True:
        f = open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
        try:
            waited = False
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited:
                        progress.layer(ident, "Waiting")
                        waited = True
                    if stop.wait(0.1):
                        raise RegistryError("interrupted") from None
            try:
                same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield f
                return
        finally:
            f.close()                           # closing releases the lock


def _download(client, ref, desc, scopes, progress, stop, f, partial):
    """Append the rest of the blob to `f`, from the size it has now (resumed with
    Range: bytes=N-).  Called under the blob's lock, so that size is the truth."""
    digest, size, ident = desc["digest"], desc.get("size"), short(desc["digest"])
    have = os.fstat(f.fileno()).st_size
    for _ in range(2):
        if size is not None and have >= size:
            break
        f.seek(have)
        headers = {"Range": f"bytes={have}-"} if have else {}
        r = client.request("GET", f"/v2/{ref.path}/blobs/{digest}", scopes, headers=headers)
        if r.status == 416:                     # nothing past what we have: start again
            r.body
            f.truncate(0)
            have = 0
            continue
        if r.status == 200 and have:            # the registry ignored Range: start again
            f.truncate(0)
            f.seek(0)
            have = 0
        elif r.status not in (200, 206):
            raise RegistryError(f"layer {ident}: {r.error()}")
        total = size or r.length() + have
        try:
            while chunk := r.read(1 << 16):
                if stop.is_set():
                    raise RegistryError("interrupted")
                have += len(chunk)
                if size is not None and have > size:
                    os.unlink(partial)          # not this blob: nothing of it is worth resuming
                    raise RegistryError(f"layer {ident}: the registry sent more than its "
                                        f"declared {size} bytes")
                f.write(chunk)
                progress.layer(ident, "Downloading", have, total)
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise RegistryError(f"layer {ident}: download interrupted after {have} bytes "
                                f"({e or type(e).__name__}); run the pull again to resume") from None
        finally:
            f.flush()
            r.close()
        break
    if size is not None and have < size:
        raise RegistryError(f"layer {ident}: got {have} of {size} bytes; run the pull again to resume")
