"""Image commands: images, rmi, image inspect, import, tag, commit, diff, history, save, load, build.

Layer: CLI (the `docker` client).  Each command parses docker's flags, asks the
image store (minidocker.image), the engine's snapshots (commit, diff, history) or
the builder, and prints what docker prints (docker-images(1), docker-save(1) ...).

The image and engine modules are imported inside each command: each costs 20-60 ms
to import (the builder the most), and a command pays only for the ones it uses.
"""
import os
import sys

from minidocker.cli import output
from minidocker.cli.commands import command, fail, flag
from minidocker.errors import MinidockerError, NotFound


@command("images", "List images",
         flag("-q", "--quiet", action="store_true"),
         flag("--no-trunc", action="store_true"),
         also=("image ls", "image list"))
def cmd_images(a):
    from minidocker import fmt
    from minidocker.image import store
    from minidocker.errors import MinidockerError
    rows = []
    for image in store.list_images():
        try:                           # one bad record must not hide the others
            created, size = image.config.get("created"), fmt.human_size(image.size)
        except (MinidockerError, OSError, ValueError, TypeError, AttributeError) as e:
            sys.stderr.write(f"minidocker: image {image.short_id}: {e}\n")
            continue
        for tag in image.tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            if a.quiet:
                print(image.id if a.no_trunc else image.short_id)
                continue
            rows.append([repo, t, image.id if a.no_trunc else image.short_id,
                         output.ago(created), size])
    if not a.quiet:
        print(fmt.table(rows, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]))


@command("rmi", "Remove one or more images",
         flag("-f", "--force", action="store_true"), flag("images", nargs="+"),
         also=("image rm",))
def cmd_rmi(a):
    from minidocker.engine import containers
    code = 0
    for ref in a.images:
        try:
            for line in containers.remove_image(ref, a.force):
                print(line)
        except MinidockerError as e:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            code = 1
    return code


def image_inspect(image) -> dict:
    """An image as `docker image inspect` shows it."""
    from minidocker.distribution import metadata
    cfg = image.config
    return {"Id": image.id, "RepoTags": image.tags, "Created": cfg.get("created"),
            "Architecture": cfg.get("architecture"), "Os": cfg.get("os"),
            "Config": cfg.get("config", {}), "Size": image.size,
            "RepoDigests": metadata.repo_digests(image.id),
            "RootFS": {"Type": "layers", "Layers": image.diff_ids},
            "Metadata": {"ManifestDigest": image.manifest_digest}}


@command("image inspect", "Display detailed information on one or more images",
         flag("-f", "--format"), flag("images", nargs="+"))
def cmd_image_inspect(a):
    from minidocker.image import store
    output.print_inspected([image_inspect(store.get(ref)) for ref in a.images], a.format)


@command("import", "Import a root file system tarball as an image",
         flag("-c", "--change", action="append", default=[]),
         flag("-m", "--message"),
         flag("file"),
         flag("reference", nargs="?"),
         also=("image import",))
def cmd_import(a):
    from minidocker.image import store
    from minidocker.image.changes import parse_change
    changes = {}
    for change in a.change:
        changes.update(parse_change(change))
    image = store.import_tar(a.file, a.reference, changes, a.message or "")
    print(image.id)


@command("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
         flag("source"), flag("target"), also=("image tag",))
def cmd_tag(a):
    from minidocker.image import store
    store.tag(a.source, a.target)


@command("commit", "Create a new image from a container's changes",
         flag("-a", "--author"),
         flag("-c", "--change", action="append", default=[]),
         flag("-m", "--message"),
         flag("-p", "--pause", nargs="?", const="true", default="true", choices=["true", "false"]),
         flag("container"),
         flag("repository", nargs="?"))
def cmd_commit(a):
    from minidocker.engine import snapshots
    image = snapshots.commit(a.container, a.repository, a.change, a.message or "",
                             a.author or "", a.pause == "true")
    print(image.id)


@command("diff", "Inspect changes to files or directories on a container's filesystem",
         flag("container"))
def cmd_diff(a):
    from minidocker.engine import snapshots
    for kind, path in snapshots.diff(a.container):
        print(kind, path)


@command("history", "Show the history of an image",
         flag("-H", "--human", nargs="?", const="true", default="true", choices=["true", "false"]),
         flag("--no-trunc", action="store_true"),
         flag("-q", "--quiet", action="store_true"),
         flag("image"),
         also=("image history",))
def cmd_history(a):
    from minidocker import fmt
    from minidocker.engine import snapshots
    rows = []
    for row in snapshots.history(a.image):
        image = row["id"] if a.no_trunc or row["id"] == "<missing>" else row["id"][7:19]
        if a.quiet:
            print(image)
            continue
        created = row["created"]
        if a.human == "true" and created:
            created = output.ago(created)
        by = row["created_by"].replace("\t", " ").replace("\n", " ")
        if not a.no_trunc and len(by) > 45:
            by = by[:44] + "…"
        rows.append([image, created, by, fmt.human_size(row["size"]), row["comment"]])
    if not a.quiet:
        print(fmt.table(rows, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]))


@command("save", "Save one or more images to a tar archive (streamed to STDOUT by default)",
         flag("-o", "--output"),
         flag("--format", default="docker-archive", choices=["docker-archive", "oci-archive", "docker", "oci"]),
         flag("images", nargs="+"),
         also=("image save",))
def cmd_save(a):
    from minidocker.image import archive
    if a.output:
        where = os.path.dirname(os.path.abspath(a.output))
        if not os.path.isdir(where):        # docker checks before it writes anything
            fail(f'failed to save image: invalid output path: directory "{where}" does not exist', 1)
        archive.save_file(a.images, a.output, a.format)
    elif sys.stdout is None:                # started with stdout closed (>&-)
        fail("no standard output to save to: use the -o flag", 125)
    elif os.isatty(1):
        fail("Cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    else:
        archive.save(a.images, sys.stdout.buffer, a.format)


@command("load", "Load an image from a tar archive or STDIN",
         flag("-i", "--input"), flag("-q", "--quiet", action="store_true"),
         also=("image load",))
def cmd_load(a):
    from minidocker.image import archive
    if a.input:
        try:
            f = open(a.input, "rb")
        except OSError as e:
            raise NotFound(f"open {a.input}: {e.strerror.lower()}") from None
    elif os.isatty(0):
        fail("requested load from stdin, but stdin is empty", 1)
    else:
        f = sys.stdin.buffer
    with f:
        for line in archive.load(f):
            print(line)


def build_flags(p):
    from minidocker.build import builder
    builder.flags(p)


@command("build", "Build an image from a Dockerfile", build_flags)
def cmd_build(a):
    from minidocker.build import builder
    return builder.main(a)
