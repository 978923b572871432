#!/usr/bin/env bash
# Builds the execution environment's base image localhost/kubenode-ee-base:<hash>
# (+ :latest), named by execution-environment.yml, without pulling from any
# registry: Debian 12 (bookworm) from debootstrap, with what ansible-builder's
# build scripts need: python3 and pip (the definition sets skip_pip_install, since
# Debian's python3 has no ensurepip), bash, ca-certificates, dpkg for bindep, and
# ee-pkgmgr, which turns the scripts' dnf commands into apt-get. Where images can
# be pulled, a public base image replaces this one (execution-environment.yml).
# <hash> covers this script, ee-pkgmgr and testbed/image-lib.sh (the build steps it
# shares with the node image), so an unchanged image is reused at once.
# Prints the image name on stdout (last line). Needs root (debootstrap, chroot).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/../testbed/containers.conf}
# shellcheck source=testbed/image-lib.sh
source "$HERE/../testbed/image-lib.sh"
NAME=localhost/kubenode-ee-base

IMAGE="$NAME:$(image_tag "$HERE"/{build-base-image.sh,ee-pkgmgr} "$HERE/../testbed/image-lib.sh")"
if image_cached "$IMAGE"; then exit 0; fi

# The Debian mirror the host's apt uses; EE_DEBIAN_MIRROR overrides.
MIRROR=${EE_DEBIAN_MIRROR:-$(python3 "$HERE/../testbed/debian-mirror")}

image_workdir kubenode-ee-base-rootfs
ROOT=$WORK

image_log "debootstrap from $MIRROR"
quiet debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
  bookworm "$ROOT" "$MIRROR"
install -m 0755 "$HERE/ee-pkgmgr" "$ROOT/usr/local/sbin/ee-pkgmgr"
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin

image_import "$ROOT" "$IMAGE" '["/bin/bash"]'
image_publish "$IMAGE"
