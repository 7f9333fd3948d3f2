"""minidocker: a small, readable container engine that works like Docker.

The Python API mirrors docker-py's high-level client, so a notebook can say

    import minidocker
    c = minidocker.run("busybox", ["echo", "hi there"])
    c.wait(); print(c.logs()); c.remove()

Layer: the Python API, the top (what docker-py's high-level client is).  It imports
the engine only inside each call, so that `python -m minidocker` (the CLI, which
imports this package first) does not pay for the engine before it needs it.

The programs of Docker, one folder each, top to bottom (docs/architecture.md has
the picture and a reading order; LAYERS below is the order the imports follow):
  cli/            the `docker` client: flags, tables, exit codes
  build/          `docker build`: the Dockerfile parser and the classic builder
  distribution/   pull, push and login over the Registry HTTP API v2
  engine/         containers (dockerd + containerd): records, lifecycle, snapshots, stats
  shim.py         one monitor per running container (containerd-shim)
  image/          the image store: an OCI image layout, layers, save/load, base images
  runtime/        namespaces, the overlay root, pivot_root, capabilities, cgroups (runc)
  kernel.py       the system calls, through ctypes
"""
from minidocker.config import VERSION as __version__

# The layers, bottom first.  A module imports only from its own layer or the ones
# below it (tests/test_architecture.py checks every import; scripts/import-graph.py
# prints the graph).  Inside a layer, modules may import each other, never in a circle.
LAYERS = (
    ("minidocker.kernel", "minidocker.errors", "minidocker.config", "minidocker.fmt", "minidocker.fsutil"),
    ("minidocker.runtime",),          # runc: namespaces, mounts, confinement, cgroups
    ("minidocker.image",),            # containerd's content store and snapshots of layers
    ("minidocker.shim",),             # containerd-shim: one monitor per container
    ("minidocker.engine",),           # dockerd/containerd: container records and lifecycle
    ("minidocker.distribution",),     # registries: pull, push, login
    ("minidocker.build",),            # docker build (the classic builder)
    ("minidocker.cli", "minidocker.__main__"),   # the docker client
    ("minidocker.lab",),              # what the chapters share: plots, widgets
    ("minidocker",),                  # the Python API (this file)
)


def run(image, command=None, detach=True, **kw):
    """Create and start a container; return it (docker-py: client.containers.run(detach=True))."""
    from minidocker.engine import containers
    c = containers.create(image, command, **kw)
    containers.start(c.id)
    return c


def create(image, command=None, **kw):
    from minidocker.engine import containers
    return containers.create(image, command, **kw)


def get(ref):
    from minidocker.engine import containers
    return containers.get(ref)


def containers_list(all=False):
    from minidocker.engine import containers
    return containers.list_containers(all=all)


def images_list():
    from minidocker.image import store
    return store.list_images()
