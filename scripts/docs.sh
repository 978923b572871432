#!/usr/bin/env bash
# Build the collection's docsite as the Ansible docs site would, offline: the collection tarball
# (ansible-galaxy collection build), installed into a scratch collections path; `antsibull-docs
# sphinx-init` for the Sphinx project; then antsibull-docs and sphinx-build -W, so any warning (a broken
# reference, a bad directive in a guide or in a plugin's docs) fails. The option reference is the plugins'
# and the role's own docs; the guides are docs/docsite/rst (extra-docs.yml).
# There is no internet here, so intersphinx fetches nothing: the mapping is emptied, and references to the
# Ansible docs that plugin docs make (ansible_collections.ansible.builtin..., ansible_devel) resolve from the
# small offline inventory this script writes.
# Usage: bash scripts/docs.sh   (writes .cache/docsite; the site is .cache/docsite/build/html/index.html)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
source scripts/venv.sh

out="$repo/.cache/docsite"
rm -rf "$out"
mkdir -p "$out/dist" "$out/collections" "$out/site"
chmod 700 "$out/site"  # antsibull-docs wants its directories writable by their owner only

version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
ansible-galaxy collection build --force --output-path "$out/dist" . >/dev/null
ansible-galaxy collection install --force -p "$out/collections" \
    "$out/dist/kubenode-registry_mirror-$version.tar.gz" >/dev/null 2>&1
export ANSIBLE_COLLECTIONS_PATH="$out/collections"

antsibull-docs sphinx-init --use-current --squash-hierarchy --dest-dir "$out/site" \
    --project kubenode.registry_mirror --title "kubenode.registry_mirror $version" \
    kubenode.registry_mirror >/dev/null
# Offline: no intersphinx download (each would fail, and -W makes that an error). The labels of the
# Ansible docs that the generated plugin pages link to come from a local inventory instead; a new such
# link fails the build, naming the label, until it is added here.
python - "$out/site/ansible_devel.inv" <<'PY'
import sys
import zlib

LABELS = {  # label: (page and anchor under the Ansible docs, title)
    "action_plugins": ("plugins/action.html#action-plugins", "Action plugins"),
    "ansible_collections.ansible.builtin.file_module": (
        "collections/ansible/builtin/file_module.html#ansible-collections-ansible-builtin-file-module",
        "ansible.builtin.file module"),
    "ansible_configuration_settings": (
        "reference_appendices/config.html#ansible-configuration-settings", "Ansible Configuration Settings"),
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values", "Return Values"),
}
entries = "".join(f"{label} std:label -1 {uri} {title}\n" for label, (uri, title) in sorted(LABELS.items()))
with open(sys.argv[1], "wb") as inventory:
    inventory.write(b"# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
                    b"# The remainder of this file is compressed using zlib.\n")
    inventory.write(zlib.compress(entries.encode()))
PY
cat >>"$out/site/conf.py" <<'PY'

# scripts/docs.sh: offline, nothing is fetched; the Ansible docs' labels come from a local inventory.
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '../ansible_devel.inv'),
}
PY

bash "$out/site/build.sh"
echo "docsite: $out/site/build/html/index.html"
