"""The command table: each command is declared once, on the function that runs it.

Layer: CLI (the `docker` client).  A command module writes

    @command("rm", "Remove one or more containers",
             flag("-f", "--force", action="store_true"),
             flag("containers", nargs="+"))
    def rm(a): ...

and that single declaration gives the command its name, its `--help` line, its flags
(argparse's add_argument arguments, or a function that adds several) and its place in
`minidocker --help`.  A name with a space ("image ls") puts it in a group, as
`docker image ls` is; `also=` gives the same command more names.  main.py builds the
parser from COMMANDS and calls the function with the parsed arguments.
"""
import sys

PROG = "minidocker"

# The groups of `minidocker image ...` and `minidocker system ...`, with their help lines.
GROUPS = {"image": "Manage images", "system": "Manage minidocker"}

# "rm", "image ls", ... -> Command, in the order the modules declare them.
COMMANDS = {}


class Command:
    """One command: what runs it, its help line, its flags and the exit codes of its errors."""

    def __init__(self, name, func, help, flags, codes):
        self.name, self.func, self.help, self.flags, self.codes = name, func, help, flags, codes

    def add_flags(self, parser):
        for f in self.flags:
            if callable(f):              # a set of flags shared by several commands
                f(parser)
            else:
                names, options = f
                parser.add_argument(*names, **options)


def flag(*names, **options):
    """One flag or positional argument, in argparse's add_argument words."""
    return names, options


def command(name, help, *flags, also=(), codes=()):
    """Declare a command.  `codes`: the error codes (MinidockerError.code) the command exits
    with as they are; docker run exits 125/126/127 (engine failed, cannot invoke, not found),
    exec 126/127, and every other command 1 for a failed request ("Error response from daemon")."""
    def declare(func):
        for each in (name, *also):
            COMMANDS[each] = Command(each, func, help, flags, codes)
        return func
    return declare


def fail(message, code):
    """Print a one-line error (docker's words) and exit with docker's code."""
    sys.stderr.write(message.rstrip() + "\n")
    sys.exit(code)
