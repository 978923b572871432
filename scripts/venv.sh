#!/usr/bin/env bash
# Prepare the controller: .venv from requirements-test.txt at constraints.txt's pins (prints
# nothing when up to date), and this checkout linked as the collection kubenode.registry_mirror under
# .cache/collections, where ansible.cfg and the tests look for it.
# Usage: source scripts/venv.sh   (then .venv/bin is first on PATH)
# Sourced into the caller's shell: it sets no shell options and returns on failure.
_kubenode_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_kubenode_venv="$_kubenode_repo/.venv"
_kubenode_want=$(cat "$_kubenode_repo"/requirements-test.txt "$_kubenode_repo"/requirements.txt "$_kubenode_repo"/constraints.txt |
    sha256sum | cut -c1-64)
if [[ ! -x "$_kubenode_venv/bin/python" || "$(cat "$_kubenode_venv/.requirements.sha256" 2>/dev/null)" != "$_kubenode_want" ]]; then
    echo "== creating $_kubenode_venv"
    python3 -m venv "$_kubenode_venv" &&
        "$_kubenode_venv/bin/pip" install --quiet --disable-pip-version-check -r "$_kubenode_repo/requirements-test.txt" -c "$_kubenode_repo/constraints.txt" &&
        echo "$_kubenode_want" > "$_kubenode_venv/.requirements.sha256" || return 1
fi
_kubenode_link="$_kubenode_repo/.cache/collections/ansible_collections/kubenode/registry_mirror"
if [[ ! -L "$_kubenode_link" ]]; then
    mkdir -p "$(dirname "$_kubenode_link")" && ln -s ../../../.. "$_kubenode_link" || return 1
fi
export PATH="$_kubenode_venv/bin:$PATH"
unset _kubenode_repo _kubenode_venv _kubenode_want _kubenode_link
