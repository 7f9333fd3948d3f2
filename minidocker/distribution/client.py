"""The HTTP client of a registry: HTTPS or HTTP, the auth challenge, tokens, errors.

Layer: distribution (docker's distribution/registry.go and registry/auth code,
the transport `docker pull` and `docker push` talk through).  A registry is a web
server that stores blobs by digest and manifests by digest or tag (the Registry
HTTP API v2, now the OCI distribution spec: opencontainers/distribution-spec spec.md):

    GET  /v2/                                 is this a registry? (401: log in first)
    HEAD /v2/<name>/manifests/<tag>           what digest does the tag point at?
    GET  /v2/<name>/manifests/<digest>        the manifest (or an index of manifests)
    GET  /v2/<name>/blobs/<digest>            the config, each layer (gzip tar)
    POST, PATCH, PUT /v2/<name>/blobs/uploads/...   push a blob (push.py)

A registry that wants a login answers 401 with a challenge (RFC 7235 section 4.1;
distribution's docs/spec/auth/token.md and scope.md):

    WWW-Authenticate: Basic realm="my-registry"
        -> send "Authorization: Basic base64(user:password)" with every request
    WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
                             scope="repository:library/redis:pull"
        -> GET realm?service=...&scope=... (with Basic credentials, if any) returns
           {"token": JWT}; send "Authorization: Bearer JWT" to the registry

Safety rules: plain HTTP only for localhost (127.0.0.0/8, ::1) or a registry listed
as insecure; credentials are sent only to the registry's own host (never after a
redirect elsewhere); every failure becomes one RegistryError in docker's words.
"""
import base64
import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import sys
import urllib.parse

from minidocker import config
from minidocker.errors import InvalidArgument, MinidockerError
from minidocker.image import reference, store

HUB_API = "registry-1.docker.io"       # where docker.io's API really is
TIMEOUT = 60                           # seconds without a byte before giving up

# Media types of what the API carries (image-spec manifest.md, image-index.md;
# distribution's docs/spec/manifest-v2-2.md for docker's own).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = store.DOCKER_LIST
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST, OCI_INDEX = store.MANIFEST, store.INDEX
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+prettyjws",
           "application/vnd.docker.distribution.manifest.v1+json")
MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
# What docker asks for.  Leave a type out and the registry converts or refuses: with no
# Accept at all, distribution 2.8 answers a docker v2 manifest with a schema 1 one.
ACCEPT = ", ".join(MANIFESTS + INDEXES)


class RegistryError(MinidockerError):
    """The registry refused, or could not be reached."""


def api_host(domain: str) -> str:
    """Where a reference's domain is served: docker.io is registry-1.docker.io."""
    return HUB_API if domain == reference.HUB else domain


def content_digest(data: bytes) -> str:
    """What the registry calls Docker-Content-Digest: sha256 of the exact bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- which registries may be spoken to in plain HTTP -----------------------------------

def insecure_registries() -> list[str]:
    """MINIDOCKER_INSECURE_REGISTRIES (comma-separated) and "insecure-registries" in
    ROOT/daemon.json (docker's daemon.json key): host, host:port, or a CIDR."""
    found = [s.strip() for s in os.environ.get("MINIDOCKER_INSECURE_REGISTRIES", "").split(",") if s.strip()]
    try:
        with open(config.path("daemon.json")) as f:
            found += list(json.load(f).get("insecure-registries", []))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise InvalidArgument(f"cannot read {config.path('daemon.json')}: {e}") from None
    return found


def _host_ip(domain):
    host = domain.rsplit(":", 1)[0] if not domain.endswith("]") else domain
    host = host.strip("[]")
    try:
        return host, ipaddress.ip_address(host)
    except ValueError:
        return host, None


def allows_http(domain: str) -> bool:
    """Plain HTTP only for localhost, a loopback address, or a registry listed as insecure.
    No name is looked up in DNS to decide it."""
    host, ip = _host_ip(domain)
    if host == "localhost" or (ip is not None and ip.is_loopback):
        return True
    for entry in insecure_registries():
        if entry in (domain, host):
            return True
        with contextlib.suppress(ValueError):
            if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                return True
    return False


# -- challenges ---------------------------------------------------------------------------

# One parameter of a challenge: key="quoted value" (commas allowed inside) or key=token.
_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict]:
    """'Bearer realm="x",service="y"' -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params, pos = {}, 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        params[m.group(1).lower()] = m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        pos = m.end()
    return scheme.lower(), params


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- HTTP ------------------------------------------------------------------------------

def _trace(line):
    if os.environ.get("MINIDOCKER_TRACE_HTTP"):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _short_query(u):
    """A path for the trace: upload state tokens are long and say nothing to a reader."""
    query = "&".join(p for p in u.query.split("&") if p and not p.startswith("_state"))
    return u.path + (f"?{query}" if query else "")


_SHOWN = ("WWW-Authenticate", "Docker-Content-Digest", "Range", "Content-Range")
# What can go wrong on the wire: refused, reset, TLS, a malformed answer or URL.
NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)


class Response:
    """A response whose body is read later (a layer) or at once (.body)."""

    def __init__(self, conn, resp, url):
        self.conn, self.resp, self.url = conn, resp, url
        self.status, self.headers = resp.status, resp.headers
        self._body = None

    def load(self) -> bytes:
        """Read the whole body and close; the network's own exception if that fails."""
        if self._body is None:
            try:
                self._body = self.resp.read()
            finally:
                self.close()
        return self._body

    @property
    def body(self) -> bytes:
        """The whole body; a RegistryError if the connection breaks while reading it."""
        try:
            return self.load()
        except NETWORK_ERRORS as e:
            raise RegistryError(f"{self.url}: the connection broke while reading the answer "
                                f"({e or type(e).__name__})") from None

    def read(self, n):
        return self.resp.read(n)

    def close(self):
        self.conn.close()

    def length(self) -> int:
        """Content-Length, 0 when missing or not a number."""
        with contextlib.suppress(ValueError, TypeError):
            return max(0, int(self.headers.get("Content-Length") or 0))
        return 0

    def error(self) -> str:
        """The registry's own words: {"errors": [{"code", "message"}]} -> "code: message"."""
        try:
            errors = json.loads(self.body).get("errors") or []
            return "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}"
                             for e in errors) or f"{self.status} {self.resp.reason}"
        except (ValueError, AttributeError, TypeError, MinidockerError):
            return f"{self.status} {self.resp.reason}"


