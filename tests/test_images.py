"""Images are snapshots: the OCI store, stacked layers, commit/diff/history, save/load,
and the peers (docker, skopeo) reading what we write.  Real mounts, real files."""
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import uuid

import pytest

from conftest import REPO, layer_tar
from minidocker import fmt
from minidocker.image import archive, store
from minidocker.engine import containers, snapshots
from minidocker.errors import InvalidArgument


# ---- helpers -------------------------------------------------------------------------

def stacked(tmp_path, n, ref):
    """busybox plus n layers: layer i adds /layer-i and writes /top = i."""
    files = [layer_tar(tmp_path / f"{i}.tar", {f"layer-{i}": b"", "top": str(i).encode()})
             for i in range(n)]
    step = {"created": fmt.now(), "created_by": "one more layer"}
    return store.add(files, store.get("busybox").config, ref, [step] * n)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def in_root(root, *args, input=None):
    """The CLI against another root (a fresh machine, for load)."""
    env = dict(os.environ, MINIDOCKER_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "minidocker", *args], cwd=REPO, env=env,
                          input=input, capture_output=True, timeout=120)


def one_line_error(proc):
    err = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
    assert proc.returncode != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def overlay_lowers(pid):
    """The lowerdir= of the overlay mounted on / of process pid, from the host."""
    with open(f"/proc/{pid}/mountinfo") as f:
        line = next(l for l in f if l.split()[4] == "/")
    options = line.split(" - ")[1].split()[2]
    return next(o for o in options.split(",") if o.startswith("lowerdir=")).split("=", 1)[1]


def peer(*cmd):
    """Is this peer installed and answering?  (docker needs its daemon.)"""
    if not shutil.which(cmd[0]):
        return False
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


needs_docker = pytest.mark.skipif(not peer("docker", "info"),
                                  reason="docker is not installed or its daemon does not answer "
                                         "(`docker info` fails): peer test skipped")
needs_skopeo = pytest.mark.skipif(not peer("skopeo", "--version"),
                                  reason="skopeo is not installed: peer test skipped")


# ---- the store is an OCI image layout ---------------------------------------------------

def test_store_is_an_oci_layout(images_root):
    layout = os.path.join(images_root, "image")
    with open(os.path.join(layout, "oci-layout")) as f:
        assert json.load(f) == {"imageLayoutVersion": "1.0.0"}
    for name in os.listdir(os.path.join(layout, "blobs", "sha256")):    # named by content
        assert sha256_file(os.path.join(layout, "blobs", "sha256", name)) == "sha256:" + name
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    refs = {d["annotations"][store.REF_NAME]: d["digest"] for d in index["manifests"]}
    assert set(refs) == {"busybox:latest", "hello-world:latest"}
    busybox = store.get("busybox")
    assert refs["busybox:latest"] == busybox.manifest_digest
    assert busybox.manifest["config"]["digest"] == busybox.id
    # layers are kept uncompressed: a layer blob's digest is its diff_id
    assert [l["digest"] for l in busybox.manifest["layers"]] == busybox.diff_ids
    # SIZE is the file data of the extracted layers, as docker counts it
    data = sum(os.lstat(os.path.join(top, n)).st_size for d in busybox.layer_dirs()
               for top, _, names in os.walk(d) for n in names
               if os.path.isfile(os.path.join(top, n)) and not os.path.islink(os.path.join(top, n)))
    assert busybox.size == data > 1_000_000


def test_corrupted_blobs_are_refused(cli, images_root):
    busybox = store.get("busybox")
    layer = busybox.diff_ids[0]
    shutil.rmtree(store.layer_dir(layer))               # force a new extraction...
    with open(store.blob_path(layer), "r+b") as f:      # ...of a damaged blob
        f.seek(5000)
        f.write(b"X")
    run = cli("run", "--rm", "busybox", "true")
    assert run.returncode == 125 and f"blob {layer} does not match its digest" in run.stderr
    assert not os.path.exists(store.layer_dir(layer))    # nothing half-extracted was kept
    assert os.listdir(store.tmpdir()) == []
    save = cli("save", "-o", os.path.join(images_root, "out.tar"), "busybox")
    assert "does not match its digest" in one_line_error(save)
    assert not [n for n in os.listdir(images_root) if "save" in n or n == "out.tar"]
    with open(store.blob_path(busybox.id), "ab") as f:  # a config: every reader notices
        f.write(b" ")
    assert "does not match its digest" in one_line_error(cli("image", "inspect", "busybox"))


