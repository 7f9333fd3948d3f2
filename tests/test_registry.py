"""pull, push, login against a real registry (Debian's docker-registry, distribution 2.8).

Each registry runs on 127.0.0.1 on a free port with its storage in a temp dir,
started and stopped here (registry_fixtures.py).  skopeo, another client of the
same protocol, checks that what we push is readable and that what it pushes runs
here.  Tests skip, saying what to install, when docker-registry or skopeo is missing.
Nothing here contacts any address but 127.0.0.1.
"""
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import urllib.request

import pytest

from conftest import REPO, mounts_under
from registry_fixtures import (CuttingProxy, Registry, TokenServer, htpasswd, need,
                               self_signed)

from minidocker.distribution import client
from minidocker.distribution.pull import pulls_on_run
from minidocker.errors import InvalidArgument
from minidocker.image import reference, store

ACCEPT = client.ACCEPT


def md(*args, root, env=None, input=None, timeout=120):
    """The CLI in its own process, with a given root (a fresh store is just a new dir)."""
    e = {k: v for k, v in os.environ.items() if k != "MINIDOCKER_TRACE_HTTP"}
    e.update(MINIDOCKER_ROOT=str(root), **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "minidocker", *args], input=input, env=e,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok(*args, **kw):
    proc = md(*args, **kw)
    assert proc.returncode == 0, f"minidocker {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_id(root, ref):
    return json.loads(ok("image", "inspect", ref, root=root).stdout)[0]["Id"]


def leftovers(root):
    """Half-written things a pull or push may leave: temp files in the store."""
    found = []
    for top, _, files in os.walk(root):
        found += [os.path.join(top, f) for f in files if f.startswith(".tmp-") or f.endswith(".partial")]
    return found


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    need("docker-registry")
    with Registry(tmp_path_factory.mktemp("registry")) as r:
        yield r


@pytest.fixture(autouse=True)
def client_config(tmp_path, monkeypatch):
    """Credentials go to a temp dir, never to ~/.minidocker."""
    monkeypatch.setenv("MINIDOCKER_CONFIG", str(tmp_path / "client"))
    monkeypatch.delenv("MINIDOCKER_INSECURE_REGISTRIES", raising=False)
    monkeypatch.delenv("MINIDOCKER_ONLINE", raising=False)
    return tmp_path / "client"


@pytest.fixture
def fresh(tmp_path):
    """Another, empty store: where pulled images must come from the registry alone."""
    path = tmp_path / "fresh"
    path.mkdir()
    yield path
    assert not mounts_under(str(path))


def push_busybox(root, host, repo):
    ok("tag", "busybox", f"{host}/{repo}", root=root)
    return ok("push", f"{host}/{repo}", root=root)


# -- references, policy, challenges: no network -------------------------------------

def test_references_read_as_docker_reads_them():
    """The grammar itself is tested in test_reference.py; here what pull and push use."""
    r = reference.parse("busybox")
    assert (r.domain, r.path, r.tag, client.api_host(r.domain)) == ("docker.io", "library/busybox", None,
                                                                      "registry-1.docker.io")
    assert (r.repository, r.familiar) == ("docker.io/library/busybox", "busybox")
    r = reference.parse("user/app:1.0")
    assert (r.domain, r.path, r.tag, r.familiar) == ("docker.io", "user/app", "1.0", "user/app")
    r = reference.parse("127.0.0.1:5000/a/b:v2")
    assert (r.domain, r.path, r.tag, r.local()) == ("127.0.0.1:5000", "a/b", "v2", "127.0.0.1:5000/a/b:v2")
    assert client.api_host(r.domain) == "127.0.0.1:5000"
    r = reference.parse("localhost/x@sha256:" + "a" * 64)
    assert (r.domain, r.path, r.tag, r.digest, r.local()) == ("localhost", "x", None, "sha256:" + "a" * 64, None)
    assert reference.parse("docker.io/library/redis:7").local() == "redis:7"
    for bad in ("Busybox", "a//b", "x:", "x@sha256:12", "-x", "x:" + "t" * 200):
        with pytest.raises(InvalidArgument):
            reference.parse(bad)


