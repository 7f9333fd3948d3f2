"""The builder: a Dockerfile and a directory in, an image out (`docker build`).

Layer: build (what docker's classic builder, builder/dockerfile in moby, does).
It works like docker before BuildKit: one instruction at a time, each one
making a new image on top of the last:

  RUN         a real container from the current image (containers.create, start
              attached so its output streams, wait); its overlay upper dir, the
              files the command changed, becomes a layer (layers.create);
  COPY, ADD   files from the context written into a scratch dir laid out as a
              layer, then packed;  WORKDIR makes its directory the same way;
  the rest    (ENV, CMD, LABEL, ...) change the image config only: a new image
              with no new layer.

Every image of a step is kept, untagged, as the cache: its config carries
"minidocker.cache", a digest of (parent image, instruction, and for COPY/ADD the
content of the files copied).  The next build with the same parent and the same
instruction finds it and skips the step (" ---> Using cache").  Change one file
that a COPY copies and that COPY, and every step after it, runs again.  Only
when every step succeeded does a tag (-t) move to the result.

The image's files are read without mounting anything: _Tree looks a path up in
the image's layer dirs, top first, as overlayfs would (whiteouts, opaque dirs).
References: docs.docker.com/reference/dockerfile, /reference/cli/docker/buildx/build
(the classic builder's output), /build/concepts/context (.dockerignore).
"""
import copy
import fnmatch
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import sys
import tempfile
import time

from minidocker import config
from minidocker.engine import containers
from minidocker.build import dockerfile
from minidocker.image import store
from minidocker.errors import InvalidArgument, MinidockerError, NotFound

OPAQUE_XATTR = "trusted.overlay.opaque"   # layers.py's; that module (tarfile) loads only when needed
WHITEOUT = ".wh."

