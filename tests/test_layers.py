"""layers.extract/create/diff against the real filesystem and real overlay mounts (run as root)."""
import hashlib
import io
import os
import socket
import stat
import subprocess
import tarfile

import pytest

from minidocker.image import layers
from minidocker.image.overlay import diff as docker_diff
from minidocker.errors import InvalidArgument, MinidockerError


# ---- building tars in memory -------------------------------------------------

def reg(name, data=b"", mode=0o644, uid=0, gid=0, mtime=1_000_000, **pax):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, uid, gid, mtime
    ti.pax_headers = pax
    return ti, data


def dir_(name, mode=0o755, uid=0, gid=0, mtime=1_000_000, **pax):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = tarfile.DIRTYPE, mode, uid, gid, mtime
    ti.pax_headers = pax
    return ti, None


def link(name, target, kind=tarfile.SYMTYPE, uid=0, gid=0, mtime=1_000_000):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.uid, ti.gid, ti.mtime = kind, target, uid, gid, mtime
    return ti, None


def node(name, kind, major=0, minor=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.devmajor, ti.devminor, ti.mode = kind, major, minor, mode
    return ti, None


def tar_bytes(*entries, compress=""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compress, format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def user_xattrs(path):
    """Can this filesystem hold user.* xattrs? (tmpfs only since Linux 6.6)"""
    probe = os.path.join(path, ".xattr-probe")
    open(probe, "w").close()
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        os.unlink(probe)


def extract(data, dest):
    return layers.extract(io.BytesIO(data), str(dest))


# ---- looking at trees ---------------------------------------------------------

def snapshot(root, skip=()):
    """Everything the kernel shows about a tree: types, modes, owners, mtimes, data, links."""
    out, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            info = [stat.filemode(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)]
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    info.append(hashlib.sha256(f.read()).hexdigest())
                info.append(inodes.setdefault((st.st_dev, st.st_ino), rel))  # hardlink groups
            elif stat.S_ISLNK(st.st_mode):
                info.append(os.readlink(path))
            elif stat.S_ISCHR(st.st_mode):
                info.append(st.st_rdev)
            if not stat.S_ISLNK(st.st_mode):
                info.append(sorted((x, os.getxattr(path, x)) for x in os.listxattr(path)
                                   if x.startswith(("user.", layers.OPAQUE_XATTR))))
            out[rel] = info
    return out


@pytest.fixture
def overlay(tmp_path):
    """mount(merged, lowerdir=..., upperdir=..., workdir=...); every mount is undone."""
    mounted = []

    def mount(target, **opts):
        os.makedirs(target, exist_ok=True)
        options = ",".join(f"{k}={v}" for k, v in opts.items())
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)],
                       check=True)
        mounted.append(str(target))

    def umount(target):
        mounted.remove(str(target))
        subprocess.run(["umount", str(target)], check=True)

    mount.umount = umount
    try:
        yield mount
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", str(target)], check=True)
        with open("/proc/self/mountinfo") as f:
            assert str(tmp_path) not in f.read()


# ---- hostile layers -------------------------------------------------------------

SENTINEL = "outside"   # a dir next to dest; nothing may ever change in it

HOSTILE = {
    "dotdot": lambda out: [reg("../evil", b"x")],
    "absolute": lambda out: [reg(f"{out}/abs", b"x")],
    "dotdot_inside": lambda out: [dir_("a"), reg("a/../../evil", b"x")],
    "symlink_parent": lambda out: [link("link", out), reg("link/file", b"x")],
    "symlink_up": lambda out: [link("d", ".."), reg("d/escape", b"x")],
    "hardlink_abs": lambda out: [link("x", "/etc/passwd", tarfile.LNKTYPE)],
    "hardlink_dotdot": lambda out: [link("x", f"../{SENTINEL}/secret", tarfile.LNKTYPE)],
    "hardlink_via_symlink": lambda out: [link("s", out),
                                         link("x", "s/secret", tarfile.LNKTYPE)],
    "hardlink_to_symlink": lambda out: [link("s", f"{out}/secret"),
                                        link("x", "s", tarfile.LNKTYPE)],
    "char_device": lambda out: [node("null", tarfile.CHRTYPE, 1, 3)],
    "block_device": lambda out: [node("sda", tarfile.BLKTYPE, 8, 0)],
    "trusted_xattr": lambda out: [dir_("d", **{"SCHILY.xattr.trusted.overlay.redirect": "/x"})],
}
REFUSED = {  # case -> (the entry named in the error, the rule it states)
    "dotdot": ("'../evil'", "contains '..'"),
    "absolute": ("/abs'", "is absolute"),
    "dotdot_inside": ("'a/../../evil'", "contains '..'"),
    "symlink_parent": ("'link/file'", "parent 'link' is a symlink"),
    "symlink_up": ("'d/escape'", "parent 'd' is a symlink"),
    "hardlink_abs": ("'x'", "hardlink target '/etc/passwd' is absolute"),
    "hardlink_dotdot": ("'x'", "contains '..'"),
    "hardlink_via_symlink": ("'x'", "parent 's' is a symlink"),
    "hardlink_to_symlink": ("'x'", "not a regular file"),
    "char_device": ("'null'", "device node"),
    "block_device": ("'sda'", "device node"),
    "trusted_xattr": ("'d'", "trusted.overlay.redirect"),
}