def test_plain_http_only_for_localhost_or_insecure(monkeypatch, root):
    for host in ("127.0.0.1:5000", "localhost:5000", "localhost", "[::1]:5000", "127.3.2.1"):
        assert client.allows_http(host), host
    for host in ("registry.example.com:5000", "10.1.2.3:5000", "docker.io", "localhost.example.com"):
        assert not client.allows_http(host), host
    monkeypatch.setenv("MINIDOCKER_INSECURE_REGISTRIES", "registry.example.com:5000, 10.0.0.0/8")
    assert client.allows_http("registry.example.com:5000") and client.allows_http("10.1.2.3:5000")
    assert not client.allows_http("registry.example.com:6000")
    monkeypatch.delenv("MINIDOCKER_INSECURE_REGISTRIES")
    with open(os.path.join(root, "daemon.json"), "w") as f:
        json.dump({"insecure-registries": ["registry.example.com:6000"]}, f)
    assert client.allows_http("registry.example.com:6000")
    # `run` pulls a missing image from a registry it names; Docker Hub only when online
    assert pulls_on_run("127.0.0.1:5000/x") and not pulls_on_run("busybox")
    monkeypatch.setenv("MINIDOCKER_ONLINE", "1")
    assert pulls_on_run("busybox")


def test_challenges_parse():
    scheme, params = client.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/redis:pull,push",error="insufficient_scope"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/redis:pull,push", "error": "insufficient_scope"}
    assert client.parse_challenge('Basic realm="my registry"') == ("basic", {"realm": "my registry"})


# -- push and pull ----------------------------------------------------------------------

def test_push_then_pull_into_a_fresh_root_and_run(images_root, reg, fresh):
    bb = image_id(images_root, "busybox")
    layer = json.loads(ok("image", "inspect", "busybox", root=images_root).stdout)[0]["RootFS"]["Layers"][0]
    pushed = push_busybox(images_root, reg.host, "t1/busybox")
    lines = pushed.stdout.splitlines()
    assert lines[:2] == ["Using default tag: latest", f"The push refers to repository [{reg.host}/t1/busybox]"]
    assert f"{layer[7:19]}: Pushed" in lines
    digest, size = lines[-1].split("latest: digest: ")[1].split(" size: ")
    # What the registry holds: the manifest we printed, the config byte for byte (its digest = image ID)
    status, headers, body = reg.get("/v2/t1/busybox/manifests/latest", {"Accept": ACCEPT})
    assert status == 200 and sha256(body) == digest == headers["Docker-Content-Digest"] and len(body) == int(size)
    manifest = json.loads(body)
    assert manifest["mediaType"] == client.DOCKER_MANIFEST and manifest["config"]["digest"] == bb
    assert sha256(reg.get(f"/v2/t1/busybox/blobs/{bb}")[2]) == bb
    layer_blob = reg.get(f"/v2/t1/busybox/blobs/{manifest['layers'][0]['digest']}")[2]
    assert layer_blob[:2] == b"\x1f\x8b" and sha256(layer_blob) == manifest["layers"][0]["digest"]

    pulled = ok("pull", f"{reg.host}/t1/busybox", root=fresh)
    assert pulled.stdout.splitlines() == [
        "Using default tag: latest", "latest: Pulling from t1/busybox",
        f"{manifest['layers'][0]['digest'][7:19]}: Pulling fs layer",
        f"{manifest['layers'][0]['digest'][7:19]}: Verifying Checksum",
        f"{manifest['layers'][0]['digest'][7:19]}: Download complete",
        f"{manifest['layers'][0]['digest'][7:19]}: Pull complete",
        f"Digest: {digest}", f"Status: Downloaded newer image for {reg.host}/t1/busybox:latest",
        f"{reg.host}/t1/busybox:latest"]
    assert image_id(fresh, f"{reg.host}/t1/busybox") == bb          # the same image ID everywhere
    assert ok("run", "--rm", f"{reg.host}/t1/busybox", "echo", "pulled and run", root=fresh).stdout == "pulled and run\n"
    again = ok("pull", f"{reg.host}/t1/busybox:latest", root=fresh)
    assert f"Status: Image is up to date for {reg.host}/t1/busybox:latest" in again.stdout
    assert "Pull complete" not in again.stdout
    assert "Layer already exists" in push_busybox(images_root, reg.host, "t1/busybox").stdout
    assert leftovers(fresh) == [] and leftovers(images_root) == []


