"""Smaller CLI behaviours: inspect -f templates, stable base image ids, version/info."""
import json


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
