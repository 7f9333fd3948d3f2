#!/bin/bash
# vm-tests.sh - run pytest inside the classroom VM, where /sys/fs/cgroup is pure cgroup v2.
#
#   scripts/vm-tests.sh tests/test_cgroups.py -q
#   scripts/vm-tests.sh --chapters "04 05 06"     the chapters, checked by nbval in the guest
#
# The host here is cgroup v1 ("hybrid"); the VM lets the same tests run against v2.
# The repository is shared into the guest at /mnt/share (9p) and pytest runs there
# with the guest's python3 (3.11, pytest only: tests must need nothing else).
# The chapters need more (nbval, a kernel, matplotlib, ipywidgets) and the guest has no
# internet: the host downloads their wheels into the share (<repo>/.venv/vm-wheels, once) and
# installs them from there (pip install --no-index --find-links --target .venv/vm-site).
# The exit status is pytest's (124 timeout, 125 VM died: see ../shared/vm/README.md).
#
# Environment: MINIDOCKER_VM   directory with make-vm.sh and run-in-vm.sh
#                              (default: <repo>/../shared/vm)
#              VM_TIMEOUT, VM_MEM, VM_CPUS ...  passed on to run-in-vm.sh
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vm="${MINIDOCKER_VM:-$repo/../shared/vm}"
build_log=/tmp/makevm.log      # where a build started by hand writes, ending with "rc=N"

[ -x "$vm/run-in-vm.sh" ] || { echo "vm-tests.sh: no $vm/run-in-vm.sh (set MINIDOCKER_VM)" >&2; exit 2; }

# If someone is already building the image, wait for that build instead of racing it.
while [ -f "$build_log" ] && ! grep -q '^rc=' "$build_log" && pgrep -f 'make-vm\.sh' >/dev/null; do
    sleep 5
done
if [ -f "$build_log" ] && grep -q '^rc=[1-9]' "$build_log"; then
    echo "vm-tests.sh: note: the last build in $build_log failed; building again" >&2
fi

# Idempotent: a no-op (well under a second) once the image is up to date; builds it in CI.
"$vm/make-vm.sh" >&2 || { echo "vm-tests.sh: make-vm.sh failed" >&2; exit 2; }

if [ "${1:-}" != --chapters ]; then
    cmd="cd /mnt/share && PYTHONPATH=/mnt/share PYTHONDONTWRITEBYTECODE=1"
    cmd+=" python3 -m pytest -p no:cacheprovider $(printf '%q ' "$@")"
    SHARE="$repo" exec "$vm/run-in-vm.sh" "$cmd"
fi

# --- the chapters --------------------------------------------------------------------
read -r -a numbers <<<"${2:-04 05 06}"
chapters=()
for n in "${numbers[@]}"; do
    f=("$repo"/notebooks/"$n"-*.ipynb)
    [ -f "${f[0]}" ] || { echo "vm-tests.sh: no chapter $n in notebooks/" >&2; exit 2; }
    chapters+=("notebooks/${f[0]##*/}")
done
wheels="$repo/.venv/vm-wheels"                 # .venv/ is not in git; the guest sees it in the share
site="$repo/.venv/vm-site"
need="nbval ipykernel ipywidgets matplotlib pytest"
if [ ! -f "$site/.complete" ] || [ "$(cat "$site/.complete")" != "$need" ]; then
    rm -rf "$wheels" "$site"
    mkdir -p "$wheels"
    # Downloaded by the host (the guest has no internet), installed from those files only.
    # Installed here, not by pip in the guest: under TCG that took over 11 minutes (measured);
    # the guest's Python is the same 3.11 on the same Debian 12, so the wheels fit it.
    "$repo/.venv/bin/python" -m pip download -q --disable-pip-version-check -d "$wheels" $need >&2 \
        && "$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-index \
            --find-links "$wheels" --target "$site" $need >&2 \
        || { echo "vm-tests.sh: could not make the chapters' packages in $site" >&2; exit 2; }
    echo "$need" >"$site/.complete"
fi
# In the guest: those packages first on sys.path, a `minidocker` command for `!minidocker`
# cells (what pip makes for an installed minidocker), the chapters' own lab roots under /tmp
# (notebooks/sanitize.cfg knows the mktemp shape), nbval as in test.sh's step 2.
# NOTE: /tmp in the guest is not on a block device, so chapter 06's disk cells fail there
# (stats.disk_of gives None; oflag=direct is refused). Binding a disk directory over /tmp
# made every cell error (untested why): the lab roots need another home, see the report.
cmd="set -e; mkdir -p /tmp/bin"
cmd+=" && printf '#!/bin/sh\\nexec python3 -m minidocker \"\$@\"\\n' >/tmp/bin/minidocker && chmod +x /tmp/bin/minidocker"
cmd+=" && cd /mnt/share && export PATH=/tmp/bin:\$PATH PYTHONPATH=/mnt/share:/mnt/share/.venv/vm-site PYTHONDONTWRITEBYTECODE=1"
cmd+=" && python3 -c 'import matplotlib.font_manager'"     # its font cache, built once, says so on stderr
cmd+=" && MINIDOCKER_LAB_ROOTS=\$(mktemp -d /tmp/tmp.XXXXXXXXXX) python3 -m pytest -p no:cacheprovider --nbval ${chapters[*]}"
cmd+=" --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout 600 --nbval-current-env -q"
SHARE="$repo" exec "$vm/run-in-vm.sh" "$cmd"
