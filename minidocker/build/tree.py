"""File trees the builder reads without mounting anything: an image's files, and the context's.

Layer: build (docker's classic builder reads the context from its tar and an
image from its mounted rootfs; minidocker reads both in place).  Tree is what
both have in common (symlinks, walking, COPY's wildcards); context.py has the
context's tree.  A path is a list of names below the tree's root.  ImageTree looks a path up in an image's layer
dirs, top first, as overlayfs would (kernel Documentation/filesystems/overlayfs.rst):
a whiteout hides what is below, a file hides everything below it, an opaque dir
stops the merge.  The rules themselves are image/overlay.py's.

resolve() follows symlinks inside the tree the way docker's FollowSymlinkInScope
does (an absolute link starts again at the tree's root, '..' stops at it), so a
COPY never writes or reads outside the image or the context.
"""
import fnmatch
import os
import posixpath
import stat

from minidocker.errors import InvalidArgument
from minidocker.image import overlay


class Tree:
    """A file tree: paths are lists of names below its root."""

    def find(self, parts):
        """(host path, lstat) of the entry, or None."""
        raise NotImplementedError

    def listdir(self, parts):
        raise NotImplementedError

    def ignored(self, parts):
        return False

    def resolve(self, parts, follow_last=True):
        """Follow symlinks inside the tree: an absolute link starts again at the tree's
        root, and '..' stops at the root (docker's FollowSymlinkInScope).  Missing
        components are kept as they are."""
        todo, done, hops = list(parts), [], 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                done = done[:-1]
                continue
            found = self.find(done + [name])
            if found and stat.S_ISLNK(found[1].st_mode) and (todo or follow_last):
                hops += 1
                if hops > 40:
                    raise InvalidArgument("too many levels of symbolic links: /" + "/".join(parts))
                target = os.readlink(found[0])
                if target.startswith("/"):
                    done = []
                todo = target.split("/") + todo
                continue
            done.append(name)
        return done

    def walk(self, parts):
        """Yield (relative parts, host path, lstat) below parts, parents first, sorted,
        leaving out what is ignored (but looking inside ignored dirs if some
        exception might bring a file back)."""
        for name in self.listdir(parts):
            child = parts + [name]
            found = self.find(child)
            if found is None:
                continue
            skip = self.ignored(child)
            if not skip:
                yield child, found[0], found[1]
            if stat.S_ISDIR(found[1].st_mode) and (not skip or self.may_bring_back()):
                yield from self.walk(child)

    def may_bring_back(self):
        return False

    def glob(self, pattern):
        """The entries a COPY source names: [(name to copy as, resolved parts)].
        Patterns are Go's filepath.Match ones, one per path component."""
        norm = posixpath.normpath(pattern.lstrip("/")) if pattern.strip("/") else "."
        parts = [p for p in norm.split("/") if p not in ("", ".")]
        if parts and parts[0] == "..":
            raise InvalidArgument(f"forbidden path outside the build context: {pattern}")
        found = [([], [])]                       # (as written, resolved)
        for comp in parts:
            nxt = []
            for written, real in found:
                if any(c in comp for c in "*?["):
                    go_pattern = comp.replace("[^", "[!")
                    nxt += [(written + [n], real + [n]) for n in self.listdir(real)
                            if fnmatch.fnmatchcase(n, go_pattern)]
                else:
                    nxt.append((written + [comp], real + [comp]))
            found = [(w, self.resolve(r)) for w, r in nxt]
        out = []
        for written, real in found:
            entry = self.find(real)
            if entry is None:
                continue
            if written and self.ignored(written):
                # an excluded dir still counts if an exception ("!dir/keep") brings a file back
                if not (stat.S_ISDIR(entry[1].st_mode) and self.may_bring_back()
                        and next(self.walk(real), None)):
                    continue
            out.append((written[-1] if written else "", real))
        return out


class ImageTree(Tree):
    """An image's merged file tree, read from its layer dirs (top first)."""

    def __init__(self, layer_dirs):
        self.dirs = list(layer_dirs)

    def _lookup(self, parts):
        """(top entry, dirs merged at that path) as overlayfs would see them."""
        if not parts:
            return ((self.dirs[0], os.lstat(self.dirs[0])) if self.dirs else None), self.dirs
        dirs, top = self.dirs, None
        for i, name in enumerate(parts):
            top, dirs = overlay.lookup(dirs, name)
            if top is None or (i < len(parts) - 1 and not stat.S_ISDIR(top[1].st_mode)):
                return None, []
        return top, dirs

    def find(self, parts):
        return self._lookup(parts)[0]

    def listdir(self, parts):
        return sorted(overlay.visible(self._lookup(parts)[1]))