def test_run_pulls_a_missing_image_from_the_registry_it_names(images_root, reg, fresh):
    push_busybox(images_root, reg.host, "t2/busybox")
    proc = ok("run", "--rm", f"{reg.host}/t2/busybox", "echo", "hi", root=fresh)
    assert proc.stdout == "hi\n"                              # docker prints the pull to stderr
    assert f"Unable to find image '{reg.host}/t2/busybox:latest' locally" in proc.stderr
    assert "Pull complete" in proc.stderr and "Status: Downloaded newer image" in proc.stderr
    # an image on Docker Hub is not looked for while offline (no MINIDOCKER_ONLINE)
    missing = md("run", "--rm", "nosuchimage", root=fresh)
    assert missing.returncode == 125 and "Pulling" not in missing.stderr


def test_progress_bars_on_a_terminal_and_quiet_elsewhere(images_root, reg, fresh, tmp_path):
    import pty
    push_busybox(images_root, reg.host, "tty/busybox")
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MINIDOCKER_PROGRESS"}
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "pull", f"{reg.host}/tty/busybox"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=REPO,
                            env=dict(env, MINIDOCKER_ROOT=str(fresh), TERM="xterm"))
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:                       # EIO: the program closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(60) == 0, seen
    text = seen.decode()
    assert "Downloading [" in text and "\x1b[1A" in text                      # redrawn in place
    assert re.search(r"\] +[\d.]+k?B/[\d.]+MB", text), text                     # "] 524kB/1.04MB"
    assert "Pull complete" in text
    quiet = ok("pull", "-q", f"{reg.host}/tty/busybox", root=tmp_path / "quiet")
    assert quiet.stdout == f"{reg.host}/tty/busybox:latest\n"


def test_a_second_repository_mounts_the_layer(images_root, reg):
    push_busybox(images_root, reg.host, "m1/busybox")
    second = push_busybox(images_root, reg.host, "m2/busybox")
    assert "Mounted from m1/busybox" in second.stdout
    assert any("POST /v2/m2/busybox/blobs/uploads/?" in line and "from=m1%2Fbusybox" in line
               and "mount=sha256%3A" in line for line in reg.requests())
    assert "Layer already exists" in push_busybox(images_root, reg.host, "m2/busybox").stdout