CACHE = "minidocker.cache"        # the config field that holds a step's cache key
SCRATCH_CONFIG = {"architecture": store.ARCH, "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


class BuildFailed(MinidockerError):
    """A step failed; `code` is the failed RUN's exit code (docker build exits with it)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class Step:
    """One instruction of a build: did it come from the cache, how long did it take."""

    def __init__(self, number, instruction, line):
        self.number, self.instruction, self.line = number, instruction, line
        self.cached, self.seconds, self.image_id = False, 0.0, None

    def __repr__(self):
        return (f"<Step {self.number} {'cached' if self.cached else 'ran'} "
                f"{self.seconds * 1000:.0f} ms: {self.instruction}>")


class Result:
    """What build() returns: the image id, the steps, the tags it set."""

    def __init__(self, image_id, steps, tags):
        self.image_id, self.steps, self.tags = image_id, steps, tags

    @property
    def short_id(self):
        return self.image_id.split(":")[1][:12]

    def __repr__(self):
        return f"<Result {self.short_id} {self.tags}>"


def build(context: str, dockerfile_path: str | None = None, tags=(), no_cache=False,
          build_args=None, target=None, quiet=False, out=None) -> Result:
    """docker build: returns the Result (image id, each step's timing and cache hit)."""
    return _Builder(context, dockerfile_path, tags, no_cache, build_args or {}, target,
                    quiet, out or sys.stdout).run()


# -- reading an image's files, or the context's, without mounting ------------------------

def _is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path):
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class _Tree:
    """A file tree: paths are lists of names below its root."""

    def find(self, parts):
        """(host path, lstat) of the entry, or None."""
        raise NotImplementedError

    def listdir(self, parts):
        raise NotImplementedError

    def ignored(self, parts):
        return False

    def resolve(self, parts, follow_last=True):
        """Follow symlinks inside the tree: an absolute link starts again at the tree's
        root, and '..' stops at the root (docker's FollowSymlinkInScope).  Missing
        components are kept as they are."""
        todo, done, hops = list(parts), [], 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                done = done[:-1]
                continue
            found = self.find(done + [name])
            if found and stat.S_ISLNK(found[1].st_mode) and (todo or follow_last):
                hops += 1
                if hops > 40:
                    raise InvalidArgument("too many levels of symbolic links: /" + "/".join(parts))
                target = os.readlink(found[0])
                if target.startswith("/"):
                    done = []
                todo = target.split("/") + todo
                continue
            done.append(name)
        return done

    def walk(self, parts):
        """Yield (relative parts, host path, lstat) below parts, parents first, sorted,
        leaving out what is ignored (but looking inside ignored dirs if some
        exception might bring a file back)."""
        for name in self.listdir(parts):
            child = parts + [name]
            found = self.find(child)
            if found is None:
                continue
            skip = self.ignored(child)
            if not skip:
                yield child, found[0], found[1]
            if stat.S_ISDIR(found[1].st_mode) and (not skip or self.may_bring_back()):
                yield from self.walk(child)

    def may_bring_back(self):
        return False

    def glob(self, pattern, line, what):
        """The entries a COPY source names: [(name to copy as, resolved parts)]."""
        norm = posixpath.normpath(pattern.lstrip("/")) if pattern.strip("/") else "."
        parts = [p for p in norm.split("/") if p not in ("", ".")]
        if parts and parts[0] == "..":
            raise BuildFailed(f"Dockerfile:{line}: {what} failed: forbidden path outside the "
                              f"build context: {pattern}")
        found = [([], [])]                       # (as written, resolved)
        for comp in parts:
            nxt = []
            for written, real in found:
                if any(c in comp for c in "*?["):
                    go_pattern = comp.replace("[^", "[!")
                    nxt += [(written + [n], real + [n]) for n in self.listdir(real)
                            if fnmatch.fnmatchcase(n, go_pattern)]
                else:
                    nxt.append((written + [comp], real + [comp]))
            found = [(w, self.resolve(r)) for w, r in nxt]
        out = []
        for written, real in found:
            entry = self.find(real)
            if entry is None:
                continue
            if written and self.ignored(written):
                # an excluded dir still counts if an exception ("!dir/keep") brings a file back
                if not (stat.S_ISDIR(entry[1].st_mode) and self.may_bring_back()
                        and next(self.walk(real), None)):
                    continue
            out.append((written[-1] if written else "", real))
        return out


class _ImageTree(_Tree):
    """An image's merged file tree, read from its layer dirs (top first)."""

    def __init__(self, layer_dirs):
        self.dirs = list(layer_dirs)

    def _lookup(self, parts):
        """(top entry, dirs merged at that path) as overlayfs would see them."""
        if not parts:
            return ((self.dirs[0], os.lstat(self.dirs[0])) if self.dirs else None), self.dirs
        dirs, top = self.dirs, None
        for i, name in enumerate(parts):
            merged, top = [], None
            for d in dirs:
                path = os.path.join(d, name)
                try:
                    st = os.lstat(path)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if _is_whiteout(st):
                    break                          # deleted here: hides all below
                if top is None:
                    top = (path, st)
                if not stat.S_ISDIR(st.st_mode):
                    break                          # a file hides everything below it
                merged.append(path)
                if _is_opaque(path):
                    break
            if top is None or (i < len(parts) - 1 and not stat.S_ISDIR(top[1].st_mode)):
                return None, []
            dirs = merged
        return top, dirs

    def find(self, parts):
        return self._lookup(parts)[0]

    def listdir(self, parts):
        names, gone = set(), set()
        for d in self._lookup(parts)[1]:
            for name in os.listdir(d):
                if name in gone or name in names:
                    continue
                if _is_whiteout(os.lstat(os.path.join(d, name))):
                    gone.add(name)
                else:
                    names.add(name)
        return sorted(names)

    def read(self, path):
        found = self.find(self.resolve(path.strip("/").split("/")))
        if found is None or not stat.S_ISREG(found[1].st_mode):
            return None
        with open(found[0], "rb") as f:
            return f.read()


class _ContextTree(_Tree):
    """The build context: a host directory, less what .dockerignore excludes."""

    def __init__(self, root, rules):
        self.root, self.rules = root, rules

    def find(self, parts):
        path = os.path.join(self.root, *parts)
        try:
            return path, os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, parts):
        found = self.find(parts)
        if found is None or not stat.S_ISDIR(found[1].st_mode):
            return []
        return sorted(os.listdir(found[0]))

    def ignored(self, parts):
        return bool(parts) and dockerfile.ignored("/".join(parts), self.rules)

    def may_bring_back(self):
        return dockerfile.has_exceptions(self.rules)

    def size(self):
        """Bytes of the context as a tar (what `docker build` sends to its daemon)."""
        total = 1024                               # the two zero blocks that end a tar
        for _, _, st in self.walk([]):
            total += 512
            if stat.S_ISREG(st.st_mode):
                total += (st.st_size + 511) // 512 * 512
        return total


def _hash_file(path, h):
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)


def _content_digest(tree, sources, keep_owner):
    """One digest of what a COPY copies: names, types, modes, contents (not mtimes:
    docker's cache ignores them too, so `touch` alone does not bust the cache)."""
    h = hashlib.sha256()

    def entry(rel, path, st):
        owner = f"{st.st_uid}:{st.st_gid}" if keep_owner else ""
        kind = stat.S_IFMT(st.st_mode)
        h.update(f"{'/'.join(rel)}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0{owner}\0".encode())
        if stat.S_ISREG(st.st_mode):
            _hash_file(path, h)
        elif stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
        h.update(b"\n")
    for name, parts in sources:
        path, st = tree.find(parts)
        entry([name], path, st)
        if stat.S_ISDIR(st.st_mode):
            for rel, p, s in tree.walk(parts):
                entry([name] + rel[len(parts):], p, s)
    return "sha256:" + h.hexdigest()


