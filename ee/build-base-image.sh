#!/usr/bin/env bash
# Builds the execution environment's base image localhost/kubenode-ee-base:<hash>
# (+ :latest), named by execution-environment.yml, without pulling from any
# registry: Debian 12 (bookworm) from debootstrap, with what ansible-builder's
# build scripts need: python3 and pip (the definition sets skip_pip_install, since
# Debian's python3 has no ensurepip), bash, ca-certificates, dpkg for bindep, and
# ee-pkgmgr, which turns the scripts' dnf commands into apt-get. Where images can
# be pulled, a public base image replaces this one (execution-environment.yml).
# <hash> covers this script and ee-pkgmgr, so an unchanged image is reused at once.
# Prints the image name on stdout (last line). Needs root (debootstrap, chroot).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/../testbed/containers.conf}
NAME=localhost/kubenode-ee-base

TAG=$(cd "$HERE" && sha256sum build-base-image.sh ee-pkgmgr | sha256sum | cut -c1-12)
IMAGE="$NAME:$TAG"

if podman image exists "$IMAGE"; then
  podman tag "$IMAGE" "$NAME:latest"
  echo "$IMAGE"
  exit 0
fi

# The Debian mirror the host's apt uses; EE_DEBIAN_MIRROR overrides.
MIRROR=${EE_DEBIAN_MIRROR:-$(python3 "$(dirname "${BASH_SOURCE[0]}")/../testbed/debian-mirror")}

ROOT=$(mktemp -d /tmp/kubenode-ee-base-rootfs.XXXXXX)
LOG=$ROOT.log
trap 'rm -rf --one-file-system "$ROOT" "$LOG"' EXIT
chmod 755 "$ROOT"   # mktemp makes it 0700; apt's _apt user must traverse it

quiet() { "$@" >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; return 1; }; }

echo "build-base-image: debootstrap from $MIRROR" >&2
quiet debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
  bookworm "$ROOT" "$MIRROR"
install -m 0755 "$HERE/ee-pkgmgr" "$ROOT/usr/local/sbin/ee-pkgmgr"
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin

echo "build-base-image: importing $IMAGE" >&2
tar -C "$ROOT" -c . | podman import --quiet --change 'CMD=["/bin/bash"]' - "$IMAGE" >/dev/null
podman tag "$IMAGE" "$NAME:latest"
# Drop older builds; podman refuses (ignored) while an image or container still uses one.
podman images --format '{{.Repository}}:{{.Tag}}' "$NAME" | grep -vxF -e "$IMAGE" -e "$NAME:latest" |
  xargs -r podman rmi >/dev/null 2>&1 || true
echo "$IMAGE"
