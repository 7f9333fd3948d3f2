"""Pull and push images: the registry HTTP API v2 (the OCI distribution spec).

Layer: distribution (what dockerd's distribution/ package does for `docker pull`
and `docker push`).  A registry is a web server that stores blobs by digest and
manifests by digest or tag, under a repository name:

    GET  /v2/                                 is this a registry? (401: log in first)
    HEAD /v2/<name>/manifests/<tag>           what digest does the tag point at?
    GET  /v2/<name>/manifests/<digest>        the manifest (or an index of manifests)
    GET  /v2/<name>/blobs/<digest>            the config, each layer (gzip tar)
    HEAD /v2/<name>/blobs/<digest>            does the registry have it?  (push skips it)
    POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>   cross-repository mount
    POST /v2/<name>/blobs/uploads/  PATCH <Location> ...  PUT <Location>&digest=<digest>
    PUT  /v2/<name>/manifests/<tag>           the manifest last, once its blobs are there

Spec: https://github.com/opencontainers/distribution-spec (spec.md); manifests and
indexes: image-spec manifest.md, image-index.md; Docker's v2 schema 2:
distribution's docs/spec/manifest-v2-2.md.  Authentication is in auth.py.

Safety rules, one line each:
- every manifest and blob is hashed as it arrives and refused unless it matches its digest;
- a blob downloads to ROOT/tmp/pull-<hex>.partial, is verified, then stored by
  store.store_layer (temp file + rename): the store never holds half a blob;
- an interrupted pull leaves the .partial file, and the next pull resumes it (Range: bytes=N-);
- a blob may not grow past the size its descriptor declares (a registry cannot fill the disk);
- plain HTTP only for localhost (127.0.0.0/8, ::1) or a registry listed as insecure;
- credentials are sent only to the registry's own host (never after a redirect elsewhere).

The image config is stored byte for byte (store.register), so the image ID,
the digest of the config, is the same here, in the registry and in docker.
"""
import contextlib
import fcntl
import gzip
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

from minidocker import __version__
from minidocker.distribution import auth
from minidocker import config
from minidocker.image import store
from minidocker.errors import InvalidArgument, MinidockerError, NotFound

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = store.DOCKER_LIST
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST, OCI_INDEX = store.MANIFEST, store.INDEX
OCI_LAYER_GZIP = store.LAYER + "+gzip"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+prettyjws",
           "application/vnd.docker.distribution.manifest.v1+json")
MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
# What docker asks for.  Leave a type out and the registry converts or refuses: with no
# Accept at all, distribution 2.8 answers a docker v2 manifest with a schema 1 one.
ACCEPT = ", ".join(MANIFESTS + INDEXES)

HUB_DOMAIN, HUB_API = "docker.io", "registry-1.docker.io"
MAX_MANIFEST = 4 << 20          # bytes; docker refuses bigger manifests and configs too
MAX_CONFIG = 8 << 20
CHUNK = int(os.environ.get("MINIDOCKER_UPLOAD_CHUNK", 5 << 20))   # bytes per PATCH
DOWNLOADS, TIMEOUT = 3, 60      # parallel layer downloads (docker's default); seconds


class RegistryError(MinidockerError):
    """The registry refused, or could not be reached."""


