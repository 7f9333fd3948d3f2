"""Images: what containerd's content store and snapshotter do for docker.

Layer: images, above the runtime.  An image is an OCI image layout on disk: blobs
named by their digest, manifests and configs, and one extracted directory per
layer that overlayfs stacks as a container's read-only lower dirs.

    store.py         the image service: the index of tags, images, register, tag, rmi
    content.py       the blobs, named by digest and checked when read; the store lock
    layerstore.py    layer tars and their extracted directories, short links
    leases.py        which container (or unfinished pull) still needs which image
    gc.py            garbage collection from the images and the leases
    reference.py     what a name means: registry, repository, tag, digest
    layers.py        safe extraction of layer tars (no ../, no escaping links), tar headers
    overlay.py       overlayfs' rules on disk: whiteouts, opaque dirs, a merged view
    changes.py       `--change` and ENV: Dockerfile lines that edit an image config
    archive.py       `save` and `load`: docker-archive and OCI tar files
    baseimages.py    busybox and hello-world made offline;  setup.py imports them
"""
