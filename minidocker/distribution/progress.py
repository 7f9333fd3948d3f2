"""What `docker pull` and `docker push` print: one line per layer, redrawn in place.

Layer: distribution (docker's pkg/jsonmessage, which the CLI uses to draw the
progress the daemon streams).  On a terminal each layer's line is redrawn in place
with a bar ("Downloading [=====>   ]  524kB/1.04MB"); elsewhere (a file, a pipe, a
notebook with MINIDOCKER_PROGRESS=plain) only changes of status are printed, one
line each, so a log reads like docker's.
"""
import os
import sys
import threading
import time

from minidocker.fmt import human_size


def short(digest: str) -> str:
    """The 12 hex digits docker shows for a layer."""
    return digest.split(":", 1)[-1][:12]


class Progress:
    """The lines of one pull or push; safe to call from the download threads."""

    def __init__(self, out=None, quiet=False):
        self.out = out or sys.stdout
        self.quiet = quiet
        self.tty = (self.out.isatty() and os.environ.get("MINIDOCKER_PROGRESS", "auto") != "plain"
                    and os.environ.get("TERM") != "dumb")
        self.ids, self.last, self.drawn = [], {}, {}
        self.lock = threading.Lock()

    def say(self, text):
        if not self.quiet:
            with self.lock:
                self.out.write(text + "\n")
                self.out.flush()

    def layer(self, ident, status, current=None, total=None):
        if self.quiet:
            return
        with self.lock:
            if not self.tty:
                if current is None and self.last.get(ident) != status:
                    self.out.write(f"{ident}: {status}\n")
                    self.out.flush()
                self.last[ident] = status
                return
            now = time.monotonic()
            if (current is not None and self.last.get(ident) == status and current != total
                    and now - self.drawn.get(ident, 0) < 0.1):
                return                          # at most ten redraws a second per line
            self.last[ident], self.drawn[ident] = status, now
            line = f"{ident}: {status}"
            if current is not None and _bar(current, total):
                line += " " + _bar(current, total)
            if ident not in self.ids:
                self.ids.append(ident)
                self.out.write(f"{line}\n")
            else:
                up = len(self.ids) - self.ids.index(ident)
                self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r")
            self.out.flush()


def _bar(current, total):
    if not total:
        return human_size(current) if current else ""
    n = min(50, int(50 * current / total))
    bar = "=" * n + (">" if n < 50 else "") + " " * (49 - n)
    return f"[{bar}] {human_size(current):>7}/{human_size(total)}"