def outside_state(tmp_path):
    state = {}
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        dirnames[:] = [d for d in dirnames if d != "dest"]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            state[path] = (st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns)
    return state


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entry_is_refused_and_nothing_escapes(tmp_path, case):
    dest, out = tmp_path / "dest", tmp_path / SENTINEL
    dest.mkdir()
    out.mkdir()
    (out / "secret").write_text("secret\n")
    before, passwd = outside_state(tmp_path), os.stat("/etc/passwd")
    with pytest.raises(InvalidArgument) as e:
        extract(tar_bytes(*HOSTILE[case](str(out))), dest)
    entry, rule = REFUSED[case]
    assert entry in str(e.value) and rule in str(e.value) and "\n" not in str(e.value)
    assert outside_state(tmp_path) == before
    assert (out / "secret").read_text() == "secret\n"
    assert os.stat("/etc/passwd").st_nlink == passwd.st_nlink
    for rel, info in snapshot(dest).items():   # only the harmless symlinks before the bad entry
        assert info[0].startswith(("l", "d")), (rel, info)


def test_hostile_cases_do_escape_without_the_rules(tmp_path):
    """The test above can fail: an unchecked extraction really writes outside."""
    dest, out = tmp_path / "dest", tmp_path / SENTINEL
    dest.mkdir()
    out.mkdir()
    trusting = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(*HOSTILE["symlink_parent"](str(out))))) as t:
        t.extractall(dest, **trusting)      # Python < 3.11.4 has no filters: trusts all
    assert (out / "file").exists()


def test_not_a_tar_is_one_clear_error(tmp_path):
    truncated = tar_bytes(reg("f", os.urandom(5000)), compress="gz")[:2000]
    for data in (b"hello, this is not a tar" * 40, truncated, b""):
        with pytest.raises(InvalidArgument, match="not a valid tar"):
            extract(data, tmp_path)
    with pytest.raises(MinidockerError, match="No such file"):
        layers.extract(str(tmp_path / "missing.tar"), str(tmp_path))


# ---- faithful extraction ----------------------------------------------------------

def test_modes_owners_times_and_types_are_kept(tmp_path):
    data = tar_bytes(
        dir_("srv", mode=0o2775, uid=7, gid=8, mtime=111),
        reg("srv/su", b"#!/bin/sh\n", mode=0o4755, uid=1234, gid=5678, mtime=222),
        dir_("tmp", mode=0o1777, mtime=333),
        link("srv/ln", "su", uid=42, gid=43, mtime=444),
        node("srv/pipe", tarfile.FIFOTYPE, mode=0o640),
        reg("deep/er/file", b"hello"),           # parents missing from the tar
    )
    assert extract(data, tmp_path) == len(b"#!/bin/sh\n") + len(b"hello")
    su = os.lstat(tmp_path / "srv/su")
    assert (stat.S_IMODE(su.st_mode), su.st_uid, su.st_gid, su.st_mtime) == (0o4755, 1234, 5678, 222)
    srv = os.lstat(tmp_path / "srv")        # mtime set after its children were written
    assert (stat.S_IMODE(srv.st_mode), srv.st_uid, srv.st_gid, srv.st_mtime) == (0o2775, 7, 8, 111)
    assert stat.S_IMODE(os.lstat(tmp_path / "tmp").st_mode) == 0o1777
    ln = os.lstat(tmp_path / "srv/ln")
    assert (ln.st_uid, ln.st_gid, ln.st_mtime) == (42, 43, 444)
    pipe = os.lstat(tmp_path / "srv/pipe")
    assert stat.S_ISFIFO(pipe.st_mode) and stat.S_IMODE(pipe.st_mode) == 0o640
    assert (tmp_path / "deep/er/file").read_bytes() == b"hello"


