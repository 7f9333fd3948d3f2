"""Registry credentials: docker login, docker logout, and where they are kept.

Layer: distribution (what ~/.docker/config.json and docker's registry/auth.go
`loginV2` do).  `login` proves the credentials against the registry (client.py
answers its challenge with them) and stores them only if they work.

Credentials live in $MINIDOCKER_CONFIG/config.json (default ~/.minidocker), like
docker's ~/.docker/config.json: {"auths": {"127.0.0.1:5000": {"auth": base64("user:pass")}}}.
base64 is not encryption: the file is created 0600 in a 0700 directory, and written
to a temp file renamed into place, so it is never readable by others, even briefly.
Docker Hub's credentials are filed under the key "https://index.docker.io/v1/".
"""
import base64
import json
import os

from minidocker import fsutil
from minidocker.distribution import client
from minidocker.errors import InvalidArgument
from minidocker.image import reference

HUB = "https://index.docker.io/v1/"          # the key docker files Docker Hub's login under
HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/",
             "https://registry-1.docker.io", "https://index.docker.io")


def config_dir() -> str:
    return os.environ.get("MINIDOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".minidocker")


def config_file() -> str:
    return os.path.join(config_dir(), "config.json")


def server_key(server: str | None) -> str:
    """What `login SERVER` files credentials under: "127.0.0.1:5000", or HUB."""
    if not server or server.rstrip("/") in HUB_NAMES or server in HUB_NAMES:
        return HUB
    for scheme in ("https://", "http://"):
        if server.startswith(scheme):
            server = server[len(scheme):]
    return server.split("/", 1)[0]


def _load() -> dict:
    try:
        with open(config_file()) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"cannot read {config_file()}: {e}") from None
    return data if isinstance(data, dict) else {}


def _save(data: dict) -> None:
    os.makedirs(config_dir(), mode=0o700, exist_ok=True)
    with fsutil.atomic_file(config_file(), "w", perms=0o600) as f:   # a password: owner only
        json.dump(data, f, indent="\t")
        f.write("\n")


def credentials(server: str) -> tuple[str, str] | None:
    """(user, password) stored for a registry, or None."""
    entry = _load().get("auths", {}).get(server_key(server))
    if not entry or "auth" not in entry:
        return None
    try:
        user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"{config_file()}: invalid auth entry for {server}") from None
    return (user, password) if sep else None


def store(server: str, user: str, password: str) -> str:
    """Save credentials; return the file they went to."""
    data = _load()
    data.setdefault("auths", {})[server_key(server)] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _save(data)
    return config_file()


def erase(server: str) -> bool:
    """Forget a registry's credentials; False if there were none."""
    data = _load()
    if server_key(server) not in data.get("auths", {}):
        return False
    del data["auths"][server_key(server)]
    _save(data)
    return True


def login(server: str | None, user: str, password: str) -> str:
    """docker login: check the credentials against the registry; store them only if
    they work.  Returns the file they went to."""
    key = server_key(server)
    registry = client.Client(reference.HUB if key == HUB else key, (user, password))
    registry.login()
    return store(key, user, password)


def logout(server: str | None) -> bool:
    """docker logout: forget a registry's credentials; False if there were none."""
    return erase(server_key(server))
