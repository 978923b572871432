#!/usr/bin/env bash
# Prepare the controller: .venv from requirements-test.txt (prints nothing when up to
# date), and this checkout linked as the collection kubenode.registry_mirror under
# .cache/collections, where ansible.cfg and the tests look for it.
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
link="$repo/.cache/collections/ansible_collections/kubenode/registry_mirror"
if [[ ! -L "$link" ]]; then
    mkdir -p "$(dirname "$link")"
    ln -s ../../../.. "$link"
fi
export PATH="$venv/bin:$PATH"
