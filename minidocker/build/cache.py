"""The build cache: when may a step be skipped, and with which image.

Layer: build (docker's classic builder cache, builder/dockerfile/imagecontext.go
and the "probeCache" of each step).  Every image a step makes is kept, untagged,
and its config carries the step's key in the field "minidocker.cache".  The key
is a digest of:
  - the parent image (so a change early in the Dockerfile reruns everything after);
  - the instruction and what it will do once its words are expanded (the ARGs in
    use, the environment a RUN gets);
  - for COPY and ADD, the content of the files copied (names, types, modes, bytes;
    not mtimes, as in docker, so `touch` alone does not bust the cache).
The next build with the same key finds the image (" ---> Using cache").
Reference: docs.docker.com/build/cache/ (the rules for the classic builder).
"""
import hashlib
import json
import os
import stat

from minidocker.image import store

CACHE = "minidocker.cache"        # the config field that holds a step's cache key


def key(parent: str, cmd: str, parts) -> str:
    """The cache key of a step: parent image id (or "scratch"), instruction, and
    what the instruction needs besides (a JSON-able list)."""
    text = json.dumps([parent, cmd, parts], sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def index() -> dict:
    """key -> image id, for every image in the store that a build step made;
    where two images have the same key the newest wins."""
    found = {}
    for image in store.list_images():          # newest first
        step_key = image.config.get(CACHE)
        if step_key and step_key not in found:
            found[step_key] = image.id
    return found


def _hash_file(path, h):
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)


def content_digest(tree, sources, keep_owner):
    """One digest of what a COPY copies: names, types, modes, contents (not mtimes:
    docker's cache ignores them too, so `touch` alone does not bust the cache)."""
    h = hashlib.sha256()

    def entry(rel, path, st):
        owner = f"{st.st_uid}:{st.st_gid}" if keep_owner else ""
        kind = stat.S_IFMT(st.st_mode)
        h.update(f"{'/'.join(rel)}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0{owner}\0".encode())
        if stat.S_ISREG(st.st_mode):
            _hash_file(path, h)
        elif stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
        h.update(b"\n")
    for name, parts in sources:
        path, st = tree.find(parts)
        entry([name], path, st)
        if stat.S_ISDIR(st.st_mode):
            for rel, p, s in tree.walk(parts):
                entry([name] + rel[len(parts):], p, s)
    return "sha256:" + h.hexdigest()
