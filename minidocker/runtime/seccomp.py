"""Seccomp: a filter the kernel runs on every system call of the container.

Layer: runtime (what runc's libcontainer/seccomp does with libseccomp).  The
engine resolves a docker profile into the spec's ``linux.seccomp`` (the OCI
form: defaultAction, architectures, syscalls with names/action/args;
seccomp_profile.py); here it becomes a classic BPF program, loaded just before
exec by runc.py.  See seccomp(2), and the kernel's
Documentation/userspace-api/seccomp_filter.rst.

Why assemble BPF in Python instead of calling libseccomp through ctypes: the
filter is the lesson.  libseccomp hides it behind seccomp_rule_add(); here a
student can print the program (``python -m minidocker.runtime.seccomp_profile``)
and read, instruction by instruction, what the kernel runs on each call:

    ld  [4]                  seccomp_data.arch: which ABI is calling?
    jeq #AUDIT_ARCH_X86_64   not ours (an int 0x80 i386 call...)  -> EPERM
    ld  [0]                  seccomp_data.nr
    jge #0x40000000          the x32 ABI (nr | __X32_SYSCALL_BIT)  -> EPERM
    jgt #450                 newer than our tables                 -> ENOSYS
    jeq #0 ; ret ALLOW       read        (one pair per allowed call)
    jeq #56 ...              clone: check args[0] & CLONE_NEW* == 0
    ret ERRNO|EPERM          everything else: the default action

The program is a plain list of `if nr == N: return ACTION`, slower on paper
than libseccomp's binary tree, but since Linux 5.11 the kernel caches the
result of every call whose answer depends only on its number (the arch and nr
are all this filter reads for them), so an allowed read() never runs it.

Numbers: seccomp_tables.py (generated from the kernel headers).  Architectures:
x86_64 and aarch64, the native one only; 32-bit sub-architectures, which docker
allows, are refused here (one table per filter keeps the program readable).
Calls newer than our tables get ENOSYS, as runc does, so that libc falls back
(e.g. glibc tries fchmodat2, then fchmodat) instead of failing on EPERM.
"""
import errno
import os
import struct

from minidocker import kernel
from minidocker.errors import InvalidArgument
from minidocker.runtime.seccomp_tables import TABLES

# <linux/audit.h>: the value of seccomp_data.arch for each ABI.
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
X32_SYSCALL_BIT = 0x40000000

# <linux/seccomp.h>: what a filter returns.  The low 16 bits carry the errno.
RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP = 0x80000000, 0x00000000, 0x00030000
RET_ERRNO, RET_TRACE, RET_LOG, RET_ALLOW = 0x00050000, 0x7FF00000, 0x7FFC0000, 0x7FFF0000

# <linux/filter.h>: the classic BPF opcodes we use (class | size | mode / op | source).
LD_ABS = 0x20          # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data
AND_K = 0x54           # BPF_ALU | BPF_AND | BPF_K: A &= k
JEQ, JGT, JGE = 0x15, 0x25, 0x35    # BPF_JMP | BPF_JEQ/JGT/JGE | BPF_K: if A op k goto +jt else +jf
RET_K = 0x06           # BPF_RET | BPF_K: return k

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6].
OFF_NR, OFF_ARCH = 0, 4


def _arg_lo(i):        # both our architectures are little-endian: the low word comes first
    return 16 + 8 * i


def _arg_hi(i):
    return 16 + 8 * i + 4


def machine() -> str:
    return os.uname().machine


def action(name: str, errno_ret=None) -> int:
    """The SECCOMP_RET_* value of an OCI action name (runc's seccomp.ConvertStringToAction)."""
    err = errno.EPERM if errno_ret is None else int(errno_ret)
    values = {"SCMP_ACT_KILL": RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
              "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS, "SCMP_ACT_TRAP": RET_TRAP,
              "SCMP_ACT_ERRNO": RET_ERRNO | (err & 0xFFFF), "SCMP_ACT_TRACE": RET_TRACE | (err & 0xFFFF),
              "SCMP_ACT_LOG": RET_LOG, "SCMP_ACT_ALLOW": RET_ALLOW}
    if name not in values:
        raise InvalidArgument(f"seccomp: unsupported action {name!r}")
    return values[name]


# -- a tiny assembler: instructions with symbolic forward jumps ------------------------------

class Program:
    """A list of (code, jt, jf, k); jt/jf are 0, or a label placed later with mark()."""

    def __init__(self):
        self.insns, self.labels = [], {}

    def emit(self, code, k=0, jt=0, jf=0):
        self.insns.append((code, jt, jf, k & 0xFFFFFFFF))

    def mark(self, label):
        self.labels[label] = len(self.insns)

    def assemble(self) -> bytes:
        out = []
        for i, (code, jt, jf, k) in enumerate(self.insns):
            jt, jf = (self._offset(i, j) for j in (jt, jf))
            out.append(struct.pack("=HBBI", code, jt, jf, k))   # struct sock_filter
        if len(out) > 4096:                                      # BPF_MAXINSNS
            raise InvalidArgument(f"seccomp: the filter has {len(out)} instructions (max 4096)")
        return b"".join(out)

    def _offset(self, i, target):
        if isinstance(target, int):
            return target
        offset = self.labels[target] - (i + 1)
        if not 0 <= offset <= 255:        # classic BPF jumps only forward, by one byte
            raise InvalidArgument(f"seccomp: a jump of {offset} instructions")
        return offset