# ---- layers stack in one overlay mount ----------------------------------------------------

def test_150_layers_stack_in_one_mount(cli, images_root, tmp_path):
    image = stacked(tmp_path, 150, "deep:150")          # busybox + 150: 151 layers
    absolute = "lowerdir=" + ":".join(image.layer_dirs())
    assert len(absolute) > 4096          # absolute paths would not fit in mount(2)'s page
    cid = cli("run", "-d", "deep:150", "sh", "-c", "cat /top; ls / | grep -c '^layer-'; sleep 60",
              check=True).stdout.strip()
    try:
        time.sleep(0.3)
        pid = containers.get(cid).state["Pid"]
        lowers = overlay_lowers(pid).split(":")
        assert len(lowers) == 152 and lowers[0] == f"../containers/{cid}/init"
        assert lowers[1:] == [store.layer_link(d) for d in reversed(image.diff_ids)]
        assert all(len(name) == store.SHORT for name in lowers[1:])
        link = os.path.join(images_root, "l", lowers[1])
        assert os.path.realpath(link) == store.layer_dir(image.diff_ids[-1])
        assert cli("logs", cid).stdout == "149150\n"   # the top layer wins; all 150 are seen
    finally:
        cli("rm", "-f", cid, check=True)


def test_kernel_stacks_500_lower_dirs_not_501(tmp_path):
    """overlayfs's limit (OVL_MAX_STACK), which store.MAX_LAYERS is derived from."""
    for i in range(501):
        os.mkdir(tmp_path / f"{i:03x}")
    (tmp_path / "m").mkdir()

    def mount(n):
        lowers = ":".join(f"{i:03x}" for i in range(n))
        return subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowers}",
                               "m"], cwd=tmp_path, capture_output=True, text=True)
    assert mount(500).returncode == 0
    subprocess.run(["umount", tmp_path / "m"], check=True)
    assert mount(501).returncode != 0


def test_499_layers_run_and_no_more(cli, images_root, tmp_path):
    image = stacked(tmp_path, store.MAX_LAYERS - 1, "deep:max")     # busybox + 498 = 499
    assert len(image.diff_ids) == store.MAX_LAYERS
    run = cli("run", "--name", "deepest", "deep:max", "sh", "-c", "cat /top; touch /new")
    assert (run.returncode, run.stdout) == (0, "497")      # 500 lower dirs in one page
    before = sorted(os.listdir(os.path.join(images_root, "image", "blobs", "sha256")))
    commit = cli("commit", "deepest", "deeper")
    assert "max depth exceeded: an image can have at most 499 layers" in one_line_error(commit)
    assert sorted(os.listdir(os.path.join(images_root, "image", "blobs", "sha256"))) == before
    with pytest.raises(InvalidArgument, match="max depth exceeded"):
        store.add([layer_tar(tmp_path / "x.tar", {"x": b""})], image.config, "deeper")
    cli("rm", "deepest", check=True)


