#!/usr/bin/env bash
# The unit tests against the lowest and the newest tomlkit that requirements.txt accepts.
# constraints.txt pins one release for every environment; this step installs the two ends of
# the accepted range unpinned, next to .venv's other packages (PYTHONPATH comes first), so
# that a tomlkit release which changes what the config.toml edit writes fails here, by name.
# Usage: bash scripts/tomlkit-range.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
source "$repo/scripts/venv.sh"

range=$(grep -E '^tomlkit[<>=]' requirements.txt)   # e.g. tomlkit>=0.15.1,<0.16
lowest=$(sed -E 's/.*>=([^,]+).*/\1/' <<<"$range")
[[ $lowest != "$range" ]] || { echo "tomlkit-range: no lower bound in requirements.txt ($range)" >&2; exit 2; }
scratch=$(mktemp -d /tmp/kubenode-tomlkit.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

failed=()
for end in lowest newest; do
    spec=$range
    [[ $end == lowest ]] && spec="tomlkit==$lowest"
    # PIP_CONSTRAINT would pin it back: this step is about the release the pins do not name.
    PIP_CONSTRAINT='' pip install --quiet --disable-pip-version-check --no-deps --target "$scratch/$end" "$spec"
    version=$(PYTHONPATH="$scratch/$end" python -c 'import tomlkit; print(tomlkit.__version__)')
    echo "== unit tests with tomlkit $version (the $end release $range accepts)"
    if ! PYTHONPATH="$scratch/$end" pytest -q -p no:cacheprovider tests/unit; then
        failed+=("tomlkit $version ($end)")
    fi
done
if ((${#failed[@]})); then
    printf 'tomlkit-range: the unit tests failed with %s\n' "${failed[@]}" >&2
    exit 1
fi
