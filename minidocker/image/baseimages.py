"""Base images made offline: busybox and hello-world as rootfs tarballs.

Layer: image (what `docker pull busybox` would fetch; here made on the machine).

Why: minidocker never contacts a registry, yet chapter 1 wants `run hello-world`
and `run -it busybox sh`.  So the engine builds both images here, from the
static busybox Debian installs (package busybox-static) and from an x86-64
program assembled below by hand (151 bytes of headers and code, then its
text).  The tars are byte-for-byte reproducible (sorted names, mtime 0, owners
0:0, PAX headers), so an image's digest is the same on every machine with the
same busybox.

References: busybox(1) `--list-full`; passwd(5), group(5); the ELF-64 format
(elf(5)); the x86-64 Linux syscall ABI (syscall(2): rax = number, args in
rdi, rsi, rdx; write = 1, exit = 60).
"""
import io
import platform
import struct
import subprocess
import tarfile

from minidocker.errors import MinidockerError
from minidocker.image import content, layers

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
user:x:1000:
nogroup:x:65534:
"""
DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555,
        "root": 0o700, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755,
        "usr/bin": 0o755, "usr/sbin": 0o755}

HELLO_MESSAGE = """
Hello from minidocker!
This message shows that your installation appears to be working correctly.

To generate this message, minidocker took the following steps:
 1. The minidocker client asked the minidocker engine to run "hello-world".
 2. The engine found the "hello-world" image in its local store. Nothing was
    downloaded: the image was made offline from a tiny hand-assembled program.
    (amd64)
 3. The engine created a new container from that image, whose process is the
    program that printed the message you are reading now.
 4. The engine streamed that output back to your terminal.

To try something more ambitious, you can run a busybox container with:
 $ minidocker run -it busybox sh
"""


def _entry(name, kind, mode, data=b"", linkname=""):
    return layers.tarinfo(name, kind, mode, size=len(data), linkname=linkname), data


def _write_tar(out_path, entries):
    """Write entries sorted parents-first, then rename into place (no half tar)."""
    entries = sorted(entries, key=lambda e: e[0].name.split("/"))
    with content.atomic_file(out_path) as f:
        with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for ti, data in entries:
                tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)


def _is_static_elf(data):
    """True for an ELF-64 with no PT_INTERP (no dynamic loader needed)."""
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types                    # PT_INTERP = 3


def busybox_tar(out_path: str, busybox: str = "/bin/busybox") -> None:
    """Write the busybox rootfs tar: /bin/busybox, one symlink per applet, /etc, /tmp."""
    try:
        with open(busybox, "rb") as f:
            binary = f.read()
    except OSError as e:
        raise MinidockerError(f"busybox image: cannot read {busybox}: {e.strerror} "
                              "(apt-get install busybox-static)") from None
    if not _is_static_elf(binary):
        raise MinidockerError(f"busybox image: {busybox} is not a static 64-bit ELF "
                              "(apt-get install busybox-static)")
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    entries = [_entry(d, tarfile.DIRTYPE, mode) for d, mode in DIRS.items()]
    entries.append(_entry("bin/busybox", tarfile.REGTYPE, 0o755, binary))
    entries.append(_entry("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD.encode()))
    entries.append(_entry("etc/group", tarfile.REGTYPE, 0o644, GROUP.encode()))
    for path in sorted(set(applets) - {"bin/busybox"}):
        parts = path.split("/")
        if path.startswith("/") or ".." in parts or "/".join(parts[:-1]) not in DIRS | {"": 0}:
            raise MinidockerError(f"busybox image: unexpected applet path {path!r}")
        entries.append(_entry(path, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox"))
    _write_tar(out_path, entries)


def hello_program(message: str = HELLO_MESSAGE) -> bytes:
    """A static x86-64 Linux ELF that does write(1, message, len); exit(0)."""
    base, header_size = 0x400000, 64 + 56              # ELF header + one program header
    text = message.encode()
    code_size = 5 + 5 + 5 + 5 + 2 + 5 + 2 + 2
    msg_addr = base + header_size + code_size
    code = b"".join([
        b"\xb8" + struct.pack("<I", 1),                # mov eax, 1          (write)
        b"\xbf" + struct.pack("<I", 1),                # mov edi, 1          (stdout)
        b"\xbe" + struct.pack("<I", msg_addr),         # mov esi, message
        b"\xba" + struct.pack("<I", len(text)),        # mov edx, len(message)
        b"\x0f\x05",                                   # syscall
        b"\xb8" + struct.pack("<I", 60),               # mov eax, 60         (exit)
        b"\x31\xff",                                   # xor edi, edi        (status 0)
        b"\x0f\x05",                                   # syscall
    ])
    assert len(code) == code_size
    size = header_size + len(code) + len(text)
    elf_header = struct.pack(
        "<16sHHIQQQIHHHHHH",
        b"\x7fELF\x02\x01\x01",   # magic, 64-bit, little-endian, ELF version 1 (padded)
        2, 0x3E, 1,               # ET_EXEC, EM_X86_64, EV_CURRENT
        base + header_size,       # e_entry: the code right after the headers
        64, 0, 0,                 # e_phoff, e_shoff (no sections), e_flags
        64, 56, 1,                # e_ehsize, e_phentsize, e_phnum
        0, 0, 0)                  # no section headers
    program_header = struct.pack(
        "<IIQQQQQQ",
        1, 5,                     # PT_LOAD, PF_R | PF_X
        0, base, base,            # map the whole file at 0x400000
        size, size, 0x1000)       # p_filesz, p_memsz, p_align
    return elf_header + program_header + code + text


def hello_world_tar(out_path: str) -> None:
    """Write the hello-world rootfs tar: a single static program, /hello."""
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        raise MinidockerError(f"hello-world image: its program is x86-64 machine code "
                              f"and this machine is {machine}")
    _write_tar(out_path, [_entry("hello", tarfile.REGTYPE, 0o755, hello_program())])


# image name -> (tar builder, default Cmd)
BASE_IMAGES = {
    "busybox:latest": (busybox_tar, ["sh"]),
    "hello-world:latest": (hello_world_tar, ["/hello"]),
}
