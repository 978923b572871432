#!/usr/bin/env bash
# Create or refresh .venv with requirements-test.txt; prints nothing when up to date.
# Usage: source scripts/venv.sh   (then .venv/bin is first on PATH)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
stamp="$venv/.requirements.sha256"
want=$(cat "$repo/requirements-test.txt" "$repo/requirements.txt" | sha256sum | cut -c1-64)
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "== creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo/requirements-test.txt"
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
