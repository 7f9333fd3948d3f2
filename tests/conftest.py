"""Shared fixtures: every test gets its own MINIDOCKER_ROOT, and after every test
we check with the kernel that nothing leaked: no mount under the root, no cgroup,
no process of the test's containers.

Standard library only: the cgroup tests also run in the v2 guest, whose python3
has pytest and nothing else.
"""
import glob
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# One cgroup parent for the whole session, removed at the end: tests never touch
# the cgroups of a student's containers or of another test run.
os.environ.setdefault("MINIDOCKER_CGROUP_PARENT", f"minidocker-test-{os.getpid()}")

_images_cache = {}


def cgroup_dirs(parent=None):
    """Every cgroup directory under our parent, in any hierarchy (v1 or v2)."""
    parent = parent or os.environ["MINIDOCKER_CGROUP_PARENT"]
    found = set()
    for base in glob.glob("/sys/fs/cgroup/*/") + ["/sys/fs/cgroup/"]:
        for d in glob.glob(os.path.join(base, parent, "*")):
            if os.path.isdir(d):
                found.add(d)
    return found


def processes_of(root):
    """Live processes started for this root: monitors carry MINIDOCKER_ROOT in their
    environment; container processes sit in a cgroup under our parent."""
    parent = os.environ["MINIDOCKER_CGROUP_PARENT"]
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if f"MINIDOCKER_ROOT={root}".encode() in env or f"/{parent}/" in cg:
            found.append(int(pid))
    return found


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


@pytest.fixture
def root(tmp_path_factory, monkeypatch):
    """A fresh MINIDOCKER_ROOT for one test, checked for leaks afterwards."""
    path = str(tmp_path_factory.mktemp("root"))
    monkeypatch.setenv("MINIDOCKER_ROOT", path)
    before = cgroup_dirs()
    yield path
    deadline = time.monotonic() + 5       # monitors finish their last writes
    while time.monotonic() < deadline and (processes_of(path) or cgroup_dirs() - before):
        time.sleep(0.05)
    leaked = {"processes": processes_of(path), "cgroups": sorted(cgroup_dirs() - before),
              "mounts": mounts_under(path)}
    for pid in leaked["processes"]:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for mount in reversed(leaked["mounts"]):
        subprocess.run(["umount", "-l", mount], check=False)
    assert not any(leaked.values()), f"leaked: {leaked}"


@pytest.fixture
def images_root(root):
    """A root with busybox and hello-world, copied from a session-wide store (fast)."""
    from minidocker.image import setup
    cache = _images_cache.get("path")
    if cache is None:
        cache = tempfile.mkdtemp(prefix="minidocker-images-")
        os.environ["MINIDOCKER_ROOT"] = cache
        list(setup.install_base_images())
        os.environ["MINIDOCKER_ROOT"] = root
        _images_cache["path"] = cache
    for sub in ("image", "layers"):
        subprocess.run(["cp", "-a", os.path.join(cache, sub), root], check=True)
    return root


def pytest_sessionfinish(session, exitstatus):
    if "path" in _images_cache:
        shutil.rmtree(_images_cache["path"], ignore_errors=True)
    parent = os.environ["MINIDOCKER_CGROUP_PARENT"]
    for base in glob.glob("/sys/fs/cgroup/*/") + ["/sys/fs/cgroup/"]:
        d = os.path.join(base, parent)
        if os.path.isdir(d):
            try:
                os.rmdir(d)
            except OSError:
                pass


def layer_tar(path, files):
    """A layer tar with regular files {name: bytes}."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o755
            tf.addfile(ti, io.BytesIO(data))
    return str(path)


def minidocker(*args, input=None, timeout=60, check=False):
    """Run the CLI as a user would: a separate process, its output and exit code."""
    proc = subprocess.run([sys.executable, "-m", "minidocker", *args], input=input,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"minidocker {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return minidocker
