#!/bin/bash
# setup.sh - install what minidocker needs on a Debian or Ubuntu machine, idempotently.
#
#   sudo scripts/setup.sh
#
# 1. apt packages (below), only those missing; `apt-get update` only if one is missing;
# 2. a virtualenv at <repo>/.venv, reused if it is there, with `pip install -e '.[lab,test]'`
#    (skipped while pyproject.toml is unchanged since the last install);
# 3. the offline base images (busybox, hello-world) in MINIDOCKER_ROOT (default
#    /var/lib/minidocker) through `minidocker setup-images`.
# A second run does nothing and takes about a second. scripts/lab.sh and scripts/test.sh
# run it first.
#
# Environment: MINIDOCKER_ROOT   where the base images go (default /var/lib/minidocker)
#              PYTHON            the interpreter for a new venv (default /usr/bin/python3)
set -euo pipefail

# Debian/Ubuntu packages, one per line, and why each is here.
APT_PACKAGES=(
    python3         # the engine is Python 3.11+, standard library only
    python3-venv    # ensurepip, to make .venv without touching the system's Python
    python3-dev     # headers, should a dependency of the lab have no wheel for this machine
    busybox-static  # /bin/busybox, statically linked: the offline busybox base image
    iproute2        # `ip`, to look at network namespaces and veth pairs from the host
    procps          # ps, pgrep, free: the chapters and tests look at host processes
    psmisc          # pstree, fuser: the process-tree chapter, and finding who holds a mount
    docker-registry # a real Registry HTTP API v2 server on 127.0.0.1 for push/pull (tests, chapter 08)
    skopeo          # a peer registry client: tests check it reads what we push, and the reverse
    openssl         # signs the test token server's JWTs (registry token auth)
    chromium        # headless browser: tests/test_lab.py opens a chapter in lab.sh's JupyterLab and screenshots it
)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
stamp="$venv/.minidocker-installed"      # what the last `pip install` was made from

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- 0. where we are ---------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "minidocker needs Linux (namespaces, cgroups, overlayfs); this is $(uname -s)"
[ "$(id -u)" = 0 ] || die "needs root (apt-get, and containers need root): run  sudo $0"

# --- 1. apt packages ---------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    say "apt: all ${#APT_PACKAGES[@]} packages present (${APT_PACKAGES[*]})"
else
    command -v apt-get >/dev/null || die "no apt-get: install by hand: ${missing[*]} (minidocker's scripts know Debian and Ubuntu)"
    say "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh cloud VM is often still running unattended-upgrades: wait for its lock.
    apt_opts=(-q -o DPkg::Lock::Timeout=300)
    apt-get "${apt_opts[@]}" update >/dev/null
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
    say "apt: installed ${missing[*]}"
fi

# --- 2. the virtualenv ---------------------------------------------------------
version_ok='import sys; sys.exit(sys.version_info < (3, 11))'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$version_ok" 2>/dev/null; then
    say "venv: reusing $venv (Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
else
    py="${PYTHON:-}"
    if [ -z "$py" ]; then
        if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py="$(command -v python3 || true)"; fi
    fi
    [ -n "$py" ] || die "no python3 found"
    "$py" -c "$version_ok" ||
        die "minidocker needs Python 3.11 or newer; $py is $("$py" -V 2>&1) (Debian 12 and Ubuntu 24.04 have it)"
    if [ -e "$venv" ]; then
        # Only ever remove a directory that is a virtualenv (it has pyvenv.cfg).
        [ -f "$venv/pyvenv.cfg" ] || die "$venv exists and is not a virtualenv: move it away"
        say "venv: $venv is broken or too old: making it again"
        rm -rf "$venv"
    fi
    "$py" -m venv "$venv"
    say "venv: created $venv with $py ($("$py" -V 2>&1))"
fi

# Install when pyproject.toml (or the interpreter) changed since the last install, or when
# `minidocker` in the venv is not this checkout (an editable install points here).
want="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1) $("$venv/bin/python" -V 2>&1)"
where="$("$venv/bin/python" -I -c 'import minidocker, os; print(os.path.dirname(os.path.dirname(os.path.abspath(minidocker.__file__))))' 2>/dev/null || true)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ "$where" = "$repo" ] && [ -x "$venv/bin/minidocker" ]; then
    say "pip: up to date (pyproject.toml unchanged since the last install)"
else
    log="$venv/pip-install.log"
    say "pip: installing -e '.[lab,test]' (a minute or two the first time; log: $log)"
    t0=$SECONDS
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
            -e "$repo[lab,test]" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "pip install failed (the whole log: $log)"
    fi
    echo "$want" >"$stamp"
    say "pip: installed minidocker (editable) with the lab and test extras in $((SECONDS - t0)) s"
fi

# Compiled once here: where PYTHONDONTWRITEBYTECODE is set (as on some CI machines) every
# `minidocker` and every container monitor would otherwise compile the package again (~50 ms).
"$venv/bin/python" -m compileall -q "$repo/minidocker" >/dev/null || true

# --- 3. base images ----------------------------------------------------------
if "$venv/bin/minidocker" setup-images --help >/dev/null 2>&1; then
    say "images: in ${MINIDOCKER_ROOT:-/var/lib/minidocker}"
    "$venv/bin/minidocker" setup-images | sed 's/^/setup: images: /'
else
    echo "setup: warning: this minidocker has no 'setup-images' command yet: base images not installed" >&2
fi
say "done"
