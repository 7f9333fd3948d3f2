"""`--change` instructions: Dockerfile lines that edit an image's config.

Layer: images (Docker's image service).  `docker commit --change` and `docker import
--change` accept a few Dockerfile instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
STOPSIGNAL; see docker-commit(1) and docker-import(1)) and apply them to the new image's
config.  This module turns one such line into the config fields it sets, the names the
image spec uses ("Cmd", "Env", "WorkingDir": github.com/opencontainers/image-spec,
config.md).  The engine (commit) and the image store (import) both use it, so it
lives here, below both, and imports nothing of the CLI.
"""
import json

from minidocker.errors import InvalidArgument

# The PATH docker puts in an image's Env when a change sets ENV (the runtime's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

FIELDS = {"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}


def parse_change(text: str) -> dict:
    """One `--change` line as image config fields: 'CMD ["sh"]' -> {"Cmd": ["sh"]}."""
    word, _, rest = text.strip().partition(" ")
    word, rest = word.upper(), rest.strip()
    if word == "CMD":
        return {"Cmd": _command(rest)}
    if word == "ENTRYPOINT":
        return {"Entrypoint": _command(rest)}
    if word == "ENV":
        key, _, value = rest.partition("=") if "=" in rest else rest.partition(" ")
        return {"Env": [f"PATH={DEFAULT_PATH}", f"{key}={value}"]}
    if word in FIELDS:
        return {FIELDS[word]: rest}
    raise InvalidArgument(f"{word} is not a valid change command")


def _command(rest: str) -> list:
    """The exec form (a JSON list) as is; the shell form wrapped in /bin/sh -c, as in a Dockerfile."""
    if rest.startswith("["):
        try:
            return [str(x) for x in json.loads(rest)]
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]
