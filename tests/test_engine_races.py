"""The engine's error and concurrency paths (issue 9): each test failed before its fix.

The monitor fails on purpose where MINIDOCKER_FAULT says (shim._fault), as a
cgroup, a pipe or a disk can; everything is then checked with the kernel: which
processes exist, what is in the cgroup, what state.json says.
"""
import json
import os
import select
import signal
import subprocess
import threading
import time

import pytest

from minidocker import config
from minidocker.engine import containers
from minidocker.errors import CommandNotFound, Conflict, MinidockerError, NotFound
from minidocker.image import store
from minidocker.runtime import cgroups, runc


def processes_running(argv):
    """Pids of the live processes whose command line is exactly argv."""
    want = "\0".join(argv) + "\0"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if cmdline == want and not zombie:
            found.append(int(pid))
    return found


def monitors_of(cid):
    """Pids of the live monitors (python -m minidocker.shim ID ...) of container cid."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))
            if b"minidocker.shim\0" + cid.encode() in _cmdline(pid)]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def state_file(cid):
    return os.path.join(config.path("containers", cid), "state.json")


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


# -- a: no exec without the monitor's go -------------------------------------------------------

def test_setup_failure_after_fork_starts_no_container(images_root, monkeypatch):
    """The cgroup step fails after the runtime forked: before, the middle process went
    on when the monitor exited and ran the command orphaned, outside any cgroup."""
    argv = ["sleep", "31415"]
    c = containers.create("busybox", argv)
    monkeypatch.setenv("MINIDOCKER_FAULT", "before_start")
    try:
        with pytest.raises(MinidockerError, match="injected fault at before_start"):
            containers.start(c.id)
        time.sleep(1.5)                   # time enough for an orphan to exec
        assert processes_running(argv) == []
        state = c.state
        assert state["Status"] == "created" and "injected fault" in state["Error"]
        assert state["ExitCode"] != 0 and state["Pid"] == 0
    finally:
        kill_all(processes_running(argv))
        c.remove(force=True)


# -- b: one start at a time ----------------------------------------------------------------------

def test_concurrent_starts_make_one_monitor_and_one_pid1(images_root):
    c = containers.create("busybox", ["sleep", "60"])
    barrier, outcomes = threading.Barrier(2), []

    def start():
        barrier.wait()
        try:
            containers.start(c.id)
            outcomes.append("started")
        except Conflict as e:
            outcomes.append(str(e))
    threads = [threading.Thread(target=start) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        time.sleep(0.5)                   # a second monitor would be making its container now
        assert c.state["Status"] == "running"
        assert len(monitors_of(c.id)) == 1
        assert len(cgroups.Cgroup(c.id).pids()) == 1        # one PID 1, nothing else
        refused = [o for o in outcomes if o != "started"]
        assert all("already being started" in o and "\n" not in o for o in refused)
    finally:
        c.remove(force=True)


# -- c: errors are not swallowed ---------------------------------------------------------------

def test_crashed_monitor_marks_running_container_exited_255(images_root, monkeypatch):
    """Before: the monitor's last-resort handler wrote "created" over a running container."""
    monkeypatch.setenv("MINIDOCKER_FAULT", "pump")
    c = containers.create("busybox", ["sh", "-c", "echo hi; sleep 60"])
    try:
        containers.start(c.id)
        assert containers.wait(c.id, timeout=20) == 255
        state = c.state
        assert state["Status"] == "exited" and "injected fault at pump" in state["Error"]
        assert cgroups.Cgroup(c.id).pids() == []
    finally:
        c.remove(force=True)


def test_read_error_is_recorded_not_dropped(images_root, monkeypatch):
    """Before: both branches of the read's OSError handler dropped the error."""
    monkeypatch.setenv("MINIDOCKER_FAULT", "read")
    c = containers.create("busybox", ["sh", "-c", "echo hi; sleep 0.3"])
    try:
        containers.start(c.id)
        assert containers.wait(c.id, timeout=20) == 0
        assert "injected fault at read" in c.state["Error"]
    finally:
        c.remove(force=True)


