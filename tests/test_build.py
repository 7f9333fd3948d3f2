"""minidocker build: real builds from real Dockerfiles.

Each RUN is a real container; the tests read the result where it lives: the
image store (configs, layer dirs), a container run from the image, the exit
code of the build.  After every test the fixtures check that nothing leaked
(no mounts, cgroups or processes), and these tests also check that no build
container and no temp file is left.
"""
import gzip
import io
import os
import re
import tarfile
import time

import pytest

from minidocker.build import builder
from minidocker.image import store
from minidocker.errors import InvalidArgument


def write(ctx, files):
    for name, content in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return ctx


def no_leftovers(root):
    """No build container, no half-written layer or scratch dir."""
    containers = os.path.join(root, "containers")
    assert not os.path.isdir(containers) or os.listdir(containers) == []
    tmp = os.path.join(root, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def run(cli, image, *command):
    proc = cli("run", "--rm", image, *command)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def layer_files(diff_id):
    out = []
    top = store.layer_dir(diff_id)
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(dirpath, name), top))
    return sorted(out)


THREE_STEPS = 'FROM busybox\nRUN echo built > /file && echo hello from run\nCMD ["cat", "/file"]\n'


def test_build_tag_and_run(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": THREE_STEPS})
    proc = cli("build", "-t", "first:v1", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Reading build context  2.048kB"          # one 1-block file, as a tar
    assert [l for l in lines if l.startswith("Step")] == [
        "Step 1/3 : FROM busybox",
        "Step 2/3 : RUN echo built > /file && echo hello from run",
        'Step 3/3 : CMD ["cat", "/file"]']
    running = next(l for l in lines if l.startswith(" ---> Running in "))
    cid = running.split()[-1]
    assert re.fullmatch(r"[0-9a-f]{12}", cid)
    assert lines[lines.index(running) + 1] == "hello from run"      # the RUN's own output
    assert f"Removing intermediate container {cid}" in lines
    assert "Using cache" not in proc.stdout
    image = store.get("first:v1")
    assert lines[-2:] == [f"Successfully built {image.short_id}", "Successfully tagged first:v1"]
    busybox = store.get("busybox")
    # RUN added one layer holding only what the command wrote; CMD only changed the config
    assert image.diff_ids[:-1] == busybox.diff_ids and len(image.diff_ids) == len(busybox.diff_ids) + 1
    assert layer_files(image.diff_ids[-1]) == ["file"]
    assert image.config["config"]["Cmd"] == ["cat", "/file"]
    assert [h.get("empty_layer", False) for h in image.config["history"][-2:]] == [False, True]
    assert run(cli, "first:v1") == "built\n"
    no_leftovers(images_root)


def test_cache_reuses_steps_until_a_copied_file_changes(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY page.txt /page.txt\n"
                                   "RUN cp /page.txt /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n",
                     "page.txt": "version 1\n"})
    cold = builder.build(str(tmp_path), tags=["cached"], out=io.StringIO())
    assert [s.cached for s in cold.steps] == [False, False, False, False]
    out = io.StringIO()
    warm = builder.build(str(tmp_path), tags=["cached"], out=out)
    assert [s.cached for s in warm.steps] == [False, True, True, True]       # FROM is never "cached"
    assert warm.image_id == cold.image_id
    assert out.getvalue().count(" ---> Using cache\n") == 3
    # touch: a new mtime, the same content: still the cache (docker hashes content only)
    os.utime(tmp_path / "page.txt", (time.time() + 100, time.time() + 100))
    assert builder.build(str(tmp_path), out=io.StringIO()).image_id == cold.image_id
    # a new content: that COPY and every step after it run again
    (tmp_path / "page.txt").write_text("version 2\n")
    changed = builder.build(str(tmp_path), tags=["cached"], out=io.StringIO())
    assert [s.cached for s in changed.steps] == [False, False, False, False]
    assert changed.image_id != cold.image_id
    assert run(cli, "cached") == "version 2\n"
    # back to the first content: the first build's images are still the cache
    (tmp_path / "page.txt").write_text("version 1\n")
    again = builder.build(str(tmp_path), out=io.StringIO())
    assert again.image_id == cold.image_id and all(s.cached for s in again.steps[1:])
    # --no-cache builds every step again
    fresh = builder.build(str(tmp_path), no_cache=True, out=io.StringIO())
    assert not any(s.cached for s in fresh.steps) and fresh.image_id != cold.image_id
    no_leftovers(images_root)


def test_build_args_are_part_of_the_cache_key(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": "FROM busybox\nARG WHO=world\nRUN echo hello $WHO > /greeting\n"
                                   "CMD [\"cat\", \"/greeting\"]\n"})
    assert cli("build", "-t", "greet", str(tmp_path)).returncode == 0
    assert run(cli, "greet") == "hello world\n"
    proc = cli("build", "-t", "greet", "--build-arg", "WHO=class", "--build-arg", "EXTRA=1", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Using cache" not in proc.stdout
    assert "[Warning] One or more build-args [EXTRA] were not consumed" in proc.stdout
    assert run(cli, "greet") == "hello class\n"
    # an ARG is not kept in the image's environment, unlike ENV
    assert not any(e.startswith("WHO=") for e in store.get("greet").config["config"]["Env"])


def test_run_output_streams_while_the_step_runs(images_root, tmp_path):
    # the words the command prints are not in its text (which the step line shows)
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo first-$((1+1)); sleep 1; echo second-$((1+2))\n"})

    class Clock(io.StringIO):
        seen = {}

        def write(self, text):
            for word in ("first-2", "second-3"):
                if word in text:
                    self.seen.setdefault(word, time.monotonic())
            return super().write(text)
    out = Clock()
    builder.build(str(tmp_path), out=out)
    assert out.seen["second-3"] - out.seen["first-2"] > 0.7       # "first" came before the sleep


def test_failed_run_exits_with_its_code_and_moves_no_tag(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": THREE_STEPS})
    assert cli("build", "-t", "app", str(tmp_path)).returncode == 0
    good = store.get("app").id
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo step two > /two\n\n"
                                   "RUN echo failing; exit 3\nCMD [\"true\"]\n"})
    proc = cli("build", "-t", "app", str(tmp_path))
    assert proc.returncode == 3
    assert "failing\n" in proc.stdout
    assert proc.stderr.strip() == ("Dockerfile:4: The command '/bin/sh -c echo failing; exit 3' "
                                   "returned a non-zero code: 3")
    assert "Successfully" not in proc.stdout
    assert store.get("app").id == good                  # the tag did not move
    assert cli("ps", "-a", "-q").stdout == ""           # the build container is gone
    no_leftovers(images_root)


