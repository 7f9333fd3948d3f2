"""Every command, given bad input, fails as docker does: one line on stderr, docker's exit
code, never a Python traceback.

Docker's codes (docker-run(1), "Exit Status"): 125 when the engine itself fails or a flag
is bad, 126/127 when the container's command cannot be invoked / is not found, and 1 for a
failed request in other commands ("Error response from daemon: ...").  A flag error may add
docker's second line "See 'minidocker CMD --help'."; `run` and `pull` may first say what
they looked for ("Unable to find image ... locally").

CASES holds at least one case per command of the command table: a new command without
one fails test_every_command_has_a_bad_input_case.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (command as the table names it, arguments, exit code)
CASES = [
    ("run", ["run", "BUSYBOX"], 125),                             # bad reference
    ("run", ["run", "nosuchimage"], 125),                         # missing image (offline)
    ("run", ["run", "--cpus", "lots", "busybox"], 125),           # bad flag value
    ("run", ["run", "--nosuchflag", "busybox"], 125),
    ("run", ["run", "../etc"], 125),                              # was a traceback (UnicodeError)
    ("create", ["create", "BUSYBOX"], 125),
    ("create", ["create", "--memory", "lots", "busybox"], 125),
    ("start", ["start", "nosuch"], 1),
    ("ps", ["ps", "--nosuch"], 125),
    ("logs", ["logs", "nosuch"], 1),
    ("logs", ["logs", "--tail", "abc", "nosuch"], 125),           # was a traceback (ValueError)
    ("logs", ["logs", "-n", "abc", "nosuch"], 125),
    ("inspect", ["inspect", "nosuch"], 1),
    ("inspect", ["inspect", "-f", "{{index .Config.Env 0}}", "busybox"], 1),   # was a traceback
    ("inspect", ["inspect", "-f", "{{range .X}}", "busybox"], 1),
    ("ns", ["ns", "nosuch"], 1),
    ("stop", ["stop", "nosuch"], 1),
    ("stop", ["stop", "-t", "abc", "nosuch"], 125),
    ("kill", ["kill", "nosuch"], 1),
    ("kill", ["kill", "-s", "999", "nosuch"], 1),                 # was a traceback (OSError)
    ("kill", ["kill", "-s", "NOSUCH", "nosuch"], 1),
    ("rm", ["rm", "nosuch"], 1),
    ("wait", ["wait", "nosuch"], 1),
    ("exec", ["exec", "nosuch", "true"], 1),
    ("update", ["update", "--cpus", "1", "nosuch"], 1),
    ("update", ["update", "--cpus", "lots", "nosuch"], 125),
    ("update", ["update", "nosuch"], 1),                          # no limit given
    ("stats", ["stats", "--no-stream", "nosuch"], 1),
    ("images", ["images", "--nosuch"], 125),
    ("image ls", ["image", "ls", "extra"], 125),
    ("image list", ["image", "list", "--nosuch"], 125),
    ("rmi", ["rmi", "nosuch"], 1),
    ("image rm", ["image", "rm", "BAD"], 1),
    ("image inspect", ["image", "inspect", "nosuch"], 1),
    ("image inspect", ["image", "inspect", "-f", "{{index .Config.Env 0}}", "busybox"], 1),
    ("import", ["import", "/nonexistent.tar"], 1),
    ("import", ["import", "--change", "FOO x", "/etc/hostname"], 1),
    ("image import", ["image", "import", "/etc/hostname"], 1),    # not a tar archive
    ("tag", ["tag", "nosuch", "other"], 1),
    ("tag", ["tag", "busybox", "BAD"], 1),
    ("image tag", ["image", "tag", "busybox", "a b"], 1),
    ("commit", ["commit", "nosuch"], 1),
    ("commit", ["commit", "--pause", "maybe", "nosuch"], 125),
    ("diff", ["diff", "nosuch"], 1),
    ("history", ["history", "nosuch"], 1),
    ("image history", ["image", "history", "BAD"], 1),
    ("save", ["save", "-o", "/nonexistent/dir/x.tar", "busybox"], 1),   # was a traceback
    ("save", ["save", "-o", "/tmp/never-written.tar", "nosuch"], 1),
    ("image save", ["image", "save", "--format", "zip", "busybox"], 125),
    ("load", ["load", "-i", "/nonexistent.tar"], 1),
    ("load", ["load", "-i", "/etc/hostname"], 1),
    ("image load", ["image", "load", "-i", "/nonexistent.tar"], 1),
    ("build", ["build", "/nonexistent"], 1),
    ("build", ["build", "-t", "BAD", "/tmp"], 1),
    ("pull", ["pull", "a::b"], 1),
    ("pull", ["pull", "127.0.0.1:1/x"], 1),                       # nothing listens there
    ("image pull", ["image", "pull", "--nosuch", "x"], 125),
    ("push", ["push", "nosuch"], 1),
    ("image push", ["image", "push", "a::b"], 1),
    ("login", ["login", "--password-stdin"], 1),
    ("login", ["login", "-u", "a", "-p", "b", "127.0.0.1:1"], 1),
    ("logout", ["logout", "a", "b"], 125),
    ("setup-images", ["setup-images", "--nosuch"], 125),
    ("version", ["version", "extra"], 125),
    ("info", ["info", "extra"], 125),
    ("system info", ["system", "info", "--nosuch"], 125),
    ("system prune", ["system", "prune", "--nosuch"], 125),
]

# Lines a failing command may print before its error, as docker does.
PREAMBLE = ("Unable to find image ", "Using default tag: ", ": Pulling from ", "WARNING! ")


def minidocker(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "minidocker", *args], cwd=REPO, text=True,
                          env=dict(os.environ, **(env or {})), timeout=60, **kw)


def assert_one_error_line(proc, code):
    """docker's exit code, no traceback, and one error line (a flag error may add "See ...")."""
    out = (proc.stdout or "") + proc.stderr
    assert "Traceback" not in out and "Exception ignored" not in out, out
    lines = [line for line in proc.stderr.splitlines() if not any(p in line for p in PREAMBLE)]
    if len(lines) == 2 and lines[1].startswith("See '") and lines[1].endswith(" --help'."):
        lines = lines[:1]
    assert len(lines) == 1 and lines[0].strip(), proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)