class Client:
    """One registry, as seen for one repository: decides HTTPS or HTTP once (ping),
    answers its challenges, retries a 401 once with a new token.  `creds` is
    (user, password) from credentials.py, or None."""

    def __init__(self, domain: str, creds: tuple[str, str] | None = None):
        self.domain, self.host = domain, api_host(domain)
        self.scheme = None
        self.challenge = None                     # (scheme, params) from the last 401
        self.tokens = {}                          # frozenset(scopes) -> token
        self.creds = creds
        self._context = None

    # The connection: HTTPS first; HTTP only where allows_http() says so.
    def _tls(self):
        if self._context is None:
            cas = config.path("certs.d", self.domain)
            if os.path.isdir(cas):              # docker's /etc/docker/certs.d/<host:port>/*.crt
                self._context = ssl.create_default_context()
                for name in sorted(os.listdir(cas)):
                    if name.endswith(".crt"):
                        self._context.load_verify_locations(os.path.join(cas, name))
            elif allows_http(self.domain):      # docker does not verify insecure registries
                self._context = ssl._create_unverified_context()
            else:
                self._context = ssl.create_default_context()
        return self._context

    def _send(self, method, url, headers, body=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=TIMEOUT, context=self._tls())
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
        headers = {"User-Agent": f"minidocker/{config.VERSION} python/{sys.version.split()[0]}", **headers}
        try:
            conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        shown = "; ".join(f"{h}: {resp.headers[h]}" for h in _SHOWN if resp.headers.get(h))
        kind = resp.headers.get("Content-Type", "") if "/manifests/" in u.path else ""
        mark = " [" + headers["Authorization"].split()[0] + "]" if "Authorization" in headers else ""
        _trace(f"{method} {u.scheme}://{u.netloc}{_short_query(u)}{mark} -> {resp.status}"
               + (f" {kind}" if kind else "") + (f" ({shown})" if shown else ""))
        return Response(conn, resp, url)

    def _failure(self, method, url, e) -> RegistryError:
        """docker's words for a request that got no answer."""
        u = urllib.parse.urlsplit(url)
        what = f'{method.capitalize()} "{url}"'
        if isinstance(e, ConnectionRefusedError):
            return RegistryError(f"{what}: dial tcp {u.netloc}: connect: connection refused")
        if isinstance(e, socket.gaierror):
            return RegistryError(f"{what}: dial tcp: lookup {u.hostname}: {e.strerror}")
        if isinstance(e, (socket.timeout, TimeoutError)):
            return RegistryError(f"{what}: i/o timeout")
        if isinstance(e, ssl.SSLCertVerificationError):
            return RegistryError(f"{what}: x509: {e.verify_message} (put the registry's CA "
                                 f"in {config.path('certs.d', self.domain, 'ca.crt')})")
        if isinstance(e, ssl.SSLError) and u.scheme == "https":
            return RegistryError(f"{what}: http: server gave HTTP response to HTTPS client "
                                 f"({e.reason or e}; plain HTTP is used only for localhost and "
                                 f"registries in MINIDOCKER_INSECURE_REGISTRIES)")
        return RegistryError(f"{what}: {e or type(e).__name__}")

    def ping(self) -> None:
        """GET /v2/: decide the scheme and remember the challenge (docker does this first)."""
        if self.scheme:
            return
        schemes = ["https"] + (["http"] if allows_http(self.domain)
                               and not os.path.isdir(config.path("certs.d", self.domain)) else [])
        for i, scheme in enumerate(schemes):
            url = f"{scheme}://{self.host}/v2/"
            try:
                r = self._send("GET", url, {})
                r.load()
            except NETWORK_ERRORS as e:
                if i + 1 < len(schemes):        # a plain-HTTP registry: try HTTP (docker does too)
                    _trace(f"GET {url} -> {type(e).__name__}: {getattr(e, 'reason', None) or e}; trying http")
                    continue
                raise self._failure("GET", url, e) from None
            if r.status == 401:
                self.challenge = parse_challenge(r.headers.get("WWW-Authenticate", ""))
            elif r.status != 200:
                raise RegistryError(f'Get "{url}": received unexpected HTTP status: {r.status} {r.resp.reason}')
            self.scheme = scheme
            return

    def url(self, path):
        return f"{self.scheme}://{self.host}{path}"

    def request(self, method, path, scopes=(), headers=None, body=None) -> Response:
        """Send with the right Authorization; on 401 take the new challenge and retry once.
        Redirects (Docker Hub sends blobs to a CDN) are followed without credentials."""
        self.ping()
        url = self.url(path) if path.startswith("/") else path
        for attempt in (1, 2):
            hdrs = dict(headers or {})
            if self.challenge:
                hdrs["Authorization"] = self._authorization(scopes)
            r = self._request_following(method, url, hdrs, body)
            if r.status == 401 and attempt == 1:
                challenge = parse_challenge(r.headers.get("WWW-Authenticate", ""))
                r.body
                if challenge[1].get("scope"):
                    scopes = tuple(sorted(set(scopes) | set(challenge[1]["scope"].split(" "))))
                self.challenge, self.tokens = challenge, {}
                continue
            return r
        return r

    def _request_following(self, method, url, headers, body):
        for _ in range(6):
            try:
                r = self._send(method, url, headers, body)
            except NETWORK_ERRORS as e:
                raise self._failure(method, url, e) from None
            if r.status not in (301, 302, 303, 307, 308) or "Location" not in r.headers:
                return r
            r.body
            new = urllib.parse.urljoin(url, r.headers["Location"])
            if urllib.parse.urlsplit(new).netloc != urllib.parse.urlsplit(url).netloc:
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
            url = new
        raise RegistryError(f"{method} {url}: too many redirects")

    def _authorization(self, scopes) -> str:
        scheme, params = self.challenge
        if scheme == "basic":
            if not self.creds:
                raise RegistryError(f"unauthorized: authentication required (run `minidocker login {self.domain}`)")
            return basic(*self.creds)
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{self.domain}: unsupported authentication: {scheme or 'none'}")
        key = frozenset(scopes)
        if key not in self.tokens:
            self.tokens[key] = self.token(params, scopes)
        return "Bearer " + self.tokens[key]

    def token(self, params, scopes=()) -> str:
        """GET realm?service=...&scope=... (docker's token flow, distribution auth/token.md)."""
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in scopes]
        headers = {}
        if self.creds:
            query += [("account", self.creds[0])]
            headers["Authorization"] = basic(*self.creds)
        realm = params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise RegistryError(f"invalid token realm {realm!r}")
        if urllib.parse.urlsplit(url).scheme == "http" and not allows_http(urllib.parse.urlsplit(url).netloc):
            raise RegistryError(f"refusing to send credentials to {realm} over plain HTTP")
        r = self._request_following("GET", url, headers, None)
        if r.status == 401 and not self.creds:
            raise RegistryError(f"unauthorized: authentication required (run `minidocker login {self.domain}`)")
        if r.status == 401:
            raise RegistryError(f'Get "{self.url("/v2/")}": unauthorized: incorrect username or password')
        if r.status != 200:
            raise RegistryError(f"token from {realm}: {r.error()}")
        try:
            reply = json.loads(r.body)
            token = reply.get("token") or reply["access_token"]
            if not isinstance(token, str):
                raise TypeError
            return token
        except (ValueError, KeyError, AttributeError, TypeError):
            raise RegistryError(f"token from {realm}: no token in the answer") from None

    def login(self) -> None:
        """Check the credentials work (docker login): ping, then prove them."""
        self.ping()
        if not self.challenge:
            return                          # a registry with no auth takes any login
        if self.challenge[0] == "bearer":
            self.token(self.challenge[1])
            return
        r = self.request("GET", "/v2/")
        r.body
        if r.status != 200:
            raise RegistryError(f'Get "{self.url("/v2/")}": unauthorized: incorrect username or password')
