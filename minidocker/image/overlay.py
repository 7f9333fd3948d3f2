"""The overlay form of an image: how overlayfs shows a stack of layer dirs as one tree.

Layer: images (what containerd's overlay snapshotter relies on the kernel for).
A container's root is an overlay mount: lower dirs (the image's layers, top
first) under an upper dir (the container's changes).  Two marks in a dir change
what the dirs below show (kernel Documentation/filesystems/overlayfs.rst,
"whiteouts and opaque directories"):
  - a whiteout, a char device 0:0 named NAME: NAME of the dirs below is deleted;
  - an opaque dir, xattr trusted.overlay.opaque=y: nothing of the dirs below merges in.
A name that is a file (not a dir) in one dir hides that name in every dir below.

This module is the one owner of those rules: layers.py turns them into OCI's
".wh." names and back; the builder reads an image's files with lookup() and
visible() without mounting anything; diff() is `docker diff`.
"""
import os
import stat

from minidocker.runtime.rootfs import OPAQUE_XATTR, is_whiteout  # noqa: F401  (the kernel's marks)


def is_opaque(path) -> bool:
    """Does the dir at `path` hide the dirs below (trusted.overlay.opaque=y)?"""
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def lookup(dirs, name):
    """`name` in `dirs` (top first) as overlayfs merges them: (the entry that shows,
    as (host path, lstat), or None; the dirs that merge at that name, if a dir)."""
    top, merged = None, []
    for d in dirs:
        path = os.path.join(d, name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if is_whiteout(st):
            break                          # deleted here: hides all below
        if top is None:
            top = (path, st)
        if not stat.S_ISDIR(st.st_mode):
            break                          # a non-dir ends the lookup (and hides what is below)
        merged.append(path)
        if is_opaque(path):
            break
    return top, merged


def visible(dirs) -> set:
    """The names the merged dir `dirs` (top first) shows: the top one of each name decides."""
    seen, shown = set(), set()
    for d in dirs:
        for name in os.listdir(d):
            if name not in seen:
                seen.add(name)
                if not is_whiteout(os.lstat(os.path.join(d, name))):
                    shown.add(name)
    return shown


# -- docker diff ----------------------------------------------------------------------------

def _diff_dir(upper, path, below, opaque, out):
    names = sorted(os.listdir(upper))
    if opaque:                           # everything of the lowers not in upper is gone
        out.extend(("D", path + gone) for gone in visible(below) - set(names))
    for name in names:
        full = os.path.join(upper, name)
        st = os.lstat(full)
        top, dirs = lookup(below, name)
        found = top is not None
        if is_whiteout(st):
            if found:
                out.append(("D", path + name))
            continue
        out.append(("C" if found else "A", path + name))
        if stat.S_ISDIR(st.st_mode):
            _diff_dir(full, path + name + "/", dirs, opaque or is_opaque(full), out)


def diff(upper_dir, lower_dirs=()) -> list[tuple[str, str]]:
    """docker diff: ("A"dded, "C"hanged, "D"eleted, path) from an overlay upper dir.

    lower_dirs are the image's layer dirs, top first (overlay's lowerdir= order).
    """
    out = []
    _diff_dir(upper_dir, "/", list(lower_dirs), False, out)
    return sorted(out, key=lambda change: change[1])