def test_hardlink_inside_and_absolute_symlink_kept(tmp_path):
    extract(tar_bytes(reg("bin/busybox", b"\x7fELF"),
                      link("bin/sh", "/bin/busybox"),
                      link("bin/ls", "bin/busybox", tarfile.LNKTYPE)), tmp_path)
    assert os.readlink(tmp_path / "bin/sh") == "/bin/busybox"   # not resolved on the host
    a, b = os.lstat(tmp_path / "bin/busybox"), os.lstat(tmp_path / "bin/ls")
    assert a.st_ino == b.st_ino and a.st_nlink == 2


def test_later_entries_replace_earlier_ones(tmp_path):
    (tmp_path / "dest").mkdir()
    (tmp_path / "victim").write_text("untouched")
    extract(tar_bytes(
        reg("a", b"file"), dir_("a"), reg("a/child", b"1"),        # file -> dir
        dir_("b"), reg("b/child", b"1"), reg("b", b"now a file"),  # dir -> file
        dir_("c"), reg("c/one", b"1"), dir_("c"), reg("c/two", b"2"),  # dir + dir merge
        link("e", str(tmp_path / "victim")), reg("e", b"mine"),    # symlink -> file
    ), tmp_path / "dest")
    d = tmp_path / "dest"
    assert (d / "a/child").read_bytes() == b"1"
    assert (d / "b").read_bytes() == b"now a file"
    assert sorted(os.listdir(d / "c")) == ["one", "two"]
    assert not (d / "e").is_symlink() and (d / "e").read_bytes() == b"mine"
    assert (tmp_path / "victim").read_text() == "untouched"


def test_gzip_from_a_path(tmp_path):
    (tmp_path / "layer.tar.gz").write_bytes(tar_bytes(reg("f", b"zipped"), compress="gz"))
    (tmp_path / "dest").mkdir()
    assert layers.extract(str(tmp_path / "layer.tar.gz"), str(tmp_path / "dest")) == 6
    assert (tmp_path / "dest/f").read_bytes() == b"zipped"


def test_xattrs_user_kept_where_the_filesystem_holds_them(tmp_path):
    extract(tar_bytes(reg("f", b"x", **{"SCHILY.xattr.user.note": "hi"})), tmp_path)
    assert (tmp_path / "f").read_bytes() == b"x"
    if user_xattrs(tmp_path):
        assert os.getxattr(tmp_path / "f", "user.note") == b"hi"
    else:
        assert os.listxattr(tmp_path / "f") == []


# ---- whiteouts, seen through a real overlay mount ----------------------------------------

def test_whiteout_really_hides_a_lower_file(tmp_path, overlay):
    lower, upper, work = tmp_path / "lower", tmp_path / "upper", tmp_path / "work"
    for d in (lower, upper, work):
        d.mkdir()
    extract(tar_bytes(reg("etc/gone", b"x"), reg("etc/kept", b"y")), lower)
    extract(tar_bytes(dir_("etc"), reg("etc/.wh.gone")), upper)
    wh = os.lstat(upper / "etc/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert not (upper / "etc/.wh.gone").exists()
    merged = tmp_path / "merged"
    overlay(merged, lowerdir=lower, upperdir=upper, workdir=work)
    assert sorted(os.listdir(merged / "etc")) == ["kept"]
    assert not os.path.lexists(merged / "etc/gone")


def test_opaque_dir_hides_lower_contents(tmp_path, overlay):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    extract(tar_bytes(reg("opt/old", b"x"), reg("opt/sub/older", b"y")), lower)
    extract(tar_bytes(dir_("opt"), reg("opt/.wh..wh..opq"), reg("opt/new", b"z")), upper)
    assert os.getxattr(upper / "opt", layers.OPAQUE_XATTR) == b"y"
    merged = tmp_path / "merged"
    overlay(merged, lowerdir=f"{upper}:{lower}")        # a two-layer read-only image
    assert os.listdir(merged / "opt") == ["new"]


# ---- create: overlay upper dir -> layer tar ---------------------------------------------

def build_tree(root):
    """A dir with every kind of thing a container's upper dir can hold."""
    os.makedirs(root / "usr/bin")
    (root / "usr/bin/tool").write_bytes(b"\x7fELF tool")
    os.chown(root / "usr/bin/tool", 0, 50)
    os.chmod(root / "usr/bin/tool", 0o4750)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool2")
    os.symlink("/usr/bin/tool", root / "usr/bin/abs")
    os.mkfifo(root / "fifo", 0o600)
    (root / "home").mkdir(mode=0o750)
    os.chown(root / "home", 1000, 1000)
    (root / "home/notes").write_text("x" * 70000)
    if user_xattrs(root):
        os.setxattr(root / "home/notes", "user.tag", b"\xffbinary\x00")
    os.mknod(root / "deleted", stat.S_IFCHR, os.makedev(0, 0))     # overlay whiteout
    (root / "opq").mkdir()
    os.setxattr(root / "opq", layers.OPAQUE_XATTR, b"y")
    (root / "opq/inside").write_text("new")
    (root / "empty").mkdir(mode=0o1777)
    (root / ("n" * 200)).write_text("long name")                      # needs a PAX header
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (5, 1_234_567), follow_symlinks=False)


