"""bench.py - how long minidocker takes to start and exec a container, next to real engines.

Why a script and not a test: speed on a shared 2-core VM is noisy, so a timed test
would either flake or assert nothing.  This script measures instead, and prints each
peer's median as a ratio of minidocker's ("docker run --rm busybox true: 315 ms
(1.05x minidocker)"), so a slowdown shows up as a changed ratio, not a red CI.

Method (like hyperfine -N): time.perf_counter() around subprocess.run(argv) -- no
shell -- with stdout to /dev/null.  Within a group, WARMUP untimed rounds, then RUNS
timed rounds, each round one run of every row (so load that comes and goes on a
shared VM hits every row alike); min, median and max in ms.  Rows whose engine is
not installed are skipped with a note.

  rows    floor:  python start, `minidocker --version`, unshare(1), nsenter(1)
          run:    minidocker / docker / podman `run --rm busybox true`, runc and crun
                  `run` of an OCI bundle (see runc(8), the OCI runtime spec)
          exec:   minidocker / docker / podman `exec <running> true`
          build:  cold (--no-cache) and cached build of a 3-step Dockerfile; only
                  once `minidocker build` exists (see bench_build)
  profile where minidocker's time goes, from `strace -f -ttt` timestamps of
          execve(2), clone(2) and process exits (strace(1) --seccomp-bpf keeps the
          tracing cost to those calls), and `python -X importtime` of the CLI and
          the monitor (what Python start costs before any container work)

Usage: .venv/bin/python bench/bench.py [--runs 30] [--warmup 3] [--json out.json]
Needs root.  Reads ../shared/peers (containers.conf for podman) when it is there.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS = os.environ.get("MINIDOCKER_BENCH_PEERS",
                       os.path.normpath(os.path.join(REPO, "..", "shared", "peers")))
NAME = f"minidocker-bench-{os.getpid()}"  # container and tag names: runs at once do not collide
DOCKERFILE = 'FROM busybox\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n'
GROUPS = ("floor", "run", "exec", "build")
RUN = "minidocker run --rm busybox true"
EXEC = "minidocker exec <running> true"


class Failed(Exception):
    """A command of a row exited non-zero (or hung): the row is reported as failed."""


def sh(argv, env=None, timeout=120, check=False, **kw):
    """Run a set-up or clean-up command (untimed); return the CompletedProcess."""
    try:
        p = subprocess.run(argv, env=env, timeout=timeout, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, **kw)
    except subprocess.TimeoutExpired:
        p = subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")
    if check and p.returncode != 0:
        raise Failed(f"`{' '.join(argv)}` exited {p.returncode}: {_first_line(p.stderr)}")
    return p


def _first_line(text):
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no message)"


def time_once(argv, env=None, on_stdout=None):
    """Run argv once (no shell, stdout to /dev/null); return the wall time in ms."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, timeout=120, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE if on_stdout else subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        raise Failed("timed out after 120 s") from None
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise Failed(f"exit {p.returncode}: {_first_line(p.stderr.decode(errors='replace'))}")
    if on_stdout:
        on_stdout(p.stdout.decode(errors="replace"))
    return dt


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows = []                    # dicts, in the order measured
        self.cleanups = []                # callables, run last-first
        self.tmp = tempfile.mkdtemp(prefix="minidocker-bench-")
        self.notes = []
        self.pending = []                 # rows queued for measure()

    # -- rows ---------------------------------------------------------------------------

    def row(self, group, name, argv, env=None, ref=None, on_stdout=None):
        """Queue one row for measure(); ref is the minidocker row it is compared with."""
        self.pending.append({"group": group, "name": name, "argv": argv, "ref": ref,
                             "env": env, "on_stdout": on_stdout})

    def measure(self, runs, warmup):
        """Time the queued rows: warm-up runs, then `runs` rounds of one run per row.

        Rounds (not all runs of one row, then the next) so that a load change on a
        shared VM lands on every row alike and the ratios stay fair; --sequential
        does it hyperfine's way instead.
        """
        rows, self.pending = self.pending, []
        for r in rows:
            r["times"] = []
        order = ([[r] * (warmup + runs) for r in rows] if self.args.sequential
                 else [rows] * warmup + [rows] * runs)
        seen = {id(r): 0 for r in rows}
        for batch in order:
            for r in batch:
                if "status" in r:         # failed before
                    continue
                try:
                    dt = time_once(r["argv"], r["env"], r["on_stdout"])
                except (Failed, OSError) as e:
                    r.update(status="failed", note=str(e))
                    continue
                seen[id(r)] += 1
                if seen[id(r)] > warmup:
                    r["times"].append(dt)
        for r in rows:
            times = r.pop("times")
            r.pop("env", None), r.pop("on_stdout", None)
            if r.get("status") == "skipped":
                print(f"  {r['name']}: skipped: {r['note']}", flush=True)
            elif r.get("status") == "failed":
                print(f"  {r['name']}: FAILED: {r['note']}", flush=True)
            else:
                r.update(status="ok", runs=len(times), times_ms=[round(t, 2) for t in times],
                         min_ms=round(min(times), 2), median_ms=round(statistics.median(times), 2),
                         max_ms=round(max(times), 2))
                print(f"  {r['name']}: {r['median_ms']:.1f} ms (min {r['min_ms']:.1f}, "
                      f"max {r['max_ms']:.1f}, {len(times)} runs)", flush=True)
            self.rows.append(r)

    def skip(self, group, name, note):
        """Queue a row that cannot run here, with the reason."""
        self.pending.append({"group": group, "name": name, "status": "skipped", "note": note})

    # -- minidocker ---------------------------------------------------------------------

    def minidocker_setup(self):
        """compileall (PYTHONDONTWRITEBYTECODE=1 here), a fresh MINIDOCKER_ROOT, base images."""
        sh([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "minidocker")], check=True)
        script = os.path.join(os.path.dirname(sys.executable), "minidocker")
        # The installed console script, as students type it; else python -m minidocker.
        self.md = [script] if os.path.exists(script) else [sys.executable, "-m", "minidocker"]
        self.md_root = os.path.join(self.tmp, "root")
        self.md_env = dict(os.environ, MINIDOCKER_ROOT=self.md_root,
                           PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.cleanups.append(self.minidocker_cleanup)
        sh(self.md + ["setup-images"], env=self.md_env, check=True, timeout=300)

    def minidocker_cleanup(self):
        sh(self.md + ["rm", "-f", NAME + "-exec"], env=self.md_env)
        mounts = [ln.split()[1] for ln in open("/proc/self/mounts") if self.md_root in ln]
        if mounts:
            self.notes.append(f"LEAK: mounts left under {self.md_root}: {mounts}")

    # -- peers --------------------------------------------------------------------------

    def busybox_tar(self):
        """minidocker's own offline busybox rootfs tar, for peers that lack a busybox image."""
        path = os.path.join(self.tmp, "busybox-rootfs.tar")
        if not os.path.exists(path):
            sys.path.insert(0, REPO)
            from minidocker.image import baseimages
            baseimages.busybox_tar(path)
        return path

    def engine(self, tool):
        """docker or podman, ready to run busybox; else None and a note why not."""
        if not shutil.which(tool):
            return None, f"{tool} is not installed"
        env = dict(os.environ)
        conf = os.path.join(PEERS, "containers.conf")
        if tool == "podman" and "CONTAINERS_CONF" not in env and os.path.exists(conf):
            env["CONTAINERS_CONF"] = conf    # runc, no hybrid-cgroup crun (peers README)
        if sh([tool, "version"], env=env, timeout=30).returncode != 0:
            return None, f"`{tool} version` fails (is the daemon up? see {PEERS}/scripts/setup.sh)"
        if sh([tool, "image", "inspect", "busybox:latest"], env=env).returncode != 0:
            p = sh([tool, "import", "--change", 'CMD ["sh"]', self.busybox_tar(), "busybox:latest"],
                   env=env, timeout=120)
            if p.returncode != 0:
                return None, f"no busybox:latest and import failed: {_first_line(p.stderr)}"
            self.notes.append(f"{tool}: imported busybox:latest from minidocker's busybox rootfs")
        return env, None

    def bundle(self):
        """An OCI bundle (runc spec over a busybox rootfs, args [true]) for runc and crun."""
        path = os.path.join(self.tmp, "bundle")
        if not os.path.exists(os.path.join(path, "config.json")):
            os.makedirs(os.path.join(path, "rootfs"))
            sh(["tar", "-C", os.path.join(path, "rootfs"), "-xf", self.busybox_tar()], check=True)
            sh(["runc", "spec"], cwd=path, check=True)
            with open(os.path.join(path, "config.json")) as f:
                spec = json.load(f)
            spec["process"].update(terminal=False, args=["true"])
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(spec, f, indent=1)
        return path

    def v1only_ns(self):
        """crun 1.8 refuses the hybrid cgroup layout, so it runs in a mount namespace without
        /sys/fs/cgroup/unified (peers README, section 9).  Returns the nsenter prefix."""
        if not os.path.ismount("/sys/fs/cgroup/unified"):
            return []
        ns_dir = os.path.join(self.tmp, "ns")
        ns = os.path.join(ns_dir, "v1only")
        os.makedirs(ns_dir)
        open(ns, "w").close()
        # A namespace file may only be bound on a private mount: make ns_dir one.
        sh(["mount", "--bind", ns_dir, ns_dir], check=True)
        self.cleanups.append(lambda: sh(["umount", ns_dir]))
        sh(["mount", "--make-private", ns_dir], check=True)
        sh(["unshare", f"--mount={ns}", "--propagation", "private",
            "umount", "/sys/fs/cgroup/unified"], check=True)
        self.cleanups.append(lambda: sh(["umount", ns]))
        return ["nsenter", f"--mount={ns}"]

    # -- the groups ---------------------------------------------------------------------

    def bench_floor(self):
        print("floor (no engine):", flush=True)
        self.row("floor", "python -I -S -c pass (bare interpreter)",
                 [sys.executable, "-I", "-S", "-c", "pass"], ref=RUN)
        self.row("floor", "python -c pass (with site, .pth files)", [sys.executable, "-c", "pass"],
                 ref=RUN)
        self.row("floor", "minidocker --version (CLI start)", self.md + ["--version"],
                 env=self.md_env, ref=RUN)
        if shutil.which("unshare"):
            self.row("floor", "unshare --fork --pid --mount --uts --ipc --net true",
                     ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "true"],
                     ref=RUN)
        else:
            self.skip("floor", "unshare", "unshare is not installed")
        self.measure(self.args.runs, self.args.warmup)

    def bench_run(self):
        print("run (start to exit of `true`):", flush=True)
        self.row("run", RUN, self.md + ["run", "--rm", "busybox", "true"], env=self.md_env)
        self.row("run", "minidocker run --rm --security-opt seccomp=unconfined busybox true",
                 self.md + ["run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true"],
                 env=self.md_env, ref=RUN)    # the cost of the seccomp filter: the difference
        for tool in ("docker", "podman"):
            env, why = self.engine(tool)
            name = f"{tool} run --rm busybox true"
            if why:
                self.skip("run", name, why)
            else:
                self.row("run", name, [tool, "run", "--rm", "busybox", "true"], env=env, ref=RUN)
        deletes = []
        for tool in ("runc", "crun"):
            name = f"{tool} run (OCI bundle)"
            missing = [t for t in sorted({tool, "runc"}) if not shutil.which(t)]
            if missing:                   # the bundle's config.json comes from `runc spec`
                self.skip("run", name, f"{' and '.join(missing)} not installed")
                continue
            try:
                prefix = self.v1only_ns() if tool == "crun" else []
                bundle = self.bundle()
            except (Failed, OSError) as e:
                self.skip("run", name, str(e))
                continue
            if prefix:
                name = "nsenter --mount=v1only " + name
                self.row("floor", "nsenter --mount=v1only true (control for crun)",
                         prefix + ["true"], ref=RUN)
            cid = f"{NAME}-{tool}"        # `run` deletes it at exit, so one id serves all runs
            deletes.append(prefix + [tool, "delete", "-f", cid])
            sh(deletes[-1])
            self.row("run", name, prefix + [tool, "run", "-b", bundle, cid], ref=RUN)
        try:
            self.measure(self.args.runs, self.args.warmup)
        finally:
            for argv in deletes:
                sh(argv)

    def bench_exec(self):
        print("exec (into a running busybox sleep):", flush=True)
        cname = NAME + "-exec"
        removes = []
        try:
            for tool in ("minidocker", "docker", "podman"):
                env, why = (self.md_env, None) if tool == "minidocker" else self.engine(tool)
                cmd = self.md if tool == "minidocker" else [tool]
                name = EXEC if tool == "minidocker" else f"{tool} exec <running> true"
                if why:
                    self.skip("exec", name, why)
                    continue
                rm = cmd + ["rm", "-f"] + (["-t", "0"] if tool == "podman" else []) + [cname]
                sh(rm, env=env)
                removes.append((rm, env))
                p = sh(cmd + ["run", "-d", "--name", cname, "busybox", "sleep", "1000000"], env=env)
                if p.returncode != 0:
                    self.skip("exec", name, f"could not start a container: {_first_line(p.stderr)}")
                    continue
                self.row("exec", name, cmd + ["exec", cname, "true"], env=env,
                         ref=None if tool == "minidocker" else EXEC)
            self.measure(self.args.runs, self.args.warmup)
        finally:
            for rm, env in removes:
                sh(rm, env=env)

    def bench_build(self):
        """The build hook: cold (--no-cache) and cached build of a 3-step Dockerfile.
        Skips with a note while `minidocker build` does not exist; assumes docker's flags."""
        print("build (FROM busybox / RUN echo > file / CMD):", flush=True)
        if sh(self.md + ["build", "--help"], env=self.md_env).returncode != 0:
            self.skip("build", "minidocker build",
                      "`minidocker build` does not exist yet (hook: bench_build in bench/bench.py)")
            self.measure(0, 0)
            return
        ctx = os.path.join(self.tmp, "ctx")
        os.makedirs(ctx, exist_ok=True)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(DOCKERFILE)
        tag = NAME + "-build"
        engines = [("minidocker", self.md, self.md_env)]
        for tool in ("docker", "podman"):
            env, why = self.engine(tool)
            if why:
                self.skip("build", f"{tool} build", why)
            else:
                engines.append((tool, [tool], env))
        made = {tool: set() for tool, _, _ in engines}   # image ids printed by -q
        for tool, cmd, env in engines:
            for kind, flags in (("cold", ["--no-cache"]), ("cached", [])):
                self.row("build", f"{tool} build, {kind}",
                         cmd + ["build", "-q"] + flags + ["-t", tag, ctx], env=env,
                         ref=None if tool == "minidocker" else f"minidocker build, {kind}",
                         on_stdout=made[tool].add)
        try:
            self.measure(self.args.build_runs, 1)
        finally:
            for tool, cmd, env in engines[1:]:   # minidocker's images go with its temp root
                ids = {w for out in made[tool] for w in out.split()}
                sh(cmd + ["rmi", "-f", tag] + sorted(ids), env=env)

    # -- where minidocker's time goes ---------------------------------------------------

    def profile(self):
        if self.args.profile_runs <= 0:
            return
        print(f"profile (strace -f -ttt, median of {self.args.profile_runs}):", flush=True)
        if not shutil.which("strace"):
            self.profiles = {"note": "strace is not installed"}
            print("  skipped: strace is not installed", flush=True)
            return
        self.profiles = {}
        cname = NAME + "-exec"
        try:
            self.profiles["run"] = self._profile(self.md + ["run", "--rm", "busybox", "true"])
            sh(self.md + ["run", "-d", "--name", cname, "busybox", "sleep", "1000000"],
               env=self.md_env, check=True)
            self.profiles["exec"] = self._profile(self.md + ["exec", cname, "true"])
        except Failed as e:
            self.notes.append(f"profile incomplete: {e}")
        finally:
            sh(self.md + ["rm", "-f", cname], env=self.md_env)
        for what, modules in (("CLI imports", "minidocker.cli.main, minidocker.engine.containers"),
                              ("monitor imports", "minidocker.shim")):
            self.profiles[what] = self._importtime(modules)
        for what, phases in self.profiles.items():
            text = " | ".join(f"{k} {v:.1f} ms" for k, v in phases.items())
            print(f"  minidocker {what}: {text}", flush=True)

    def _profile(self, argv):
        out = os.path.join(self.tmp, "strace.txt")
        base = ["strace", "-f", "-ttt", "-o", out, "-e", "trace=execve,clone,clone3,fork,vfork"]
        probe = ["strace", "--seccomp-bpf", "-f", "-e", "trace=execve", "-o", "/dev/null", "true"]
        seccomp = sh(probe).returncode == 0   # strace >= 5.3: stop only at the traced calls
        samples = []
        for _ in range(self.args.profile_runs):
            sh(base[:1] + (["--seccomp-bpf"] if seccomp else []) + base[1:] + argv,
               env=self.md_env, check=True)
            with open(out) as f:
                samples.append(phases(f.read()))
        keys = [k for k in samples[0] if all(k in s for s in samples)]
        return {k: round(statistics.median(s[k] for s in samples), 1) for k in keys}

    def _importtime(self, modules):
        """`python -X importtime` (ms, median of the profile runs): site, the modules as a
        whole, and the five imports that cost most on their own."""
        argv = [sys.executable, "-X", "importtime", "-c", f"import {modules}"]
        runs = []
        for _ in range(self.args.profile_runs):
            own, total = {}, {}
            for line in sh(argv, env=self.md_env).stderr.splitlines():
                parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
                if len(parts) == 3 and parts[0].isdigit():
                    own[parts[2]] = int(parts[0]) / 1000
                    total[parts[2]] = int(parts[1]) / 1000
            top = {m: total[m] for m in ["site"] + modules.split(", ") if m in total}
            runs.append((top, own))
        out = {k: statistics.median(r[0].get(k, 0) for r in runs) for k in runs[0][0]}
        own = {m: statistics.median(r[1].get(m, 0) for r in runs) for m in runs[0][1]}
        for m in sorted(own, key=own.get, reverse=True)[:5]:
            out[f"{m} alone"] = own[m]
        return {k: round(v, 1) for k, v in out.items()}

    # -- report -------------------------------------------------------------------------

    def ratios(self):
        by_name = {r["name"]: r for r in self.rows if r["status"] == "ok"}
        for r in self.rows:
            ref = by_name.get(r.get("ref"))
            if r["status"] == "ok" and ref:
                r["ratio"] = round(r["median_ms"] / ref["median_ms"], 3)

    def report(self):
        self.ratios()
        print()
        print(f"{'row':<58} {'min':>8} {'median':>8} {'max':>8}  vs minidocker")
        for r in self.rows:
            if r["status"] != "ok":
                print(f"{r['name']:<58} {r['status']}: {r['note']}")
                continue
            ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
            print(f"{r['name']:<58} {r['min_ms']:8.1f} {r['median_ms']:8.1f} "
                  f"{r['max_ms']:8.1f}  {ratio}")
        print()
        for r in self.rows:
            if "ratio" in r and r["group"] != "floor":   # the floor is no peer
                print(f"{r['name']}: {r['median_ms']:.0f} ms ({r['ratio']:.2f}x minidocker)")
        for note in self.notes:
            print("note:", note)
        if self.args.markdown:
            self.markdown()

    def markdown(self):
        """The table again, as Markdown for bench/README.md."""
        print("\n| row | min ms | median ms | max ms | vs minidocker |\n|---|---:|---:|---:|---:|")
        for r in self.rows:
            if r["status"] != "ok":
                print(f"| `{r['name']}` | {r['status']}: {r['note']} | | | |")
                continue
            ratio = (f"{r['ratio']:.2f}x" if "ratio" in r
                     else "(reference)" if r["group"] != "floor" else "")
            print(f"| `{r['name']}` | {r['min_ms']:.1f} | {r['median_ms']:.1f} "
                  f"| {r['max_ms']:.1f} | {ratio} |")
        for what, phases in (getattr(self, "profiles", None) or {}).items():
            if isinstance(phases, dict):
                print(f"\nprofile, minidocker {what}: " +
                      " | ".join(f"{k} {v:.0f} ms" for k, v in phases.items()))

    def results(self):
        host = {"kernel": platform.release(), "cpus": os.cpu_count(),
                "python": sys.version.split()[0], "versions": versions(self.md, self.md_env)}
        return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "host": host,
                "load_average_at_end": os.getloadavg(), "runs": self.args.runs,
                "warmup": self.args.warmup, "sequential": self.args.sequential, "rows": self.rows,
                "profile": getattr(self, "profiles", None), "notes": self.notes}

    def cleanup(self):
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as e:        # keep going: the other clean-ups still matter
                self.notes.append(f"clean-up failed: {e}")
        if not any("LEAK" in n for n in self.notes):
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"left {self.tmp} in place (see the notes above)", file=sys.stderr)