def _compare(p, arg, fail, label):
    """Continue if the 64-bit argument matches, else jump to fail (the next rule).
    Each 64-bit value is two 32-bit words: compare the high words, then the low."""
    i, op = arg["index"], arg["op"]
    if not 0 <= i <= 5:
        raise InvalidArgument(f"seccomp: argument index {i} (0 to 5)")
    value, two = int(arg.get("value", 0)), int(arg.get("valueTwo", 0))
    hi, lo = value >> 32, value & 0xFFFFFFFF
    ok = label + "ok"
    if op == "SCMP_CMP_EQ":
        p.emit(LD_ABS, _arg_hi(i)), p.emit(JEQ, hi, 0, fail)
        p.emit(LD_ABS, _arg_lo(i)), p.emit(JEQ, lo, 0, fail)
    elif op == "SCMP_CMP_NE":
        p.emit(LD_ABS, _arg_hi(i)), p.emit(JEQ, hi, 0, ok)
        p.emit(LD_ABS, _arg_lo(i)), p.emit(JEQ, lo, fail, 0)
    elif op == "SCMP_CMP_MASKED_EQ":     # (arg & value) == valueTwo
        p.emit(LD_ABS, _arg_hi(i)), p.emit(AND_K, hi), p.emit(JEQ, two >> 32, 0, fail)
        p.emit(LD_ABS, _arg_lo(i)), p.emit(AND_K, lo), p.emit(JEQ, two & 0xFFFFFFFF, 0, fail)
    elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        p.emit(LD_ABS, _arg_hi(i)), p.emit(JGT, hi, ok, 0), p.emit(JEQ, hi, 0, fail)
        p.emit(LD_ABS, _arg_lo(i)), p.emit(JGT if op == "SCMP_CMP_GT" else JGE, lo, ok, fail)
    elif op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        p.emit(LD_ABS, _arg_hi(i)), p.emit(JGE, hi, 0, ok), p.emit(JEQ, hi, 0, fail)
        p.emit(LD_ABS, _arg_lo(i)), p.emit(JGE if op == "SCMP_CMP_LT" else JGT, lo, fail, ok)
    else:
        raise InvalidArgument(f"seccomp: unsupported comparison {op!r}")
    p.mark(ok)


def compile_filter(seccomp: dict, arch: str | None = None) -> bytes:
    """The BPF program of an OCI linux.seccomp object, for arch (default: this machine).

    Rules are tried in order; the first whose number (and arguments) match gives
    the answer.  Names unknown on this architecture are skipped, as libseccomp
    does (docker's profile lists 32-bit names such as chown32)."""
    arch = arch or machine()
    if arch not in TABLES:
        raise InvalidArgument(f"seccomp: architecture {arch} is not supported (x86_64, aarch64)")
    table = TABLES[arch]
    default = action(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    p = Program()
    p.emit(LD_ABS, OFF_ARCH)
    p.emit(JEQ, AUDIT_ARCH[arch], 1, 0)
    p.emit(RET_K, RET_ERRNO | errno.EPERM)              # another ABI: its numbers mean other calls
    p.emit(LD_ABS, OFF_NR)
    if arch == "x86_64":
        p.emit(JGE, X32_SYSCALL_BIT, 0, 1)
        p.emit(RET_K, RET_ERRNO | errno.EPERM)          # the x32 ABI on the x86_64 arch value
    if default != RET_ALLOW:
        p.emit(JGT, max(table.values()), 0, 1)
        p.emit(RET_K, RET_ERRNO | errno.ENOSYS)
    for r, rule in enumerate(seccomp.get("syscalls") or []):
        ret = action(rule["action"], rule.get("errnoRet"))
        for name in rule.get("names") or []:
            if name not in table:
                continue
            args = rule.get("args") or []
            if not args:
                p.emit(JEQ, table[name], 0, 1)
                p.emit(RET_K, ret)
                continue
            label = f"{r}:{name}:"
            p.emit(JEQ, table[name], 0, label + "next")
            for a, arg in enumerate(args):           # all must match (libseccomp: AND)
                _compare(p, arg, label + "fail", f"{label}{a}:")
            p.emit(RET_K, ret)
            p.mark(label + "fail")
            p.emit(LD_ABS, OFF_NR)                   # the argument checks replaced A: reload nr
            p.mark(label + "next")
    p.emit(RET_K, default)
    return p.assemble()


def load(seccomp: dict) -> None:
    """Compile and attach.  The filter is inherited by every child and kept across
    execve; it can never be removed, only made stricter by another filter."""
    kernel.seccomp_filter(compile_filter(seccomp))


def disassemble(program: bytes, arch: str | None = None) -> list[str]:
    """The program as text, one instruction a line, with the name of each call compared."""
    names = {nr: name for name, nr in TABLES.get(arch or machine(), {}).items()}
    ops = {LD_ABS: "ld", AND_K: "and", JEQ: "jeq", JGT: "jgt", JGE: "jge", RET_K: "ret"}
    lines, loaded = [], None
    for n in range(len(program) // 8):
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * n)
        text = f"{n:4}  {ops.get(code, hex(code))}"
        if code == LD_ABS:
            loaded = k
            text += f" [{k}]" + {OFF_NR: "  nr", OFF_ARCH: "  arch"}.get(
                k, f"  args[{(k - 16) // 8}] {'high' if k % 8 else 'low'} word")
        elif code in (JEQ, JGT, JGE):
            text += f" #{k:#x}  jt {n + 1 + jt}  jf {n + 1 + jf}"
            if loaded == OFF_NR and code == JEQ and k in names:
                text += f"  {names[k]}"
        else:
            text += f" #{k:#x}"
        lines.append(text)
    return lines
