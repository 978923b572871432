#!/usr/bin/env bash
# The execution environment of execution-environment.yml, from this checkout.
#   bash scripts/ee.sh create   the collection tarball (ansible-galaxy collection build, into
#                               ee/collection/), then ansible-builder's build context in
#                               .cache/ee/context (Containerfile + _build/); no container runtime
#   bash scripts/ee.sh build    create, the base image (ee/build-base-image.sh), then the image
#                               with podman: localhost/kubenode-ee:latest (EE_IMAGE overrides)
# Prints the Containerfile's path (create) or the image name (build) last. Nothing is pulled
# from any registry: the base image is local and the build runs with --pull=never. RUN steps
# use the host's network (pip and apt reach their indexes as the host does) and the host's CA
# bundle (PIP_CERT, else /etc/ssl/certs/ca-certificates.crt), so a TLS-intercepting proxy the
# host trusts works. EE_BUILD_ARGS adds arguments to `podman build`.
# Needs root for `build` (debootstrap, podman), as the test bed does.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
source scripts/venv.sh
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/testbed/containers.conf}
context=.cache/ee/context
image=${EE_IMAGE:-localhost/kubenode-ee:latest}

collection_tarball() (
    out=$(mktemp -d /tmp/kubenode-ee-collection.XXXXXX)
    trap 'rm -rf "$out"' EXIT
    ansible-galaxy collection build --force --output-path "$out" . >/dev/null
    mkdir -p ee/collection
    mv "$out"/kubenode-registry_mirror-*.tar.gz ee/collection/kubenode-registry_mirror.tar.gz
)

create() {
    collection_tarball
    rm -rf "$context"
    ansible-builder create --file execution-environment.yml --context "$context" >/dev/null
    echo "$context/Containerfile"
}

build() {
    collection_tarball
    echo "ee.sh: base image $(bash ee/build-base-image.sh | tail -n 1)" >&2
    local cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
    local args="--pull=never --network host"
    if [[ -f $cert ]]; then
        args+=" --volume $(printf %q "$(readlink -f "$cert")"):/etc/ssl/certs/ca-certificates.crt:ro"
    fi
    args+=" ${EE_BUILD_ARGS:-}"
    rm -rf "$context"
    echo "ee.sh: ansible-builder build (podman) $image" >&2
    local log
    log=$(mktemp /tmp/kubenode-ee-build.XXXXXX)
    if ! ansible-builder build --file execution-environment.yml --context "$context" \
            --container-runtime podman --tag "$image" --extra-build-cli-args "$args" -v 3 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    echo "$image"
}

case ${1:-} in
    create) create ;;
    build) build ;;
    *) echo "usage: scripts/ee.sh create|build" >&2; exit 2 ;;
esac