def phases(trace: str) -> dict:
    """Split one `strace -f -ttt` log of `minidocker run|exec ... true` into phases (ms).

    Landmarks: the CLI's execve (first line), the monitor's execve (argv has
    minidocker.shim), its first fork (it daemonizes once Python and its imports are
    up), the execve of `true` in the container, that process's exit, the CLI's exit,
    and the last exit of any traced process (the monitor cleaning up after --rm).
    """
    execs, forks, exits = [], {}, {}
    cli = None
    for line in trace.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        pid, t, rest = int(parts[0]), float(parts[1]), parts[2]
        if rest.startswith("execve(") and "= -1" not in rest:
            execs.append((pid, t, rest))
            cli = pid if cli is None else cli
        elif rest.startswith(("clone(", "clone3(", "fork(", "vfork(")):
            forks.setdefault(pid, t)
        elif rest.startswith("+++ exited") or rest.startswith("+++ killed"):
            exits[pid] = t
    if not execs:
        return {}
    t_cli = execs[0][1]
    shim = next(((p, t) for p, t, a in execs if "minidocker.shim" in a), None)
    cmd = next(((p, t) for p, t, a in execs if '["true"]' in a), None)
    out = {}
    if shim and cmd:
        out["CLI start+create"] = shim[1] - t_cli
        if shim[0] in forks:
            out["monitor python start"] = forks[shim[0]] - shim[1]
            out["monitor: spec, cgroup, ns, overlay"] = cmd[1] - forks[shim[0]]
        else:
            out["monitor start"] = cmd[1] - shim[1]
    elif cmd:
        out["CLI start to exec of true"] = cmd[1] - t_cli
    if cmd and cmd[0] in exits:
        out["true runs"] = exits[cmd[0]] - cmd[1]
        if cli in exits:
            out["true exits to CLI exit"] = exits[cli] - exits[cmd[0]]
    if cli in exits:
        out["total (traced)"] = exits[cli] - t_cli
        out["after the CLI exits"] = max(exits.values()) - exits[cli]
    return {k: v * 1000 for k, v in out.items()}


