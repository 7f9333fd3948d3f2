#!/bin/bash
# lab.sh - set up (scripts/setup.sh), then open JupyterLab on the chapters in notebooks/.
#
#   sudo scripts/lab.sh                 http://127.0.0.1:8888/lab?token=...
#   sudo PORT=9000 scripts/lab.sh       another port
#
# It runs as root (containers need it), so it listens on 127.0.0.1 only and always with
# a random token: from a laptop, forward the port over SSH (see README.md). The token is
# handed to Jupyter in JUPYTER_TOKEN, not on the command line, so `ps` does not show it.
# Ctrl-C stops the lab; containers a chapter started stay until its last cell
# (lab.cleanup()) or `minidocker rm -f` removes them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${PORT:-8888}"
case "$port" in
    '' | *[!0-9]*) echo "lab.sh: PORT must be a number, not '$port'" >&2; exit 2 ;;
esac

"$repo/scripts/setup.sh"

token="$("$repo/.venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))')"
url="http://127.0.0.1:$port/lab?token=$token"

# `!minidocker ...` in cells and in Lab's terminals find the venv's command.
export PATH="$repo/.venv/bin:$PATH"
export JUPYTER_TOKEN="$token"

cat <<EOF

  JupyterLab on the chapters: $url

  On this machine: open the address above.
  From a laptop:   ssh -L $port:127.0.0.1:$port USER@THIS-VM   then open the same address there.
  Stop with Ctrl-C.

EOF

# JupyterLab asks on first start whether to fetch "official Jupyter news" (a pop-up, even with
# --LabApp.news_url=None). Settings overrides answer for the user: overrides.json in the app's
# settings dir (<venv>/share/jupyter/lab/settings), read at every start.
settings="$repo/.venv/share/jupyter/lab/settings"
mkdir -p "$settings"
cat >"$settings/overrides.json" <<'JSON'
{
  "@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false",
    "checkForUpdates": false
  }
}
JSON

cd "$repo/notebooks"
# port_retries=0: fail if the port is taken, rather than serve on another than the one printed.
# No news feed and no update check: the lab talks to nothing outside this machine.
exec "$repo/.venv/bin/jupyter" lab \
    --allow-root \
    --no-browser \
    --LabApp.news_url=None \
    --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
    --ServerApp.ip=127.0.0.1 \
    --ServerApp.port="$port" \
    --ServerApp.port_retries=0 \
    --ServerApp.root_dir="$repo/notebooks"
