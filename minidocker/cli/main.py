"""The command line: `minidocker run ...` does what `docker run ...` does.

Layer: CLI (the `docker` client).  This module builds the argument parser from the
command table (commands.py; each command module declares its own commands), calls
the command, and turns every error into one line and docker's exit code:

  125      the engine failed (docker run's "docker: Error response from daemon"), a bad
           flag or value, a file that cannot be read or written, or an internal error;
  126/127  `run` and `exec`: the container's command cannot be invoked / is not found;
  1        a failed request in other commands ("Error response from daemon: ...").

Never a traceback: a student should read what went wrong, not where in minidocker.
MINIDOCKER_DEBUG=1 shows the traceback of an unexpected error, for developers.
"""
import argparse
import os
import select
import sys

from minidocker.config import VERSION as __version__
from minidocker.cli import containers, images, limits, registry, system   # noqa: F401 (they fill COMMANDS)
from minidocker.cli.commands import COMMANDS, GROUPS, PROG
from minidocker.errors import MinidockerError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{PROG}: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(125)


def build_parser(only=None):
    """The argument parser.  Every command is listed, but only the one named on the command
    line (`only`) gets its flags: adding all of them costs tens of ms at every start (build's
    flags import the builder), and a container start should not pay for `image inspect`'s."""
    p = _Parser(prog=PROG, description="A small container engine that works like docker.")
    p.add_argument("-v", "--version", action="store_true", help="print the version and quit")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser, metavar="COMMAND")
    groups = {}
    for name in sorted(COMMANDS, key=lambda n: (" " in n, n)):   # commands, then groups
        group, _, word = name.rpartition(" ")
        if group and group not in groups:
            g = sub.add_parser(group, help=GROUPS[group])
            g.set_defaults(group_parser=g)
            groups[group] = g.add_subparsers(dest=group + "_cmd", parser_class=_Parser, metavar="COMMAND")
        cmd = COMMANDS[name]
        s = (groups[group] if group else sub).add_parser(word, help=cmd.help, add_help=False)
        s.add_argument("--help", action="help")
        s.set_defaults(cli_command=cmd, command_name=name)
        if only == (group or word):
            cmd.add_flags(s)
    return p


def main(argv=None):
    """`minidocker ARGS...`: run one command; its exit code (docker's codes)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as e:          # SystemExit (argparse, fail()) is not an Exception
        return _report(e)


def _run(argv):
    first = next((w for w in argv if not w.startswith("-")), None)
    parser = build_parser(first)
    a = parser.parse_args(argv)
    if a.version:
        print(f"minidocker version {__version__}")
        return 0
    cmd = getattr(a, "cli_command", None)
    if cmd is None:                 # no command, or a group without its command (`minidocker image`)
        getattr(a, "group_parser", parser).print_help()
        return 0 if a.cmd is None else 125
    try:
        return cmd.func(a) or 0
    except MinidockerError as e:
        if e.code in cmd.codes:
            # docker run and create name the program first: "docker: Error response from daemon"
            prefix = f"{PROG}: " if 125 in cmd.codes else ""
            return _one_line(f"{prefix}Error response from daemon: {e}", e.code)
        return _one_line(f"Error response from daemon: {e}", 1)


def _report(e):
    """Any other error as one line, exit 125 (BrokenPipe: quietly, as docker dies of SIGPIPE)."""
    if isinstance(e, MinidockerError):             # raised outside a command (building its flags)
        return _one_line(f"{PROG}: {e}", e.code)
    if os.environ.get("MINIDOCKER_DEBUG") == "1":
        raise e
    if isinstance(e, BrokenPipeError) and _reader_gone(1):
        _forget_stdout()       # `minidocker ps | head -1`: docker dies of SIGPIPE, silently;
        return 128 + 13        # a shell reports 128 + SIGPIPE for it
    if isinstance(e, OSError):
        if isinstance(e, PermissionError):
            return _one_line(f"{PROG}: permission denied: {_os_message(e)} (minidocker needs root)", 125)
        return _one_line(f"{PROG}: {_os_message(e)}", 125)
    if isinstance(e, (ValueError, LookupError)):    # bad input the engine did not name
        return _one_line(f"{PROG}: invalid input: {e}", 125)
    return _one_line(f"{PROG}: internal error: {type(e).__name__}: {e} "
                     f"(MINIDOCKER_DEBUG=1 shows where)", 125)


def _reader_gone(fd):
    """Is fd a pipe whose reader has closed it?  poll(2) reports POLLERR for such a pipe;
    an EPIPE from elsewhere (a socket to a registry) is an error like any other."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _os_message(e):
    """An OSError on one line, as Go's errors read: "/x: no such file or directory"."""
    text = (e.strerror or str(e)).lower()
    return f"{e.filename}: {text}" if e.filename else text


def _one_line(message, code):
    _forget_stdout()
    text = " ".join(str(message).split("\n")).rstrip()
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except OSError:             # stderr is gone too: only the exit code is left
        pass
    return code


def _forget_stdout():
    """Flush what the command printed; if stdout cannot take it (a full disk, a closed pipe),
    point it to /dev/null so that Python's own flush at exit does not print a second error."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
