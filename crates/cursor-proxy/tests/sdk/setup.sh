#!/usr/bin/env bash
# Creates the virtualenv the cursor-proxy end-to-end tests drive: the real `openai` and
# `anthropic` Python SDKs, pinned, from PyPI. Idempotent: a venv that already has the pinned
# versions is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
wanted="$(grep -c . "$here/requirements.txt")"
if [ -x "$venv/bin/python" ] &&
   [ "$("$venv/bin/python" -m pip freeze 2>/dev/null | grep -cxF -f "$here/requirements.txt")" = "$wanted" ]; then
    echo "sdk venv up to date: $venv"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" -c 'import openai, anthropic; print("sdk venv ready: openai", openai.__version__, "anthropic", anthropic.__version__)'