# -- references ---------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class Reference:
    """[domain/]path[:tag][@digest], read the way docker reads it: the first part is a
    registry if it has a "." or ":" or is "localhost", else the name is on Docker Hub,
    where one-word names live under library/ ("busybox" = docker.io/library/busybox)."""

    def __init__(self, text: str):
        self.text = text
        rest, _, digest = text.partition("@")
        name, tag = rest, None
        if ":" in rest.rsplit("/", 1)[-1]:
            name, tag = rest.rsplit(":", 1)
        first, sep, remainder = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            self.domain, self.path = first, remainder
        else:
            self.domain, self.path = HUB_DOMAIN, name
            if "/" not in name:
                self.path = "library/" + name
        if self.domain in ("index.docker.io", HUB_API):
            self.domain = HUB_DOMAIN
        self.tag, self.digest = tag, digest or None
        if (not _PATH.match(self.path) or (tag is not None and not _TAG.match(tag))
                or (digest and not _DIGEST.match(digest)) or len(self.path) > 255):
            raise InvalidArgument(f"invalid reference format: {text!r}")

    @property
    def hub(self) -> bool:
        return self.domain == HUB_DOMAIN

    @property
    def repository(self) -> str:
        """The full name: docker.io/library/busybox, 127.0.0.1:5000/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short name docker shows: busybox, user/app, 127.0.0.1:5000/busybox."""
        if self.hub:
            return self.path[len("library/"):] if self.path.startswith("library/") else self.path
        return self.repository

    @property
    def api_host(self) -> str:
        return HUB_API if self.hub else self.domain

    def local(self) -> str | None:
        """The tag in the local store ("busybox:latest"), None when pulled by digest only."""
        return f"{self.familiar}:{self.tag}" if self.tag else None

    def __str__(self):
        return self.familiar + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def pulls_on_run(text: str) -> bool:
    """Should `run` pull this missing image?  Yes when the name says which registry
    (127.0.0.1:5000/x, localhost/x, host.org/x).  Docker Hub only with MINIDOCKER_ONLINE=1:
    classroom machines and CI are offline, and a name lookup that cannot succeed
    should not be tried for every typo."""
    try:
        ref = Reference(text)
    except InvalidArgument:
        return False
    return not ref.hub or os.environ.get("MINIDOCKER_ONLINE") == "1"


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


# -- HTTP ------------------------------------------------------------------------------

def _trace(line):
    if os.environ.get("MINIDOCKER_TRACE_HTTP"):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


_SHOWN = ("WWW-Authenticate", "Docker-Content-Digest", "Range", "Content-Range")


class Response:
    """A response whose body is read later (a layer) or at once (.body)."""

    def __init__(self, conn, resp, url):
        self.conn, self.resp, self.url = conn, resp, url
        self.status, self.headers = resp.status, resp.headers
        self._body = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            try:
                self._body = self.resp.read()
            finally:
                self.close()
        return self._body

    def read(self, n):
        return self.resp.read(n)

    def close(self):
        self.conn.close()

    def error(self) -> str:
        """The registry's own words: {"errors": [{"code", "message"}]} -> "code: message"."""
        try:
            errors = json.loads(self.body).get("errors") or []
            return "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}"
                             for e in errors) or f"{self.status} {self.resp.reason}"
        except (ValueError, AttributeError, OSError):
            return f"{self.status} {self.resp.reason}"


