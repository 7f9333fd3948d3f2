"""System commands: system prune, version, info, setup-images.

Layer: CLI (the `docker` client).  `docker version`, `docker info` and `docker system
prune` (docker-system(1)) report on and tidy the whole engine; `setup-images` is
minidocker's own: it makes the offline base images (busybox, hello-world).

The engine modules are imported inside each command: `minidocker version` needs only
the cgroup version, not the containers and images services (20-40 ms each).
"""
import os
import sys

from minidocker import config, fmt
from minidocker.config import VERSION as __version__
from minidocker.cli.commands import command, flag


@command("setup-images", "Make the offline base images (busybox, hello-world)",
         flag("--force", action="store_true"))
def cmd_setup_images(a):
    from minidocker.image import setup
    for line in setup.install_base_images(force=a.force):
        print(line)


@command("system prune", "Remove unused data", flag("-f", "--force", action="store_true"))
def cmd_prune(a):
    from minidocker.engine import containers
    from minidocker.image import store
    if not a.force:
        sys.stdout.write("WARNING! This will remove:\n  - all stopped containers\n"
                         "  - all dangling images\n\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed, freed = containers.prune()
    deleted, freed_images = store.prune_dangling(containers.images_in_use())
    if removed:
        print("Deleted Containers:")
        print("\n".join(removed) + "\n")
    if deleted:
        print("Deleted Images:")
        print("\n".join("deleted: " + d for d in deleted) + "\n")
    print(f"Total reclaimed space: {fmt.human_size(freed + freed_images)}")


@command("version", "Show the minidocker version information")
def cmd_version(a):
    from minidocker.runtime import cgroups
    print(f"""Client:
 Version:           {__version__}
 API version:       1.41
 Python version:    {sys.version.split()[0]}
 OS/Arch:           linux/{config.ARCH}

Server: minidocker engine
 Engine:
  Version:          {__version__}
  Kernel:           {os.uname().release}
  Storage driver:   overlay
  Cgroup version:   {cgroups.version()}
  Root dir:         {config.root()}""")


@command("info", "Display system-wide information", also=("system info",))
def cmd_info(a):
    from minidocker.engine import containers
    from minidocker.image import store
    from minidocker.runtime import cgroups
    all_ = containers.list_containers(all=True)
    running = [c.status for c in all_].count("running")
    print(f"""Client:
 Version:    {__version__}

Server:
 Containers: {len(all_)}
  Running: {running}
  Paused: 0
  Stopped: {len(all_) - running}
 Images: {len(store.list_images())}
 Server Version: {__version__}
 Storage Driver: overlay
 Logging Driver: json-file
 Cgroup Driver: cgroupfs
 Cgroup Version: {cgroups.version()}
 Kernel Version: {os.uname().release}
 Architecture: {os.uname().machine}
 CPUs: {os.cpu_count()}
 Total Memory: {_mem_total()}
 Minidocker Root Dir: {config.root()}""")


def _mem_total():
    with open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
    return f"{kb / 1024 / 1024:.2f}GiB"
