"""The seccomp filter: docker's default profile, --security-opt seccomp=..., --privileged.

Against the real kernel: a tiny static C program (compiled here with gcc and
copied into an image FROM busybox by the builder) makes raw system calls inside
a container and prints the errno of each; the tests compare what the default
filter, a capability added, `unconfined` and a profile file allow.  The BPF
programs themselves are also run on a small classic-BPF interpreter below, so the
aarch64 filter is checked on an x86_64 host too.
"""
import errno
import json
import os
import shutil
import struct
import subprocess

import pytest

from minidocker.build import builder
from minidocker.runtime import seccomp, seccomp_profile, seccomp_tables

HELPER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *n = argv[i];
        long r = -1;
        errno = 0;
        if (!strcmp(n, "keyctl")) r = syscall(SYS_keyctl, 0, -3, 0);          /* KEYCTL_GET_KEYRING_ID */
        else if (!strcmp(n, "add_key")) r = syscall(SYS_add_key, "user", "k", "v", 1, -2);
        else if (!strcmp(n, "unshare")) r = syscall(SYS_unshare, 0);
        else if (!strcmp(n, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, NULL, 0x7fff0000UL);
        else if (!strcmp(n, "open_by_handle_at")) r = syscall(SYS_open_by_handle_at, -1, NULL, 0);
        else if (!strcmp(n, "getpid")) r = syscall(SYS_getpid);
        else if (!strcmp(n, "clone_newuser") || !strcmp(n, "clone")) {
            long flags = SIGCHLD | (n[5] ? CLONE_NEWUSER : 0);
            r = syscall(SYS_clone, flags, 0, 0, 0, 0);
            if (r == 0) _exit(0);
            if (r > 0) waitpid(r, 0, 0);
        }
        printf("%s %d\n", n, r < 0 ? errno : 0);
    }
    return 0;
}
"""
CALLS = ["keyctl", "add_key", "unshare", "kexec_load", "open_by_handle_at", "clone_newuser",
         "clone", "getpid"]


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("needs gcc to build the static test program")
    d = tmp_path_factory.mktemp("helper")
    (d / "sc.c").write_text(HELPER)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "sc"), str(d / "sc.c")], check=True)
    (d / "Dockerfile").write_text("FROM busybox\nCOPY sc /sc\n")
    return str(d)


@pytest.fixture
def sc_image(images_root, helper):
    import io
    builder.build(helper, tags=["sc"], out=io.StringIO())
    return "sc"


def errnos(cli, *options, calls=CALLS):
    proc = cli("run", "--rm", *options, "sc", "/sc", *calls)
    assert proc.returncode == 0, proc.stderr
    return {name: int(code) for name, code in (line.split() for line in proc.stdout.splitlines())}


def status(cli, *options):
    proc = cli("run", "--rm", *options, "busybox", "grep", "-e", "Seccomp", "-e", "NoNewPrivs",
               "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(":\t") for line in proc.stdout.splitlines())


def test_a_default_container_runs_under_one_filter(images_root, cli):
    assert status(cli)["Seccomp"] == "2"                  # SECCOMP_MODE_FILTER
    assert status(cli)["Seccomp_filters"] == "1"
    nnp = status(cli, "--security-opt", "no-new-privileges")   # loaded later, after NNP
    assert (nnp["Seccomp"], nnp["NoNewPrivs"]) == ("2", "1")
    # without no_new_privs the filter must go in while init still holds CAP_SYS_ADMIN
    # (runc's order): else a user or a dropped capability would make prctl fail (EACCES)
    assert status(cli, "--cap-drop", "ALL", "--user", "1000")["Seccomp"] == "2"
    assert status(cli, "--userns", "remap")["Seccomp"] == "2"   # CAP_SYS_ADMIN of its own namespace
    assert status(cli, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    assert status(cli, "--privileged")["Seccomp"] == "0"            # as docker: no filter
    assert status(cli, "--privileged", "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"


def test_refused_calls_fail_with_eperm_and_work_unconfined(sc_image, cli):
    confined = errnos(cli)
    assert {n: confined[n] for n in CALLS} == dict(
        {n: errno.EPERM for n in CALLS}, clone=0, getpid=0)    # fork still works
    free = errnos(cli, "--security-opt", "seccomp=unconfined")
    for name in ("keyctl", "add_key", "unshare", "open_by_handle_at", "clone_newuser"):
        assert free[name] != errno.EPERM, (name, free)
    assert free["open_by_handle_at"] in (errno.EBADF, errno.EFAULT)    # past the filter: bad args
    assert free["unshare"] == 0 and free["clone_newuser"] == 0 and free["add_key"] == 0
    # kexec_load: the kernel wants CAP_SYS_BOOT (ENOSYS if it was built without kexec);
    # with the capability, only the filter still says no
    assert free["kexec_load"] in (errno.EPERM, errno.ENOSYS)
    assert errnos(cli, "--cap-add", "SYS_BOOT", calls=["kexec_load"])["kexec_load"] == errno.EPERM
    unconfined = errnos(cli, "--cap-add", "SYS_BOOT", "--security-opt", "seccomp=unconfined",
                        calls=["kexec_load"])
    assert unconfined["kexec_load"] in (errno.EINVAL, errno.ENOSYS)


def test_rules_that_depend_on_capabilities(sc_image, cli):
    # open_by_handle_at is allowed with CAP_DAC_READ_SEARCH (and fails on its bad arguments)
    assert errnos(cli, "--cap-add", "DAC_READ_SEARCH",
                  calls=["open_by_handle_at"])["open_by_handle_at"] in (errno.EBADF, errno.EFAULT)
    # CAP_SYS_ADMIN adds unshare, and clone with namespace flags
    admin = errnos(cli, "--cap-add", "SYS_ADMIN", calls=["unshare", "clone_newuser", "keyctl"])
    assert admin == {"unshare": 0, "clone_newuser": 0, "keyctl": errno.EPERM}


def test_exec_gets_the_containers_filter(sc_image, cli):
    assert cli("run", "-d", "--name", "ww", "sc", "sleep", "60").returncode == 0
    try:
        proc = cli("exec", "ww", "/sc", "keyctl", "getpid")
        assert proc.stdout.split("\n")[:2] == [f"keyctl {errno.EPERM}", "getpid 0"], proc.stderr
        proc = cli("exec", "ww", "grep", "Seccomp_filters", "/proc/self/status")
        assert proc.stdout.split() == ["Seccomp_filters:", "1"]
    finally:
        cli("rm", "-f", "ww")


def test_a_profile_file_in_dockers_format(images_root, cli, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    path = tmp_path / "nomkdir.json"
    path.write_text(json.dumps(profile))
    opt = f"seccomp={path}"
    proc = cli("run", "--rm", "--security-opt", opt, "busybox", "sh", "-c", "mkdir /x; touch /y && echo ok")
    assert proc.stdout == "ok\n"
    assert proc.stderr == "mkdir: can't create directory '/x': Operation not permitted\n"
    assert cli("create", "--name", "prof", "--security-opt", opt, "busybox", "true").returncode == 0
    path.unlink()                          # read at create, as docker's CLI does
    shown = json.loads(cli("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "prof").stdout)
    assert shown == ["seccomp=" + json.dumps(profile, separators=(",", ":"))]
    assert cli("start", "-a", "prof").returncode == 0
    cli("rm", "-f", "prof")


@pytest.mark.parametrize("text, message", [
    (None, "opening seccomp profile"),
    ("{", "not JSON"),
    ('{"syscalls": []}', "needs a defaultAction"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "unsupported action 'SCMP_ACT_NOPE'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "argument index 7"),
])
def test_bad_profiles_are_one_line_errors(images_root, cli, tmp_path, text, message):
    path = tmp_path / "p.json"
    if text is not None:
        path.write_text(text)
    proc = cli("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "true")
    assert proc.returncode == 125 and message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_the_build_runs_under_the_filter(images_root, cli, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN grep Seccomp: /proc/self/status\n")
    proc = cli("build", str(tmp_path))
    assert proc.returncode == 0 and "Seccomp:\t2" in proc.stdout, proc.stdout + proc.stderr


# -- the programs, run on a classic BPF interpreter -------------------------------------------

AUDIT_I386 = 0x40000003


def run_filter(program, nr, arch, args=()):
    """What the kernel would return for one call: a minimal interpreter of our opcodes."""
    args = list(args) + [0] * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    pc, a = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * pc)
        pc += 1
        if code == seccomp.LD_ABS:
            a = struct.unpack_from("=I", data, k)[0]
        elif code == seccomp.AND_K:
            a &= k
        elif code in (seccomp.JEQ, seccomp.JGT, seccomp.JGE):
            hit = {seccomp.JEQ: a == k, seccomp.JGT: a > k, seccomp.JGE: a >= k}[code]
            pc += jt if hit else jf
        elif code == seccomp.RET_K:
            return k
        else:
            raise AssertionError(f"unknown opcode {code:#x}")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_default_program_on_both_architectures(arch):
    table = seccomp_tables.TABLES[arch]
    audit = seccomp.AUDIT_ARCH[arch]
    eperm, allow = seccomp.RET_ERRNO | errno.EPERM, seccomp.RET_ALLOW
    oci = seccomp_profile.resolve(seccomp_profile.default(), seccomp_profile.DEFAULT_CAPS_NAMES, arch)
    prog = seccomp.compile_filter(oci, arch)
    assert run_filter(prog, table["read"], audit) == allow
    for name in ("keyctl", "add_key", "unshare", "kexec_load", "open_by_handle_at", "mount", "bpf"):
        assert run_filter(prog, table[name], audit) == eperm, name
    assert run_filter(prog, table["read"], AUDIT_I386) == eperm              # a foreign ABI
    assert run_filter(prog, 452, audit) == seccomp.RET_ERRNO | errno.ENOSYS   # newer than the tables
    clone = table["clone"]
    assert run_filter(prog, clone, audit, [0x11]) == allow                    # SIGCHLD: fork
    assert run_filter(prog, clone, audit, [0x10000000 | 0x11]) == eperm      # CLONE_NEWUSER
    assert run_filter(prog, clone, audit, [(1 << 32) | 0x11]) == allow       # only the mask counts
    assert run_filter(prog, table["clone3"], audit) == seccomp.RET_ERRNO | errno.ENOSYS
    assert run_filter(prog, table["socket"], audit, [40]) == eperm            # AF_VSOCK
    assert run_filter(prog, table["socket"], audit, [2]) == allow
    assert run_filter(prog, table["personality"], audit, [0xffffffff]) == allow
    assert run_filter(prog, table["personality"], audit, [0x0040000]) == eperm   # ADDR_NO_RANDOMIZE
    if arch == "x86_64":
        assert run_filter(prog, 0x40000000 | table["read"], audit) == eperm    # x32
        assert run_filter(prog, table["arch_prctl"], audit) == allow
    admin = seccomp.compile_filter(seccomp_profile.resolve(
        seccomp_profile.default(), seccomp_profile.DEFAULT_CAPS_NAMES + ["SYS_ADMIN"], arch), arch)
    assert run_filter(admin, clone, audit, [0x10000000 | 0x11]) == allow
    assert run_filter(admin, table["mount"], audit) == allow


@pytest.mark.parametrize("op, value, two, yes, no", [
    ("SCMP_CMP_EQ", 5, 0, [5], [4, 5 | 1 << 32]),
    ("SCMP_CMP_NE", 5, 0, [4, 5 | 1 << 32], [5]),
    ("SCMP_CMP_GT", 1 << 32, 0, [(1 << 32) + 1, 2 << 32], [1 << 32, 7]),
    ("SCMP_CMP_GE", 1 << 32, 0, [1 << 32, 2 << 32], [(1 << 32) - 1]),
    ("SCMP_CMP_LT", (1 << 32) + 5, 0, [(1 << 32) + 4, 9], [(1 << 32) + 5, 2 << 32]),
    ("SCMP_CMP_LE", (1 << 32) + 5, 0, [(1 << 32) + 5, 9], [(1 << 32) + 6]),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, [0x31, 0x3F], [0x41, 0]),
])
def test_64_bit_argument_comparisons(op, value, two, yes, no):
    arch = "x86_64"
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
         "args": [{"index": 2, "value": value, "valueTwo": two, "op": op}]}]}
    prog = seccomp.compile_filter(oci, arch)
    nr, audit = seccomp_tables.X86_64["write"], seccomp.AUDIT_ARCH[arch]
    for v in yes:
        assert run_filter(prog, nr, audit, [0, 0, v]) == seccomp.RET_ERRNO | 7, hex(v)
    for v in no:
        assert run_filter(prog, nr, audit, [0, 0, v]) == seccomp.RET_ALLOW, hex(v)


def test_the_tables_match_this_machines_headers():
    """The committed table is the generator's output (re-run the script if this fails)."""
    header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
    if not os.path.exists(header):
        pytest.skip("no kernel headers (linux-libc-dev)")
    with open(header) as f:
        defined = {line.split()[1][5:]: int(line.split()[2]) for line in f
                   if line.startswith("#define __NR_") and line.split()[2].isdigit()}
    assert defined == seccomp_tables.X86_64
    assert seccomp_tables.AARCH64["keyctl"] == 219 and "open" not in seccomp_tables.AARCH64
