"""Real servers for the registry tests: docker-registry, a token server, a cutting proxy.

Everything listens on 127.0.0.1 on a free port, keeps its files in a directory the
test gives it, and is stopped by leaving its `with` block.  Nothing here fakes the
registry: the tests talk to distribution's own server (Debian's docker-registry),
which checks the tokens our token server signs exactly as it checks Docker Hub's.

  Registry(dir, auth=None | ("htpasswd", path) | ("token", TokenServer), tls=None)
  TokenServer(dir, users={"alice": "secret"})   JWTs signed with RS256 by `openssl`
  BrokenRegistry(answers)                       answers each request as a table says:
                                                a 500, bad JSON, a body cut short
  CuttingProxy(target_port, limit)              closes a connection after `limit`
                                                bytes from the server (a pull that dies);
                                                rate=bytes/s slows it (pulls that overlap)

The token format is distribution's docs/spec/auth/jwt.md: a JWT whose header names
the signing key by its libtrust key ID, and whose claims list the access granted.
"""
import base64
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

HAVE_REGISTRY = shutil.which("docker-registry") is not None
HAVE_SKOPEO = shutil.which("skopeo") is not None
HAVE_OPENSSL = shutil.which("openssl") is not None


def need(*what):
    """Skip (loudly, with the package to install) when a tool is missing."""
    missing = [w for w in what if shutil.which(w) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: apt-get install -y "
                    + " ".join({"docker-registry": "docker-registry", "skopeo": "skopeo",
                                "openssl": "openssl"}[m] for m in missing))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def self_signed(directory, name="localhost"):
    """A key and a self-signed certificate (for TLS, and as the token signing key)."""
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL,
    so a killed test run leaves no registry behind (prctl(2) PR_SET_PDEATHSIG)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 15)


