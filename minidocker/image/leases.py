"""Leases: the record that a holder still needs an image, as containerd keeps them.

Layer: image (containerd's leases: leases/lease.go, metadata/gc.go; docs/
garbage-collection.md).  A container runs from its image's layer dirs, so while
it exists (running or stopped) those dirs must stay, whatever happens to the
image's names.  Each holder has one file, ROOT/image/leases/<holder>, naming the
manifest digest it uses; garbage collection (gc.py) keeps
every manifest a lease names, its config, its layer blobs and extracted dirs.

Why leases and not "ask the containers which images they use": such a list is
computed by someone else, at another moment, outside the lock that deletes; a
container created in between loses its layers.  A lease is written and read
under the one store lock, so a removal either sees it or ran before it (and then
lease() finds the image gone).  Content still being written has leases too (the
.ingest files of content.py).
"""
import contextlib
import json
import os

from minidocker.errors import InvalidArgument, MinidockerError, NotFound
from minidocker.image.content import blob_path, leases_dir, lock, process_alive, read_blob, write_atomic


def check_holder(holder: str) -> None:
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
    check_holder(holder)
    path = blob_path(manifest_digest)
    with lock():
        if not os.path.exists(path):
            raise NotFound(f"No such image: {manifest_digest}")
        write_atomic(os.path.join(leases_dir(), holder), (manifest_digest + "\n").encode())


def release(holder: str) -> None:
    """Drop holder's lease (idempotent).  Its image's content goes at the next
    collection (rmi, image prune) if no image name and no other lease keeps it."""
    check_holder(holder)
    with lock():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(leases_dir(), holder))


def leases() -> dict:
    """holder -> manifest digest, for every lease a holder made (not the .ingest ones)."""
    with lock():
        return {h: ds[0] for h, ds in read_locked().items() if not h.startswith(".") and ds}


def read_locked() -> dict:
    """file name -> digests it lists; ingest leases of processes that ended are deleted."""
    found = {}
    directory = leases_dir()
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if name.startswith(".tmp-"):
            continue
        if name.startswith(".ingest-") and not process_alive(name[len(".ingest-"):]):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                found[name] = f.read().split()
        except FileNotFoundError:
            pass
    return found


def holders_locked(manifest_digest: str, image_id: str) -> list:
    """Holders whose lease names this image (by manifest, or another manifest of
    the same config), sorted; under lock()."""
    held = []
    for holder, digests in read_locked().items():
        if holder.startswith(".") or not digests:
            continue
        if digests[0] == manifest_digest:
            held.append(holder)
        else:
            with contextlib.suppress(MinidockerError, ValueError, KeyError):
                if json.loads(read_blob(digests[0]))["config"]["digest"] == image_id:
                    held.append(holder)
    return sorted(held)
