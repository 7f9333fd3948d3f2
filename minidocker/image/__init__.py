"""Images: what containerd's content store and snapshotter do for docker.

Layer: images, above the runtime.  An image is an OCI image layout on disk: blobs
named by their digest, manifests and configs, and one extracted directory per
layer that overlayfs stacks as a container's read-only lower dirs.

    store.py         the OCI layout: blobs, the index of tags, the store lock
    layers.py        safe extraction of layer tars (no ../, no escaping links), whiteouts
    archive.py       `save` and `load`: docker-archive and OCI tar files
    baseimages.py    busybox and hello-world made offline;  setup.py imports them
"""