class Registry:
    """docker-registry serve CONFIG, on 127.0.0.1:<free port>, storage in `directory`."""

    def __init__(self, directory, auth=None, tls=None):
        self.dir, self.port = str(directory), free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = os.path.join(self.dir, "registry.log")
        lines = ["version: 0.1", "log:", "  level: info", "storage:",
                 "  filesystem:", f"    rootdirectory: {self.dir}/storage",
                 "  delete:", "    enabled: true", "http:", f"  addr: {self.host}"]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[1]}", f"    key: {tls[0]}"]
        if auth and auth[0] == "htpasswd":
            lines += ["auth:", "  htpasswd:", "    realm: test-registry", f"    path: {auth[1]}"]
        elif auth and auth[0] == "token":
            token = auth[1]
            lines += ["auth:", "  token:", f"    realm: {token.url}/token",
                      f"    service: {token.service}", f"    issuer: {token.issuer}",
                      f"    rootcertbundle: {token.cert}"]
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def __enter__(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.__exit__()
            with open(self.log) as f:
                raise RuntimeError("docker-registry did not start:\n" + f.read()[-2000:])
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path, headers=None):
        """GET from the registry (plain HTTP, no auth): (status, headers, body)."""
        req = urllib.request.Request(f"http://{self.host}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def requests(self):
        """The access log lines so far ("GET /v2/... 200"), for asserting what was sent."""
        with open(self.log, errors="replace") as f:
            return [line for line in f if '"' in line and "HTTP/1.1" in line]


def htpasswd(directory, users):
    """An htpasswd file with bcrypt hashes (the only kind distribution accepts)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    path = os.path.join(str(directory), "htpasswd")
    with open(path, "w") as f:
        for user, password in users.items():
            # cost 4 (rounds=16), not 12: the registry checks the hash on every request
            salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)
            f.write(f"{user}:{crypt.crypt(password, salt)}\n")
    return path


# -- the token server ------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(cert_path) -> str:
    """The key ID distribution looks a token's "kid" up by: SHA-256 of the DER public
    key, first 240 bits, base32, in groups of four joined by ':' (docker/libtrust)."""
    der = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-pubkey"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der,
                         check=True, capture_output=True).stdout
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


class _ThreadedServer:
    """An HTTP server of the test's own on 127.0.0.1, in a thread, for a with-block."""

    def _serve(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class TokenServer(_ThreadedServer):
    """GET /token?service=S&scope=repository:NAME:pull,push with Basic auth -> {"token": JWT}.

    Known users get every action they ask for; anyone else (or a wrong password)
    gets 401.  `anonymous_pull` lets requests without credentials pull."""

    service, issuer = "test-registry", "test-token-issuer"

    def __init__(self, directory, users, anonymous_pull=False):
        self.users, self.anonymous_pull = dict(users), anonymous_pull
        self.key, self.cert = self_signed(str(directory), "token")
        self.kid = libtrust_key_id(self.cert)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issued = []                       # (user, scopes) per token, for asserts
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.handle(self)

            def log_message(self, *args):
                pass
        self._serve(Handler)

    def handle(self, req):
        query = parse_qs(urlparse(req.path).query)
        user = None
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) != password:
                return self._reply(req, 401, {"details": "incorrect username or password"})
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = actions.split(",") if user else (["pull"] if self.anonymous_pull else [])
            allowed = [a for a in actions.split(",") if a in allowed]
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        if user is None and not self.anonymous_pull:
            return self._reply(req, 401, {"details": "authentication required"})
        self.issued.append((user, query.get("scope", [])))
        token = self.sign({"iss": self.issuer, "sub": user or "", "aud": query.get("service", [""])[0],
                           "exp": int(time.time()) + 300, "nbf": int(time.time()) - 10,
                           "iat": int(time.time()), "jti": os.urandom(8).hex(), "access": access})
        self._reply(req, 200, {"token": token, "access_token": token, "expires_in": 300})

    def sign(self, claims) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        return signing_input + "." + _b64(signature)

    @staticmethod
    def _reply(req, status, body):
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


# -- a registry that answers badly ------------------------------------------------------

class BrokenRegistry(_ThreadedServer):
    """A web server on 127.0.0.1 that answers like a broken registry: `answers` maps
    "METHOD /path" to (status, headers, body); a Content-Length larger than the body
    makes the answer end early.  "{host}" in an answer is replaced by the server's
    host:port.  Unknown requests get 404.  docker-registry never
    misbehaves, so the client's error paths need this small stand-in."""

    def __init__(self, answers):
        self.answers = answers
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                status, headers, body = server.answers.get(f"{self.command} {self.path.split('?')[0]}",
                                                           (404, {}, b"{}"))
                body = body.replace(b"{host}", server.host.encode())
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v.replace("{host}", server.host))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body[:int(headers["Content-Length"])])
                self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

            def log_message(self, *args):
                pass
        self._serve(Handler)


# -- a proxy that cuts a transfer short ----------------------------------------------

class CuttingProxy:
    """A TCP relay to 127.0.0.1:target that closes a connection once `limit` bytes
    came back from the server (None: never), or flips the byte at `corrupt_at` of
    what the server sends, or sends at most `rate` bytes a second (a slow network).  It records each request's first lines, so a test can
    see the Range header of a resumed download."""

    def __init__(self, target_port, limit=None, corrupt_at=None, rate=None):
        self.target, self.limit, self.corrupt_at, self.rate = target_port, limit, corrupt_at, rate
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.heads = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), 1).close()
        self.thread.join(5)
        self.sock.close()

    def _accept(self):
        while True:
            client, _ = self.sock.accept()
            if self.stopping:
                client.close()
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        server = socket.create_connection(("127.0.0.1", self.target))
        sent = [0]

        def up():
            first = True
            while data := _recv(client):
                if first:
                    self.heads.append(data.split(b"\r\n\r\n")[0].decode(errors="replace"))
                    first = False
                server.sendall(data)
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=up, daemon=True)
        t.start()
        try:
            while data := _recv(server):
                at = (self.corrupt_at or 0) - sent[0]
                if self.corrupt_at is not None and 0 <= at < len(data):
                    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
                if self.limit is not None and sent[0] + len(data) > self.limit:
                    client.sendall(data[:self.limit - sent[0]])
                    break
                client.sendall(data)
                sent[0] += len(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (client, server):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            t.join(5)


def _recv(s):
    try:
        return s.recv(65536)
    except OSError:
        return b""
