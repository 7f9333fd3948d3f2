"""The offline base images: reproducible tars whose programs really run (as root)."""
import hashlib
import os
import platform
import stat
import subprocess
import tarfile

import pytest

from minidocker.image import baseimages, layers
from minidocker.errors import MinidockerError

pytestmark = pytest.mark.skipif(not os.path.exists("/bin/busybox"),
                                reason="needs busybox-static at /bin/busybox")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def unpack(tar_path, root):
    os.mkdir(root)
    layers.extract(str(tar_path), str(root))
    return root


def test_busybox_tar_is_byte_reproducible(tmp_path):
    baseimages.busybox_tar(str(tmp_path / "one.tar"))
    os.utime("/bin/busybox")     # the host file's mtime must not leak into the image
    baseimages.busybox_tar(str(tmp_path / "two.tar"))
    assert sha256(tmp_path / "one.tar") == sha256(tmp_path / "two.tar")
    assert sorted(os.listdir(tmp_path)) == ["one.tar", "two.tar"]     # no .part left
    with tarfile.open(tmp_path / "one.tar") as t:
        members = t.getmembers()
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "") for m in members)
    names = [m.name.split("/") for m in members]
    assert names == sorted(names)


def test_busybox_tar_layout(tmp_path):
    baseimages.busybox_tar(str(tmp_path / "bb.tar"))
    with tarfile.open(tmp_path / "bb.tar") as t:
        members = {m.name: m for m in t.getmembers()}
        passwd = t.extractfile("etc/passwd").read().decode()
    sh = members["bin/sh"]
    assert sh.issym() and sh.linkname == "/bin/busybox"
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert len(applets) > 200 and "bin/sh" in applets
    assert all(members[a].linkname == "/bin/busybox" for a in applets if a != "bin/busybox")
    assert members["bin/busybox"].isreg() and members["bin/busybox"].mode == 0o755
    assert members["tmp"].mode == 0o1777
    assert "etc/hostname" not in members
    assert {"proc", "sys", "dev", "root", "home", "etc"} <= set(members)
    assert [line.split(":")[:3] for line in passwd.splitlines()] == [
        ["root", "x", "0"], ["daemon", "x", "1"], ["user", "x", "1000"],
        ["nobody", "x", "65534"]]


def test_busybox_rootfs_really_runs(tmp_path):
    baseimages.busybox_tar(str(tmp_path / "bb.tar"))
    root = unpack(tmp_path / "bb.tar", tmp_path / "rootfs")
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    out = subprocess.run(["chroot", str(root), "/bin/sh", "-c",
                          "echo $((6 * 7)); id user; id nobody; ls /usr/bin/["],
                         capture_output=True, text=True, timeout=10)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.splitlines() == [
        "42", "uid=1000(user) gid=1000(user) groups=1000(user)",
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)", "/usr/bin/["]


def test_busybox_must_be_static(tmp_path):
    with pytest.raises(MinidockerError, match="busybox-static"):
        baseimages.busybox_tar(str(tmp_path / "bb.tar"), busybox="/bin/ls")   # dynamic
    with pytest.raises(MinidockerError, match="cannot read"):
        baseimages.busybox_tar(str(tmp_path / "bb.tar"), busybox=str(tmp_path / "none"))
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the hello program is x86-64")
def test_hello_world_program_really_runs(tmp_path):
    baseimages.hello_world_tar(str(tmp_path / "hello.tar"))
    baseimages.hello_world_tar(str(tmp_path / "again.tar"))
    assert sha256(tmp_path / "hello.tar") == sha256(tmp_path / "again.tar")
    with tarfile.open(tmp_path / "hello.tar") as t:
        assert t.getnames() == ["hello"]
    root = unpack(tmp_path / "hello.tar", tmp_path / "rootfs")
    out = subprocess.run([str(root / "hello")], capture_output=True, timeout=10)
    assert (out.returncode, out.stderr) == (0, b"")
    assert out.stdout.decode() == baseimages.HELLO_MESSAGE
    assert "Hello from minidocker!" in out.stdout.decode()
    assert "$ minidocker run -it busybox sh" in out.stdout.decode()


def test_hello_world_refuses_other_machines(tmp_path, monkeypatch):
    monkeypatch.setattr(baseimages.platform, "machine", lambda: "aarch64")
    with pytest.raises(MinidockerError, match="x86-64.*aarch64"):
        baseimages.hello_world_tar(str(tmp_path / "hello.tar"))
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the hello program is x86-64")
def test_every_base_image_has_its_default_command(tmp_path):
    for n, (name, (build, cmd)) in enumerate(sorted(baseimages.BASE_IMAGES.items())):
        build(str(tmp_path / f"{n}.tar"))
        root = unpack(tmp_path / f"{n}.tar", tmp_path / f"root{n}")
        path = root / (cmd[0] if cmd[0].startswith("/") else f"/bin/{cmd[0]}").lstrip("/")
        if path.is_symlink():                  # resolved inside the rootfs, as the container will
            path = root / os.readlink(path).lstrip("/")
        st = os.lstat(path)
        assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o111, name