def test_removal_leftovers_are_not_containers(images_root):
    """A removal interrupted after its rename leaves ".rm-<id>": not listed, and swept."""
    a = containers.create("busybox", ["true"])
    b = containers.create("busybox", ["true"])
    base = config.path("containers")
    subprocess.run(["cp", "-a", os.path.join(base, a.id), os.path.join(base, ".rm-" + a.id)], check=True)
    os.rename(os.path.join(base, a.id), os.path.join(base, ".rm-x"))    # another leftover
    assert [c.id for c in containers.list_containers(all=True)] == [b.id]
    with pytest.raises(NotFound):
        containers.get(".rm-" + a.id)
    b.remove()
    assert os.listdir(base) == []


def test_failed_exec_leaks_no_descriptor(images_root):
    """Before: the error pipe was made before the namespaces were opened, and leaked
    when opening them failed (the container's PID 1 gone)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    spec = {"process": {"args": ["true"], "env": [], "capabilities": []}, "namespaces": []}
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(NotFound):
            runc.exec_in(gone.pid, spec, dict(spec["process"]), (0, 1, 2))
    assert sorted(os.listdir("/proc/self/fd")) == before
    # ...and through the engine: a command that is not there, in a running container
    c = containers.create("busybox", ["sleep", "60"])
    try:
        containers.start(c.id)
        with open(os.devnull, "r+") as null:
            before = sorted(os.listdir("/proc/self/fd"))
            for _ in range(3):
                with pytest.raises(CommandNotFound):
                    containers.exec_process(c.id, ["nosuchcommand"], stdio=(null.fileno(),) * 3)
            assert sorted(os.listdir("/proc/self/fd")) == before
    finally:
        c.remove(force=True)


# -- d: signals reach the container's process, or nobody -------------------------------------

def test_kill_never_signals_a_reused_pid(images_root):
    """state.json's Pid now names a stranger (the pid was reused): kill must not reach it."""
    c = containers.create("busybox", ["sleep", "60"])
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        containers.start(c.id)
        with open(state_file(c.id)) as f:
            state = json.load(f)
        real = state["Pid"]
        state["Pid"] = stranger.pid
        with open(state_file(c.id), "w") as f:
            json.dump(state, f)
        containers.kill(c.id, "KILL")
        time.sleep(0.2)
        assert stranger.poll() is None
        state["Pid"] = real
        with open(state_file(c.id), "w") as f:
            json.dump(state, f)
    finally:
        stranger.kill()
        stranger.wait()
        c.remove(force=True)


def test_reading_state_writes_nothing(images_root):
    """Before: reading .state wrote state.json when it found the monitor dead."""
    c = containers.create("busybox", ["sleep", "60"])
    try:
        containers.start(c.id)
        pidfd = os.pidfd_open(c.state["ShimPid"])
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        select.select([pidfd], [], [], 10)            # readable once the monitor has exited
        os.close(pidfd)
        state = c.state
        assert (state["Status"], state["ExitCode"]) == ("exited", 255)
        assert "monitor died" in state["Error"]
        with open(state_file(c.id)) as f:
            assert json.load(f)["Status"] == "running"      # the verdict is computed, not written
    finally:
        c.remove(force=True)                 # its cgroup goes, with the orphaned PID 1


# -- e: images in use ------------------------------------------------------------------------

def test_running_ids(images_root):
    running = containers.create("busybox", ["sleep", "60"])
    stopped = containers.create("busybox", ["true"])
    try:
        containers.start(running.id)
        assert containers.running_ids() == {running.id}
    finally:
        running.remove(force=True)
        stopped.remove()


@pytest.mark.skipif(not hasattr(store, "lease"), reason="image leases (image/store.py) not merged yet")
def test_images_of_containers_are_leased(images_root):
    c = containers.create("busybox", ["sleep", "60"])
    try:
        containers.start(c.id)
        with pytest.raises(Conflict):
            containers.remove_image("busybox", force=True)    # a running container uses it
        c.stop(timeout=0)
        with pytest.raises(Conflict):
            containers.remove_image("busybox")                # a stopped one, without force
        containers.remove_image("busybox", force=True)        # untagged; its layers stay
        assert c.start() and containers.wait(c.id, timeout=0.5) is None
    finally:
        c.remove(force=True)
