"""What the chapters share: set up a live session, and drive a terminal.

Layer: lab, the top (what the chapters share; not part of Docker).  Every chapter starts with

    from minidocker import lab
    lab.start("03")

which checks that live cells can run (Linux, root), gives the chapter its own
MINIDOCKER_ROOT so chapters never see each other's containers, removes what a
previous run of the chapter left, makes the base images, and puts the
`minidocker` command on PATH so cells can say `!minidocker run ...` exactly as
the course says `docker run ...`.

A Jupyter kernel must never fork itself into a container: everything here starts
containers through the CLI in a separate process (fork+exec), as a user would.
"""
import os
import select
import shutil
import subprocess
import sys
import time

from minidocker.engine import containers
from minidocker.image import setup

LIVE = False


def start(chapter: str) -> str:
    """Prepare a live chapter; return its root.  Prints a plain explanation where
    live cells cannot run (for example on Binder, which gives no root)."""
    global LIVE
    if sys.platform != "linux" or os.geteuid() != 0:
        print("This chapter runs real containers, which needs root on Linux.\n"
              "Here the live cells cannot run: read it, then run it on a Linux VM with\n"
              "  git clone <this repository> && cd minidocker && sudo scripts/lab.sh")
        LIVE = False
        return ""
    base = os.environ.get("MINIDOCKER_LAB_ROOTS", "/var/lib/minidocker-lab")
    root = os.path.join(base, chapter)
    os.environ["MINIDOCKER_ROOT"] = root
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(":"):
        os.environ["PATH"] = bindir + ":" + os.environ.get("PATH", "")
    cleanup()
    for _ in setup.install_base_images():
        pass
    LIVE = True
    print(f"Live: containers of this chapter live under {root}")
    return root


def cleanup() -> None:
    """Remove every container of this chapter's root (a re-run starts clean)."""
    for c in containers.list_containers(all=True):
        try:
            c.remove(force=True)
        except Exception as e:  # noqa: BLE001 - report and go on; the next check will show it
            print(f"could not remove {c.id[:12]}: {e}")


def minidocker(*args, check=True) -> str:
    """Run the CLI and return its output (for cells that compute with it)."""
    proc = subprocess.run([sys.executable, "-m", "minidocker", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120)
    # Decoded by hand: text=True would turn a terminal's "\r\n" into "\n\n"-like noise.
    proc.stdout, proc.stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"minidocker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


class Terminal:
    """A program on a pseudo-terminal, as if a person typed into it.

    `docker run -it busybox sh` needs a terminal; a notebook cell has none, so we
    open a pty pair (pty(7)), give the program the slave end, and keep the master.
    """

    def __init__(self, *args, cols=80, rows=24):
        import fcntl
        import pty
        import struct
        import termios
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(list(args), stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, close_fds=True,
                                     preexec_fn=None)
        os.close(slave)
        self.output = b""

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read(self, until: str | None = None, timeout: float = 10.0) -> str:
        """Read what the program printed, until `until` appears or it goes quiet."""
        deadline = time.monotonic() + timeout
        start = len(self.output)
        while time.monotonic() < deadline:
            if until is not None and until.encode() in self.output[start:]:
                break
            ready = select.select([self.master], [], [], 0.3 if until is None else 0.1)[0]
            if not ready:
                if until is None:
                    break
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        return self.output[start:].decode(errors="replace").replace("\r\n", "\n")

    def close(self, timeout: float = 10.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            os.close(self.master)
        return code


def have(program: str) -> bool:
    return shutil.which(program) is not None
