"""A container's bundle: its directory, and state.json with one owner.

Layer: runtime (the OCI runtime spec's "filesystem bundle", bundle.md, and the
state `runc state` reports, runtime.md "State").  Both the engine and the
monitor (shim.py) read and change a container's state; this module is the only
code that touches the files, so that the engine need not be imported by the
monitor, and so that every change is made the same safe way:

  - a change is read-modify-write under an exclusive flock(2) on the container's
    directory (changing_state / update_state): two writers never lose each
    other's fields, and a check ("is it starting?") and its change are one step;
  - every file is replaced by rename(2) of a complete temporary file, so a reader
    without the lock still never sees half a file;
  - reading is pure: verdict() says what a state *means* now (a "running"
    container whose monitor died is exited, 255) without writing it; settle()
    records that verdict, called explicitly by the engine.

A container is a directory ROOT/containers/<id>/:
    config.json   what `create` decided (docker's inspect shape)
    state.json    created -> starting -> running -> exited
    spec.json     the runtime spec the engine built at start (exec reuses it)
    json.log      stdout/stderr as docker's json-file log driver writes them
    upper/ work/ init/ rootfs/   the snapshot (engine/snapshots.py)
Entries whose name starts with a dot are not containers: ".<id>" is one being
created, ".rm-<id>" one being removed.
"""
import contextlib
import fcntl
import json
import os
import shutil

from minidocker import config
from minidocker.fsutil import write_atomic
from minidocker.errors import NotFound
from minidocker.runtime import procs

NEVER = "0001-01-01T00:00:00Z"           # docker's zero time
INITIAL_STATE = {
    "Status": "created", "Running": False, "Paused": False, "Restarting": False,
    "OOMKilled": False, "Dead": False, "Pid": 0, "PidStart": 0, "ExitCode": 0, "Error": "",
    "StartedAt": NEVER, "FinishedAt": NEVER, "ShimPid": 0, "ShimStart": 0,
    "StarterPid": 0, "StarterStart": 0}


def path(cid, *parts) -> str:
    return config.path("containers", cid, *parts)


def ids() -> list[str]:
    """Every container's id: dot entries (being created or removed) are not containers."""
    base = config.path("containers")
    names = os.listdir(base) if os.path.isdir(base) else []
    return [n for n in names if not n.startswith(".")]


# -- files ---------------------------------------------------------------------------

def write_json(file, obj) -> None:
    write_atomic(file, json.dumps(obj, indent=1).encode())


def write_file(cid, name, data: bytes) -> str:
    """A file of the container's own (its /etc/hosts...); returns its path."""
    write_atomic(path(cid, name), data)
    return path(cid, name)


def _read_json(cid, name):
    try:
        with open(path(cid, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        raise NotFound(f"No such container: {cid[:12]}") from None


def read_config(cid) -> dict:
    return _read_json(cid, "config.json")


def read_spec(cid) -> dict:
    return _read_json(cid, "spec.json")


def read_state(cid) -> dict:
    """state.json as written: see verdict() for what it means now."""
    return _read_json(cid, "state.json")


def state(cid) -> dict:
    """The container's state as it is now (read_state, then verdict); writes nothing."""
    return verdict(read_state(cid))


# -- changing state: one way, under the lock -------------------------------------------

@contextlib.contextmanager
def locked(cid):
    """An exclusive flock(2) on the container's directory for the with-block."""
    try:
        fd = os.open(path(cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"No such container: {cid[:12]}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                      # closing the last fd releases the lock


@contextlib.contextmanager
def changing_state(cid):
    """with changing_state(cid) as state: ... -- read, change the dict, written back
    on leaving the block (not if it raises).  The only way state.json changes."""
    with locked(cid):
        if not os.path.exists(path(cid, "state.json")):   # removed while we waited
            raise NotFound(f"No such container: {cid[:12]}")
        state = read_state(cid)
        yield state
        write_json(path(cid, "state.json"), state)


def update_state(cid, **changes) -> dict:
    with changing_state(cid) as state:
        state.update(changes)
    return state


def create(cid, record: dict) -> None:
    """Make a container's directory (its snapshot dirs, config and state), complete
    or not at all: it is built as ".<id>" and renamed into place."""
    tmp = config.path("containers", "." + cid)
    for sub in ("upper", "work", "rootfs"):
        os.makedirs(os.path.join(tmp, sub))
    write_json(os.path.join(tmp, "config.json"), record)
    write_json(os.path.join(tmp, "state.json"), dict(INITIAL_STATE))
    os.rename(tmp, path(cid))


def write_config(cid, record: dict) -> None:
    with locked(cid):
        write_json(path(cid, "config.json"), record)


def write_spec(cid, spec: dict) -> None:
    write_json(path(cid, "spec.json"), spec)


def remove(cid) -> bool:
    """Delete a container's directory; False if it was already gone.  It is renamed
    to ".rm-<id>" first, so listings drop it at once even if deleting takes long,
    and leftovers of an interrupted removal are deleted too."""
    base = config.path("containers")
    gone = False
    try:
        with locked(cid):                 # not while a state change is under way
            os.rename(path(cid), os.path.join(base, ".rm-" + cid))
    except (NotFound, FileNotFoundError):
        gone = True
    for name in os.listdir(base) if os.path.isdir(base) else []:
        if name.startswith(".rm-"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return not gone


# -- what a state means now ------------------------------------------------------------------

def verdict(state: dict) -> dict:
    """The state as it is now, computed, never written (settle() writes it).

    "running" with its monitor gone: the container died with it (exited, 255).
    "starting" with both its starter and its monitor gone: a start that never
    finished; the container is back to what it was."""
    status = state["Status"]
    if status == "running" and not procs.alive(state["ShimPid"], state["ShimStart"]):
        return dict(state, Status="exited", Running=False, ExitCode=255, Pid=0,
                    Error=state.get("Error") or "the container's monitor died")
    if status == "starting" and not procs.alive(state.get("StarterPid"), state.get("StarterStart")) \
            and not procs.alive(state["ShimPid"], state["ShimStart"]):
        return dict(state, Status="created" if state["StartedAt"] == NEVER else "exited")
    return state


def settle(cid, finished_at: str) -> dict:
    """Record verdict() in state.json (with the time it was noticed); return the state."""
    with changing_state(cid) as state:
        now = dict(verdict(state))      # a copy: state is cleared below
        if now["Status"] != state["Status"]:
            if now["Status"] == "exited" and state["Status"] == "running":
                now["FinishedAt"] = finished_at
            state.clear()
            state.update(now)
    return state