class Client:
    """One registry, as seen for one repository: decides HTTPS or HTTP once (ping),
    answers its challenges (auth.py), retries a 401 once with a new token."""

    def __init__(self, domain: str, api_host: str | None = None):
        self.domain, self.host = domain, api_host or domain
        self.scheme = None
        self.challenge = None                     # (scheme, params) from the last 401
        self.tokens = {}                          # frozenset(scopes) -> token
        self.creds = auth.credentials(domain)
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
        headers = {"User-Agent": f"minidocker/{__version__} python/{sys.version.split()[0]}", **headers}
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
        return RegistryError(f"{what}: {e}")

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
                r.body
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                if i + 1 < len(schemes):        # a plain-HTTP registry: try HTTP (docker does too)
                    _trace(f"GET {url} -> {type(e).__name__}: {getattr(e, 'reason', None) or e}; trying http")
                    continue
                raise self._failure("GET", url, e) from None
            if r.status == 401:
                self.challenge = auth.parse_challenge(r.headers.get("WWW-Authenticate", ""))
            elif r.status != 200:
                raise RegistryError(f'Get "{url}": {r.error()}')
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
                challenge = auth.parse_challenge(r.headers.get("WWW-Authenticate", ""))
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
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
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
            return auth.basic(*self.creds)
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
            headers["Authorization"] = auth.basic(*self.creds)
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
            return reply.get("token") or reply["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise RegistryError(f"token from {realm}: no token in the answer") from None

    def login(self) -> None:
        """Check the stored credentials work (docker login): ping, then prove them."""
        self.ping()
        if not self.challenge:
            return                          # a registry with no auth takes any login
        if self.challenge[0] == "bearer":
            self.token(self.challenge[1])
            return
        r = self.request("GET", "/v2/")
        if r.status != 200:
            raise RegistryError(f'Get "{self.url("/v2/")}": unauthorized: incorrect username or password')


def _short_query(u):
    """A path for the trace: upload state tokens are long and say nothing to a reader."""
    query = "&".join(p for p in u.query.split("&") if p and not p.startswith("_state"))
    return u.path + (f"?{query}" if query else "")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


# -- progress: docker's lines, redrawn in place on a terminal ------------------------------

class Progress:
    """One line per layer, like docker's jsonmessage: on a terminal each layer's line
    is redrawn in place with a bar; elsewhere (a file, a notebook with
    MINIDOCKER_PROGRESS=plain) only status changes are printed, one line each."""

    def __init__(self, out=None, quiet=False):
        self.out = out or sys.stdout
        self.quiet = quiet
        self.tty = (self.out.isatty() and os.environ.get("MINIDOCKER_PROGRESS", "auto") != "plain"
                    and os.environ.get("TERM") != "dumb")
        self.ids, self.last, self.drawn = [], {}, {}
        self.lock = threading.Lock()

    def say(self, text):
        if not self.quiet:
            with self.lock:
                self.out.write(text + "\n")
                self.out.flush()

    def layer(self, ident, status, current=None, total=None):
        if self.quiet:
            return
        with self.lock:
            if not self.tty:
                if current is None and self.last.get(ident) != status:
                    self.out.write(f"{ident}: {status}\n")
                    self.out.flush()
                self.last[ident] = status
                return
            now = time.monotonic()
            if (current is not None and self.last.get(ident) == status and current != total
                    and now - self.drawn.get(ident, 0) < 0.1):
                return                          # at most ten redraws a second per line
            self.last[ident], self.drawn[ident] = status, now
            line = f"{ident}: {status}"
            if current is not None and _bar(current, total):
                line += " " + _bar(current, total)
            if ident not in self.ids:
                self.ids.append(ident)
                self.out.write(f"{line}\n")
            else:
                up = len(self.ids) - self.ids.index(ident)
                self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r")
            self.out.flush()


def _bar(current, total):
    from minidocker.fmt import human_size
    if not total:
        return human_size(current) if current else ""
    n = min(50, int(50 * current / total))
    bar = "=" * n + (">" if n < 50 else "") + " " * (49 - n)
    return f"[{bar}] {human_size(current):>7}/{human_size(total)}"


# -- what we know about registries: repo digests, and the compressed digests of layers -----

def _state_path(name):
    return config.path("distribution", name)


def _read_state(name) -> dict:
    try:
        with open(_state_path(name)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def _update_state(name, change) -> None:
    with store.lock():
        data = _read_state(name)
        change(data)
        store.write_atomic(_state_path(name), json.dumps(data, indent=1).encode())


def repo_digests(image_id: str) -> list[str]:
    """docker's RepoDigests: "127.0.0.1:5000/busybox@sha256:..." for each manifest
    digest this image was pulled by or pushed as."""
    return _read_state("repodigests.json").get(image_id, [])


def _remember_repo_digest(image_id, ref, digest):
    def change(data):
        name = f"{ref.familiar}@{digest}"
        kept = [d for d in data.get(image_id, []) if d.split("@")[0] != ref.familiar]
        data[image_id] = kept + [name]
    _update_state("repodigests.json", change)


def _remember_blob(diff_id, digest, size, media_type, repository):
    """diff_id -> where its compressed form is (docker's v2metadata): so push can HEAD,
    or mount it from another repository, without compressing the layer again."""
    def change(data):
        entries = [e for e in data.get(diff_id, []) if (e["digest"], e["repository"]) != (digest, repository)]
        data[diff_id] = entries[-9:] + [{"digest": digest, "size": size, "mediaType": media_type,
                                         "repository": repository}]
    _update_state("v2metadata.json", change)


# -- pull ---------------------------------------------------------------------------

def _platform(text):
    parts = (text or f"linux/{store.ARCH}").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture: want os/arch[/variant]')
    return parts + [None] * (3 - len(parts))


def _select(index: dict, platform) -> dict:
    """The index's manifest for our os/arch[/variant] (image-index.md "platform")."""
    want_os, want_arch, want_variant = platform
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if (p.get("os"), p.get("architecture")) == (want_os, want_arch) and \
                (want_variant is None or p.get("variant") == want_variant):
            return desc
    name = "/".join(x for x in platform if x)
    raise NotFound(f"no matching manifest for {name} in the manifest list entries")


def _manifest_failure(r, ref, reference) -> MinidockerError:
    at = f"{ref.familiar}@{reference}" if reference.startswith("sha256:") else f"{ref.familiar}:{reference}"
    why = r.error() if r.body else "manifest unknown: manifest unknown"   # a HEAD has no body
    if r.status == 404:
        return NotFound(f"manifest for {at} not found: {why}")
    if r.status in (401, 403):
        return RegistryError(f"pull access denied for {ref.familiar}, repository does not exist "
                             f"or may require 'minidocker login': {r.error()}")
    return RegistryError(f"manifest for {at}: {r.error()}")


def head_manifest(client, ref, tag, scopes) -> str | None:
    """HEAD the tag: the digest it points at now (None if the registry does not say)."""
    r = client.request("HEAD", f"/v2/{ref.path}/manifests/{tag}", scopes, headers={"Accept": ACCEPT})
    r.body
    if r.status != 200:
        raise _manifest_failure(r, ref, tag)
    digest = r.headers.get("Docker-Content-Digest")
    return digest if digest and _DIGEST.match(digest) else None


def get_manifest(client, ref, reference, scopes) -> tuple[bytes, str, str]:
    """GET a manifest; return (bytes, media type, digest), the digest checked."""
    r = client.request("GET", f"/v2/{ref.path}/manifests/{reference}", scopes,
                       headers={"Accept": ACCEPT})
    if r.status != 200:
        raise _manifest_failure(r, ref, reference)
    if int(r.headers.get("Content-Length") or 0) > MAX_MANIFEST:
        raise RegistryError(f"manifest for {ref.familiar} is too big")
    data = r.body
    digest = _digest(data)
    claimed = reference if reference.startswith("sha256:") else r.headers.get("Docker-Content-Digest")
    if claimed and claimed != digest:
        raise RegistryError(f"manifest verification failed for digest {claimed}: got {digest}")
    try:
        kind = json.loads(data).get("mediaType") or r.headers.get("Content-Type", "").split(";")[0]
    except (ValueError, AttributeError):
        raise RegistryError(f"manifest for {ref.familiar} is not JSON") from None
    if kind in SCHEMA1:
        raise RegistryError(f"{ref.familiar}: schema 1 manifests are not supported "
                            "(docker dropped them too): push the image again with a newer client")
    return data, kind, digest


def pull(text: str, platform: str | None = None, out=None, quiet=False) -> store.Image:
    """docker pull: the manifest (through an index for our platform), the config, the
    layers not in the store yet; then tag the image.  Prints what docker prints."""
    ref = Reference(text)
    out = out or sys.stdout
    progress = Progress(out, quiet)
    want = _platform(platform)
    if not ref.tag and not ref.digest:
        ref.tag = "latest"
        progress.say("Using default tag: latest")
    scopes = (f"repository:{ref.path}:pull",)
    client = Client(ref.domain, ref.api_host)
    progress.say(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    top = ref.digest or head_manifest(client, ref, ref.tag, scopes)
    local = ref.local()
    if local and top and _up_to_date(local, ref, top):
        progress.say(f"Digest: {top}")
        progress.say(f"Status: Image is up to date for {ref}")
        out.write(f"{ref.repository}:{ref.tag}\n")
        return store.get(local)
    data, kind, digest = get_manifest(client, ref, top or ref.tag, scopes)
    top = digest
    if kind in INDEXES:
        chosen = _select(json.loads(data), want)
        data, kind, digest = get_manifest(client, ref, chosen["digest"], scopes)
    if kind not in MANIFESTS:
        raise RegistryError(f"{ref.familiar}: unsupported manifest type {kind!r}")
    manifest = json.loads(data)
    config_bytes = _config(client, ref, manifest.get("config") or {}, scopes)
    diff_ids = store._diff_ids(config_bytes)
    layers = manifest.get("layers") or []
    if len(layers) != len(diff_ids):
        raise RegistryError(f"invalid manifest: {len(layers)} layers but {len(diff_ids)} diff_ids in the config")
    store.check_depth(len(diff_ids))
    _fetch_layers(client, ref, layers, diff_ids, scopes, progress)
    image, _ = store.register(config_bytes, local)
    _remember_repo_digest(image.id, ref, top)
    progress.say(f"Digest: {top}")
    progress.say(f"Status: Downloaded newer image for {ref}")
    out.write(f"{ref.repository}{':' + ref.tag if ref.tag else '@' + top}\n")
    out.flush()
    return image


def _up_to_date(local, ref, digest) -> bool:
    try:
        image = store.get(local)
    except NotFound:
        return False
    return f"{ref.familiar}@{digest}" in repo_digests(image.id)


def _config(client, ref, desc, scopes) -> bytes:
    if not _DIGEST.match(desc.get("digest", "")):
        raise RegistryError(f"invalid manifest for {ref.familiar}: config has no sha256 digest")
    if desc.get("size", 0) > MAX_CONFIG:
        raise RegistryError(f"config of {ref.familiar} is too big: {desc['size']} bytes")
    r = client.request("GET", f"/v2/{ref.path}/blobs/{desc['digest']}", scopes)
    if r.status != 200:
        raise RegistryError(f"config blob {desc['digest']}: {r.error()}")
    data = r.body
    if _digest(data) != desc["digest"]:
        raise RegistryError(f"config blob {desc['digest']} does not match its digest")
    return data


def _fetch_layers(client, ref, layers, diff_ids, scopes, progress):
    """Download (3 at a time) the layers we lack, then store them in order."""
    todo = []
    for desc, diff_id in zip(layers, diff_ids):
        if not _DIGEST.match(desc.get("digest", "")):
            raise RegistryError(f"invalid manifest for {ref.familiar}: a layer has no sha256 digest")
        kind = desc.get("mediaType", "")
        if "zstd" in kind:
            raise RegistryError(f"layer {_short(desc['digest'])} is zstd-compressed: Python's standard "
                                "library has no zstd; push it again with gzip")
        if "nondistributable" in kind or "foreign" in kind:
            raise RegistryError(f"layer {_short(desc['digest'])} is a foreign layer ({kind}): not supported")
        if os.path.exists(store.blob_path(diff_id)):
            progress.layer(_short(desc["digest"]), "Already exists")
        else:
            progress.layer(_short(desc["digest"]), "Pulling fs layer")
            todo.append((desc, diff_id))
    import concurrent.futures                   # 50 ms to import: only when there is work
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(DOWNLOADS) as pool:
        futures = [pool.submit(_download, client, ref, desc, scopes, progress, stop) for desc, _ in todo]
        try:
            for (desc, diff_id), future in zip(todo, futures):
                partial = future.result()
                ident = _short(desc["digest"])
                progress.layer(ident, "Extracting", 0, 0)     # a bar on a terminal only, as docker
                try:
                    store.store_layer(partial, expect=diff_id)
                except InvalidArgument as e:
                    os.unlink(partial)          # it matched its digest, so the registry's image is bad
                    raise RegistryError(f"layer {ident}: {e}") from None
                os.unlink(partial)
                _remember_blob(diff_id, desc["digest"], desc.get("size"), desc.get("mediaType"),
                               ref.repository)
                progress.layer(ident, "Pull complete")
        except BaseException:
            stop.set()
            raise


def _download(client, ref, desc, scopes, progress, stop) -> str:
    """One blob into ROOT/tmp/pull-<hex>.partial, resumed if a partial one is there;
    return its path once its digest is checked."""
    digest, size, ident = desc["digest"], desc.get("size"), _short(desc["digest"])
    partial = os.path.join(store.tmpdir(), f"pull-{digest[7:]}.partial")
    with open(partial, "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)           # two pulls of one blob: one downloads
        have = f.tell()
        for _ in range(2):
            if size is not None and have >= size:
                break
            headers = {"Range": f"bytes={have}-"} if have else {}
            r = client.request("GET", f"/v2/{ref.path}/blobs/{digest}", scopes, headers=headers)
            if r.status == 416:                 # nothing past what we have: start again
                r.body
                f.truncate(0)
                have = 0
                continue
            if r.status == 200 and have:        # the registry ignored Range: start again
                f.truncate(0)
                have = 0
            elif r.status not in (200, 206):
                raise RegistryError(f"layer {ident}: {r.error()}")
            total = size or int(r.headers.get("Content-Length") or 0) + have
            try:
                while chunk := r.read(1 << 16):
                    if stop.is_set():
                        raise RegistryError("interrupted")
                    have += len(chunk)
                    if size is not None and have > size:
                        raise RegistryError(f"layer {ident}: the registry sent more than its "
                                            f"declared {size} bytes")
                    f.write(chunk)
                    progress.layer(ident, "Downloading", have, total)
            except (OSError, http.client.HTTPException) as e:
                raise RegistryError(f"layer {ident}: download interrupted after {have} bytes ({e}); "
                                    "run the pull again to resume") from None
            finally:
                f.flush()
                r.close()
            break
        progress.layer(ident, "Verifying Checksum")
        if size is not None and have < size:
            raise RegistryError(f"layer {ident}: got {have} of {size} bytes; run the pull again to resume")
        if store._file_digest(partial) != digest:
            os.unlink(partial)
            raise RegistryError(f"layer {ident}: filesystem layer verification failed for digest {digest}")
    progress.layer(ident, "Download complete")
    return partial


# -- push ---------------------------------------------------------------------------

def push(text: str, out=None, quiet=False) -> str:
    """docker push: each layer (skipped if the registry has it, mounted if another
    repository there has it, else gzipped and uploaded in chunks), the config, then
    the manifest.  Returns the manifest's digest."""
    ref = Reference(text)
    progress = Progress(out, quiet)
    if ref.digest:
        raise InvalidArgument("cannot push a digest reference")
    if not ref.tag:
        ref.tag = "latest"
        progress.say("Using default tag: latest")
    try:
        image = store.get(ref.local())
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar}") from None
    progress.say(f"The push refers to repository [{ref.repository}]")
    client = Client(ref.domain, ref.api_host)
    scopes = (f"repository:{ref.path}:pull,push",)
    ordered = list(zip(image.manifest["layers"], image.diff_ids))
    for _, diff_id in reversed(ordered):
        progress.layer(_short(diff_id), "Preparing")
    pushed = [_push_layer(client, ref, diff_id, scopes, progress) for _, diff_id in ordered]
    config_bytes = store.read_blob(image.id)
    if not _exists(client, ref, image.id, scopes):
        _upload(client, ref, config_bytes, image.id, scopes)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG, "size": len(config_bytes), "digest": image.id},
                "layers": pushed}
    data = json.dumps(manifest, indent=3).encode()
    digest = _digest(data)
    r = client.request("PUT", f"/v2/{ref.path}/manifests/{ref.tag}", scopes,
                       headers={"Content-Type": DOCKER_MANIFEST}, body=data)
    if r.status != 201:
        raise RegistryError(f"manifest {ref}: {r.error()}")
    if r.headers.get("Docker-Content-Digest", digest) != digest:
        raise RegistryError(f"the registry stored the manifest as {r.headers['Docker-Content-Digest']}, "
                            f"not {digest}")
    r.body
    _remember_repo_digest(image.id, ref, digest)
    progress.say(f"{ref.tag}: digest: {digest} size: {len(data)}")
    return digest


def _exists(client, ref, digest, scopes) -> bool:
    r = client.request("HEAD", f"/v2/{ref.path}/blobs/{digest}", scopes)
    r.body
    if r.status in (401, 403):
        raise RegistryError(f"{r.error() if r.status == 403 else 'unauthorized: authentication required'}"
                            f" (pushing to {ref.repository}; run `minidocker login {ref.domain}`)")
    return r.status == 200


def _push_layer(client, ref, diff_id, scopes, progress) -> dict:
    ident = _short(diff_id)
    known = [e for e in _read_state("v2metadata.json").get(diff_id, [])
             if e["repository"].split("/", 1)[0] == ref.domain]
    for e in sorted(known, key=lambda e: e["repository"] != ref.repository):
        desc = {"mediaType": DOCKER_LAYER, "size": e["size"], "digest": e["digest"]}
        if e["repository"] == ref.repository:
            if _exists(client, ref, e["digest"], scopes):
                progress.layer(ident, "Layer already exists")
                return desc
            continue
        source = e["repository"].split("/", 1)[1]
        query = urllib.parse.urlencode({"mount": e["digest"], "from": source})
        r = client.request("POST", f"/v2/{ref.path}/blobs/uploads/?{query}",
                           scopes + (f"repository:{source}:pull",))
        r.body
        if r.status == 201:
            _remember_blob(diff_id, e["digest"], e["size"], DOCKER_LAYER, ref.repository)
            progress.layer(ident, f"Mounted from {source}")
            return desc
        if r.status == 202 and r.headers.get("Location"):   # no mount; an upload was opened: drop it
            client.request("DELETE", urllib.parse.urljoin(client.url("/"), r.headers["Location"]),
                           scopes).body
    path, digest, size = _compress(diff_id)
    try:
        desc = {"mediaType": DOCKER_LAYER, "size": size, "digest": digest}
        if _exists(client, ref, digest, scopes):
            progress.layer(ident, "Layer already exists")
        else:
            with open(path, "rb") as f:
                _upload(client, ref, f, digest, scopes, size, lambda n: progress.layer(ident, "Pushing", n, size))
            progress.layer(ident, "Pushed")
    finally:
        os.unlink(path)
    _remember_blob(diff_id, digest, size, DOCKER_LAYER, ref.repository)
    return desc


def _compress(diff_id):
    """gzip a layer into ROOT/tmp; mtime 0 and no file name, so the same layer
    always compresses to the same bytes (and the same digest)."""
    fd, path = tempfile.mkstemp(dir=store.tmpdir(), prefix="push-", suffix=".tar.gz")
    try:
        with os.fdopen(fd, "wb") as f, store.open_blob(diff_id) as src:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as z:
                while chunk := src.read(1 << 20):
                    z.write(chunk)
        return path, store._file_digest(path), os.path.getsize(path)
    except BaseException:
        os.unlink(path)
        raise


def _upload(client, ref, source, digest, scopes, size=None, report=None) -> None:
    """POST to open an upload, PATCH it chunk by chunk (Content-Range), PUT ?digest= to
    close it; the registry checks the digest (spec.md "Pushing a blob in chunks")."""
    r = client.request("POST", f"/v2/{ref.path}/blobs/uploads/", scopes, headers={"Content-Length": "0"})
    r.body
    if r.status != 202 or "Location" not in r.headers:
        raise RegistryError(f"blob upload for {ref.repository}: {r.error()}")
    location = urllib.parse.urljoin(client.url("/"), r.headers["Location"])
    data = source if isinstance(source, bytes) else None
    offset = 0
    while True:
        chunk = data[offset:offset + CHUNK] if data is not None else source.read(CHUNK)
        if not chunk:
            break
        r = client.request("PATCH", location, scopes, body=chunk,
                           headers={"Content-Type": "application/octet-stream",
                                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                                    "Content-Length": str(len(chunk))})
        r.body
        if r.status != 202:
            raise RegistryError(f"blob upload for {ref.repository}: {r.error()}")
        offset += len(chunk)
        if r.headers.get("Range") and r.headers["Range"] != f"0-{offset - 1}":
            raise RegistryError(f"blob upload: the registry has {r.headers['Range']}, we sent 0-{offset - 1}")
        location = urllib.parse.urljoin(location, r.headers.get("Location", location))
        if report:
            report(offset)
        if data is not None and offset >= len(data):
            break
    sep = "&" if "?" in location else "?"
    r = client.request("PUT", location + sep + urllib.parse.urlencode({"digest": digest}), scopes,
                       headers={"Content-Length": "0"}, body=b"")
    r.body
    if r.status != 201:
        raise RegistryError(f"blob {digest}: {r.error()}")


# -- login ---------------------------------------------------------------------------

def login(server: str | None, user: str, password: str) -> str:
    """Check the credentials against the registry; store them only if they work.
    Returns the file they went to."""
    key = auth.server_key(server)
    domain = HUB_DOMAIN if key == auth.HUB else key
    client = Client(domain, HUB_API if key == auth.HUB else None)
    client.creds = (user, password)
    client.login()
    return auth.store(key, user, password)
