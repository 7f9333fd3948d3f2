"""COPY and ADD: files of the context (or of another stage or image) into a new layer.

Layer: build (docker's classic builder, builder/dockerfile/copy.go).  The sources
are matched in the context less .dockerignore (or in an earlier stage's files,
COPY --from), written into a LayerDir on top of the image, and packed.  The rules
from the Dockerfile reference (docs.docker.com/reference/dockerfile/#copy):
  - a directory source copies its contents, not itself;
  - with more than one source the destination must be a directory ending in /;
  - a relative destination is relative to WORKDIR;
  - files get uid:gid 0:0 unless --chown names others (names looked up in the
    image's /etc/passwd and /etc/group); COPY --from keeps the owners it finds;
  - ADD also unpacks a local tar (plain, gzip, bzip2, xz) into the destination;
    ADD of a URL would download, and minidocker builds offline.
"""
import os
import posixpath
import re
import stat
import tarfile

from minidocker.build import cache, instructions, layerdir, tree
from minidocker.errors import InvalidArgument, NotFound
from minidocker.image import layers, store
from minidocker.runtime import users


def do_copy(b, stage, ins, add=False):
    what = ins.cmd
    words = [instructions.expand(b, stage, w) for w in ins.args]
    sources, dest = words[:-1], words[-1]
    chown = instructions.expand(b, stage, ins.flags["chown"]) if "chown" in ins.flags else None
    chmod = None
    if "chmod" in ins.flags:
        if not re.fullmatch(r"[0-7]{3,4}", ins.flags["chmod"]):
            raise InvalidArgument(f"invalid --chmod={ins.flags['chmod']}: an octal mode such as 0755")
        chmod = int(ins.flags["chmod"], 8)
    src_tree, keep_owner, origin = b.context_tree, False, "context"
    if "from" in ins.flags:
        src_tree, origin = _from_tree(b, stage, ins)
        keep_owner = chown is None             # docker keeps owners when copying between images
    if add:
        for src in sources:
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", src) or src.startswith("git@"):
                raise InvalidArgument(f"{src} is a URL: ADD would download it, and minidocker "
                                      "builds offline. Put the file in the build context and COPY it")
    matches = []
    for src in sources:
        found = src_tree.glob(src)
        if not found:
            raise InvalidArgument(f"file not found in build context or excluded by "
                                  f".dockerignore: stat {src}: file does not exist")
        matches += found
    if len(matches) > 1 and not dest.endswith("/"):
        raise InvalidArgument(f"When using {what} with more than one source file, the "
                              "destination must be a directory and end with a /")
    digest = cache.content_digest(src_tree, matches, keep_owner)
    kind = "multi" if len(matches) > 1 else (
        "dir" if stat.S_ISDIR(src_tree.find(matches[0][1])[1].st_mode) else "file")

    def action(cfg):
        image_tree = stage.tree()
        owner = chown_ids(chown, image_tree) if chown else (0, 0)
        workdir = cfg["config"].get("WorkingDir") or "/"
        target = posixpath.join(workdir, dest)
        dest_parts = image_tree.resolve(target.strip("/").split("/"))
        existing = image_tree.find(dest_parts)
        into_dir = (dest.endswith("/") or not dest_parts or
                    (existing is not None and stat.S_ISDIR(existing[1].st_mode)))
        layer = layerdir.LayerDir(image_tree, owner, chmod, keep_owner)
        try:
            for name, parts in matches:
                path, st = src_tree.find(parts)
                if stat.S_ISDIR(st.st_mode):   # a directory: its contents go into dest
                    layer.mkdirs(dest_parts)
                    for rel, p, s in src_tree.walk(parts):
                        layer.put(dest_parts + rel[len(parts):], p, s)
                    continue
                stream = _archive_stream(path) if add and stat.S_ISREG(st.st_mode) else None
                if stream is not None:         # ADD of a local tar: unpacked into dest
                    with stream:
                        _unpack(stream, path, layer, dest_parts)
                    continue
                layer.put(dest_parts + [name] if into_dir else dest_parts, path, st)
        except BaseException:
            layer.remove()
            raise
        created_by = f"/bin/sh -c #(nop) {what} {kind}:{digest.split(':')[1]} in {dest} "
        return layer.pack(), created_by
    return [ins.flags, sources, dest, origin, digest], action


def do_add(b, stage, ins):
    return do_copy(b, stage, ins, add=True)


def _from_tree(b, stage, ins):
    """The files `COPY --from=X` reads: an earlier stage (by name or number) or an image."""
    ref = instructions.expand(b, stage, ins.flags["from"])
    for s in b.stages[:-1]:
        if (s.name and s.name == ref.lower()) or ref == str(s.index):
            return s.tree(), f"stage:{s.image_id or 'scratch'}"
    if ref.isdigit():
        raise InvalidArgument(f"invalid from flag value {ref}: refers to the current or a later "
                              "build stage")
    try:
        image = store.get(ref)
    except NotFound:
        raise InvalidArgument(f"invalid from flag value {ref}: no such build stage or image "
                              "(minidocker builds offline)") from None
    return tree.ImageTree(image.layer_dirs()), f"image:{image.id}"


def chown_ids(spec, image_tree):
    """--chown=user[:group] -> (uid, gid), names looked up in the image's /etc/passwd
    and /etc/group (read as the runtime reads them for `run -u`); with no group,
    the group id is the user id (the Dockerfile reference: "a UID without GID will
    use the same numeric UID as the GID")."""
    user, _, group = spec.partition(":")

    def lookup(name, db, what):
        if name.isdigit():
            return int(name)
        found = image_tree.find(image_tree.resolve(db.strip("/").split("/")))
        entries = users.read_db(found[0]) if found and stat.S_ISREG(found[1].st_mode) else []
        for fields in entries:
            if fields[0] == name and fields[2].isdigit():
                return int(fields[2])
        raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                              f"can't find {'uid' if what == 'user' else 'gid'} for {what} "
                              f"{name}: no such {what}: {name}")
    uid = lookup(user, "/etc/passwd", "user")
    return uid, lookup(group, "/etc/group", "group") if group else uid


# -- ADD of a local tar ---------------------------------------------------------------------

def _archive_stream(path):
    """An open binary stream of the tar inside `path` (plain, gzip, bzip2, xz), or None
    if the file is not a tar archive (ADD then copies it as it is)."""
    import bz2          # the compressors are slow to import: only ADD of such a tar needs them
    import lzma
    try:
        with tarfile.open(path, "r:*") as tf:
            tf.next()
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, ValueError):
        return None
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")                       # plain or gzip: layers.extract reads both


def _unpack(stream, path, layer, dest_parts):
    with tarfile.open(path, "r:*") as tf:       # whiteouts would delete image files
        for member in tf:
            base = member.name.rstrip("/").rsplit("/", 1)[-1]
            if base.startswith(layers.WHITEOUT):
                raise InvalidArgument(f"{os.path.basename(path)}: entry {member.name!r}: names "
                                      f"starting with {layers.WHITEOUT!r} are whiteouts in a "
                                      "layer; ADD refuses them")
    layer.mkdirs(dest_parts)
    layers.extract(stream, layer.host(dest_parts))