def test_chunked_upload(images_root, reg, fresh):
    ok("tag", "busybox", f"{reg.host}/chunks/busybox", root=images_root)
    proc = ok("push", f"{reg.host}/chunks/busybox", root=images_root,
              env={"MINIDOCKER_UPLOAD_CHUNK": "65536", "MINIDOCKER_TRACE_HTTP": "1"})
    patches = [line for line in proc.stderr.splitlines() if line.startswith("PATCH ")]
    assert len(patches) > 10 and all("-> 202" in p for p in patches)
    ends = [int(p.split("Range: 0-")[1].rstrip(")")) + 1 for p in patches]
    size = json.loads(reg.get("/v2/chunks/busybox/manifests/latest", {"Accept": ACCEPT})[2])["layers"][0]["size"]
    chunks = -(-size // 65536)
    assert ends[:chunks] == [min(65536 * (i + 1), size) for i in range(chunks)]   # the layer
    assert len(ends) == chunks + 1                                                 # the config
    assert ok("run", "--rm", f"{reg.host}/chunks/busybox", "true", root=fresh).returncode == 0


def test_pull_refuses_a_corrupted_blob(images_root, reg, fresh):
    push_busybox(images_root, reg.host, "bad/busybox")
    with CuttingProxy(reg.port, corrupt_at=200_000) as proxy:
        proc = md("pull", f"{proxy.host}/bad/busybox", root=fresh)
    assert proc.returncode == 1 and "verification failed for digest" in proc.stderr
    assert md("image", "inspect", f"{proxy.host}/bad/busybox", root=fresh).returncode == 1
    blobs = os.path.join(fresh, "image", "blobs", "sha256")
    assert not os.path.isdir(blobs) or os.listdir(blobs) == []     # nothing half-true was stored
    assert leftovers(fresh) == []


def test_an_interrupted_pull_resumes(images_root, reg, fresh):
    push_busybox(images_root, reg.host, "cut/busybox")
    with CuttingProxy(reg.port, limit=300_000) as proxy:
        cut = md("pull", f"{proxy.host}/cut/busybox", root=fresh)
    assert cut.returncode == 1 and "run the pull again to resume" in cut.stderr
    partial = [p for p in leftovers(fresh) if p.endswith(".partial")]
    assert len(partial) == 1 and 100_000 < os.path.getsize(partial[0]) < 300_000
    have = os.path.getsize(partial[0])
    assert not os.path.isdir(os.path.join(fresh, "layers")) or os.listdir(os.path.join(fresh, "layers")) == []
    with CuttingProxy(reg.port) as proxy:
        done = ok("pull", f"{proxy.host}/cut/busybox", root=fresh)
        heads = list(proxy.heads)
    assert "Pull complete" in done.stdout
    assert any(f"Range: bytes={have}-" in h for h in heads), heads
    assert leftovers(fresh) == []
    assert ok("run", "--rm", f"{proxy.host}/cut/busybox", "true", root=fresh).returncode == 0


def _put_blob(reg, repo, data):
    digest = sha256(data)
    req = urllib.request.Request(f"http://{reg.host}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(req) as r:
        location = r.headers["Location"]
    req = urllib.request.Request(f"{location}&digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).close()
    return digest


def _put_manifest(reg, repo, tag, media_type, body):
    req = urllib.request.Request(f"http://{reg.host}/v2/{repo}/manifests/{tag}", data=body,
                                 method="PUT", headers={"Content-Type": media_type})
    urllib.request.urlopen(req).close()
    return sha256(body)


@pytest.mark.parametrize("index_type", [client.OCI_INDEX, client.DOCKER_LIST])
def test_an_index_picks_our_platform(images_root, reg, fresh, tmp_path, index_type):
    repo = "multi/" + ("oci" if "oci" in index_type else "docker")
    push_busybox(images_root, reg.host, repo)
    ours = json.loads(reg.get(f"/v2/{repo}/manifests/latest", {"Accept": ACCEPT})[2])
    ours_bytes = reg.get(f"/v2/{repo}/manifests/latest", {"Accept": ACCEPT})[2]
    config = json.loads(reg.get(f"/v2/{repo}/blobs/{ours['config']['digest']}")[2])
    other_arch = "s390x" if store.ARCH != "s390x" else "amd64"
    config["architecture"] = other_arch
    other_config = json.dumps(config).encode()
    other = dict(ours, config=dict(ours["config"], digest=_put_blob(reg, repo, other_config),
                                   size=len(other_config)))
    other_bytes = json.dumps(other).encode()
    other_digest = _put_manifest(reg, repo, "other", client.DOCKER_MANIFEST, other_bytes)
    index = {"schemaVersion": 2, "mediaType": index_type, "manifests": [
        {"mediaType": client.DOCKER_MANIFEST, "digest": other_digest, "size": len(other_bytes),
         "platform": {"os": "linux", "architecture": other_arch}},
        {"mediaType": client.DOCKER_MANIFEST, "digest": sha256(ours_bytes), "size": len(ours_bytes),
         "platform": {"os": "linux", "architecture": store.ARCH}}]}
    index_digest = _put_manifest(reg, repo, "multi", index_type, json.dumps(index).encode())

    pulled = ok("pull", f"{reg.host}/{repo}:multi", root=fresh)
    assert f"Digest: {index_digest}" in pulled.stdout              # docker shows the index's digest
    assert image_id(fresh, f"{reg.host}/{repo}:multi") == image_id(images_root, "busybox")
    theirs = ok("pull", "--platform", f"linux/{other_arch}", f"{reg.host}/{repo}:multi", root=tmp_path / "r2")
    assert "Already exists" not in theirs.stdout
    inspect = json.loads(ok("image", "inspect", f"{reg.host}/{repo}:multi", root=tmp_path / "r2").stdout)[0]
    assert inspect["Architecture"] == other_arch and inspect["Id"] == sha256(other_config)
    none = md("pull", "--platform", "linux/mips64le", f"{reg.host}/{repo}:multi", root=tmp_path / "r3")
    assert none.returncode == 1
    assert "no matching manifest for linux/mips64le in the manifest list entries" in none.stderr


def test_errors_are_one_line(images_root, reg, fresh):
    cases = [
        (("pull", f"{reg.host}/t1/nosuch:v1"), f"manifest for {reg.host}/t1/nosuch:v1 not found"),
        (("pull", f"127.0.0.1:{_closed_port()}/x"), "connect: connection refused"),
        (("push", f"{reg.host}/never/tagged"), "An image does not exist locally with the tag"),
        (("pull", "127.0.0.1:5000/UPPER"), "invalid reference format"),
    ]
    for args, message in cases:
        proc = md(*args, root=fresh)
        assert proc.returncode == 1, (args, proc.stderr)
        assert message in proc.stderr and proc.stderr.startswith("Error response from daemon: "), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert leftovers(fresh) == []


def _closed_port():
    from registry_fixtures import free_port
    return free_port()


# -- skopeo, another client of the same protocol --------------------------------------------

def test_skopeo_reads_what_we_push(images_root, reg, tmp_path):
    need("skopeo")
    digest = push_busybox(images_root, reg.host, "sk/ours").stdout.split("digest: ")[1].split()[0]
    info = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{reg.host}/sk/ours"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["Digest"] == digest
    config = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config", "--raw",
                             f"docker://{reg.host}/sk/ours"], check=True, capture_output=True).stdout
    assert sha256(config) == image_id(images_root, "busybox")
    copy = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{reg.host}/sk/ours",
                           f"oci:{tmp_path}/copy:bb"], capture_output=True, text=True)
    assert copy.returncode == 0, copy.stderr                     # skopeo checked every blob


