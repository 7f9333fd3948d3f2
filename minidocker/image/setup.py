"""Set-up: make the offline base images and import them into the store.

Layer: image (what `docker pull` of the base images would be, done offline).

No image can be pulled from the internet in a classroom lab, so busybox comes
from Debian's busybox-static and hello-world is a tiny program built from bytes
(baseimages.py); `minidocker setup-images` imports both, like `docker import`.
"""
import os
import tempfile

from minidocker.image import baseimages, store
from minidocker.errors import NotFound


def _created(name):
    """A fixed creation time (the day these base images were defined), so the same
    busybox binary gives the same image ID in every store and every chapter run."""
    return "2026-11-28T00:00:00Z"


def install_base_images(force=False, only=None):
    """Import the base images that are missing; yield one line per image."""
    for name, (builder, cmd) in baseimages.BASE_IMAGES.items():
        if only and name not in only:
            continue
        if not force:
            try:
                image = store.get(name)
                yield f"{name}: present ({image.short_id})"
                continue
            except NotFound:
                pass
        fd, tmp = tempfile.mkstemp(dir=store.tmpdir(), suffix=".tar")
        os.close(fd)
        try:
            builder(tmp)
            image = store.import_tar(tmp, name, {"Cmd": cmd}, f"minidocker base image {name}",
                                      created=_created(name))
        finally:
            os.unlink(tmp)
        yield f"{name}: imported {image.short_id}"