def test_snapshot_cost_does_not_grow_with_the_image(images_root, tmp_path):
    class Zeros:
        def __init__(self, n):
            self.n = n

        def read(self, k):
            k = min(k, self.n)
            self.n -= k
            return bytes(k)
    path = tmp_path / "big.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("big")
        ti.size = 100 << 20
        tf.addfile(ti, Zeros(ti.size))
    big = store.add([str(path)], store.get("busybox").config, "big")
    assert big.size > 100e6

    def create_start(image):
        t = time.monotonic()
        c = containers.create(image, ["true"])
        containers.start(c.id)
        took = time.monotonic() - t
        containers.wait(c.id)
        mine = subprocess.run(["du", "-sb", containers._dir(c.id, "upper"),
                               containers._dir(c.id, "init")], capture_output=True, text=True)
        c.remove()
        return took, sum(int(line.split()[0]) for line in mine.stdout.splitlines())
    small_runs = [create_start("busybox") for _ in range(5)]
    big_runs = [create_start("big") for _ in range(5)]
    assert max(b for _, b in small_runs + big_runs) < 64 << 10     # nothing was copied
    small, large = (statistics.median(t for t, _ in runs) for runs in (small_runs, big_runs))
    assert large < 2 * small + 0.2, (small, large)


# ---- diff, commit, history ----------------------------------------------------------------

def test_diff_shows_docker_kinds(cli, images_root):
    cli("run", "--name", "fresh", "busybox", "true", check=True)
    assert cli("diff", "fresh").stdout == ""          # mount points live in the init layer
    script = "echo new > /tmp/new; echo x >> /etc/passwd; rm /etc/group; mkdir -p /opt/a/b"
    cli("run", "--name", "changed", "busybox", "sh", "-c", script, check=True)
    assert cli("diff", "changed").stdout.splitlines() == [
        "C /etc", "D /etc/group", "C /etc/passwd", "A /opt", "A /opt/a", "A /opt/a/b",
        "C /tmp", "A /tmp/new"]
    assert {"Path": "/etc/group", "Kind": 2} in containers.get("changed").diff()
    assert "No such container" in one_line_error(cli("diff", "nosuch"))
    cli("rm", "fresh", "changed", check=True)