# -- writing a layer -----------------------------------------------------------------------

def _mkdirs_like(base, parts, image_tree, owner=(0, 0), dir_times=None):
    """Make base/parts..., each dir the image has with the image's owner, mode and
    time (so an upper layer does not change them), the others 0755 `owner`."""
    for n in range(1, len(parts) + 1):
        path = os.path.join(base, *parts[:n])
        if os.path.isdir(path) and not os.path.islink(path):
            continue
        if os.path.lexists(path):
            os.unlink(path)
        os.mkdir(path)
        found = image_tree.find(parts[:n])
        if found and stat.S_ISDIR(found[1].st_mode):
            st = found[1]
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, stat.S_IMODE(st.st_mode))
            if dir_times is not None:
                dir_times[path] = st.st_mtime_ns
        else:
            os.chown(path, *owner)
            os.chmod(path, 0o755)


class _LayerDir:
    """A scratch directory laid out as a layer on top of an image: parents that
    the image has are made with the image's owner and mode (so the layer does not
    change them), new ones with 0755 and the --chown owner."""

    def __init__(self, image_tree, owner=(0, 0), mode=None, keep_owner=False):
        self.path = tempfile.mkdtemp(dir=store.tmpdir(), prefix="build-")
        self.image, self.owner, self.mode, self.keep_owner = image_tree, owner, mode, keep_owner
        self.dir_times = {}

    def host(self, parts):
        return os.path.join(self.path, *parts)

    def mkdirs(self, parts):
        _mkdirs_like(self.path, parts, self.image, self.owner, self.dir_times)

    def put(self, parts, src_path, st):
        """Copy one entry (file, symlink, dir, fifo) from src_path to parts."""
        self.mkdirs(parts[:-1])
        path = self.host(parts)
        if os.path.lexists(path) and not (stat.S_ISDIR(st.st_mode) and os.path.isdir(path)
                                          and not os.path.islink(path)):
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
        uid, gid = (st.st_uid, st.st_gid) if self.keep_owner else self.owner
        mode = self.mode if self.mode is not None else stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src_path), path)
            os.lchown(path, uid, gid)
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        if stat.S_ISDIR(st.st_mode):
            if not os.path.isdir(path):
                os.mkdir(path)
            self.dir_times[path] = st.st_mtime_ns
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(src_path, path, follow_symlinks=False)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(path)
        elif stat.S_ISSOCK(st.st_mode):
            return                                  # a tar cannot hold a socket
        else:
            raise InvalidArgument(f"{src_path}: device nodes cannot be copied into an image")
        os.chown(path, uid, gid)
        os.chmod(path, mode)                       # after chown, which clears setuid
        if not stat.S_ISDIR(st.st_mode):
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))

    def pack(self):
        """The layer tar (a temp file the caller removes); the scratch dir is removed."""
        for path in sorted(self.dir_times, key=len, reverse=True):
            os.utime(path, ns=(self.dir_times[path], self.dir_times[path]))
        from minidocker.image import layers
        fd, tar = tempfile.mkstemp(dir=store.tmpdir(), prefix="build-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as f:
                layers.create(self.path, f)
        except BaseException:
            os.unlink(tar)
            raise
        finally:
            self.remove()
        return tar

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def _drop_runtime_files(upper, image_tree):
    """The runtime makes mount points in the container's root (/etc/hostname and
    /etc/hosts to bind over, /proc /dev /sys when the image lacks them); docker
    keeps those in an "init layer" that no commit sees.  Take them out of the upper
    dir, where they are not changes the command made."""
    for rel in ("etc/hostname", "etc/hosts", "etc/resolv.conf"):
        path = os.path.join(upper, rel)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and image_tree.find(rel.split("/")) is None:
            os.unlink(path)
    for rel in ("etc", "proc", "dev", "sys"):
        path = os.path.join(upper, rel)
        if not os.path.isdir(path) or os.path.islink(path) or os.listdir(path) or _is_opaque(path):
            continue
        st, lower = os.lstat(path), image_tree.find([rel])
        if lower is None or (stat.S_ISDIR(lower[1].st_mode) and
                             (lower[1].st_mode, lower[1].st_uid, lower[1].st_gid) ==
                             (st.st_mode, st.st_uid, st.st_gid)):
            os.rmdir(path)


def _make_volumes(upper, volumes, image_tree):
    """docker mounts a fresh volume on each VOLUME dir while a RUN runs, making the
    dir if the image lacks it; minidocker mounts nothing, but makes the dir."""
    for volume in volumes:
        parts = image_tree.resolve([p for p in volume.split("/") if p])
        if parts and image_tree.find(parts) is None:
            _mkdirs_like(upper, parts, image_tree)


def _discard_volumes(upper, volumes):
    """What RUN writes under a VOLUME is lost in docker (the volume hid the dir
    during the RUN); do the same."""
    for volume in volumes:
        path = os.path.join(upper, volume.strip("/"))
        if volume.strip("/") and os.path.isdir(path) and not os.path.islink(path):
            for name in os.listdir(path):
                child = os.path.join(path, name)
                shutil.rmtree(child) if os.path.isdir(child) and not os.path.islink(child) else os.unlink(child)


def _archive_stream(path):
    """An open binary stream of the tar inside `path` (plain, gzip, bzip2, xz), or None
    if the file is not a tar archive (ADD then copies it as it is)."""
    import bz2
    import lzma
    import tarfile
    try:
        with tarfile.open(path, "r:*") as tf:
            tf.next()
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, ValueError):
        return None
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")                       # plain or gzip: layers.extract reads both


