"""The user's terminal while a container uses it: raw mode, copying a pty, window size.

Layer: CLI (the `docker` client).  `docker run -it` and `docker exec -it` put the
user's terminal in raw mode (termios(3), "raw mode") so that every key, Ctrl-C
included, goes to the program in the container, which has a pty of its own
(pty(7)); the client copies bytes both ways and forwards window-size changes
(SIGWINCH) so that full-screen programs redraw at the right size.
"""
import os
import select


class raw_terminal:
    """Put our terminal in raw mode while a container owns it (like docker run -it)."""

    def __init__(self, active):
        self.active, self.saved = active, None

    def __enter__(self):
        if self.active:
            import termios      # lazy: only an interactive terminal needs termios and tty
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def copy_terminal(master, interactive):
    """Copy the container's pty to our stdout, and (with -i) our stdin to the pty, until it closes."""
    readers = [master] + ([0] if interactive else [])
    while master in readers:
        for fd in select.select(readers, [], [])[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:         # EIO: the last process holding the pty's other side exited
                data = b""
            if not data:
                readers.remove(fd)
            elif fd == master:
                os.write(1, data)
            else:
                os.write(master, data)
    os.close(master)


def forward_window_size(signum, monitor_pid):
    """On SIGWINCH, tell the container's monitor, which copies our size to the pty."""
    try:
        os.kill(monitor_pid, signum)
    except OSError:             # the monitor has exited: nothing to resize
        pass
