"""`--change` instructions and ENV: Dockerfile lines that edit an image's config.

Layer: images (Docker's image service).  `docker commit --change` and `docker import
--change` accept a few Dockerfile instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
STOPSIGNAL; see docker-commit(1) and docker-import(1)) and apply them to the new image's
config.  This module turns one such line into the config fields it sets, the names the
image spec uses ("Cmd", "Env", "WorkingDir": github.com/opencontainers/image-spec,
config.md).  The engine (commit) and the image store (import) both use it, so it
lives here, below both, and imports nothing of the CLI.
"""
import json

from minidocker.config import DEFAULT_PATH
from minidocker.errors import InvalidArgument


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


def merge_env(base, more):
    """`base` (["KEY=VALUE", ...]) with each KEY=VALUE of `more` put in: in its place
    where base has KEY, else appended; a bare KEY (no "=") removes it.  This is
    docker's ReplaceOrAppendEnvValues (moby container/env.go), which ENV, `run -e`,
    `exec -e` and `commit --change ENV` all go through."""
    merged = dict(item.partition("=")[::2] for item in base)
    for item in more:
        key, eq, value = item.partition("=")
        if eq:
            merged[key] = value
        else:
            merged.pop(key, None)
    return [f"{k}={v}" for k, v in merged.items()]


def _command(rest: str) -> list:
    """The exec form (a JSON list) as is; the shell form wrapped in /bin/sh -c, as in a Dockerfile."""
    if rest.startswith("["):
        try:
            return [str(x) for x in json.loads(rest)]
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]
