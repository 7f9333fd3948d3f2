"""Container names: docker-style random names, and finding a container by name or id.

Layer: engine (dockerd's names: the runtime knows containers by id only).
docker's own list of random names (moby pkg/namesgenerator) honours scientists
and hackers; this is a shorter list of our own in the same spirit, with people
from the history of operating systems and containers.
"""
import secrets

from minidocker.errors import InvalidArgument, NotFound
from minidocker.runtime import bundle

ADJECTIVES = [
    "admiring", "bold", "brave", "busy", "calm", "clever", "cool", "eager", "elegant",
    "focused", "gallant", "happy", "jolly", "keen", "kind", "lucid", "modest", "nifty",
    "patient", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "wizardly", "zen",
]

SURNAMES = [
    "allen", "bach", "corbato", "dijkstra", "engelbart", "hamilton", "hopper", "kernighan",
    "knuth", "lamport", "liskov", "lovelace", "mccarthy", "menage", "mckusick", "pike",
    "raymond", "ritchie", "saltzer", "shannon", "tanenbaum", "thompson", "torvalds", "turing",
    "wilkes", "wirth",
]


def check_workdir(workdir) -> None:
    """-w must be absolute: relative to what, in a root the caller has never seen?
    (moby's verifyContainerSettings says the same words.)"""
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")


def random_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"


def name_of(cid: str) -> str:
    return bundle.read_config(cid)["Name"].lstrip("/")


def resolve(ref: str) -> str:
    """A container's full id from its full id, its name, or a unique id prefix (docker's order)."""
    ids = bundle.ids()
    if ref in ids:
        return ref
    for cid in ids:
        try:
            if name_of(cid) == ref.lstrip("/"):
                return cid
        except NotFound:
            continue                      # removed while we looked
    matches = [cid for cid in ids if ref and cid.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NotFound(f"multiple IDs found with provided prefix: {ref}")
    raise NotFound(f"No such container: {ref}")
