"""What each Dockerfile instruction does to the image being built (RUN, COPY and ADD aside).

Layer: build (docker's classic builder, builder/dockerfile/dispatchers.go: one
dispatch function per instruction).  FROM picks the stage's starting image; ARG
declares a build variable; ENV, CMD, LABEL, EXPOSE and the others change only the
image's config, making a new image with no new layer; WORKDIR also makes its
directory if the image lacks it.  run.py does RUN, copy.py COPY and ADD.

Every handler is called as handler(build, stage, ins) before the cache is asked,
and returns (what the cache key needs besides the parent, action).  The action
runs only when the cache has no image for the key: it changes the new image's
config `cfg` and returns (layer tar or None, the history's "created_by").
Reference: docs.docker.com/reference/dockerfile
"""
import copy
import posixpath
import re
import stat

from minidocker.build import cache, dockerfile, layerdir, tree, words
from minidocker.engine import containers
from minidocker.errors import InvalidArgument, NotFound
from minidocker.image.changes import merge_env
from minidocker.image import store

SCRATCH_CONFIG = {"architecture": store.ARCH, "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


class Stage:
    """One build stage (FROM to the next FROM): its image so far, config, ARGs."""

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
            return tree.ImageTree([])
        return tree.ImageTree(store.get(self.image_id).layer_dirs())


# -- variables ------------------------------------------------------------------------------

def env_of(stage):
    """What $VAR sees: the stage's ARGs, overridden by the image's ENV."""
    env = {k: v for k, v in stage.args.items() if v is not None}
    for item in stage.cfg.get("config", {}).get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def expand(b, stage, word):
    return words.expand(word, env_of(stage), b.df.escape)


def arg_value(b, word, env):
    """NAME[=default] of an ARG -> (NAME, value): a --build-arg wins, then the default."""
    name, eq, default = word.partition("=")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InvalidArgument(f"invalid ARG name: {name!r}")
    if name in b.build_args:
        b.used_args.add(name)
        return name, b.build_args[name]
    if eq:
        return name, words.expand(default, env, b.df.escape)
    return name, None


def meta_arg(b, ins):
    """An ARG before the first FROM: FROM lines may use it, stages only if they redeclare it."""
    for word in ins.args:
        name, value = arg_value(b, word, {k: v for k, v in b.meta_args.items() if v is not None})
        b.meta_args[name] = value


def nop(ins):
    return f"/bin/sh -c #(nop)  {ins.original}"


def command(stage, ins):
    """The argv of RUN, CMD or ENTRYPOINT: the exec form as is, the shell form after SHELL."""
    if ins.json:
        return list(ins.args)
    return list(stage.cfg.get("config", {}).get("Shell") or dockerfile.DEFAULT_SHELL) + [ins.args]


# -- FROM -----------------------------------------------------------------------------------

def do_from(b, stage, ins):
    """The stage starts from an earlier stage (by name), scratch, or a stored image."""
    env = {k: v for k, v in b.meta_args.items() if v is not None}
    ref = words.expand(ins.args[0], env, b.df.escape)
    if len(ins.args) == 3:
        stage.name = ins.args[2].lower()
        if any(s.name == stage.name for s in b.stages[:-1]):
            raise InvalidArgument(f"duplicate stage name {stage.name!r}")
    platform = ins.flags.get("platform")
    if platform and words.expand(platform, env) not in (f"linux/{store.ARCH}", "linux"):
        raise InvalidArgument(f"platform {platform} is not linux/{store.ARCH}: minidocker "
                              "runs images of its own machine only")
    earlier = next((s for s in b.stages[:-1] if s.name and s.name == ref.lower()), None)
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
    stage.cfg.pop(cache.CACHE, None)


# -- the config-only instructions ---------------------------------------------------------

def _set(ins, field, value):
    """An action that sets one field of the config."""
    def action(cfg):
        cfg["config"][field] = value
        return None, nop(ins)
    return action


def do_cmd(b, stage, ins):
    stage.cmd_set = True
    argv = command(stage, ins)
    return [argv], _set(ins, "Cmd", argv)


def do_entrypoint(b, stage, ins):
    argv = command(stage, ins)
    reset_cmd = not stage.cmd_set               # a new ENTRYPOINT drops the base image's CMD

    def action(cfg):
        cfg["config"]["Entrypoint"] = argv
        if reset_cmd:
            cfg["config"]["Cmd"] = None
        return None, nop(ins)
    return [argv, reset_cmd], action


def do_shell(b, stage, ins):
    return [ins.args], _set(ins, "Shell", list(ins.args))


def _pairs(b, stage, ins):
    env = env_of(stage)                         # every pair sees the values from before
    return [(words.expand(k, env, b.df.escape), words.expand(v, env, b.df.escape))
            for k, v in ins.args]


def do_env(b, stage, ins):
    pairs = _pairs(b, stage, ins)
    for key, _ in pairs:
        if not key or "=" in key:
            raise InvalidArgument(f"invalid environment variable name: {key!r}")

    def action(cfg):
        cfg["config"]["Env"] = merge_env(cfg["config"].get("Env") or [],
                                         [f"{key}={value}" for key, value in pairs])
        return None, nop(ins)
    return [pairs], action


def do_label(b, stage, ins):
    pairs = _pairs(b, stage, ins)

    def action(cfg):
        labels = dict(cfg["config"].get("Labels") or {})
        labels.update(pairs)
        cfg["config"]["Labels"] = labels
        return None, nop(ins)
    return [pairs], action


def do_arg(b, stage, ins):
    env = env_of(stage)
    declared = []
    for word in ins.args:
        name, value = arg_value(b, word, env)
        if value is None and "=" not in word and b.meta_args.get(name) is not None:
            value = b.meta_args[name]          # `ARG X` in a stage takes the global default
        stage.args[name] = value
        env = env_of(stage)
        declared.append([name, value])

    def action(cfg):
        return None, nop(ins)
    return [declared], action


def do_workdir(b, stage, ins):
    path = expand(b, stage, ins.args)
    current = stage.cfg.get("config", {}).get("WorkingDir") or "/"
    path = posixpath.normpath(posixpath.join(current, path))
    if path.startswith("//"):
        path = path[1:]

    def action(cfg):
        cfg["config"]["WorkingDir"] = path
        image_tree = stage.tree()
        parts = image_tree.resolve(path.strip("/").split("/"))
        found = image_tree.find(parts)
        if not parts or (found and stat.S_ISDIR(found[1].st_mode)):
            return None, nop(ins)
        layer = layerdir.LayerDir(image_tree)   # docker makes the directory now
        try:
            layer.mkdirs(parts)
        except BaseException:
            layer.remove()
            raise
        return layer.pack(), nop(ins)
    return [path], action


def do_user(b, stage, ins):
    user = expand(b, stage, ins.args)
    return [user], _set(ins, "User", user)


def do_expose(b, stage, ins):
    ports = []
    for word in ins.args:
        spec = expand(b, stage, word)
        m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", spec.lower())
        if not m or not 0 < int(m.group(1)) < 65536:
            raise InvalidArgument(f"invalid port specification: {spec!r}")
        last = int(m.group(2) or m.group(1))
        ports += [f"{p}/{m.group(3) or 'tcp'}" for p in range(int(m.group(1)), last + 1)]

    def action(cfg):
        exposed = dict(cfg["config"].get("ExposedPorts") or {})
        exposed.update({p: {} for p in ports})
        cfg["config"]["ExposedPorts"] = exposed
        return None, nop(ins)
    return [ports], action


def do_volume(b, stage, ins):
    paths = [expand(b, stage, w) for w in ins.args]
    if any(not p.strip() for p in paths):
        raise InvalidArgument("VOLUME specified can not be an empty string")

    def action(cfg):
        volumes = dict(cfg["config"].get("Volumes") or {})
        volumes.update({p: {} for p in paths})
        cfg["config"]["Volumes"] = volumes
        return None, nop(ins)
    return [paths], action


def do_stopsignal(b, stage, ins):
    signal_name = expand(b, stage, ins.args)
    containers.parse_signal(signal_name)        # refuses names the kernel does not have
    return [signal_name], _set(ins, "StopSignal", signal_name)


def do_maintainer(b, stage, ins):
    def action(cfg):
        cfg["author"] = ins.args
        return None, nop(ins)
    return [ins.args], action
