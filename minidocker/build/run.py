"""RUN: a real container from the current image; the files its command changed become a layer.

Layer: build (docker's classic builder: create a container from the step's
image, start it attached so its output streams into the build's output, wait,
and commit the container's changes; builder/dockerfile/internals.go).  The
changes are the container's overlay upper dir, packed with layers.create.

The container sees the stage's ARGs as environment variables (unless an ENV of
the image has the same name), and they go into the cache key and the history
("|1 WHO=world /bin/sh -c ..."), as in docker, but not into the image.
"""
import os
import shutil
import stat

from minidocker import config
from minidocker.build import instructions, layerdir, tree
from minidocker.build.progress import BuildFailed
from minidocker.engine import containers
from minidocker.image import layers, overlay, store


def do_run(b, stage, ins):
    argv = instructions.command(stage, ins)
    image_env = {e.partition("=")[0] for e in stage.cfg.get("config", {}).get("Env") or []}
    build_env = [f"{k}={v}" for k, v in sorted(stage.args.items())
                 if v is not None and k not in image_env]

    def action(cfg):
        parent = stage.image_id or store.add([], stage.cfg).id     # RUN right after FROM scratch
        volumes = list((cfg["config"].get("Volumes") or {}).keys())
        c = containers.create(parent, argv, entrypoint="", env=build_env)
        try:
            upper = config.path("containers", c.id, "upper")
            image_tree = tree.ImageTree(store.get(parent).layer_dirs())
            _make_volumes(upper, volumes, image_tree)
            b.progress.say(f" ---> Running in {c.id[:12]}")
            code = _attach(c.id, b.progress)
            if code != 0:
                raise BuildFailed(f"Dockerfile:{ins.line}: The command '{' '.join(argv)}' "
                                  f"returned a non-zero code: {code}", code)
            _drop_runtime_files(upper, image_tree)
            _discard_volumes(upper, volumes)
            tar = layers.create_file(upper, store.tmpdir(), prefix="build-")
            b.progress.say(f"Removing intermediate container {c.id[:12]}")
        finally:
            containers.remove(c.id, force=True)
        prefix = f"|{len(build_env)} {' '.join(build_env)} " if build_env else ""
        return tar, prefix + " ".join(argv)
    return [argv, build_env], action


def _attach(cid, progress):
    """Start the container with its output on a pipe we copy to the build's output as it comes."""
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        started = containers.start(cid, attach=True, stdio=(null, w, w))
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
        os.close(null)
    with open(r, "rb", buffering=0) as f:
        while chunk := f.read(65536):          # ends when the monitor exits
            progress.raw(chunk)
    return started.wait_exit()


def _drop_runtime_files(upper, image_tree):
    """The runtime makes mount points in the container's root (/etc/hostname and
    /etc/hosts to bind over, /proc /dev /sys when the image lacks them); docker
    keeps those in an "init layer" that no commit sees.  Take them out of the upper
    dir, where they are not changes the command made."""
    for rel in ("etc/hostname", "etc/hosts", "etc/resolv.conf"):
        path = os.path.join(upper, rel)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and image_tree.find(rel.split("/")) is None:
            os.unlink(path)
    for rel in ("etc", "proc", "dev", "sys"):
        path = os.path.join(upper, rel)
        if not os.path.isdir(path) or os.path.islink(path) or os.listdir(path) or overlay.is_opaque(path):
            continue
        st, lower = os.lstat(path), image_tree.find([rel])
        if lower is None or (stat.S_ISDIR(lower[1].st_mode) and
                             (lower[1].st_mode, lower[1].st_uid, lower[1].st_gid) ==
                             (st.st_mode, st.st_uid, st.st_gid)):
            os.rmdir(path)


def _make_volumes(upper, volumes, image_tree):
    """docker mounts a fresh volume on each VOLUME dir while a RUN runs, making the
    dir if the image lacks it; minidocker mounts nothing, but makes the dir."""
    for volume in volumes:
        parts = image_tree.resolve([p for p in volume.split("/") if p])
        if parts and image_tree.find(parts) is None:
            layerdir.mkdirs_like(upper, parts, image_tree)


def _discard_volumes(upper, volumes):
    """What RUN writes under a VOLUME is lost in docker (the volume hid the dir
    during the RUN); do the same."""
    for volume in volumes:
        path = os.path.join(upper, volume.strip("/"))
        if volume.strip("/") and os.path.isdir(path) and not os.path.islink(path):
            for name in os.listdir(path):
                child = os.path.join(path, name)
                shutil.rmtree(child) if os.path.isdir(child) and not os.path.islink(child) else os.unlink(child)
