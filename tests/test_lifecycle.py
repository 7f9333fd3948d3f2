"""The container lifecycle through the CLI: docker's flags, output and exit codes."""
import json
import os
import pty
import select
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import minidocker
from conftest import REPO, minidocker as md


def test_run_echo_and_exit_codes(cli, images_root):
    proc = cli("run", "--rm", "busybox", "echo", "hi there")
    assert (proc.returncode, proc.stdout) == (0, "hi there\n")
    assert cli("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    # PID 1 cannot be killed from inside its namespace, even by SIGKILL (pid_namespaces(7))...
    assert cli("run", "--rm", "busybox", "sh", "-c", "kill -9 $$; exit 4").returncode == 4
    # ...but any other process can; the shell reports 128 + 9 for it.
    assert cli("run", "--rm", "busybox", "sh", "-c", "sh -c 'kill -9 $$'; echo $?").stdout == "137\n"


def test_engine_error_codes(cli, images_root):
    missing = cli("run", "--rm", "nosuchimage")
    assert missing.returncode == 125
    assert "Unable to find image 'nosuchimage:latest' locally" in missing.stderr
    notfound = cli("run", "--rm", "busybox", "nosuchcommand")
    assert notfound.returncode == 127
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in notfound.stderr
    cannot = cli("run", "--rm", "busybox", "/etc/passwd")
    assert cannot.returncode == 126 and "permission denied" in cannot.stderr
    assert cli("run", "--nosuchflag", "busybox").returncode == 125
    for proc in (missing, notfound, cannot):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    relative = cli("run", "--rm", "-w", "relative", "busybox", "pwd")
    assert relative.returncode == 125 and relative.stdout == ""
    assert "the working directory 'relative' is invalid, it needs to be an absolute path" in relative.stderr
    cid = cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    try:
        rel = cli("exec", "-w", "rel", cid, "pwd")
        assert rel.returncode != 0 and rel.stdout == "" and "needs to be an absolute path" in rel.stderr
    finally:
        cli("rm", "-f", cid)


def test_failed_start_leaves_created_container(cli, images_root):
    cid = cli("create", "busybox", "nosuchcommand", check=True).stdout.strip()
    assert cli("start", cid).returncode == 1
    state = json.loads(cli("inspect", cid).stdout)[0]["State"]
    assert state["Status"] == "created" and state["ExitCode"] == 127 and "nosuchcommand" in state["Error"]
    cli("rm", cid, check=True)


def test_hello_world(cli, images_root):
    proc = cli("run", "--rm", "hello-world")
    assert proc.returncode == 0 and "Hello from minidocker!" in proc.stdout


def test_create_start_attach_and_logs(cli, images_root):
    cid = cli("create", "--name", "greeter", "busybox", "sh", "-c", "echo out; echo err >&2").stdout.strip()
    assert len(cid) == 64
    assert "Created" in cli("ps", "-a").stdout
    started = cli("start", "-a", "greeter")
    assert started.stdout == "out\n" and started.stderr == "err\n"
    logs = cli("logs", "greeter")
    assert logs.stdout == "out\n" and logs.stderr == "err\n"
    with open(os.path.join(images_root, "containers", cid, "json.log")) as f:
        entries = [json.loads(line) for line in f]
    assert [(e["stream"], e["log"]) for e in entries] == [("stdout", "out\n"), ("stderr", "err\n")]
    assert all(e["time"].endswith("Z") for e in entries)
    stamped = cli("logs", "-t", "greeter").stdout
    assert stamped.startswith(entries[0]["time"] + " out")
    cli("rm", "greeter", check=True)


def test_ps_status_and_formats(cli, images_root):
    cid = cli("run", "-d", "--name", "sleepy", "busybox", "sleep", "60").stdout.strip()
    cli("run", "--name", "done", "busybox", "true", check=True)
    ps = cli("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert len(ps) == 2 and cid[:12] in ps[1] and "Up " in ps[1] and '"sleep 60"' in ps[1]
    all_ = cli("ps", "-a").stdout
    assert "Exited (0)" in all_ and "done" in all_
    assert cli("ps", "-q").stdout.split() == [cid[:12]]
    assert cid in cli("ps", "-q", "--no-trunc").stdout
    cli("rm", "-f", "sleepy", "done", check=True)


def test_detached_container_survives_the_cli(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    time.sleep(0.5)
    state = json.loads(cli("inspect", cid).stdout)[0]["State"]
    assert state["Running"] and os.path.exists(f"/proc/{state['Pid']}")
    cli("rm", "-f", cid, check=True)
    assert not os.path.exists(f"/proc/{state['Pid']}/ns")


def test_stop_waits_for_a_pid_one_that_ignores_sigterm(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    t0 = time.monotonic()
    assert cli("stop", "-t", "2", cid).stdout.strip() == cid
    took = time.monotonic() - t0
    assert 2.0 <= took < 12.0             # the whole timeout, then SIGKILL (slack: slow VMs)
    assert json.loads(cli("inspect", cid).stdout)[0]["State"]["ExitCode"] == 137
    cli("rm", cid, check=True)


def test_stop_is_quick_when_pid_one_handles_sigterm(cli, images_root):
    cid = cli("run", "-d", "busybox", "sh", "-c",
              "trap 'exit 0' TERM; while true; do sleep 0.1; done").stdout.strip()
    time.sleep(0.3)
    t0 = time.monotonic()
    cli("stop", "-t", "30", cid, check=True)
    assert time.monotonic() - t0 < 10.0   # far below the 30 s timeout: SIGTERM did it
    assert cli("wait", cid).stdout.strip() == "0"
    cli("rm", cid, check=True)


def test_kill_with_signal(cli, images_root):
    cid = cli("run", "-d", "busybox", "sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done").stdout.strip()
    time.sleep(0.3)
    cli("kill", "-s", "USR1", cid, check=True)
    assert cli("wait", cid).stdout.strip() == "42"
    assert cli("kill", cid).returncode == 1           # not running any more
    cli("rm", cid, check=True)


def test_exec_joins_the_container(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    ps = cli("exec", cid, "ps").stdout
    assert "sleep 60" in ps and any(line.split()[0] == "1" for line in ps.splitlines()[1:])
    pid = json.loads(cli("inspect", cid).stdout)[0]["State"]["Pid"]
    inodes = cli("exec", cid, "sh", "-c", "for n in pid mnt uts ipc net; do stat -L -c %i /proc/self/ns/$n; done")
    assert inodes.stdout.split() == [str(os.stat(f"/proc/{pid}/ns/{n}").st_ino) for n in ("pid", "mnt", "uts", "ipc", "net")]
    assert cli("exec", "-e", "X=1", "-w", "/tmp", "-u", "nobody", cid, "sh", "-c", 'echo $X $(pwd) $(id -u)').stdout == "1 /tmp 65534\n"
    assert cli("exec", cid, "sh", "-c", "exit 5").returncode == 5
    assert cli("exec", cid, "nosuch").returncode == 127
    cli("rm", "-f", cid, check=True)
    assert cli("exec", cid, "true").returncode == 1


def test_exec_interactive_stdin(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    assert cli("exec", "-i", cid, "cat", input="piped in\n").stdout == "piped in\n"
    cli("rm", "-f", cid, check=True)


def test_run_interactive_stdin(cli, images_root):
    assert cli("run", "--rm", "-i", "busybox", "wc", "-l", input="a\nb\n").stdout.strip() == "2"


def test_rm_refuses_running_and_force_works(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    refused = cli("rm", cid)
    assert refused.returncode == 1 and "cannot remove a running container" in refused.stderr
    assert cli("rm", "-f", cid).returncode == 0
    assert cli("inspect", cid).returncode == 1
    assert not os.path.exists(os.path.join(images_root, "containers", cid))


def test_auto_remove(cli, images_root):
    cli("run", "--rm", "--name", "gone", "busybox", "true", check=True)
    assert "gone" not in cli("ps", "-a").stdout
    assert os.listdir(os.path.join(images_root, "containers")) == []


def test_name_conflict_and_concurrent_creates(cli, images_root):
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: cli("create", "--name", "only", "busybox", "true"), range(6)))
    assert sorted(r.returncode for r in results) == [0] + [125] * 5
    assert "is already in use" in next(r.stderr for r in results if r.returncode)
    with ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(lambda i: cli("run", "--rm", "busybox", "echo", str(i)), range(6)))
    assert sorted(r.stdout for r in runs) == [f"{i}\n" for i in range(6)]
    cli("rm", "only", check=True)


def test_system_prune(cli, images_root):
    cli("run", "--name", "stopped", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /big", check=True)
    running = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    out = cli("system", "prune", "-f").stdout
    assert "Deleted Containers:" in out and "Total reclaimed space: 100kB" in out
    assert cli("inspect", "stopped").returncode == 1
    assert cli("inspect", running).returncode == 0
    cli("rm", "-f", running, check=True)


def test_run_with_a_tty(cli, images_root):
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "run", "--rm", "-it", "busybox", "sh"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=REPO, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 20
    while b"# " not in out and time.monotonic() < deadline:     # wait for the prompt, as a person does
        if select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 4096)
    assert b"# " in out, out
    os.write(master, b"tty; stty size; echo $((6*7)); exit 7\r")
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    assert proc.wait(timeout=10) == 7
    assert b"/dev/pts/0" in out and b"42" in out
    assert b"33 101" in out                # the container started at our window size


def test_python_api(images_root):
    c = minidocker.run("busybox", ["echo", "hi there"])
    assert c.wait() == 0
    assert c.logs() == "hi there\n"
    code, out = minidocker.run("busybox", ["sleep", "60"]).exec_run(["echo", "inside"])
    assert (code, out) == (0, "inside\n")
    for container in minidocker.containers_list(all=True):
        container.remove(force=True)
    assert minidocker.containers_list(all=True) == []


def test_exec_with_a_tty(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60").stdout.strip()
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "exec", "-it", cid, "sh", "-c", "tty; exit 9"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=REPO, start_new_session=True)
    os.close(slave)
    out = b""
    while proc.poll() is None or select.select([master], [], [], 0.2)[0]:
        try:
            out += os.read(master, 4096)
        except OSError:
            break
    assert proc.wait(timeout=10) == 9
    assert out.strip().startswith(b"/dev/pts/")       # a pty of the container's own devpts
    not_a_tty = cli("exec", "-it", cid, "true")
    assert not_a_tty.returncode == 1 and "not a TTY" in not_a_tty.stderr
    cli("rm", "-f", cid, check=True)
