#!/usr/bin/env bash
# Run ansible-test sanity and units on a copy of the collection placed at
# ansible_collections/kubenode/registry_mirror, as ansible-test requires.
# Usage: scripts/ansible-test.sh [sanity|units]...   (default: both)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/scripts/venv.sh"

scratch=${KUBENODE_SCRATCH:-/tmp/kubenode-ansible-test}
home="$scratch/home"
copy="$scratch/ansible_collections/kubenode/registry_mirror"
rm -rf "$copy"
mkdir -p "$copy" "$home/.ansible/test/cache"
# Tracked files plus new ones not ignored: what a commit of this tree would hold.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [[ -f "$f" ]] && cp --parents -- "$f" "$copy"; done)

# --venv fetches a pip bootstrap script from a host that is not reachable here; ansible-test
# uses a cached copy first. This stand-in bootstraps pip with ensurepip, in a subprocess so
# that the machine's pip configuration stays in force, then installs what it was asked to.
pip_version=$(python - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
)
cat > "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<'PY'
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
PY

cd "$copy"
for command in "${@:-sanity units}"; do
    for step in $command; do
        echo "== ansible-test $step"
        case $step in
            sanity) HOME="$home" ansible-test sanity --venv --python 3.11 ;;
            units) HOME="$home" ansible-test units --venv --python 3.11 ;;
            *) echo "unknown step: $step" >&2; exit 2 ;;
        esac
    done
done
