"""notebooks/sanitize.cfg: what varies between two runs of a chapter is replaced, what teaches is kept.

nbval compares a chapter's committed outputs with a new run after applying the rules of
notebooks/sanitize.cfg to both. A rule that is too broad hides the lesson: the old rule for
"pids starting a row" turned the registry's "200" (and so a 404) and "283 entries" into <PID>.
These tests load the file exactly as nbval does (nbval.plugin.get_sanitize_patterns: "regex: "
lines followed by "replace: " lines, applied in file order with re.sub, a later duplicate regex
replacing an earlier one as in nbval's OrderedDict) and run it over sample lines of the chapters.
"""
import os
import re
from collections import OrderedDict

import pytest

CFG = os.path.join(os.path.dirname(__file__), "..", "notebooks", "sanitize.cfg")


def patterns():
    with open(CFG) as f:
        text = f.read()
    # The same expression as nbval.plugin.get_sanitize_patterns, into an OrderedDict as nbval does.
    return OrderedDict(re.findall('^regex: (.*)$\n^replace: (.*)$', text, flags=re.MULTILINE))


def sanitize(s):
    for regex, replace in patterns().items():
        s = re.sub(regex, replace, s)
    return s


def test_nbval_reads_the_same_rules():
    """Our reading of the file is nbval's own (when nbval is installed)."""
    plugin = pytest.importorskip("nbval.plugin")
    with open(CFG) as f:
        assert OrderedDict(plugin.get_sanitize_patterns(f.read())) == patterns()


KEPT = [
    # HTTP statuses (chapter 08): a 404 must show as a 404.
    "200 registry/2.0 b'{}'\n",
    "200 application/vnd.docker.distribution.manifest.v2+json\r\n",
    "404 MANIFEST_UNKNOWN\n",
    "401 Bearer realm=\"http://127.0.0.1:<PORT>/token\"\n",
    # counts starting a line (chapter 01)
    "6 files in blobs/sha256/, smallest first:\n",
    # exit codes and states
    "exit code: 137\r\n",
    "exit codes [137, 137, 137]\n",
    "Exited (137)\n",
    "exit code 3\r\n",
    # limits given and as the kernel shows them
    "--memory 64m\n",
    "memory.max 67108864\n",
    "max 67108864\n",
    "cpu.max 50000 100000\n",
    "--pids-limit 50\n",
    # pid 1 and small pids inside a container are the lesson
    "1 root sleep 300\r\n",
    "PID 1 is sleep\n",
]


@pytest.mark.parametrize("line", KEPT)
def test_what_teaches_survives(line):
    assert sanitize(line) == line


REPLACED = [
    # (sample, a piece that must be gone, what must be there instead)
    ("0db6edd204f21803231c7855630a3aded56b9442403234524468a8fef9692557\r\n",
     "0db6edd204f2", "<LONGID>"),
    ("49ab1ef1f652\tbusybox\n", "49ab1ef1f652", "<ID>"),
    ("sha256:" + "ab" * 32 + "\n", "abab", "sha256:<DIGEST>"),
    ("  PID CMD\r\n31500 sleep 300\r\n", "31500", "<PID>"),
    ("State.Pid: 31500\n", "31500", "<PID>"),
    ("/proc/31500/ns/pid\n", "31500", "/proc/<PID>"),
    ("2026-11-29T02:33:50.694146Z hello\n", "2026", "<TIMESTAMP>"),
    ("Up 3 seconds\n", "3 seconds", "Up <WHEN>"),
    ("Exited (0) 2 minutes ago\n", "2 minutes", "<WHEN> ago"),
    ("real\t0m0.012s\n", "0.012", "<TIME>"),
    ("took 2.72 s\n", "2.72", "<TIME>"),
    ("pid:[4026532255]\n", "4026532255", "pid:[<INODE>]"),
    ("/tmp/tmpk3j_x9a2/roots\n", "k3j_x9a2", "/tmp/<TMP>"),
    # what the host's busybox or zlib or OpenSSL make, each anchored to the line that prints it
    ("283 entries in the layer tar, among them: ['bin']\n", "283", "<N> entries in the layer tar"),
    ("BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) built-in shell (ash)\r\n", "1.35", "BusyBox <VERSION> built-in"),
    (' OS/Arch:           linux/amd64\r\n', "amd64", "linux/<ARCH>"),
    ('   "size": 2129920\n', "2129920", '"size": <SIZE>'),
    ("GET https://127.0.0.1:44959/v2/ -> SSLError: WRONG_VERSION_NUMBER; trying http\n",
     "WRONG", "SSLError: <TLS ERROR>; trying http"),
    ("POST http://127.0.0.1:44959/v2/c/blobs/uploads/?mount=sha256%3A" + "ab" * 32 + "&from=b -> 201\n",
     "abab", "sha256%3A<DIGEST>"),
    ("the containers' files are written to /dev/vda\n", "vda", "/dev/<DISK>"),
]


@pytest.mark.parametrize("sample,gone,there", REPLACED)
def test_what_varies_is_replaced(sample, gone, there):
    out = sanitize(sample)
    assert gone not in out, out
    assert there in out, out


def test_a_ps_row_without_the_header_keeps_its_number():
    """The host-pid rule is anchored to `ps -o pid,cmd`'s header, not to any row."""
    assert sanitize("31500 sleep 300\n") == "31500 sleep 300\n"