# -- the build ----------------------------------------------------------------------------

class _Stage:
    def __init__(self, index, name):
        self.index, self.name = index, name
        self.image_id = None          # None: scratch with nothing yet
        self.cfg = copy.deepcopy(SCRATCH_CONFIG)
        self.args = {}                # ARG name -> value (None: declared, no value)
        self.cmd_set = False

    @property
    def parent_key(self):
        return self.image_id or "scratch"

    def tree(self):
        if self.image_id is None:
            return _ImageTree([])
        return _ImageTree(store.get(self.image_id).layer_dirs())


class _Builder:
    def __init__(self, context, dockerfile_path, tags, no_cache, build_args, target, quiet, out):
        self.context = os.path.abspath(context)
        if not os.path.isdir(self.context):
            raise NotFound(f'unable to prepare context: path "{context}" not found')
        path = dockerfile_path or os.path.join(self.context, "Dockerfile")
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        except FileNotFoundError:
            raise NotFound(f"unable to prepare context: unable to evaluate symlinks in "
                           f"Dockerfile path: lstat {path}: no such file or directory") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"cannot read the Dockerfile {path}: {e}") from None
        self.df = dockerfile.parse(text)
        rules = []
        ignore_file = os.path.join(self.context, ".dockerignore")
        if os.path.isfile(ignore_file):
            with open(ignore_file, encoding="utf-8", errors="replace") as f:
                rules = dockerfile.parse_ignore(f.read())
        self.context_tree = _ContextTree(self.context, rules)
        self.tags = [store.normalize(t) for t in tags]
        self.no_cache, self.build_args, self.target = no_cache, dict(build_args), target
        self.quiet, self.out = quiet, out
        self.used_args, self.meta_args, self.stages, self.steps = set(), {}, [], []
        self.cache = {}

    # output
    def say(self, text):
        if not self.quiet:
            self.out.write(text + "\n")
            self.out.flush()

    def _raw(self, data: bytes):
        if self.quiet:
            return
        if hasattr(self.out, "buffer"):
            self.out.flush()
            self.out.buffer.write(data)
            self.out.buffer.flush()
        else:
            self.out.write(data.decode("utf-8", "replace"))
            self.out.flush()

    def run(self) -> Result:
        meta, stages = [], []
        for ins in self.df.instructions:
            if ins.cmd == "FROM":
                stages.append([ins])
            elif stages:
                stages[-1].append(ins)
            elif ins.cmd == "ARG":
                meta.append(ins)
            else:
                raise BuildFailed(f"Dockerfile:{ins.line}: no build stage in current context: "
                                  f"{ins.cmd} must come after a FROM")
        if self.target is not None:
            names = [s[0].args[2].lower() if len(s[0].args) == 3 else None for s in stages]
            if self.target.lower() not in names:
                raise BuildFailed(f"failed to reach build target {self.target} in Dockerfile")
            stages = stages[:names.index(self.target.lower()) + 1]
        total = len(meta) + sum(len(s) for s in stages)
        for warning in self.df.warnings:
            self.say(warning)
        self.say(f"Reading build context  {_human(self.context_tree.size())}")
        if not self.no_cache:
            for image in store.list_images():          # newest first: the newest wins
                key = image.config.get(CACHE)
                if key and key not in self.cache:
                    self.cache[key] = image.id
        number = 0
        for ins in meta:
            number += 1
            self.say(f"Step {number}/{total} : {ins.original}")
            self._guard(ins, lambda: self._meta_arg(ins))
            self.steps.append(Step(number, ins.original, ins.line))
        for instructions in stages:
            stage = _Stage(len(self.stages), None)
            self.stages.append(stage)
            for ins in instructions:
                number += 1
                self._step(number, total, stage, ins)
        final = self.stages[-1]
        if final.image_id is None:
            raise BuildFailed("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(self.build_args) - self.used_args)
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        short = final.image_id.split(":")[1][:12]
        self.say(f"Successfully built {short}")
        for tag in self.tags:
            store.tag(final.image_id, tag)
            self.say(f"Successfully tagged {tag}")
        if self.quiet:
            self.out.write(final.image_id + "\n")
            self.out.flush()
        return Result(final.image_id, self.steps, list(self.tags))

    def _guard(self, ins, func):
        """Run one step's work; any engine error gets the Dockerfile line in front."""
        try:
            return func()
        except BuildFailed:
            raise
        except MinidockerError as e:         # 126/127: the command could not run / was not found
            raise BuildFailed(f"Dockerfile:{ins.line}: {ins.cmd} failed: {e}",
                              e.code if e.code in (126, 127) else 1) from None
        except OSError as e:
            where = f": {e.filename}" if e.filename else ""
            raise BuildFailed(f"Dockerfile:{ins.line}: {ins.cmd} failed: "
                              f"{e.strerror or e}{where}") from None

    def _step(self, number, total, stage, ins):
        self.say(f"Step {number}/{total} : {ins.original}")
        started = time.monotonic()
        step = Step(number, ins.original, ins.line)
        if ins.cmd == "FROM":
            self._guard(ins, lambda: self._from(stage, ins))
        else:
            key_parts, action = self._guard(ins, lambda: getattr(self, "do_" + ins.cmd.lower())(stage, ins))
            key = "sha256:" + hashlib.sha256(json.dumps(
                [stage.parent_key, ins.cmd, key_parts], sort_keys=True).encode()).hexdigest()
            hit = None if self.no_cache else self.cache.get(key)
            if hit:
                try:
                    stage.cfg = copy.deepcopy(store.get(hit).config)
                    stage.image_id = hit
                    step.cached = True
                    self.say(" ---> Using cache")
                except NotFound:                   # removed since we looked
                    hit = None
            if not hit:
                self._guard(ins, lambda: self._commit(stage, ins, key, action))
        if stage.image_id:
            self.say(f" ---> {stage.image_id.split(':')[1][:12]}")
        step.seconds, step.image_id = time.monotonic() - started, stage.image_id
        self.steps.append(step)

    def _commit(self, stage, ins, key, action):
        """Do the step and store its image (a layer, or only a new config)."""
        cfg = copy.deepcopy(stage.cfg)
        cfg.pop(CACHE, None)
        cfg["created"] = store.now()
        cfg.setdefault("config", {})
        layer, created_by = action(cfg)
        cfg[CACHE] = key
        entry = {"created": cfg["created"], "created_by": created_by}
        if layer is None:
            entry["empty_layer"] = True
        try:
            image = store.add([layer] if layer else [], cfg, history=[entry])
        finally:
            if layer:
                os.unlink(layer)
        self.cache[key] = image.id
        stage.image_id, stage.cfg = image.id, copy.deepcopy(image.config)

    # -- variables -------------------------------------------------------------------------

    def _env(self, stage):
        """What $VAR sees: the stage's ARGs, overridden by the image's ENV."""
        env = {k: v for k, v in stage.args.items() if v is not None}
        for item in stage.cfg.get("config", {}).get("Env") or []:
            key, _, value = item.partition("=")
            env[key] = value
        return env

    def _expand(self, stage, word):
        return dockerfile.expand(word, self._env(stage), self.df.escape)

    def _arg_value(self, word, env):
        name, eq, default = word.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InvalidArgument(f"invalid ARG name: {name!r}")
        if name in self.build_args:
            self.used_args.add(name)
            return name, self.build_args[name]
        if eq:
            return name, dockerfile.expand(default, env, self.df.escape)
        return name, None

    def _meta_arg(self, ins):
        for word in ins.args:
            name, value = self._arg_value(word, {k: v for k, v in self.meta_args.items() if v is not None})
            self.meta_args[name] = value

    # -- instructions ----------------------------------------------------------------------
    # do_<instruction>(stage, ins) returns (what the cache key needs besides the parent, action); the action
    # changes the new image's config and returns (layer tar or None, history text).

    def _from(self, stage, ins):
        env = {k: v for k, v in self.meta_args.items() if v is not None}
        ref = dockerfile.expand(ins.args[0], env, self.df.escape)
        if len(ins.args) == 3:
            stage.name = ins.args[2].lower()
            if any(s.name == stage.name for s in self.stages[:-1]):
                raise InvalidArgument(f"duplicate stage name {stage.name!r}")
        platform = ins.flags.get("platform")
        if platform and dockerfile.expand(platform, env) not in (f"linux/{store.ARCH}", "linux"):
            raise InvalidArgument(f"platform {platform} is not linux/{store.ARCH}: minidocker "
                                  "runs images of its own machine only")
        earlier = next((s for s in self.stages[:-1] if s.name and s.name == ref.lower()), None)
        if earlier is not None:
            stage.image_id, stage.cfg = earlier.image_id, copy.deepcopy(earlier.cfg)
        elif ref == "scratch":
            stage.image_id, stage.cfg = None, copy.deepcopy(SCRATCH_CONFIG)
        else:
            try:
                image = store.get(ref)
            except NotFound:
                raise InvalidArgument(f"pull access denied for {ref}: minidocker builds offline "
                                      "and has no such image (see `minidocker images`)") from None
            stage.image_id, stage.cfg = image.id, copy.deepcopy(image.config)
        stage.cfg.pop(CACHE, None)

    def _nop(self, ins):
        return f"/bin/sh -c #(nop)  {ins.original}"

    def _shell(self, cfg):
        return list(cfg.get("config", {}).get("Shell") or dockerfile.DEFAULT_SHELL)

    def _command(self, stage, ins):
        return list(ins.args) if ins.json else self._shell(stage.cfg) + [ins.args]

    def do_run(self, stage, ins):
        argv = self._command(stage, ins)
        image_env = {e.partition("=")[0] for e in stage.cfg.get("config", {}).get("Env") or []}
        build_env = [f"{k}={v}" for k, v in sorted(stage.args.items())
                     if v is not None and k not in image_env]

        def action(cfg):
            parent = stage.image_id or store.add([], stage.cfg).id     # RUN right after FROM scratch
            volumes = list((cfg["config"].get("Volumes") or {}).keys())
            c = containers.create(parent, argv, entrypoint="", env=build_env)
            try:
                upper = config.path("containers", c.id, "upper")
                tree = _ImageTree(store.get(parent).layer_dirs())
                _make_volumes(upper, volumes, tree)
                self.say(f" ---> Running in {c.id[:12]}")
                code = self._attach(c.id)
                if code != 0:
                    raise BuildFailed(f"Dockerfile:{ins.line}: The command '{' '.join(argv)}' "
                                      f"returned a non-zero code: {code}", code)
                _drop_runtime_files(upper, tree)
                _discard_volumes(upper, volumes)
                from minidocker.image import layers
                fd, tar = tempfile.mkstemp(dir=store.tmpdir(), prefix="build-", suffix=".tar")
                try:
                    with os.fdopen(fd, "wb") as f:
                        layers.create(upper, f)
                except BaseException:
                    os.unlink(tar)
                    raise
                self.say(f"Removing intermediate container {c.id[:12]}")
            finally:
                containers.remove(c.id, force=True)
            prefix = f"|{len(build_env)} {' '.join(build_env)} " if build_env else ""
            return tar, prefix + " ".join(argv)
        return [argv, build_env], action

    def _attach(self, cid):
        """Start the container with its output on a pipe we copy to self.out as it comes."""
        r, w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            started = containers.start(cid, attach=True, stdio=(null, w, w))
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            os.close(null)
        with open(r, "rb", buffering=0) as f:
            while chunk := f.read(65536):          # ends when the monitor exits
                self._raw(chunk)
        return started.wait_exit()

    def do_cmd(self, stage, ins):
        stage.cmd_set = True
        command = self._command(stage, ins)

        def action(cfg):
            cfg["config"]["Cmd"] = command
            return None, self._nop(ins)
        return [command], action

    def do_entrypoint(self, stage, ins):
        command = self._command(stage, ins)
        reset_cmd = not stage.cmd_set               # a new ENTRYPOINT drops the base image's CMD

        def action(cfg):
            cfg["config"]["Entrypoint"] = command
            if reset_cmd:
                cfg["config"]["Cmd"] = None
            return None, self._nop(ins)
        return [command, reset_cmd], action

    def do_shell(self, stage, ins):
        def action(cfg):
            cfg["config"]["Shell"] = list(ins.args)
            return None, self._nop(ins)
        return [ins.args], action

    def do_env(self, stage, ins):
        env = self._env(stage)                      # every pair sees the values from before
        pairs = [(dockerfile.expand(k, env, self.df.escape), dockerfile.expand(v, env, self.df.escape))
                 for k, v in ins.args]
        for key, _ in pairs:
            if not key or "=" in key:
                raise InvalidArgument(f"invalid environment variable name: {key!r}")

        def action(cfg):
            current = list(cfg["config"].get("Env") or [])
            for key, value in pairs:
                current = [e for e in current if e.partition("=")[0] != key] + [f"{key}={value}"]
            cfg["config"]["Env"] = current
            return None, self._nop(ins)
        return [pairs], action

    def do_label(self, stage, ins):
        env = self._env(stage)
        pairs = [(dockerfile.expand(k, env, self.df.escape), dockerfile.expand(v, env, self.df.escape))
                 for k, v in ins.args]

        def action(cfg):
            labels = dict(cfg["config"].get("Labels") or {})
            labels.update(pairs)
            cfg["config"]["Labels"] = labels
            return None, self._nop(ins)
        return [pairs], action

    def do_arg(self, stage, ins):
        env = self._env(stage)
        declared = []
        for word in ins.args:
            name, value = self._arg_value(word, env)
            if value is None and "=" not in word and self.meta_args.get(name) is not None:
                value = self.meta_args[name]         # `ARG X` in a stage takes the global default
            stage.args[name] = value
            env = self._env(stage)
            declared.append([name, value])

        def action(cfg):
            return None, self._nop(ins)
        return [declared], action

    def do_workdir(self, stage, ins):
        path = self._expand(stage, ins.args)
        current = stage.cfg.get("config", {}).get("WorkingDir") or "/"
        path = posixpath.normpath(posixpath.join(current, path))
        if path.startswith("//"):
            path = path[1:]

        def action(cfg):
            cfg["config"]["WorkingDir"] = path
            tree = stage.tree()
            parts = tree.resolve(path.strip("/").split("/"))
            found = tree.find(parts)
            if not parts or (found and stat.S_ISDIR(found[1].st_mode)):
                return None, self._nop(ins)
            layer = _LayerDir(tree)                   # docker makes the directory now
            try:
                layer.mkdirs(parts)
            except BaseException:
                layer.remove()
                raise
            return layer.pack(), self._nop(ins)
        return [path], action

    def do_user(self, stage, ins):
        user = self._expand(stage, ins.args)

        def action(cfg):
            cfg["config"]["User"] = user
            return None, self._nop(ins)
        return [user], action

    def do_expose(self, stage, ins):
        ports = []
        for word in ins.args:
            spec = self._expand(stage, word)
            m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", spec.lower())
            if not m or not 0 < int(m.group(1)) < 65536:
                raise InvalidArgument(f"invalid port specification: {spec!r}")
            last = int(m.group(2) or m.group(1))
            ports += [f"{p}/{m.group(3) or 'tcp'}" for p in range(int(m.group(1)), last + 1)]

        def action(cfg):
            exposed = dict(cfg["config"].get("ExposedPorts") or {})
            exposed.update({p: {} for p in ports})
            cfg["config"]["ExposedPorts"] = exposed
            return None, self._nop(ins)
        return [ports], action

    def do_volume(self, stage, ins):
        paths = [self._expand(stage, w) for w in ins.args]
        if any(not p.strip() for p in paths):
            raise InvalidArgument("VOLUME specified can not be an empty string")

        def action(cfg):
            volumes = dict(cfg["config"].get("Volumes") or {})
            volumes.update({p: {} for p in paths})
            cfg["config"]["Volumes"] = volumes
            return None, self._nop(ins)
        return [paths], action

    def do_stopsignal(self, stage, ins):
        signal_name = self._expand(stage, ins.args)
        containers.parse_signal(signal_name)        # refuses names the kernel does not have

        def action(cfg):
            cfg["config"]["StopSignal"] = signal_name
            return None, self._nop(ins)
        return [signal_name], action

    def do_maintainer(self, stage, ins):
        def action(cfg):
            cfg["author"] = ins.args
            return None, self._nop(ins)
        return [ins.args], action

    def do_copy(self, stage, ins, add=False):
        what = ins.cmd
        words = [self._expand(stage, w) for w in ins.args]
        sources, dest = words[:-1], words[-1]
        chown = self._expand(stage, ins.flags["chown"]) if "chown" in ins.flags else None
        chmod = None
        if "chmod" in ins.flags:
            if not re.fullmatch(r"[0-7]{3,4}", ins.flags["chmod"]):
                raise InvalidArgument(f"invalid --chmod={ins.flags['chmod']}: an octal mode such as 0755")
            chmod = int(ins.flags["chmod"], 8)
        tree, keep_owner, origin = self.context_tree, False, "context"
        if "from" in ins.flags:
            tree, origin = self._from_tree(stage, ins)
            keep_owner = chown is None             # docker keeps owners when copying between images
        if add:
            for src in sources:
                if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", src) or src.startswith("git@"):
                    raise InvalidArgument(f"{src} is a URL: ADD would download it, and minidocker "
                                          "builds offline. Put the file in the build context and COPY it")
        matches = []
        for src in sources:
            found = tree.glob(src, ins.line, what)
            if not found:
                raise InvalidArgument(f"file not found in build context or excluded by "
                                      f".dockerignore: stat {src}: file does not exist")
            matches += found
        if len(matches) > 1 and not dest.endswith("/"):
            raise InvalidArgument(f"When using {what} with more than one source file, the "
                                  "destination must be a directory and end with a /")
        digest = _content_digest(tree, matches, keep_owner)
        kind = "multi" if len(matches) > 1 else (
            "dir" if stat.S_ISDIR(tree.find(matches[0][1])[1].st_mode) else "file")

        def action(cfg):
            image_tree = stage.tree()
            owner = self._owner(chown, image_tree) if chown else (0, 0)
            workdir = cfg["config"].get("WorkingDir") or "/"
            target = posixpath.join(workdir, dest)
            dest_parts = image_tree.resolve(target.strip("/").split("/"))
            existing = image_tree.find(dest_parts)
            into_dir = (dest.endswith("/") or not dest_parts or
                        (existing is not None and stat.S_ISDIR(existing[1].st_mode)))
            layer = _LayerDir(image_tree, owner, chmod, keep_owner)
            try:
                for name, parts in matches:
                    path, st = tree.find(parts)
                    if stat.S_ISDIR(st.st_mode):   # a directory: its contents go into dest
                        layer.mkdirs(dest_parts)
                        for rel, p, s in tree.walk(parts):
                            layer.put(dest_parts + rel[len(parts):], p, s)
                        continue
                    stream = _archive_stream(path) if add and stat.S_ISREG(st.st_mode) else None
                    if stream is not None:         # ADD of a local tar: unpacked into dest
                        with stream:
                            self._unpack(stream, path, layer, dest_parts)
                        continue
                    layer.put(dest_parts + [name] if into_dir else dest_parts, path, st)
            except BaseException:
                layer.remove()
                raise
            created_by = f"/bin/sh -c #(nop) {what} {kind}:{digest.split(':')[1]} in {dest} "
            return layer.pack(), created_by
        return [ins.flags, sources, dest, origin, digest], action

    def do_add(self, stage, ins):
        return self.do_copy(stage, ins, add=True)

    def _unpack(self, stream, path, layer, dest_parts):
        import tarfile
        from minidocker.image import layers
        with tarfile.open(path, "r:*") as tf:       # whiteouts would delete image files
            for member in tf:
                base = member.name.rstrip("/").rsplit("/", 1)[-1]
                if base.startswith(WHITEOUT):
                    raise InvalidArgument(f"{os.path.basename(path)}: entry {member.name!r}: names "
                                          f"starting with {WHITEOUT!r} are whiteouts in a "
                                          "layer; ADD refuses them")
        layer.mkdirs(dest_parts)
        layers.extract(stream, layer.host(dest_parts))

    def _from_tree(self, stage, ins):
        """The files `COPY --from=X` reads: an earlier stage (by name or number) or an image."""
        ref = self._expand(stage, ins.flags["from"])
        for s in self.stages[:-1]:
            if (s.name and s.name == ref.lower()) or ref == str(s.index):
                return s.tree(), f"stage:{s.image_id or 'scratch'}"
        if ref.isdigit():
            raise InvalidArgument(f"invalid from flag value {ref}: refers to the current or a later "
                                  "build stage")
        try:
            image = store.get(ref)
        except NotFound:
            raise InvalidArgument(f"invalid from flag value {ref}: no such build stage or image "
                                  "(minidocker builds offline)") from None
        return _ImageTree(image.layer_dirs()), f"image:{image.id}"

    def _owner(self, spec, image_tree):
        """--chown=user[:group], names looked up in the image's /etc/passwd and
        /etc/group; with no group, the group id is the user id (as docker does)."""
        user, _, group = spec.partition(":")

        def lookup(name, db, what):
            if name.isdigit():
                return int(name)
            data = image_tree.read(db) or b""
            for line in data.decode("utf-8", "replace").splitlines():
                fields = line.split(":")
                if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
                    return int(fields[2])
            raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                                  f"can't find {'uid' if what == 'user' else 'gid'} for {what} "
                                  f"{name}: no such {what}: {name}")
        uid = lookup(user, "/etc/passwd", "user")
        return uid, lookup(group, "/etc/group", "group") if group else uid