def test_commit_with_new_cmd_runs_and_shows_in_history(cli, images_root):
    script = "printf '#!/bin/sh\\necho hello from a commit\\n' > /hello.sh; chmod +x /hello.sh"
    cli("run", "--name", "builder", "busybox", "sh", "-c", script, check=True)
    out = cli("commit", "-c", 'CMD ["/hello.sh"]', "-m", "add hello", "-a", "Ann <ann@example.org>",
              "builder", "hello:v1", check=True).stdout.strip()
    image = store.get("hello:v1")
    assert out == image.id and image.config["config"]["Cmd"] == ["/hello.sh"]
    assert image.config["author"] == "Ann <ann@example.org>"
    assert image.diff_ids[:-1] == store.get("busybox").diff_ids
    assert cli("run", "--rm", "hello:v1").stdout == "hello from a commit\n"
    history = cli("history", "hello:v1").stdout.splitlines()
    assert history[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(history) == 3
    assert history[1].startswith(image.short_id) and history[1].endswith("add hello")
    assert ("sh -c " + script)[:44] + "…" in history[1]            # 45 columns, as docker
    assert history[2].startswith(store.get("busybox").short_id)   # the parent is here
    full = cli("history", "--no-trunc", "hello:v1").stdout
    assert script in full and image.id in full
    cli("rm", "builder", check=True)
    cli("rmi", "busybox", check=True)               # now busybox's step has no image of its own
    assert cli("history", "hello:v1").stdout.splitlines()[2].startswith("<missing>")


def test_commit_of_no_change_adds_no_layer(cli, images_root):
    cli("run", "--name", "idle", "busybox", "true", check=True)
    cli("commit", "-c", "ENV GREETING=hi", "idle", "same", check=True)
    same, busybox = store.get("same"), store.get("busybox")
    assert same.diff_ids == busybox.diff_ids and same.id != busybox.id
    assert same.config["history"][-1]["empty_layer"] is True
    assert "GREETING=hi" in same.config["config"]["Env"]
    assert cli("run", "--rm", "same", "sh", "-c", "echo $GREETING").stdout == "hi\n"
    assert cli("history", "same").stdout.splitlines()[1].split()[-1] == "0B"
    cli("rm", "idle", check=True)


def frozen(cid):
    """Is the container's cgroup frozen?  (v1 freezer.state, v2 cgroup.events)"""
    from minidocker.runtime import cgroups
    dirs = cgroups.Cgroup(cid).paths()
    if "freezer" in dirs:
        return open(os.path.join(dirs["freezer"], "freezer.state")).read().strip() == "FROZEN"
    return "frozen 1" in open(os.path.join(dirs["cpu"], "cgroup.events")).read()


def test_commit_running_container_freezes_it(cli, images_root, monkeypatch):
    from minidocker.image import layers
    cid = cli("run", "-d", "busybox", "sh", "-c",
              "i=0; while true; do i=$((i+1)); echo $i > /tmp/c; mv /tmp/c /count; done",
              check=True).stdout.strip()
    seen = []
    create = layers.create

    def packing(src, out):                   # what the kernel says while the upper is packed
        seen.append(frozen(cid))
        create(src, out)
    monkeypatch.setattr(layers, "create", packing)
    try:
        time.sleep(0.3)
        snapshots.commit(cid, "counting")
        snapshots.commit(cid, "counting:unpaused", pause=False)
        assert seen == [True, False] and not frozen(cid)
        assert containers.get(cid).status == "running"
        count = cli("run", "--rm", "counting", "cat", "/count").stdout
        assert int(count) > 0
    finally:
        cli("rm", "-f", cid, check=True)


def test_rmi_removes_layer_dirs_and_links(cli, images_root):
    cli("run", "--name", "writer", "busybox", "sh", "-c", "echo 1 > /one", check=True)
    cli("commit", "writer", "one", check=True)
    cli("run", "--rm", "one", "true", check=True)        # makes its short link
    top = store.get("one").diff_ids[-1]
    link = os.path.join(images_root, "l", store.layer_link(top))
    cli("rm", "writer", check=True)
    cli("rmi", "one", check=True)
    assert not os.path.lexists(link) and not os.path.exists(store.layer_dir(top))
    assert not os.path.exists(store.layer_dir(top) + ".size")
    assert not os.path.exists(store.blob_path(top))


# ---- save and load ---------------------------------------------------------------------

def test_save_load_docker_archive(cli, images_root, tmp_path):
    cli("run", "--name", "src", "busybox", "sh", "-c", "echo saved > /file", check=True)
    cli("commit", "-c", 'CMD ["cat", "/file"]', "src", "mine:v1", check=True)
    cli("rm", "src", check=True)
    mine, out = store.get("mine:v1"), tmp_path / "mine.tar"
    cli("save", "-o", str(out), "mine:v1", check=True)
    with tarfile.open(out) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))
        repositories = json.load(tf.extractfile("repositories"))
        config = tf.extractfile(mine.id[7:] + ".json").read()
    chains = archive.chain_ids(mine.diff_ids)
    assert manifest == [{"Config": mine.id[7:] + ".json", "RepoTags": ["mine:v1"],
                         "Layers": [c[7:] + "/layer.tar" for c in chains]}]
    assert repositories == {"mine": {"v1": chains[-1][7:]}}
    assert {c[7:] + "/VERSION" for c in chains} <= set(names)
    assert "sha256:" + hashlib.sha256(config).hexdigest() == mine.id
    again = tmp_path / "again.tar"
    with open(again, "wb") as f:                      # to stdout, the same bytes
        subprocess.run([sys.executable, "-m", "minidocker", "save", "mine:v1"], cwd=REPO,
                       stdout=f, check=True)
    assert sha256_file(out) == sha256_file(again)

    fresh = tmp_path / "fresh"
    loaded = in_root(fresh, "load", "-i", str(out))
    assert loaded.stdout == b"Loaded image: mine:v1\n"
    assert in_root(fresh, "images", "-q", "--no-trunc").stdout.decode().split() == [mine.id]
    assert in_root(fresh, "run", "--rm", "mine:v1").stdout == b"saved\n"
    assert in_root(fresh, "load", input=open(out, "rb").read()).returncode == 0   # stdin
    import gzip
    gz = in_root(tmp_path / "gz", "load", input=gzip.compress(open(out, "rb").read()))
    assert gz.stdout == b"Loaded image: mine:v1\n"


def test_save_load_oci_archive(cli, images_root, tmp_path):
    out = tmp_path / "oci.tar"
    cli("save", "--format", "oci", "-o", str(out), "busybox", "hello-world", check=True)
    with tarfile.open(out) as tf:
        index = json.load(tf.extractfile("index.json"))
        blobs = {n for n in tf.getnames() if n.startswith("blobs/sha256/")}
        assert json.load(tf.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        assert "manifest.json" in tf.getnames()        # docker load takes it too
    busybox = store.get("busybox")
    desc = next(d for d in index["manifests"] if d["digest"] == busybox.manifest_digest)
    assert desc["annotations"][store.REF_NAME] == "busybox:latest"
    assert "blobs/sha256/" + busybox.diff_ids[0][7:] in blobs
    fresh = tmp_path / "fresh"
    loaded = in_root(fresh, "image", "load", "-i", str(out)).stdout.decode().splitlines()
    assert sorted(loaded) == ["Loaded image: busybox:latest", "Loaded image: hello-world:latest"]
    assert b"Hello from minidocker!" in in_root(fresh, "run", "--rm", "hello-world").stdout
    moved = in_root(fresh, "load", "-i", str(out))     # again: same images, no message
    assert b"renaming" not in moved.stdout


def test_load_refuses_bad_archives(cli, images_root, tmp_path):
    def archive_of(files, path):
        with tarfile.open(path, "w") as tf:
            for name, data in files.items():
                ti = tarfile.TarInfo(name)
                if isinstance(data, tuple):           # a symlink
                    ti.type, ti.linkname = tarfile.SYMTYPE, data[0]
                    tf.addfile(ti)
                else:
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
        return str(path)
    busybox = store.get("busybox")
    config = store.read_blob(busybox.id)
    layer = open(store.blob_path(busybox.diff_ids[0]), "rb").read()
    wrong = bytearray(layer)
    wrong[5000] ^= 1
    cases = {
        "diffID": {"manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["x:1"],
                                                 "Layers": ["l.tar"]}]).encode(),
                   "c.json": config, "l.tar": bytes(wrong)},
        "is not a file in it": {"manifest.json": json.dumps([{"Config": "../../../etc/passwd",
                                                              "Layers": []}]).encode()},
        "is not a file in it ": {"manifest.json": json.dumps([{"Config": "c.json",
                                                              "Layers": []}]).encode(),
                                 "c.json": ("/etc/passwd",)},
        "no manifest.json": {"hello": b"hi"},
        "layers length mismatch": {"manifest.json": json.dumps([{"Config": "c.json",
                                                                 "Layers": []}]).encode(),
                                   "c.json": config},
    }
    fresh = tmp_path / "fresh"
    for i, (message, files) in enumerate(cases.items()):
        proc = in_root(fresh, "load", "-i", archive_of(files, tmp_path / f"{i}.tar"))
        assert message.strip() in one_line_error(proc)
    assert "not an image archive" in one_line_error(in_root(fresh, "load", input=b""))
    assert "no such file" in one_line_error(in_root(fresh, "load", "-i", "/nonexistent"))
    # nothing was stored from the refused archives, nothing was left behind
    assert in_root(fresh, "images", "-q").stdout == b""
    assert os.listdir(fresh / "image" / "blobs" / "sha256") == []
    assert os.listdir(fresh / "tmp") == []


# ---- peers ------------------------------------------------------------------------------

