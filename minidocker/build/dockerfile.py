"""The Dockerfile language: lines into instructions, with their flags and arguments.

Layer: build (what docker's frontend/dockerfile parser does).  The builder
(builder.py) asks parse() for a list of Instructions, each with the line it
starts on, and expands each one's words with words.expand() only when it runs,
because the variables an instruction sees ($PATH, an ARG) depend on the
instructions before it.  .dockerignore is read by context.py.

The rules, from the Dockerfile reference (docs.docker.com/reference/dockerfile)
and the behaviour of docker's parser (moby/buildkit frontend/dockerfile):
  - `# escape=\\` or `` # escape=` `` before anything else picks the escape
    character; an escape at the end of a line continues it on the next line;
  - a line whose first non-blank is `#` is a comment, even inside a continued
    instruction; instructions are case-insensitive;
  - RUN, CMD, ENTRYPOINT, SHELL take either a JSON array of strings ("exec
    form", run as is) or text ("shell form", handed to /bin/sh -c);
  - $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}, ${VAR:?error} are replaced in
    ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR (RUN leaves
    them to the shell), with quotes and escapes handled as a shell would.
"""
import json
import re
from minidocker.errors import InvalidArgument

DEFAULT_SHELL = ["/bin/sh", "-c"]

# instruction -> the flags it takes (`COPY --from=build ...`)
INSTRUCTIONS = {
    "FROM": {"platform"}, "RUN": set(), "CMD": set(), "ENTRYPOINT": set(), "SHELL": set(),
    "COPY": {"from", "chown", "chmod"}, "ADD": {"chown", "chmod"}, "ENV": set(), "ARG": set(),
    "LABEL": set(), "WORKDIR": set(), "USER": set(), "EXPOSE": set(), "VOLUME": set(),
    "STOPSIGNAL": set(), "MAINTAINER": set(),
}
# Instructions and flags docker knows that minidocker does not do: said plainly, not "unknown".
UNSUPPORTED = {"HEALTHCHECK", "ONBUILD"}
UNSUPPORTED_FLAGS = {"mount", "network", "security", "link", "parents", "exclude", "checksum",
                     "keep-git-dir"}
# Which instructions get their variables replaced (RUN, CMD, ENTRYPOINT: the shell does it).
EXPANDS = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
           "WORKDIR", "ARG"}

DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
KNOWN_DIRECTIVES = {"escape", "syntax", "check"}
STAGE_NAME = re.compile(r"^[a-z][a-z0-9._-]*$")


class DockerfileError(InvalidArgument):
    """Bad Dockerfile text; the message says which line."""


class Instruction:
    """One instruction: cmd "RUN"; line, where it starts (1-based, for errors);
    original, as written (continuations joined); flags {"from": "build"}; args, a str
    (shell form, WORKDIR, ...), a list (JSON form, words) or (key, value) pairs (ENV,
    LABEL); json, True for the exec form (args came from a JSON array)."""

    def __init__(self, cmd, line, original, flags=None):
        self.cmd, self.line, self.original = cmd, line, original
        self.flags, self.args, self.json = dict(flags or {}), None, False

    def __str__(self):
        return self.original

    def __repr__(self):
        return f"<Instruction line {self.line}: {self.original}>"


class Dockerfile:
    def __init__(self, instructions, escape="\\", warnings=None):
        self.instructions, self.escape, self.warnings = instructions, escape, list(warnings or [])


def _error(line, message):
    return DockerfileError(f"Dockerfile parse error line {line}: {message}")


# -- lines -> instructions ---------------------------------------------------------------

def parse(text: str) -> Dockerfile:
    """Split a Dockerfile into Instructions (arguments not yet expanded)."""
    lines = text.split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]                        # a byte-order mark is not text
    lines = [l[:-1] if l.endswith("\r") else l for l in lines]
    escape, seen, directives_done = "\\", set(), False
    result = Dockerfile([])
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        stripped = raw.lstrip()
        if not directives_done:
            m = DIRECTIVE.match(stripped)
            if m and m.group(1).lower() in KNOWN_DIRECTIVES:
                key = m.group(1).lower()
                if key in seen:
                    raise _error(i, f"only one {key} parser directive can be used")
                seen.add(key)
                if key == "escape":
                    if m.group(2) not in ("\\", "`"):
                        raise _error(i, f"invalid escape token '{m.group(2)}' does not match ` or \\")
                    escape = m.group(2)
                continue
            directives_done = True                     # anything else ends the directives
        if not stripped or stripped.startswith("#"):
            continue
        start, logical, empty_continuation = i, stripped, False
        continues = re.compile(re.escape(escape) + r"[ \t]*$")
        while continues.search(logical):
            logical = continues.sub("", logical)
            if i >= len(lines):
                break
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):           # comments inside an instruction vanish
                logical += escape                      # ...and the instruction goes on
                continue
            if not nxt.strip():                        # docker warns, then goes on
                empty_continuation = True
                logical += escape
                continue
            logical += nxt
        if empty_continuation:
            result.warnings.append(f"[WARNING]: Empty continuation line found in: {logical.strip()}")
        result.instructions.append(_instruction(logical.strip(), start, escape))
    result.escape = escape
    if not result.instructions:
        raise DockerfileError("the Dockerfile (Dockerfile) cannot be empty")
    return result