@pytest.mark.parametrize("fmt", ["v2s2", "oci"])
def test_what_skopeo_pushes_runs_here(images_root, reg, fresh, fmt):
    need("skopeo")
    dest = f"docker://{reg.host}/sk/{fmt}:latest"
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--format", fmt,
                    f"oci:{images_root}/image:busybox:latest", dest], check=True, capture_output=True)
    config = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config", "--raw", dest],
                            check=True, capture_output=True).stdout
    ok("pull", f"{reg.host}/sk/{fmt}", root=fresh)
    assert image_id(fresh, f"{reg.host}/sk/{fmt}") == sha256(config)
    assert ok("run", "--rm", f"{reg.host}/sk/{fmt}", "echo", fmt, root=fresh).stdout == f"{fmt}\n"


# -- logins ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def token_reg(tmp_path_factory):
    need("docker-registry", "openssl")
    d = tmp_path_factory.mktemp("token-registry")
    with TokenServer(d, {"alice": "s3cret"}) as tokens, Registry(d, auth=("token", tokens)) as r:
        r.tokens = tokens
        yield r


def test_token_auth_login_push_pull_logout(images_root, token_reg, fresh, client_config):
    host = token_reg.host
    ok("tag", "busybox", f"{host}/tok/busybox", root=images_root)
    denied = md("push", f"{host}/tok/busybox", root=images_root)
    assert denied.returncode == 1 and "unauthorized" in denied.stderr and "minidocker login" in denied.stderr
    wrong = md("login", "-u", "alice", "--password-stdin", host, input="nope\n", root=fresh)
    assert wrong.returncode == 1 and "incorrect username or password" in wrong.stderr
    assert not os.path.exists(client_config / "config.json")
    login = ok("login", "-u", "alice", "--password-stdin", host, input="s3cret\n", root=fresh)
    assert login.stdout == "Login Succeeded\n"
    path = client_config / "config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(client_config).st_mode) == 0o700
    assert host in json.load(open(path))["auths"]
    assert "Pushed" in ok("push", f"{host}/tok/busybox", root=images_root).stdout
    assert ("alice", ["repository:tok/busybox:pull,push"]) in token_reg.tokens.issued
    ok("pull", f"{host}/tok/busybox", root=fresh)
    assert ok("run", "--rm", f"{host}/tok/busybox", "echo", "token", root=fresh).stdout == "token\n"
    assert ok("logout", host, root=fresh).stdout == f"Removing login credentials for {host}\n"
    assert host not in json.load(open(path))["auths"]
    assert ok("logout", host, root=fresh).stdout == f"Not logged in to {host}\n"
    again = md("pull", f"{host}/tok/busybox:latest", root=fresh)
    assert again.returncode == 1 and "unauthorized" in again.stderr


