"""Where minidocker keeps its state, and the names of the files inside it.

Layer: base (below the runtime; every layer reads it).  dockerd's --data-root.

Everything lives under one directory, ``MINIDOCKER_ROOT`` (default
``/var/lib/minidocker``, like ``/var/lib/docker``).  Every test and notebook sets
its own root so that runs never see each other's containers or images.

    ROOT/
      image/            an OCI image layout (oci-layout, index.json, blobs/sha256/)
      layers/<hex>/     one extracted layer per diff_id: overlay lower dirs
      containers/<id>/  config.json, state.json, json.log, upper/, work/, rootfs/
      tmp/              half-written files, renamed into place when complete
      lock              serialises changes to names, tags and the index
"""
import os

VERSION = "0.1.0"            # minidocker.__version__; here so that every layer can read it


# The PATH a process gets when neither the image nor -e sets one (runc and docker
# use the same list; the builder and `commit --change ENV` write it into images).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The machine in the words of OCI image indexes and `docker version` (Go's GOARCH):
# pull picks this platform from a manifest list; images record it in their config.
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(os.uname().machine, os.uname().machine)


def root() -> str:
    return os.path.abspath(os.environ.get("MINIDOCKER_ROOT", "/var/lib/minidocker"))


def path(*parts: str) -> str:
    return os.path.join(root(), *parts)


def cgroup_parent() -> str:
    """The cgroup that holds every container's cgroup (docker uses "docker")."""
    return os.environ.get("MINIDOCKER_CGROUP_PARENT", "minidocker")