def _instruction(text, line, escape):
    word, rest = re.match(r"(\S+)\s*(.*)", text, re.S).groups()
    cmd = word.upper()
    rest = rest.strip()
    if cmd in UNSUPPORTED:
        raise _error(line, f"{cmd} is not supported by minidocker")
    if cmd not in INSTRUCTIONS:
        import difflib
        close = difflib.get_close_matches(cmd, INSTRUCTIONS, n=1)
        hint = f" (did you mean {close[0].lower()}?)" if close else ""
        raise _error(line, f"unknown instruction: {word}{hint}")
    flags, rest = _flags(rest, cmd, line)
    ins = Instruction(cmd, line, text, flags)
    _parse_args(ins, rest, escape)
    return ins


def _flags(rest, cmd, line):
    """Leading `--name=value` words are flags of the instruction."""
    flags = {}
    while rest.startswith("--"):
        m = re.match(r"--([a-zA-Z0-9][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)", rest)
        if not m:
            raise _error(line, f"bad flag in {rest.split()[0]!r}")
        name, value = m.group(1).lower(), m.group(2)
        if name not in INSTRUCTIONS[cmd]:
            if name in UNSUPPORTED_FLAGS:
                raise _error(line, f"{cmd} --{name} is not supported by minidocker")
            raise _error(line, f"unknown flag: --{name}")
        if value is None:
            raise _error(line, f"missing a value on flag: --{name}")
        if name in flags:
            raise _error(line, f"duplicate flag specified: --{name}")
        flags[name] = value
        rest = rest[m.end():]
    return flags, rest


def _json_list(rest):
    """The JSON array of strings in `rest`, or None if it is not one."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise ValueError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _parse_args(ins, rest, escape):
    cmd, line = ins.cmd, ins.line
    try:
        as_json = _json_list(rest)
    except ValueError as e:
        raise _error(line, str(e)) from None
    if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        if as_json is not None:
            ins.args, ins.json = as_json, True
        elif cmd == "SHELL":
            raise _error(line, "SHELL requires the arguments to be in JSON form")
        else:
            ins.args = rest
        if cmd in ("RUN", "SHELL") and not ins.args:
            raise _error(line, f"{cmd} requires at least one argument")
        if cmd in ("CMD", "ENTRYPOINT") and not rest:
            raise _error(line, f"{cmd} requires at least one argument")
    elif cmd in ("COPY", "ADD", "VOLUME"):
        ins.args, ins.json = (as_json, True) if as_json is not None else (rest.split(), False)
        if cmd != "VOLUME" and len(ins.args) < 2:
            raise _error(line, f"{cmd} requires at least two arguments, but only one was "
                               "provided. Destination could not be determined")
        if cmd == "VOLUME" and not ins.args:
            raise _error(line, "VOLUME requires at least one argument")
    elif cmd in ("ENV", "LABEL"):
        ins.args = _name_values(rest, cmd, line, escape)
    elif cmd == "ARG":
        ins.args = split_quoted(rest, escape)
        if not ins.args:
            raise _error(line, "ARG requires at least one argument")
    elif cmd in ("FROM", "EXPOSE"):
        ins.args = rest.split()
        if cmd == "FROM" and (len(ins.args) not in (1, 3) or
                              (len(ins.args) == 3 and ins.args[1].upper() != "AS")):
            raise _error(line, "FROM requires either one or three arguments: FROM image [AS name]")
        if cmd == "FROM" and len(ins.args) == 3 and not STAGE_NAME.match(ins.args[2].lower()):
            raise _error(line, f"invalid name for build stage: {ins.args[2]!r}, name can't start "
                               "with a number or contain symbols")
        if not ins.args:
            raise _error(line, f"{cmd} requires at least one argument")
    else:                                              # WORKDIR USER STOPSIGNAL MAINTAINER
        ins.args = rest
        if not rest:
            raise _error(line, f"{cmd} requires exactly one argument")


def split_quoted(text, escape="\\"):
    """Split at blanks, keeping quoted parts (quotes and escapes stay: expand() removes them)."""
    words, word, quote, in_word, i = [], "", None, False, 0
    while i < len(text):
        ch = text[i]
        if quote is None and ch.isspace():
            if in_word:
                words.append(word)
            word, in_word = "", False
        elif ch == escape and quote != "'" and i + 1 < len(text):
            word, in_word = word + ch + text[i + 1], True
            i += 1
        elif ch == escape and i + 1 == len(text):
            pass                                        # a lone escape at the very end
        else:
            if quote is None and ch in "'\"":
                quote = ch
            elif ch == quote:
                quote = None
            word, in_word = word + ch, True
        i += 1
    if in_word:
        words.append(word)
    return words


def _name_values(rest, cmd, line, escape):
    """ENV/LABEL: `k=v k2="v 2"`, or the old form `k value with spaces`."""
    words = split_quoted(rest, escape)
    if not words:
        raise _error(line, f"{cmd} requires at least one argument")
    if "=" not in words[0]:
        parts = re.split(r"[ \t]+", rest, maxsplit=1)
        if len(parts) < 2:
            raise _error(line, f"{cmd} must have two arguments")
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        if "=" not in word:
            raise _error(line, f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs
