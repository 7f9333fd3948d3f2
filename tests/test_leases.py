"""Leases: what keeps an image's content while something uses it (containerd's model).

rmi and image prune read the leases under the store lock; garbage collection keeps
what a lease reaches, and content still being written (ingest leases).  The files
asserted here are the store's own: blobs, extracted layer dirs, index.json."""
import os
import subprocess
import sys

import pytest

from conftest import REPO, layer_tar
from minidocker.image import content, store
from minidocker.errors import Conflict, NotFound


def own_image(tmp_path, ref, text=b"mine"):
    """busybox plus one layer of our own (so removing it frees that layer)."""
    tar = layer_tar(tmp_path / f"{ref or 'dangling'}.tar", {"mine": text})
    return store.add([tar], store.get("busybox").config, ref)


def content_of(image):
    """Everything of the image that is not busybox's: its blobs and its own layer dir."""
    top = image.diff_ids[-1]
    return [store.blob_path(image.manifest_digest), store.blob_path(image.id),
            store.blob_path(top), store.layer_dir(top)]


def test_rmi_of_a_leased_image_must_be_forced_and_keeps_its_layers(images_root, tmp_path):
    image = own_image(tmp_path, "mine")
    store.lease("c0ffee" * 8, image.manifest_digest)
    with pytest.raises(Conflict) as e:
        store.remove("mine")
    assert str(e.value) == ('conflict: unable to remove repository reference "mine" (must force) '
                            f'- container c0ffeec0ffee is using its referenced image {image.short_id}')
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped container"):
        store.remove(image.short_id)
    assert store.get("mine").id == image.id

    assert store.remove("mine", force=True) == ["Untagged: mine:latest", f"Deleted: {image.id}"]
    with pytest.raises(NotFound):
        store.get("mine")
    assert all(os.path.exists(p) for p in content_of(image)), "a leased image lost its content"

    store.release("c0ffee" * 8)
    store.prune_dangling()                 # a collection: now nothing holds it
    assert not any(os.path.exists(p) for p in content_of(image))


def test_an_image_a_running_holder_uses_cannot_be_forced(images_root, tmp_path):
    image = own_image(tmp_path, "busy")
    store.lease("abc123" * 8, image.manifest_digest)
    for ref in ("busy", image.short_id):
        with pytest.raises(Conflict) as e:
            store.remove(ref, force=True, running={"abc123" * 8})
        if ref == "busy":
            assert "must force" not in str(e.value)
        assert str(e.value) == (f"conflict: unable to delete {image.short_id} (cannot be forced) "
                                f"- image is being used by running container abc123abc123")
    assert store.get("busy").tags == ["busy:latest"]
    store.release("abc123" * 8)
    assert store.remove("busy", running={"abc123" * 8})[-1] == f"Deleted: {image.id}"


def test_one_of_several_names_goes_even_when_leased(images_root, tmp_path):
    image = own_image(tmp_path, "first")
    store.tag("first", "second")
    store.lease("holder", image.manifest_digest)
    assert store.remove("second") == ["Untagged: second:latest"]
    assert store.get("first").id == image.id
    store.release("holder")


def test_a_stopped_container_runs_after_rmi_force(cli, images_root, tmp_path):
    """The real thing: a container created from an image, the image removed with -f."""
    own_image(tmp_path, "mine", b"still here\n")
    cid = cli("create", "mine", "cat", "/mine", check=True).stdout.strip()
    try:
        # Until containers lease their image themselves, lease it as create would.
        store.lease(cid, store.get("mine").manifest_digest)
        store.remove("mine", force=True)
        assert cli("start", "-a", cid, check=True).stdout == "still here\n"
    finally:
        cli("rm", "-f", cid)
        store.release(cid)


def test_image_prune_keeps_leased_dangling_images(images_root, tmp_path):
    image = own_image(tmp_path, None)
    assert image.tags == []
    store.lease("holder", image.manifest_digest)
    assert store.prune_dangling()[0] == []
    assert all(os.path.exists(p) for p in content_of(image))
    store.release("holder")
    assert store.prune_dangling()[0] == [image.id]
    assert not any(os.path.exists(p) for p in content_of(image))


def test_lease_on_a_removed_image_is_refused(images_root, tmp_path):
    image = own_image(tmp_path, "gone")
    store.remove("gone")
    with pytest.raises(NotFound):
        store.lease("late", image.manifest_digest)
    for bad in ("", "../x", ".ingest-1", "a/b"):
        with pytest.raises(Exception, match="invalid lease holder"):
            store.lease(bad, image.manifest_digest)


def test_collection_keeps_a_layer_stored_but_not_yet_registered(images_root, tmp_path):
    """A pull or a load stores its layers first and names the image last: a prune in
    between must not take the layers (content is leased while it is ingested)."""
    tar = layer_tar(tmp_path / "l.tar", {"in-flight": b"1"})
    diff_id = store.store_layer(tar)
    store.prune_dangling()
    assert os.path.exists(store.blob_path(diff_id)) and os.path.isdir(store.layer_dir(diff_id))
    cfg = dict(store.get("busybox").config)
    cfg["rootfs"] = {"type": "layers", "diff_ids": cfg["rootfs"]["diff_ids"] + [diff_id]}
    image, _ = store.register(store._json(cfg), "landed")
    assert store.get("landed").diff_ids[-1] == diff_id
    assert not any(n.startswith(".ingest-") for n in os.listdir(content.leases_dir()))
    store.remove("landed")
    assert not os.path.exists(store.blob_path(diff_id))


def test_ingest_lease_of_an_ended_process_expires(images_root, tmp_path):
    tar = layer_tar(tmp_path / "l.tar", {"orphan": b"1"})
    code = f"from minidocker.image import store; print(store.store_layer({tar!r}))"
    diff_id = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.strip()
    assert os.path.exists(store.blob_path(diff_id))
    store.prune_dangling()
    assert not os.path.exists(store.blob_path(diff_id))
    assert not os.path.exists(store.layer_dir(diff_id))


def test_old_in_use_argument_still_protects(images_root, tmp_path):
    """cli passes image IDs (third argument) until containers lease: kept working."""
    image = own_image(tmp_path, "old")
    with pytest.raises(Conflict, match="must force"):
        store.remove("old", False, {image.id})
    assert store.remove("old", True, {image.id}) == ["Untagged: old:latest"]
    assert all(os.path.exists(p) for p in content_of(image))
    assert store.prune_dangling(in_use={image.id})[0] == []


def test_images_added_during_prunes_keep_their_content(images_root, tmp_path):
    """Another process adds images while this one prunes in a loop: every image it
    added must be whole (before ingest leases, a prune took layers in flight)."""
    for i in range(12):
        layer_tar(tmp_path / f"{i}.tar", {f"file-{i}": os.urandom(200_000)})
    code = ("import sys; from minidocker.image import store\n"
            "base = store.get('busybox').config\n"
            "for i in range(12):\n"
            f"    store.add([{str(tmp_path)!r} + f'/{{i}}.tar'], base, f'added-{{i}}')\n")
    adder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE, text=True)
    while adder.poll() is None:
        store.prune_dangling()
    assert adder.returncode == 0, adder.stderr.read()
    for i in range(12):
        image = store.get(f"added-{i}")
        assert all(os.path.exists(p) for p in content_of(image)), f"added-{i} lost its content"
