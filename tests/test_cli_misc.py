"""Smaller CLI behaviours: inspect -f templates, stable base image ids, version/info."""
import json
import re


def test_inspect_format(cli, images_root):
    cid = cli("run", "-d", "--name", "fmt", "-l", "team=blue", "busybox", "sleep", "60").stdout.strip()
    state = json.loads(cli("inspect", cid).stdout)[0]["State"]
    out = cli("inspect", "-f", "{{.State.Pid}} {{.Config.Cmd}} {{.State.Running}} {{index .Config.Labels \"team\"}}", "fmt")
    assert out.stdout == f"{state['Pid']} [sleep 60] true blue\n"
    assert json.loads(cli("inspect", "-f", "{{json .Config.Cmd}}", cid).stdout) == ["sleep", "60"]
    assert cli("image", "inspect", "-f", "{{.Config.Cmd}}", "busybox").stdout == "[sh]\n"
    assert cli("inspect", "-f", "{{range .X}}", cid).returncode == 1
    cli("rm", "-f", cid, check=True)


def test_base_image_ids_are_the_same_in_every_store(cli, root, tmp_path, monkeypatch):
    ids = []
    for n in range(2):
        monkeypatch.setenv("MINIDOCKER_ROOT", str(tmp_path / f"store{n}"))
        cli("setup-images", check=True)
        ids.append(cli("images", "-q").stdout.split())
    monkeypatch.setenv("MINIDOCKER_ROOT", root)
    assert ids[0] == ids[1] and len(ids[0]) == 2


def test_version_and_info(cli, images_root):
    version = cli("version", check=True).stdout
    assert "Storage driver:   overlay" in version and "Cgroup version:" in version
    info = cli("info", check=True).stdout
    assert " Images: 2" in info and "Containers: 0" in info


def test_version_imports_no_engine():
    """`minidocker --version` is the CLI's floor: it imports the parser and the command table,
    not the engine, the image store, the runtime, the registry client nor the builder
    (each 10-60 ms).  Before the CLI package it imported the builder for `build`'s flags."""
    import subprocess
    import sys
    from conftest import REPO
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "minidocker", "--version"],
                          capture_output=True, text=True, cwd=REPO, check=True)
    assert proc.stdout == "minidocker version 0.1.0\n"
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "minidocker.cli.main" in imported
    heavy = [m for m in imported if m.split(".")[:2] in (["minidocker", p] for p in
             ("engine", "image", "runtime", "distribution", "build", "shim", "kernel"))]
    assert heavy == []


def test_help_lists_every_command_of_the_table(cli):
    from minidocker.cli import main                 # noqa: F401 (importing the CLI fills the table)
    from minidocker.cli.commands import COMMANDS, GROUPS
    listed = {None: cli("--help", check=True).stdout}
    listed.update({g: cli(g, "--help", check=True).stdout for g in GROUPS})
    for name, command in COMMANDS.items():
        group, _, word = name.rpartition(" ")
        text = listed[group or None]
        assert re.search(rf"^    {re.escape(word)}\s", text, re.M) and command.help[:20] in text, name
        assert cli(*name.split(), "--help").returncode == 0, name


def test_environment_as_docker_merges_it(cli, images_root, monkeypatch):
    """-e NAME takes the caller's value, or is dropped when the caller has none (the CLI
    resolves it); -e KEY=VALUE replaces an image variable in its place (the engine's
    ReplaceOrAppendEnvValues), so PATH stays first; exec merges the same way."""
    monkeypatch.setenv("FROM_CALLER", "yes")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    out = cli("run", "--rm", "-e", "FROM_CALLER", "-e", "NOT_SET_HERE", "-e", "PATH=/usr/bin:/bin",
              "-e", "A=1", "busybox", "env", check=True).stdout.splitlines()
    assert out[0] == "PATH=/usr/bin:/bin"
    assert "FROM_CALLER=yes" in out and "A=1" in out
    assert not any(line.startswith("NOT_SET_HERE") for line in out)
    cid = cli("run", "-d", "-e", "A=1", "busybox", "sleep", "60", check=True).stdout.strip()
    try:
        got = cli("exec", "-e", "FROM_CALLER", "-e", "A=2", cid, "env", check=True).stdout.splitlines()
        assert "A=2" in got and "FROM_CALLER=yes" in got and "A=1" not in got
    finally:
        cli("rm", "-f", cid)
