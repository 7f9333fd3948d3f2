"""Image references: what "busybox", "user/app:1.0" and "127.0.0.1:5000/x@sha256:..." mean.

Layer: images (docker's and containerd's `reference` package, distribution/reference:
reference.go, regexp.go, normalize.go).  The one parser of image names in minidocker:
the store (tags), the CLI and distribution (pull, push) all read names through it.

The grammar (reference.go):

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain "/"] path-component ["/" path-component]*
    domain          := host [":" port]         host: a DNS name, an IPv4, or [IPv6]
    path-component  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
    tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest          := algorithm ":" hex        (sha256: 64 hex digits)

Normalization (normalize.go, ParseNormalizedNamed): the first part of a name is a
registry only if it has a "." or a ":", is "localhost", or has an uppercase letter
(a path never has one).  Otherwise the image is on Docker Hub, "docker.io", where
one-word names live under "library/":  busybox = docker.io/library/busybox.
Docker shows the short, "familiar" form (busybox, user/app, 127.0.0.1:5000/x); a
tag defaults to "latest" only where a tag is needed (TagNameOnly).

Errors are docker's own words: "invalid reference format", and for uppercase,
"invalid reference format: repository name (library/X) must be lowercase".
"""
import dataclasses
import re

from minidocker.errors import InvalidArgument

HUB = "docker.io"                     # defaultDomain
LEGACY_HUB = "index.docker.io"        # legacyDefaultDomain, the "Docker Index" of v1
OFFICIAL = "library/"                 # officialRepoPrefix: where one-word names live
DEFAULT_TAG = "latest"
MAX_PATH = 255                        # RepositoryNameTotalLengthMax

# regexp.go, piece by piece.  Go's \w is ASCII only, hence re.ASCII.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

# domain "/" path [":" tag] ["@" digest], anchored, with a group for each part.
_REFERENCE = re.compile(rf"^({_DOMAIN})/({_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?$", re.ASCII)
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")           # an image ID without "sha256:"
# go-digest: the algorithms docker knows, and the hex length of each.
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclasses.dataclass(frozen=True)
class Reference:
    """A parsed, normalized reference: domain "docker.io", path "library/busybox",
    tag "latest" or None, digest "sha256:..." or None."""
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def hub(self) -> bool:
        """On Docker Hub?"""
        return self.domain == HUB

    @property
    def repository(self) -> str:
        """The full name (docker's Name()): docker.io/library/busybox, 127.0.0.1:5000/x."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short name docker shows (FamiliarName): busybox, user/app, 127.0.0.1:5000/x."""
        if not self.hub:
            return self.repository
        rest = self.path[len(OFFICIAL):] if self.path.startswith(OFFICIAL) else self.path
        return rest if "/" not in rest else self.path

    def with_default_tag(self) -> "Reference":
        """busybox -> busybox:latest; a reference with a tag or a digest is kept (TagNameOnly)."""
        if self.tag or self.digest:
            return self
        return dataclasses.replace(self, tag=DEFAULT_TAG)

    def local(self) -> str | None:
        """The name of its tag in the local store ("busybox:latest"); None without a tag."""
        return f"{self.familiar}:{self.tag}" if self.tag else None

    def __str__(self):
        """The familiar string (FamiliarString): busybox:latest, x@sha256:..."""
        return (self.familiar + (f":{self.tag}" if self.tag else "")
                + (f"@{self.digest}" if self.digest else ""))


def split_domain(text: str) -> tuple[str, str]:
    """"busybox" -> ("docker.io", "library/busybox"); "host:5000/x:1" -> ("host:5000", "x:1").
    normalize.go's splitDockerDomain: the rest keeps its tag and digest."""
    first, slash, rest = text.partition("/")
    if not slash:
        return HUB, OFFICIAL + text                    # "ubuntu", "ubuntu:22.04"
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain = HUB if first == LEGACY_HUB else first
    else:
        domain, rest = HUB, text                       # "user/app": a Docker Hub path
    if domain == HUB and "/" not in rest:
        rest = OFFICIAL + rest                         # docker.io/ubuntu = docker.io/library/ubuntu
    return domain, rest


def parse(text: str) -> Reference:
    """Parse a name as docker reads it (ParseNormalizedNamed); InvalidArgument if it is not one."""
    if _IDENTIFIER.match(text):
        raise InvalidArgument(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, rest = split_domain(text)
    remote = rest.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(f"invalid reference format: repository name ({remote}) must be lowercase")
    m = _REFERENCE.match(f"{domain}/{rest}")
    if not m:
        raise InvalidArgument("invalid reference format")
    _, path, tag, digest = m.groups()
    if len(path) > MAX_PATH:
        raise InvalidArgument(f"repository name must not be more than {MAX_PATH} characters")
    if digest:
        check_digest(digest)
    return Reference(domain, path, tag, digest)


def check_digest(digest: str) -> str:
    """A digest as go-digest validates it: a known algorithm, and the right number of
    lowercase hex digits.  Returns it."""
    algorithm, _, hexdigits = digest.partition(":")
    if algorithm not in _ALGORITHMS:
        raise InvalidArgument("unsupported digest algorithm")
    if len(hexdigits) != _ALGORITHMS[algorithm]:
        raise InvalidArgument("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", hexdigits):
        raise InvalidArgument("invalid checksum digest format")
    return digest


def split(text: str) -> tuple[str, str]:
    """A tag in the local store: "busybox" -> ("busybox", "latest"),
    "docker.io/library/redis:7" -> ("redis", "7").  A digest is refused: a tag names
    one image by name, never by content (docker: "refusing to create a tag with a
    digest reference")."""
    ref = parse(text)
    if ref.digest:
        raise InvalidArgument(f"invalid reference format: a tag cannot have a digest ({text})")
    return ref.familiar, ref.tag or DEFAULT_TAG


def normalize(text: str) -> str:
    """The local store's name for an image: "busybox" -> "busybox:latest"."""
    name, tag = split(text)
    return f"{name}:{tag}"
