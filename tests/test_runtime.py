"""The runtime's isolation and confinement, asserted from what the kernel shows:
/proc/<pid>/ns/* inodes, /proc/self/status inside the container, mountinfo."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from minidocker.runtime import confine

NAMESPACES = ["pid", "mnt", "uts", "ipc", "net"]


def status_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {text!r}")


def host_permitted():
    with open("/proc/self/status") as f:
        return int(status_field(f.read(), "CapPrm"), 16)


def run(cli, *args):
    proc = cli("run", "--rm", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def sleeper(images_root, cli):
    cid = cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    yield cid
    cli("rm", "-f", cid)


def init_pid(cli, cid):
    return json.loads(cli("inspect", cid, check=True).stdout)[0]["State"]["Pid"]


def test_every_namespace_is_new(cli, sleeper):
    pid = init_pid(cli, sleeper)
    for ns in NAMESPACES:
        assert os.stat(f"/proc/{pid}/ns/{ns}").st_ino != os.stat(f"/proc/self/ns/{ns}").st_ino, ns


def test_pid_one_inside_real_pid_outside(cli, sleeper):
    pid = init_pid(cli, sleeper)
    with open(f"/proc/{pid}/status") as f:
        nspid = status_field(f.read(), "NSpid").split()
    assert nspid == [str(pid), "1"]
    assert run(cli, "busybox", "sh", "-c", "echo $$").strip() == "1"


def test_host_files_are_invisible(cli, images_root, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("x")
    assert cli("run", "--rm", "busybox", "test", "-e", str(secret)).returncode == 1
    # The root really is the image: busybox's files, not the host's /usr/bin/python3.
    assert cli("run", "--rm", "busybox", "test", "-e", "/usr/bin/python3").returncode == 1


def test_old_root_is_gone(cli, images_root):
    mounts = run(cli, "busybox", "cat", "/proc/self/mountinfo")
    roots = [line.split()[4] for line in mounts.splitlines()]
    assert roots.count("/") == 1
    assert not any(line.split()[3] != "/" and line.split()[4] == "/" for line in mounts.splitlines())
    assert "overlay" in next(l for l in mounts.splitlines() if l.split()[4] == "/")


def test_hostname_is_short_id(cli, images_root):
    cid = cli("create", "busybox", "hostname", check=True).stdout.strip()
    out = cli("start", "-a", cid, check=True).stdout
    assert out.strip() == cid[:12]
    cli("rm", cid, check=True)


def test_default_capabilities(cli, images_root):
    status = run(cli, "busybox", "cat", "/proc/self/status")
    expected = confine.cap_mask(confine.DEFAULT_CAPS)
    assert int(status_field(status, "CapEff"), 16) == expected
    assert int(status_field(status, "CapPrm"), 16) == expected
    assert int(status_field(status, "CapBnd"), 16) == expected
    assert int(status_field(status, "CapInh"), 16) == 0
    assert int(status_field(status, "CapAmb"), 16) == 0
    assert status_field(status, "NoNewPrivs") == "0"


def test_cap_add_drop_privileged(cli, images_root):
    status = run(cli, "--cap-drop", "CHOWN", "--cap-add", "NET_ADMIN", "busybox", "cat", "/proc/self/status")
    eff = int(status_field(status, "CapEff"), 16)
    assert not eff & (1 << confine.CAPS.index("CHOWN"))
    assert eff & (1 << confine.CAPS.index("NET_ADMIN"))
    status = run(cli, "--privileged", "busybox", "cat", "/proc/self/status")
    assert int(status_field(status, "CapEff"), 16) == host_permitted()
    status = run(cli, "--cap-drop", "ALL", "busybox", "cat", "/proc/self/status")
    assert int(status_field(status, "CapBnd"), 16) == 0
    assert cli("run", "--rm", "--cap-add", "NOPE", "busybox", "true").returncode == 125


def test_dropped_capability_is_enforced(cli, images_root):
    assert cli("run", "--rm", "busybox", "chown", "1000", "/tmp").returncode == 0
    assert cli("run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1000", "/tmp").returncode != 0


def test_no_new_privileges(cli, images_root):
    status = run(cli, "--security-opt", "no-new-privileges", "busybox", "cat", "/proc/self/status")
    assert status_field(status, "NoNewPrivs") == "1"


def test_masked_and_readonly_paths(cli, images_root):
    for path in ("/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/interrupts"):
        if os.path.exists(path):          # not every kernel has every file (no kcore here)
            assert run(cli, "busybox", "sh", "-c", f"wc -c < {path}").strip() == "0", path
    assert os.path.getsize("/proc/keys") or open("/proc/timer_list").read()   # the host sees them
    assert cli("run", "--rm", "busybox", "sh", "-c", "echo x > /proc/sysrq-trigger").returncode != 0
    mounts = run(cli, "busybox", "cat", "/proc/self/mountinfo").splitlines()
    sys_line = next(l for l in mounts if l.split()[4] == "/proc/sys")
    assert "ro" in sys_line.split()[5].split(",")
    sysfs = next(l for l in mounts if l.split()[4] == "/sys")
    assert "ro" in sysfs.split()[5].split(",")
    privileged = run(cli, "--privileged", "busybox", "cat", "/proc/self/mountinfo")
    assert "/proc/sys " not in privileged


def test_no_engine_descriptor_leaks(cli, images_root):
    # "; true" stops busybox sh from exec-ing ls in its place, so $$ is still the shell.
    fds = run(cli, "busybox", "sh", "-c", "ls /proc/$$/fd; true").split()
    assert sorted(fds) == ["0", "1", "2"]


def test_dev_is_minimal(cli, images_root):
    names = set(run(cli, "busybox", "ls", "/dev").split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} <= names
    assert not names & {"sda", "vda", "mem", "kmsg"}
    assert run(cli, "busybox", "sh", "-c", "echo hi > /dev/null && head -c 4 /dev/zero | wc -c").strip() == "4"


def test_user_flag(cli, images_root):
    assert run(cli, "-u", "1000", "busybox", "id", "-u").strip() == "1000"
    assert run(cli, "-u", "nobody", "busybox", "id", "-u").strip() == "65534"
    assert run(cli, "-u", "1000:1000", "busybox", "id", "-g").strip() == "1000"
    status = run(cli, "-u", "1000", "busybox", "cat", "/proc/self/status")
    assert int(status_field(status, "CapEff"), 16) == 0
    bad = cli("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert bad.returncode == 125 and "nosuchuser" in bad.stderr


def test_env_and_workdir(cli, images_root):
    env = run(cli, "-e", "GREETING=hi there", "busybox", "env").splitlines()
    assert "GREETING=hi there" in env
    assert any(line.startswith("PATH=/usr/local/sbin") for line in env)
    assert run(cli, "-w", "/tmp/new/dir", "busybox", "pwd").strip() == "/tmp/new/dir"


def test_sigpipe_is_default_inside(cli, images_root):
    # Python ignores SIGPIPE; a container must not inherit that (yes | head would never end).
    status = run(cli, "busybox", "cat", "/proc/self/status")
    assert int(status_field(status, "SigIgn"), 16) == 0


def test_device_nodes_made_inside_cannot_be_opened(cli, images_root):
    disk = os.stat("/").st_dev             # the host's root file system device
    major, minor = os.major(disk), os.minor(disk)
    script = (f"mknod /tmp/disk b {major} {minor} && echo made; "
              "head -c 1 /tmp/disk >/dev/null 2>&1 && echo READ || echo refused; "
              "mknod /dev/mynull c 1 3 && (echo x > /dev/mynull && echo WROTE || echo refused); "
              "echo x > /dev/null && echo null-works")
    out = run(cli, "busybox", "sh", "-c", script).split()
    assert out == ["made", "refused", "refused", "null-works"]   # CAP_MKNOD kept; the node is useless
    privileged = run(cli, "--privileged", "busybox", "sh", "-c",
                     "mknod /tmp/null c 1 3 && echo x > /tmp/null && echo works")
    assert privileged.split() == ["works"]


def test_exec_exposes_neither_the_callers_environment_nor_the_host_interpreter(cli, images_root, tmp_path):
    """Until it execs, the process that joins a container for `exec` is a copy of the
    CLI: a Python process with the caller's environment, /proc/PID/exe the host's
    python.  A container polling /proc must never read either (it did: SECRET=hunter2
    within about 40 execs, and the host's python3 behind /proc/N/exe)."""
    poll = ("while :; do for p in /proc/[0-9]*; do "
            "grep -q hunter2 $p/environ 2>/dev/null && echo env $p >> /tmp/found; "
            "readlink $p/exe 2>/dev/null | grep -q python && echo exe $p >> /tmp/found; "
            "done; done")
    cid = run(cli, "-d", "busybox", "sh", "-c", poll).strip()
    try:
        env = dict(os.environ, SECRET="hunter2")
        for _ in range(60):
            subprocess.run([sys.executable, "-m", "minidocker", "exec", cid, "true"], env=env,
                           cwd=REPO, capture_output=True, check=True, timeout=60)
        found = cli("exec", cid, "sh", "-c", "cat /tmp/found 2>/dev/null; true").stdout
        assert found == ""
    finally:
        cli("rm", "-f", cid)