@pytest.mark.parametrize("dockerfile, code, message", [
    ("FROM busybox\nRUN true\nFOO bar\n", 1,
     "Error response from daemon: Dockerfile parse error line 3: unknown instruction: FOO"),
    ("FROM busybox\n\nCOPY missing.txt /x\n", 1,
     "Dockerfile:3: COPY failed: file not found in build context or excluded by .dockerignore: "
     "stat missing.txt: file does not exist"),
    ("FROM busybox\nCOPY ../outside /x\n", 1,
     "Dockerfile:2: COPY failed: forbidden path outside the build context: ../outside"),
    ("FROM busybox\nCOPY a.txt b.txt /notadir\n", 1,
     "Dockerfile:2: COPY failed: When using COPY with more than one source file, the destination "
     "must be a directory and end with a /"),
    ("FROM busybox\nADD https://example.com/x.tar /x\n", 1,
     "Dockerfile:2: ADD failed: https://example.com/x.tar is a URL: ADD would download it, and "
     "minidocker builds offline"),
    ("FROM busybox\nENV A=\"unclosed\n", 1, "Dockerfile:2: ENV failed: failed to process"),
    ("FROM no-such-image\n", 1, "Dockerfile:1: FROM failed: pull access denied for no-such-image"),
    ("FROM busybox\nRUN [\"no-such-program\"]\n", 127,
     "Dockerfile:2: RUN failed: exec: \"no-such-program\": executable file not found in $PATH"),
    ("FROM busybox\nUSER nobody-here\nRUN true\n", 1, "Dockerfile:3: RUN failed: unable to find user"),
    ("RUN true\n", 1, "Dockerfile:1: no build stage in current context"),
    ("FROM busybox\nCOPY --chown=ghost a.txt /a\n", 1, "can't find uid for user ghost"),
    ("FROM busybox\nSTOPSIGNAL SIGNOPE\n", 1, "Dockerfile:2: STOPSIGNAL failed: Invalid signal"),
    ("FROM busybox\nWORKDIR ${X:?needs X}\n", 1, "Dockerfile:2: WORKDIR failed: failed to process"),
])
def test_errors_give_the_line_and_leave_nothing(images_root, cli, tmp_path, dockerfile, code, message):
    write(tmp_path, {"Dockerfile": dockerfile, "a.txt": "a", "b.txt": "b"})
    proc = cli("build", "-t", "broken", str(tmp_path))
    assert proc.returncode == code
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1       # one line, no traceback
    with pytest.raises(Exception):
        store.get("broken")
    no_leftovers(images_root)


