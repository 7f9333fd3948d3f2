"""Concurrent pulls of one image into one store (issue 9: the pull race).

Three `minidocker pull` processes of the same image start at once, through a proxy
that slows the registry down (so their downloads of the same blob overlap), into
one fresh store.  All must succeed, none may print a traceback, every blob in the
store must match its digest, and no partial or temp file may be left.  Before the
fix, the partial file was opened before its lock (so the size read under the lock
was stale) and the first puller deleted the file the others held: a traceback.
"""
import hashlib
import json
import os
import subprocess
import sys

from conftest import REPO
from registry_fixtures import CuttingProxy
from test_registry import ACCEPT, client_config, fresh, leftovers, ok, push_busybox, reg   # noqa: F401 (fixtures)


def _pull_at_once(host, ref, root, n):
    env = {k: v for k, v in os.environ.items() if k != "MINIDOCKER_TRACE_HTTP"}
    env.update(MINIDOCKER_ROOT=str(root), MINIDOCKER_PROGRESS="plain")
    procs = [subprocess.Popen([sys.executable, "-m", "minidocker", "pull", f"{host}/{ref}"], env=env,
                              cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        results.append((p.returncode, out, err))
    return results


def _store_verifies(root):
    """Every blob's content hashes to its name (what `docker image inspect` trusts)."""
    blobs = os.path.join(root, "image", "blobs", "sha256")
    names = os.listdir(blobs)
    for name in names:
        h = hashlib.sha256()
        with open(os.path.join(blobs, name), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == name, f"blob {name} does not match its digest"
    return names


def test_concurrent_pulls_of_one_image_all_succeed(images_root, reg, fresh):
    push_busybox(images_root, reg.host, "race/busybox")
    # The empty store is made first: store._init_layout has a race of its own on an empty
    # root (index.json missing for a moment; fix proposed to image/store.py's owner).
    # Remove this line once it is fixed, and this test covers that race too.
    ok("images", root=fresh)
    with CuttingProxy(reg.port, rate=1_000_000) as proxy:       # ~1 s a layer: the pulls overlap
        results = _pull_at_once(proxy.host, "race/busybox", fresh, 3)
        for code, out, err in results:
            assert "Traceback" not in err, err
            assert code == 0, err
            assert out.splitlines()[-1] == f"{proxy.host}/race/busybox:latest", out
        gets = [h for h in proxy.heads if h.startswith("GET ") and "/blobs/" in h]
    assert len(_store_verifies(fresh)) >= 3                     # layer, config, manifest
    assert leftovers(fresh) == []
    tmp = os.path.join(fresh, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []
    # the layer was downloaded once: the other pullers waited for it, then used it
    assert any(": Waiting" in out and ": Already exists" in out for _, out, _ in results), results
    layer = json.loads(reg.get("/v2/race/busybox/manifests/latest", {"Accept": ACCEPT})[2])["layers"][0]
    assert len([h for h in gets if layer["digest"] in h.split("\r\n")[0]]) == 1, gets
    image = ok("run", "--rm", f"{proxy.host}/race/busybox", "echo", "raced", root=fresh)
    assert image.stdout == "raced\n"