def _human(size):
    """docker's HumanSize: decimal units, 4 significant digits ("2.048kB")."""
    units = ["B", "kB", "MB", "GB", "TB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{units[i]}"


# -- the command line ---------------------------------------------------------------------

def flags(p):
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]",
                   help="name the result (more than one -t: more names)")
    p.add_argument("-f", "--file", metavar="FILE", help="the Dockerfile (default: PATH/Dockerfile; - reads stdin)")
    p.add_argument("--no-cache", action="store_true", help="run every step, use no cached image")
    p.add_argument("--build-arg", action="append", default=[], metavar="NAME[=VALUE]",
                   help="a value for an ARG (NAME alone: from this environment)")
    p.add_argument("--target", metavar="STAGE", help="stop after this build stage")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("path", metavar="PATH", help="the build context: the directory COPY reads from")


def main(a) -> int:
    """`minidocker build`; a failed RUN's exit code is the command's, as in docker."""
    build_args = {}
    for item in a.build_arg:
        key, eq, value = item.partition("=")
        if eq:
            build_args[key] = value
        elif key in os.environ:                  # --build-arg NAME takes our environment's value
            build_args[key] = os.environ[key]
    try:
        build(a.path, a.file, a.tag, a.no_cache, build_args, a.target, a.quiet)
    except BuildFailed as e:
        sys.stdout.flush()
        sys.stderr.write(f"{e}\n")
        return e.code
    return 0