def test_create_round_trips_through_extract(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    build_tree(src)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock"))                  # sockets are not stored (tar cannot)
    try:
        buf = io.BytesIO()
        layers.create(str(src), buf)
    finally:
        sock.close()
    os.unlink(src / "sock")
    dst.mkdir()
    layers.extract(io.BytesIO(buf.getvalue()), str(dst))
    assert snapshot(dst) == snapshot(src)
    names = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    assert ".wh.deleted" in names and "opq/.wh..wh..opq" in names and "sock" not in names


def test_create_is_byte_deterministic(tmp_path):
    build_tree(tmp_path / "src")
    one, two = io.BytesIO(), io.BytesIO()
    layers.create(str(tmp_path / "src"), one)
    snapshot(tmp_path / "src")                    # reading moves atimes: must not matter
    layers.create(str(tmp_path / "src"), two)
    assert one.getvalue() == two.getvalue()
    assert one.getvalue()[257:265] == b"ustar\x0000"      # POSIX (PAX), not GNU, headers
    members = tarfile.open(fileobj=io.BytesIO(one.getvalue())).getmembers()
    assert all(m.uname == "" and m.gname == "" for m in members)
    tool = next(m for m in members if m.name == "usr/bin/tool")
    assert (tool.mode, tool.gid, tool.mtime) == (0o4750, 50, 1_234_567)


def test_create_refuses_device_nodes(tmp_path):
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with pytest.raises(InvalidArgument, match="device"):
        layers.create(str(tmp_path), io.BytesIO())


# ---- diff and commit, with the kernel doing the container's writes --------------------

def test_commit_through_a_real_overlay(tmp_path, overlay):
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work):
        d.mkdir()
    extract(tar_bytes(reg("etc/passwd", b"root"), reg("etc/keep", b"k"), dir_("tmp"),
                      reg("tmp/y", b"y"), reg("opt/a/x", b"1"), reg("opt/b", b"2")), lower)
    overlay(merged, lowerdir=lower, upperdir=upper, workdir=work)
    (merged / "etc/x").write_text("new")               # A
    (merged / "etc/passwd").write_text("root\nuser")    # C
    os.unlink(merged / "tmp/y")                         # D
    subprocess.run(["rm", "-rf", str(merged / "opt")], check=True)
    os.makedirs(merged / "opt/a")                       # opaque dirs in upper
    (merged / "opt/a/z").write_text("z")
    seen = snapshot(merged)
    overlay.umount(merged)
    assert docker_diff(str(upper), [str(lower)]) == [
        ("C", "/etc"), ("C", "/etc/passwd"), ("A", "/etc/x"),
        ("C", "/opt"), ("C", "/opt/a"), ("D", "/opt/a/x"), ("A", "/opt/a/z"), ("D", "/opt/b"),
        ("C", "/tmp"), ("D", "/tmp/y")]
    buf = io.BytesIO()
    layers.create(str(upper), buf)                      # commit: upper dir -> layer
    layer = tmp_path / "layer"
    layer.mkdir()
    extract(buf.getvalue(), layer)
    image = tmp_path / "image"
    overlay(image, lowerdir=f"{layer}:{lower}")
    assert snapshot(image) == seen


def test_diff_respects_whiteouts_between_lower_layers(tmp_path):
    bottom, top, upper = tmp_path / "bottom", tmp_path / "top", tmp_path / "upper"
    for d in (bottom, top, upper):
        d.mkdir()
    extract(tar_bytes(reg("a", b"old"), reg("b", b"b")), bottom)
    extract(tar_bytes(reg(".wh.a")), top)            # the image deleted /a already
    (upper / "a").write_text("again")
    (upper / "b").write_text("changed")
    (upper / "c").write_text("new")
    assert docker_diff(str(upper), [str(top), str(bottom)]) == [
        ("A", "/a"), ("C", "/b"), ("A", "/c")]