def versions(md, md_env):
    """One line per engine, for the record."""
    out = {}
    probes = {"minidocker": (md + ["--version"], md_env),
              "docker": (["docker", "version", "-f", "client {{.Client.Version}}, "
                          "dockerd {{.Server.Version}}"], None),
              "podman": (["podman", "--version"], None), "runc": (["runc", "--version"], None),
              "crun": (["crun", "--version"], None)}
    for name, (argv, env) in probes.items():
        if shutil.which(argv[0]) or os.path.exists(argv[0]):
            p = sh(argv, env=env, timeout=30)
            out[name] = (p.stdout.splitlines() or [""])[0].strip() if p.returncode == 0 else "?"
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30, help="timed runs per row (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--build-runs", type=int, default=10, help="timed runs per build row")
    p.add_argument("--profile-runs", type=int, default=5, help="strace runs (0: no profile)")
    p.add_argument("--sequential", action="store_true",
                   help="all runs of a row, then the next row (default: rounds over the rows)")
    p.add_argument("--only", action="append", choices=GROUPS, help="only these groups")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (containers need root)")
    groups = a.only or GROUPS
    b = Bench(a)
    try:
        print(f"minidocker bench, {a.runs} runs after {a.warmup} warm-up runs per row, "
              f"{datetime.date.today()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
              "load average %.2f %.2f %.2f" % os.getloadavg(), flush=True)
        b.minidocker_setup()
        for g in GROUPS:
            if g in groups:
                getattr(b, "bench_" + g)()
        if "run" in groups or "exec" in groups:
            b.profile()
        b.report()
        if a.json:
            with open(a.json, "w") as f:
                json.dump(b.results(), f, indent=1)
                f.write("\n")
            print(f"wrote {a.json}")
    except Failed as e:
        sys.exit(f"bench.py: {e}")
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