def test_copy_add_chown_chmod_and_dockerignore(images_root, cli, tmp_path):
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("pkg/bin/tool")
        info.size, info.mode, info.uid, info.gid = 3, 0o755, 7, 8
        tf.addfile(info, io.BytesIO(b"hi\n"))
    write(tmp_path, {
        "Dockerfile": "FROM busybox\n"
                      "COPY --chown=user:user app/ /srv/app/\n"
                      "COPY --chmod=0600 secret.txt /etc/secret\n"
                      "COPY *.txt /txt/\n"
                      "ADD pkg.tar.gz /opt/\n"
                      "ADD notes.txt.gz /raw/\n"
                      "COPY [\"with space.txt\", \"/dir with space/\"]\n",
        ".dockerignore": "# the context minus these\napp/*.log\napp/cache\n*.md\n!keep.md\n",
        "app/main.sh": "echo main\n", "app/sub/lib.sh": "echo lib\n", "app/debug.log": "x",
        "app/cache/big": "x", "secret.txt": "s3cret", "a.txt": "a", "b.txt": "b",
        "README.md": "no", "keep.md": "yes", "with space.txt": "spaced",
        "pkg.tar.gz": tar_buf.getvalue(), "notes.txt.gz": gzip.compress(b"not a tar\n"),
    })
    os.chmod(tmp_path / "app/main.sh", 0o750)
    proc = cli("build", "-t", "files", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    listing = run(cli, "files", "sh", "-c",
                  "cd / && find srv txt opt raw 'dir with space' etc/secret | sort | "
                  "while read f; do stat -c '%n %u:%g %a' \"$f\"; done")
    assert listing.splitlines() == [
        "dir with space 0:0 755", "dir with space/with space.txt 0:0 644",
        "etc/secret 0:0 600",
        "opt 0:0 755", "opt/pkg 0:0 755", "opt/pkg/bin 0:0 755", "opt/pkg/bin/tool 7:8 755",
        "raw 0:0 755", "raw/notes.txt.gz 0:0 644",          # not a tar: copied as it is
        "srv 1000:1000 755",                                # made for the COPY: --chown owner
        "srv/app 1000:1000 755", "srv/app/main.sh 1000:1000 750",
        "srv/app/sub 1000:1000 755", "srv/app/sub/lib.sh 1000:1000 644",
        "txt 0:0 755", "txt/a.txt 0:0 644", "txt/b.txt 0:0 644",
        "txt/secret.txt 0:0 644", "txt/with space.txt 0:0 644"]
    # the parents the image already had keep their owner and mode (/etc, and / itself)
    assert run(cli, "files", "stat", "-c", "%a", "/etc", "/tmp") == "755\n1777\n"


def test_dockerignore_exception_inside_an_excluded_dir(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY . /ctx/\n",
                     ".dockerignore": "skip\n!skip/keep\nDockerfile\n",
                     "skip/keep": "k", "skip/drop": "d", "top": "t"})
    assert cli("build", "-t", "ign", str(tmp_path)).returncode == 0
    assert sorted(run(cli, "ign", "find", "/ctx", "-type", "f").split()) == [
        "/ctx/.dockerignore", "/ctx/skip/keep", "/ctx/top"]


