"""The build context: the directory COPY and ADD read from, less what .dockerignore excludes.

Layer: build (what the docker CLI does before a classic build: it reads
.dockerignore, tars the context and sends it to the daemon, printing its size).
minidocker's builder reads the context in place, so it only reports the size the
tar would have ("Reading build context  2.048kB") and hides the excluded files.

.dockerignore (docs.docker.com/build/concepts/context/#dockerignore-files): one
pattern a line, Go's filepath.Match plus `**` (any number of directories), a
leading `!` makes an exception, the last matching line wins, and a pattern that
matches a directory matches everything below it.
"""
import os
import posixpath
import re
import stat
import sys

from minidocker import fmt
from minidocker.build import tree
from minidocker.errors import InvalidArgument, NotFound


def open_context(context: str, dockerfile_path: str | None):
    """(the Dockerfile's text, the ContextTree) of a build, with docker's errors
    for a missing context or Dockerfile (`-f -` reads the Dockerfile from stdin)."""
    root = os.path.abspath(context)
    if not os.path.isdir(root):
        raise NotFound(f'unable to prepare context: path "{context}" not found')
    path = dockerfile_path or os.path.join(root, "Dockerfile")
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise NotFound(f"unable to prepare context: unable to evaluate symlinks in "
                       f"Dockerfile path: lstat {path}: no such file or directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"cannot read the Dockerfile {path}: {e}") from None
    rules = []
    ignore_file = os.path.join(root, ".dockerignore")
    if os.path.isfile(ignore_file):
        with open(ignore_file, encoding="utf-8", errors="replace") as f:
            rules = parse_ignore(f.read())
    return text, ContextTree(root, rules)


class ContextTree(tree.Tree):
    """The build context: a host directory, less what .dockerignore excludes."""

    def __init__(self, root, rules):
        self.root, self.rules = root, rules

    def find(self, parts):
        path = os.path.join(self.root, *parts)
        try:
            return path, os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, parts):
        found = self.find(parts)
        if found is None or not stat.S_ISDIR(found[1].st_mode):
            return []
        return sorted(os.listdir(found[0]))

    def ignored(self, parts):
        return bool(parts) and ignored("/".join(parts), self.rules)

    def may_bring_back(self):
        return has_exceptions(self.rules)

    def size(self):
        """Bytes of the context as a tar (what `docker build` sends to its daemon)."""
        total = 1024                               # the two zero blocks that end a tar
        for _, _, st in self.walk([]):
            total += 512
            if stat.S_ISREG(st.st_mode):
                total += (st.st_size + 511) // 512 * 512
        return total


def size_text(size: int) -> str:
    """The context's size as the docker CLI prints it: go-units HumanSize with 4
    significant digits ("2.048kB"), where `docker images` uses 3 ("2.05kB")."""
    return fmt.human_size(size, digits=4)


# -- .dockerignore --------------------------------------------------------------------------

def parse_ignore(text: str) -> list[tuple[bool, re.Pattern]]:
    """.dockerignore lines -> [(is_exception, regex)], in order (the last match wins).

    Patterns are Go filepath.Match patterns plus `**` (any number of directories),
    cleaned like a path, with a leading `/` dropped; `!` makes an exception.
    """
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        pattern = posixpath.normpath(line).lstrip("/")
        if pattern in ("", "."):
            continue
        rules.append((exception, re.compile(_pattern_regex(pattern))))
    return rules


def _pattern_regex(pattern):
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/" and (i == 1 or pattern[i - 2] == "/"):
                    i += 1
                    out.append("(?:.*/)?")              # "**/": zero or more directories
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f".dockerignore: syntax error in pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "$"


def ignored(path: str, rules) -> bool:
    """Is `path` (relative to the context, with /) excluded?  A pattern that
    matches a parent directory matches everything below it."""
    parents = []
    parts = path.split("/")
    for n in range(1, len(parts) + 1):
        parents.append("/".join(parts[:n]))
    excluded = False
    for exception, regex in rules:
        if any(regex.match(p) for p in parents):
            excluded = not exception
    return excluded


def has_exceptions(rules) -> bool:
    return any(exception for exception, _ in rules)