@needs_docker
def test_docker_loads_our_save_and_we_load_docker_save(cli, images_root, tmp_path):
    cli("run", "--name", "src", "busybox", "sh", "-c", "echo from minidocker > /file", check=True)
    name = f"minidocker-test-{uuid.uuid4().hex[:8]}:v1"     # a tag of our own in docker
    cli("commit", "-c", 'CMD ["cat", "/file"]', "src", name, check=True)
    cli("rm", "src", check=True)
    ours = store.get(name)
    cli("save", "-o", str(tmp_path / "ours.tar"), name, check=True)
    try:
        loaded = subprocess.run(["docker", "load", "-i", tmp_path / "ours.tar"],
                                capture_output=True, text=True, timeout=120)
        assert loaded.returncode == 0 and f"Loaded image: {name}" in loaded.stdout, loaded.stderr
        inspect = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", name],
                                 capture_output=True, text=True, check=True)
        assert inspect.stdout.strip() == ours.id              # the same config, the same ID
        subprocess.run(["docker", "save", "-o", tmp_path / "theirs.tar", name], check=True)
        fresh = tmp_path / "fresh"
        back = in_root(fresh, "load", "-i", str(tmp_path / "theirs.tar"))
        assert back.stdout.decode() == f"Loaded image: {name}\n"
        assert in_root(fresh, "run", "--rm", name).stdout == b"from minidocker\n"
        assert in_root(fresh, "images", "-q", "--no-trunc").stdout.decode().strip() == ours.id
    finally:
        subprocess.run(["docker", "rmi", name], capture_output=True)


@needs_skopeo
def test_skopeo_reads_our_layout_and_archives(cli, images_root, tmp_path):
    busybox = store.get("busybox")
    layout = os.path.join(images_root, "image")
    seen = subprocess.run(["skopeo", "inspect", f"oci:{layout}:busybox:latest"],
                          capture_output=True, text=True, check=True)
    info = json.loads(seen.stdout)
    assert info["Digest"] == busybox.manifest_digest and info["Layers"] == busybox.diff_ids
    cli("save", "--format", "oci-archive", "-o", str(tmp_path / "o.tar"), "busybox", check=True)
    archived = subprocess.run(["skopeo", "inspect", f"oci-archive:{tmp_path}/o.tar:busybox:latest"],
                              capture_output=True, text=True, check=True)
    assert json.loads(archived.stdout)["Digest"] == busybox.manifest_digest
    # skopeo writes: a gzip-compressed OCI archive, and straight into our store
    subprocess.run(["skopeo", "copy", "-q", "--dest-compress", f"oci:{layout}:busybox:latest",
                    f"oci-archive:{tmp_path}/gz.tar:gz:1"], check=True)
    fresh = tmp_path / "fresh"
    assert in_root(fresh, "load", "-i", str(tmp_path / "gz.tar")).stdout == b"Loaded image: gz:1\n"
    assert in_root(fresh, "run", "--rm", "gz:1", "echo", "ok").stdout == b"ok\n"
    subprocess.run(["skopeo", "copy", "-q", "--dest-compress", f"oci-archive:{tmp_path}/gz.tar:gz:1",
                    f"oci:{layout}:written:1"], check=True)
    assert cli("run", "--rm", "written:1", "echo", "ok").stdout == "ok\n"
    assert store.get("written:1").id == busybox.id


def test_an_image_without_created_lists_as_na(cli, images_root, tmp_path):
    """docker shows "N/A" for an image config with no "created" (it is optional in the
    OCI config); before, `images` raised KeyError for the whole store."""
    import hashlib
    import tarfile
    saved, edited = tmp_path / "saved.tar", tmp_path / "edited.tar"
    cli("save", "-o", str(saved), "busybox", check=True)
    with tarfile.open(saved) as src, tarfile.open(edited, "w") as dst:
        manifest = json.load(src.extractfile("manifest.json"))
        old = manifest[0]["Config"]
        cfg = json.load(src.extractfile(old))
        del cfg["created"]
        data = json.dumps(cfg).encode()
        new = "blobs/sha256/" + hashlib.sha256(data).hexdigest()
        manifest[0].update(Config=new, RepoTags=["nodate:1"])
        for member in src.getmembers():
            if member.name in ("manifest.json", "index.json", old):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, body in ((new, data), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            dst.addfile(info, io.BytesIO(body))
    cli("load", "-i", str(edited), check=True)
    listed = cli("images", check=True)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("nodate"))
    assert "N/A" in row.split() and "Traceback" not in listed.stderr
    assert any(line.startswith("busybox") for line in listed.stdout.splitlines())
