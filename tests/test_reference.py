"""Image references (minidocker/image/reference.py) against docker's own test cases.

The cases come from distribution/reference's reference_test.go and normalize_test.go
(the package docker and containerd use), and the messages are the ones docker prints.
Pure parsing: no root, no kernel, no network.
"""
import pytest

from minidocker.errors import InvalidArgument
from minidocker.image import reference

HEX = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"


@pytest.mark.parametrize("text, domain, path, tag, digest, familiar", [
    ("busybox", "docker.io", "library/busybox", None, None, "busybox"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox"),
    ("docker.io/library/redis:7", "docker.io", "library/redis", "7", None, "redis"),
    ("docker.io/redis", "docker.io", "library/redis", None, None, "redis"),
    ("index.docker.io/library/debian", "docker.io", "library/debian", None, None, "debian"),
    ("library/foo/bar", "docker.io", "library/foo/bar", None, None, "library/foo/bar"),
    ("dmcgowan/myapp:latest", "docker.io", "dmcgowan/myapp", "latest", None, "dmcgowan/myapp"),
    ("127.0.0.1:5000/a/b:v2", "127.0.0.1:5000", "a/b", "v2", None, "127.0.0.1:5000/a/b"),
    ("localhost/x", "localhost", "x", None, None, "localhost/x"),
    ("localhost:5000/x:1", "localhost:5000", "x", "1", None, "localhost:5000/x"),
    ("test_com", "docker.io", "library/test_com", None, None, "test_com"),
    ("test.com:5000", "docker.io", "library/test.com", "5000", None, "test.com"),
    ("test:5000/repo:tag@sha256:" + HEX, "test:5000", "repo", "tag", "sha256:" + HEX, "test:5000/repo"),
    ("x@sha256:" + HEX, "docker.io", "library/x", None, "sha256:" + HEX, "x"),
    ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", None, None, "[2001:db8::1]:5000/repo"),
    ("Foo/bar", "Foo", "bar", None, None, "Foo/bar"),        # an uppercase first part is a host
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", None, "lowercase"),
    ("dock__er/docker", "docker.io", "dock__er/docker", None, None, "dock__er/docker"),
    ("docker---rules/docker", "docker.io", "docker---rules/docker", None, None, "docker---rules/docker"),
    ("a/" * 127 + "a:tag-puts-this-over-max", "docker.io", "a/" * 127 + "a", "tag-puts-this-over-max",
     None, "a/" * 127 + "a"),
])
def test_valid_references(text, domain, path, tag, digest, familiar):
    ref = reference.parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest, ref.familiar) == (domain, path, tag, digest, familiar)
    assert ref.repository == f"{domain}/{path}"


@pytest.mark.parametrize("text, message", [
    ("../x:1", "invalid reference format"),
    ("x:a:b", "invalid reference format"),
    ("x:" + "t" * 300, "invalid reference format"),
    ("x:" + "t" * 129, "invalid reference format"),
    ("", "invalid reference format"),
    (":justtag", "invalid reference format"),
    ("@sha256:" + HEX, "invalid reference format"),
    ("x:", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-docker", "invalid reference format"),
    ("docker-/docker", "invalid reference format"),
    ("dock..er/docker", "invalid reference format"),
    ("____/____", "invalid reference format"),
    ("aa/asdf$$^/aa", "invalid reference format"),
    ("https://github.com/docker/docker", "invalid reference format"),
    ("[fe80::1%eth0]:5000/debian", "invalid reference format"),
    ("x y", "invalid reference format"),
    ("X", "invalid reference format: repository name (library/X) must be lowercase"),
    ("Uppercase:tag", "invalid reference format: repository name (library/Uppercase) must be lowercase"),
    ("docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
    ("127.0.0.1:5000/UPPER", "invalid reference format: repository name (UPPER) must be lowercase"),
    ("x@sha256:12", "invalid reference format"),                  # fewer than 32 hex digits
    ("repo@sha256:" + "f" * 34, "invalid checksum digest length"),
    ("repo@md5:" + "f" * 32, "unsupported digest algorithm"),
    ("repo@sha256:" + "F" * 64, "invalid checksum digest format"),
    ("a/" * 128 + "a:tag", "repository name must not be more than 255 characters"),
    ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
     "invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), "
     "cannot specify 64-byte hexadecimal strings"),
])
def test_invalid_references_say_what_docker_says(text, message):
    with pytest.raises(InvalidArgument) as e:
        reference.parse(text)
    assert str(e.value) == message


def test_names_docker_accepts_that_look_odd():
    reference.parse("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev")   # 64, not hex
    reference.parse("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a")
    reference.parse("xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + "f" * 128)
    reference.parse("192.168.0.1:8/debian")


def test_the_store_names_and_the_default_tag():
    assert reference.normalize("busybox") == "busybox:latest"
    assert reference.normalize("docker.io/library/redis:7") == "redis:7"
    assert reference.normalize("index.docker.io/user/app") == "user/app:latest"
    assert reference.normalize("127.0.0.1:5000/x:v1") == "127.0.0.1:5000/x:v1"
    assert reference.split("localhost/x") == ("localhost/x", "latest")
    with pytest.raises(InvalidArgument):
        reference.normalize("busybox@sha256:" + HEX)             # a tag never holds a digest
    ref = reference.parse("busybox")
    assert ref.with_default_tag().tag == "latest" and ref.tag is None and ref.local() is None
    assert reference.parse("busybox@sha256:" + HEX).with_default_tag().tag is None
    assert str(reference.parse("docker.io/library/busybox:1@sha256:" + HEX)) == "busybox:1@sha256:" + HEX
    assert reference.parse("docker.io/library/redis:7").local() == "redis:7"