def test_multistage_from_scratch_with_copy_from(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": (
        "ARG BASE=busybox\n"
        "FROM $BASE AS build\n"
        "ARG BASE\n"
        "RUN mkdir /out && echo made from $BASE > /out/msg && chown 5:6 /out/msg\n"
        "FROM scratch\n"
        "COPY --from=build /bin/busybox /bin/busybox\n"
        "COPY --from=0 /out/msg /msg\n"
        "ENTRYPOINT [\"/bin/busybox\"]\n"
        "CMD [\"cat\", \"/msg\"]\n")})
    proc = cli("build", "-t", "small", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Step 5/9 : FROM scratch" in proc.stdout
    assert run(cli, "small") == "made from busybox\n"
    assert run(cli, "small", "stat", "-c", "%u:%g", "/msg") == "5:6\n"    # --from keeps owners
    small = store.get("small")
    assert len(small.diff_ids) == 2                        # two COPY layers, nothing of busybox's
    assert layer_files(small.diff_ids[0]) == ["bin", "bin/busybox"]
    no_leftovers(images_root)


def test_config_instructions(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": (
        "FROM busybox\n"
        "ENV abc=hello\n"
        "ENV abc=bye def=$abc\n"               # the reference's example: def is hello
        "ENV ghi=$abc SPACED=\"a b\"\n"
        "WORKDIR /srv\n"
        "WORKDIR app\n"                        # relative: /srv/app
        "LABEL org.example.course=\"intro to containers\" version=1\n"
        "EXPOSE 8080 53/udp 7000-7001\n"
        "VOLUME /data\n"
        "RUN echo in the volume > /data/lost && echo kept > kept\n"
        "USER 1000\n"
        "STOPSIGNAL SIGQUIT\n"
        "SHELL [\"/bin/sh\", \"-ec\"]\n"
        "CMD echo $def $ghi $SPACED; pwd; id -u\n"
        "ENTRYPOINT [\"/bin/sh\", \"-c\", \"exec \\\"$0\\\" \\\"$@\\\"\"]\n")})
    proc = cli("build", "-t", "conf", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    cfg = store.get("conf").config["config"]
    assert [e for e in cfg["Env"] if not e.startswith("PATH=")] == [
        "abc=bye", "def=hello", "ghi=bye", "SPACED=a b"]
    assert cfg["WorkingDir"] == "/srv/app" and cfg["User"] == "1000"
    assert cfg["Labels"] == {"org.example.course": "intro to containers", "version": "1"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}, "7000/tcp": {}, "7001/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGQUIT"
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["Cmd"] == ["/bin/sh", "-ec", "echo $def $ghi $SPACED; pwd; id -u"]
    # an ENTRYPOINT after a CMD in the same stage keeps that CMD
    assert cfg["Entrypoint"][0] == "/bin/sh"
    assert run(cli, "conf") == "hello bye a b\n/srv/app\n1000\n"
    # what RUN wrote under a VOLUME is not in the image; the rest is
    assert run(cli, "conf", "ls", "/data", "/srv/app") == "/data:\n\n/srv/app:\nkept\n"


def test_env_replaces_a_variable_in_its_place(images_root, tmp_path):
    """ENV of a name the image has replaces it where it is, as docker's dispatchEnv
    does (and `run -e`, `commit --change`): the order of Env is the image's."""
    write(tmp_path, {"Dockerfile": "FROM busybox\nENV A=1 B=2\nENV A=3 PATH=/opt/bin:$PATH\n"})
    base = store.get("busybox").config["config"]["Env"]
    builder.build(str(tmp_path), tags=["envorder"], out=io.StringIO())
    env = store.get("envorder").config["config"]["Env"]
    path = next(e for e in base if e.startswith("PATH="))
    assert env == [e if e != path else "PATH=/opt/bin:" + path[5:] for e in base] + ["A=3", "B=2"]


def test_entrypoint_resets_the_base_images_cmd(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": "FROM busybox\nENTRYPOINT [\"echo\", \"args:\"]\n"})
    assert cli("build", "-t", "ep", str(tmp_path)).returncode == 0
    assert store.get("ep").config["config"]["Cmd"] is None
    assert run(cli, "ep") == "args:\n"
    assert run(cli, "ep", "one", "two") == "args: one two\n"


def test_escape_directive_comments_and_continuations(images_root, cli, tmp_path):
    write(tmp_path, {"Dockerfile": (
        "# escape=`\n"
        "FROM busybox\n"
        "RUN echo one > /f && `\n"
        "    # a comment in the middle of the command\n"
        "    echo two >> /f\n"
        "COPY [\"a.txt\", \"/a\\\\b.txt\"]\n"
        "CMD [\"cat\", \"/f\", \"/a\\\\b.txt\"]\n"), "a.txt": "three\n"})
    proc = cli("build", "-t", "esc", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert run(cli, "esc") == "one\ntwo\nthree\n"


def test_run_layers_hold_no_mount_points(images_root, cli, tmp_path):
    """The runtime's mount points (/proc, /dev, /sys, /etc/hosts...) are no change of RUN's."""
    write(tmp_path, {"Dockerfile": "FROM scratch\nCOPY --from=busybox /bin/busybox /bin/sh\n"
                                   "RUN [\"/bin/sh\", \"-c\", \":\"]\n"})
    proc = cli("build", "-t", "bare", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert layer_files(store.get("bare").diff_ids[-1]) == []
    no_leftovers(images_root)


def test_dockerfile_flag_quiet_and_target(images_root, cli, tmp_path):
    write(tmp_path, {"other.Dockerfile": "FROM busybox AS one\nRUN echo one > /x\n"
                                         "FROM one AS two\nRUN echo two >> /x\n"})
    proc = cli("build", "-q", "-f", str(tmp_path / "other.Dockerfile"), "--target", "one",
               "-t", "target", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == store.get("target").id + "\n"
    assert run(cli, "target", "cat", "/x") == "one\n"
    assert cli("build", "--target", "nope", "-f", str(tmp_path / "other.Dockerfile"),
               str(tmp_path)).returncode == 1
    # -f - reads the Dockerfile from stdin
    proc = cli("build", "-q", "-f", "-", "-t", "stdin", str(tmp_path),
               input='FROM busybox\nCMD ["echo", "from stdin"]\n')
    assert proc.returncode == 0, proc.stderr
    assert run(cli, "stdin") == "from stdin\n"


def test_bad_context_and_tag(images_root, cli, tmp_path):
    proc = cli("build", str(tmp_path / "missing"))
    assert proc.returncode == 1 and "unable to prepare context" in proc.stderr
    write(tmp_path, {"Dockerfile": THREE_STEPS})
    proc = cli("build", "-t", "Bad Tag", str(tmp_path))
    assert proc.returncode == 1 and "invalid reference format" in proc.stderr
    with pytest.raises(InvalidArgument):
        builder.build(str(tmp_path), tags=["UPPER"])