def test_basic_auth(images_root, tmp_path_factory, fresh, client_config):
    need("docker-registry")
    d = tmp_path_factory.mktemp("basic-registry")
    with Registry(d, auth=("htpasswd", htpasswd(d, {"bob": "hunter2"}))) as reg:
        ok("tag", "busybox", f"{reg.host}/basic/busybox", root=images_root)
        denied = md("push", f"{reg.host}/basic/busybox", root=images_root)
        assert denied.returncode == 1 and "minidocker login" in denied.stderr
        assert md("login", "-u", "bob", "-p", "wrong", reg.host, root=fresh).returncode == 1
        login = ok("login", "-u", "bob", "-p", "hunter2", reg.host, root=fresh)
        assert "Using --password via the CLI is insecure" in login.stderr and "Login Succeeded" in login.stdout
        assert "Pushed" in ok("push", f"{reg.host}/basic/busybox", root=images_root).stdout
        assert ok("run", "--rm", f"{reg.host}/basic/busybox", "echo", "basic", root=fresh).stdout == "basic\n"


# -- TLS -------------------------------------------------------------------------------------

def test_https_first_and_the_ca_in_certs_d(images_root, tmp_path_factory, fresh):
    need("docker-registry", "openssl")
    d = tmp_path_factory.mktemp("tls-registry")
    key, cert = self_signed(str(d), "registry")
    with Registry(d, tls=(key, cert)) as reg:
        ok("tag", "busybox", f"{reg.host}/tls/busybox", root=images_root)
        # localhost: HTTPS is tried first, and not verified (as docker treats insecure registries)
        traced = ok("push", f"{reg.host}/tls/busybox", root=images_root, env={"MINIDOCKER_TRACE_HTTP": "1"})
        assert traced.stderr.splitlines()[0] == f"GET https://{reg.host}/v2/ -> 200"
        # with a CA in ROOT/certs.d/<host>/, the certificate is verified, and HTTP never tried
        certs = os.path.join(fresh, "certs.d", reg.host)
        os.makedirs(certs)
        _, other = self_signed(str(d), "other")
        os.symlink(other, os.path.join(certs, "ca.crt"))
        wrong = md("pull", f"{reg.host}/tls/busybox", root=fresh)
        assert wrong.returncode == 1 and "x509" in wrong.stderr and "certs.d" in wrong.stderr
        os.unlink(os.path.join(certs, "ca.crt"))
        os.symlink(cert, os.path.join(certs, "ca.crt"))
        assert "Pull complete" in ok("pull", f"{reg.host}/tls/busybox", root=fresh).stdout
