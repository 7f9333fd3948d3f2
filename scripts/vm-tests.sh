#!/bin/bash
# vm-tests.sh - run pytest inside the classroom VM, where /sys/fs/cgroup is pure cgroup v2.
#
#   scripts/vm-tests.sh tests/test_cgroups.py -q
#
# The host here is cgroup v1 ("hybrid"); the VM lets the same tests run against v2.
# The repository is shared into the guest at /mnt/share (9p) and pytest runs there
# with the guest's python3 (3.11, pytest only: tests must need nothing else).
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

cmd="cd /mnt/share && PYTHONPATH=/mnt/share PYTHONDONTWRITEBYTECODE=1"
cmd+=" python3 -m pytest -p no:cacheprovider $(printf '%q ' "$@")"
SHARE="$repo" exec "$vm/run-in-vm.sh" "$cmd"