@pytest.mark.parametrize("name,args,code", CASES, ids=[" ".join(c[1]) for c in CASES])
def test_bad_input(images_root, name, args, code):
    assert_one_error_line(minidocker(*args, input="", capture_output=True), code)


def test_every_command_has_a_bad_input_case():
    from minidocker.cli import main          # noqa: F401 (importing the CLI fills the table)
    from minidocker.cli.commands import COMMANDS
    missing = set(COMMANDS) - {name for name, _, _ in CASES}
    assert not missing, f"commands without a bad-input case in CASES: {sorted(missing)}"
    unknown = {name for name, _, _ in CASES} - set(COMMANDS)
    assert not unknown, f"CASES name commands the table does not have: {sorted(unknown)}"


def test_bad_input_to_a_running_container(cli, images_root):
    cid = cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    try:
        for args, code in ((["kill", "-s", "999", cid], 1),        # was a traceback (EINVAL)
                           (["logs", "--tail", "abc", cid], 125),
                           (["inspect", "-f", "{{index .Config.Env 0}}", cid], 1),
                           (["exec", cid, "nosuchcommand"], 127),
                           (["exec", "-u", "nosuchuser", cid, "true"], 1)):
            assert_one_error_line(minidocker(*args, capture_output=True), code)
        assert json.loads(cli("inspect", cid).stdout)[0]["State"]["Running"]   # nothing was killed
    finally:
        cli("rm", "-f", cid)


def test_save_to_a_full_disk(images_root):
    """`save busybox > /dev/full`: write(2) fails with ENOSPC; one line, exit 125 (was a traceback,
    then a second one from Python's flush of stdout at exit)."""
    with open("/dev/full", "w") as full:
        proc = minidocker("save", "busybox", stdout=full, stderr=subprocess.PIPE)
    assert_one_error_line(proc, 125)
    assert "no space left on device" in proc.stderr


def test_closed_pipe_is_quiet(images_root):
    """A reader that goes away (`minidocker save busybox | head -c 1`): docker dies of SIGPIPE,
    quietly; we exit with the status a shell shows for that, 128 + SIGPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "save", "busybox"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE and err == "", err


def test_unreadable_root_is_one_line(tmp_path):
    """An OSError (here ENOTDIR: the root is a file) is one line and exit 125."""
    root = tmp_path / "a-file"
    root.write_text("")
    proc = minidocker("setup-images", env={"MINIDOCKER_ROOT": str(root)}, capture_output=True)
    assert_one_error_line(proc, 125)
    assert "not a directory" in proc.stderr


def test_unexpected_error_is_one_line_and_debug_shows_it(cli, images_root):
    """A container whose config.json is not an object breaks `ps -a` in an unforeseen place:
    one line "internal error", exit 125; MINIDOCKER_DEBUG=1 shows the traceback."""
    cid = cli("create", "busybox", "true", check=True).stdout.strip()
    with open(os.path.join(images_root, "containers", cid, "config.json"), "w") as f:
        f.write("[]")
    proc = minidocker("ps", "-a", capture_output=True)
    assert_one_error_line(proc, 125)
    assert proc.stderr.startswith("minidocker: internal error: "), proc.stderr
    debug = minidocker("ps", "-a", env={"MINIDOCKER_DEBUG": "1"}, capture_output=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    with open(os.path.join(images_root, "containers", cid, "config.json"), "w") as f:
        f.write("{}")
    cli("rm", "-f", cid)
