"""A registry that fails or answers nonsense: one MinidockerError, never a traceback.

Each case is a real HTTP server on 127.0.0.1 (BrokenRegistry in registry_fixtures.py)
giving one wrong answer: a 500, a body that is not JSON, a manifest whose fields have
the wrong types, an answer cut short, a redirect to a malformed URL, a token server
that returns no token.  pull() must raise one MinidockerError with a clear message,
and the CLI must print it on one line.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from registry_fixtures import BrokenRegistry
from test_registry import client_config  # noqa: F401 (fixture: credentials in a temp dir)

from minidocker.distribution import client, pull
from minidocker.errors import MinidockerError
from minidocker.image import store

NAME = "bad/x"
MANIFESTS = f"/v2/{NAME}/manifests/latest"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = json.dumps({"architecture": store.ARCH, "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}}).encode()


def _manifest(layers=None, config=None, kind=client.DOCKER_MANIFEST):
    body = {"schemaVersion": 2, "mediaType": kind,
            "config": config if config is not None else {"mediaType": client.DOCKER_CONFIG,
                                                         "digest": sha256(CONFIG), "size": len(CONFIG)},
            "layers": layers if layers is not None else [{"mediaType": client.DOCKER_LAYER,
                                                          "digest": "sha256:" + "b" * 64, "size": 10}]}
    return json.dumps(body).encode()


def _registry(manifest_answer=None, **more):
    """A registry that is fine up to the manifest, which is `manifest_answer`."""
    answers = {"GET /v2/": (200, {}, b"{}"),
               f"HEAD {MANIFESTS}": (200, {"Content-Type": client.DOCKER_MANIFEST}, b""),
               f"GET /v2/{NAME}/blobs/{sha256(CONFIG)}": (200, {}, CONFIG)}
    if manifest_answer is not None:
        answers[f"GET {MANIFESTS}"] = manifest_answer
    answers.update(more)
    return answers


def _ok(body, kind=client.DOCKER_MANIFEST):
    return (200, {"Content-Type": kind}, body)


CASES = {
    "ping answers 500": ({"GET /v2/": (500, {}, b"oops")}, "received unexpected HTTP status: 500"),
    "manifest is not JSON": (_registry(_ok(b"not json{")), "invalid manifest for"),
    "manifest is a JSON list": (_registry(_ok(b"[1, 2]")), "not a JSON object"),
    "config descriptor is a number": (_registry(_ok(_manifest(config=5))), "a config has no digest"),
    "config digest is malformed": (_registry(_ok(_manifest(config={"digest": "sha256:xyz"}))),
                                   "invalid manifest for"),
    "layers is a string": (_registry(_ok(_manifest(layers="x"))), "no layers but 1 diff_ids"),
    "layer size is a string": (_registry(_ok(_manifest(layers=[{"digest": "sha256:" + "b" * 64,
                                                                "size": "big"}]))), "is not a number"),
    "layer is a number": (_registry(_ok(_manifest(layers=[7]))), "a layer has no digest"),
    "index entries are numbers": (_registry(_ok(json.dumps({"mediaType": client.OCI_INDEX,
                                                            "manifests": [1, "a"]}).encode(),
                                                client.OCI_INDEX)), "no matching manifest"),
    "index entry has no digest": (_registry(_ok(json.dumps(
        {"mediaType": client.OCI_INDEX, "manifests": [
            {"digest": 7, "platform": {"os": "linux", "architecture": store.ARCH}}]}).encode(),
        client.OCI_INDEX)), "index entry has no digest"),
    "manifest answers 500": (_registry((500, {}, b"<html>")), "500 Internal Server Error"),
    "error body is odd JSON": (_registry((500, {}, b'{"errors": "x"}')), "500 Internal Server Error"),
    "manifest cut short": (_registry((200, {"Content-Length": "1000"}, b'{"schemaVersion"')),
                           "the connection broke while reading the answer"),
    "redirect to a bad port": (_registry((307, {"Location": "http://127.0.0.1:port/x"}, b"")),
                               'Get "http://127.0.0.1:port/x"'),
    "layer answers 500": (_registry(_ok(_manifest()), **{
        f"GET /v2/{NAME}/blobs/sha256:{'b' * 64}": (500, {}, b"no")}), "500 Internal Server Error"),
    "token is not JSON": ({"GET /v2/": (401, {"WWW-Authenticate": 'Bearer realm="http://{host}/token"'}, b""),
                           "GET /token": (200, {}, b"nope")}, "no token in the answer"),
    "token is a number": ({"GET /v2/": (401, {"WWW-Authenticate": 'Bearer realm="http://{host}/token"'}, b""),
                           "GET /token": (200, {}, b'{"token": 5}')}, "no token in the answer"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_registry_is_one_error(root, case):
    answers, message = CASES[case]
    with BrokenRegistry(answers) as reg:
        with pytest.raises(MinidockerError) as e:
            pull.pull(f"{reg.host}/{NAME}", quiet=True)
    assert message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)
    tmp = os.path.join(root, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def test_connection_refused_is_one_error(root):
    with pytest.raises(MinidockerError) as e:
        pull.pull("127.0.0.1:1/x", quiet=True)
    assert 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused' == str(e.value)


@pytest.mark.parametrize("args, answers, message", [
    (("pull", "127.0.0.1:1/x"), None, "connect: connection refused"),
    (("pull", "{host}/bad/x"), CASES["manifest is not JSON"][0], "not a JSON object"),
    (("pull", "{host}/bad/x"), CASES["ping answers 500"][0], "received unexpected HTTP status: 500"),
    (("push", "{host}/bad/x"), CASES["ping answers 500"][0], "An image does not exist locally"),
    (("login", "-u", "a", "--password-stdin", "{host}"), CASES["token is not JSON"][0], "no token in the answer"),
])
def test_the_cli_prints_one_line(root, args, answers, message):
    reg = BrokenRegistry(answers or {})
    with reg:
        env = dict(os.environ, MINIDOCKER_ROOT=root)
        proc = subprocess.run([sys.executable, "-m", "minidocker", *[a.replace("{host}", reg.host) for a in args]],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=60, input="b\n")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
