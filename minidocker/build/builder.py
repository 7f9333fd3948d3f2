"""The builder: a Dockerfile and a directory in, an image out (`docker build`).

Layer: build (what docker's classic builder, builder/dockerfile in moby, does).
It works like docker before BuildKit: one instruction at a time, each one
making a new image on top of the last:

  RUN         a real container from the current image (containers.create, start
              attached so its output streams, wait); its overlay upper dir, the
              files the command changed, becomes a layer (run.py);
  COPY, ADD   files from the context written into a scratch dir laid out as a
              layer, then packed (copy.py, layerdir.py);  WORKDIR makes its
              directory the same way;
  the rest    (ENV, CMD, LABEL, ...) change the image config only: a new image
              with no new layer (instructions.py).

Every image of a step is kept, untagged, as the cache (cache.py): its config
carries the step's key, a digest of (parent image, instruction, and for COPY/ADD
the content of the files copied).  The next build with the same parent and the
same instruction finds it and skips the step (" ---> Using cache").  Change one
file that a COPY copies and that COPY, and every step after it, runs again.
Only when every step succeeded does a tag (-t) move to the result.

This module is the driver: it splits the Dockerfile into stages, runs the steps
in order, prints the progress (progress.py), commits each step's image.
The modules of the build, in reading order: dockerfile.py and words.py (the
language), context.py (the context and .dockerignore), tree.py (reading an
image's files without mounting it), this file, instructions.py, run.py,
copy.py, layerdir.py, cache.py.
References: docs.docker.com/reference/dockerfile, /reference/cli/docker/buildx/build
(the classic builder's output), /build/concepts/context (.dockerignore).
"""
import copy
import os
import sys
import time

from minidocker import fmt
from minidocker.build import cache, context, dockerfile, instructions, run as run_step
from minidocker.build import copy as copy_step
from minidocker.build.progress import BuildFailed, Progress, Result, Step
from minidocker.errors import MinidockerError, NotFound
from minidocker.image import store

__all__ = ["build", "BuildFailed", "Step", "Result", "flags", "main"]

# instruction -> handler(build, stage, ins) -> (cache key parts, action); FROM is apart
HANDLERS = {
    "RUN": run_step.do_run, "COPY": copy_step.do_copy, "ADD": copy_step.do_add,
    "CMD": instructions.do_cmd, "ENTRYPOINT": instructions.do_entrypoint,
    "SHELL": instructions.do_shell, "ENV": instructions.do_env, "LABEL": instructions.do_label,
    "ARG": instructions.do_arg, "WORKDIR": instructions.do_workdir, "USER": instructions.do_user,
    "EXPOSE": instructions.do_expose, "VOLUME": instructions.do_volume,
    "STOPSIGNAL": instructions.do_stopsignal, "MAINTAINER": instructions.do_maintainer,
}


def build(context: str, dockerfile_path: str | None = None, tags=(), no_cache=False,
          build_args=None, target=None, quiet=False, out=None) -> Result:
    """docker build: returns the Result (image id, each step's timing and cache hit)."""
    return _Builder(context, dockerfile_path, tags, no_cache, build_args or {}, target,
                    quiet, out or sys.stdout).run()


class _Builder:
    """One build: what the instruction handlers read (df, stages, meta_args, build_args,
    used_args, context_tree, progress) and the loop over the steps."""

    def __init__(self, context_dir, dockerfile_path, tags, no_cache, build_args, target, quiet, out):
        text, self.context_tree = context.open_context(context_dir, dockerfile_path)
        self.df = dockerfile.parse(text)
        self.tags = [store.normalize(t) for t in tags]
        self.no_cache, self.build_args, self.target = no_cache, dict(build_args), target
        self.progress, self.out, self.quiet = Progress(out, quiet), out, quiet
        self.used_args, self.meta_args, self.stages, self.steps = set(), {}, [], []
        self.cache = {}

    def say(self, text):
        self.progress.say(text)

    def _split_stages(self):
        """(ARGs before the first FROM, [[FROM, its instructions...], ...] up to --target)."""
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
        return meta, stages

    def run(self) -> Result:
        meta, stages = self._split_stages()
        total = len(meta) + sum(len(s) for s in stages)
        for warning in self.df.warnings:
            self.say(warning)
        self.say(f"Reading build context  {context.size_text(self.context_tree.size())}")
        if not self.no_cache:
            self.cache = cache.index()
        number = 0
        for ins in meta:
            number += 1
            self.say(f"Step {number}/{total} : {ins.original}")
            self._guard(ins, lambda: instructions.meta_arg(self, ins))
            self.steps.append(Step(number, ins.original, ins.line))
        for stage_instructions in stages:
            stage = instructions.Stage(len(self.stages), None)
            self.stages.append(stage)
            for ins in stage_instructions:
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
            self._guard(ins, lambda: instructions.do_from(self, stage, ins))
        else:
            key_parts, action = self._guard(ins, lambda: HANDLERS[ins.cmd](self, stage, ins))
            key = cache.key(stage.parent_key, ins.cmd, key_parts)
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
                self._guard(ins, lambda: self._commit(stage, key, action))
        if stage.image_id:
            self.say(f" ---> {stage.image_id.split(':')[1][:12]}")
        step.seconds, step.image_id = time.monotonic() - started, stage.image_id
        self.steps.append(step)

    def _commit(self, stage, key, action):
        """Do the step and store its image (a layer, or only a new config)."""
        cfg = copy.deepcopy(stage.cfg)
        cfg.pop(cache.CACHE, None)
        cfg["created"] = fmt.now()
        cfg.setdefault("config", {})
        layer, created_by = action(cfg)
        cfg[cache.CACHE] = key
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
