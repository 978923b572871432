# shellcheck shell=bash
# Sourced by testbed/build-node-image.sh and ee/build-base-image.sh: images built
# locally (no registry), named NAME:<hash of their inputs> (+ NAME:latest), so an
# unchanged image is reused at once. Messages go to stderr prefixed with the
# calling script's name; an image name goes to stdout.

IMAGE_LOG_PREFIX=$(basename "$0" .sh)
image_log() { echo "$IMAGE_LOG_PREFIX: $*" >&2; }

# image_tag FILE...: 12 hex digits of a hash of the files' contents and base names
# (not their directories: the same checkout elsewhere gives the same tag).
image_tag() {
  local file
  for file; do echo "${file##*/} $(sha256sum <"$file")"; done | sha256sum | cut -c1-12
}

# image_reuse IMAGE: if IMAGE exists, points NAME:latest at it (it may point at
# another build) and prints it.
image_reuse() {
  podman image exists "$1" || return 1
  podman tag "$1" "${1%:*}:latest"
  echo "$1"
}

# image_cached IMAGE: image_reuse, waiting first for a concurrent build of the
# same NAME. When it returns 1 the caller holds the build lock until it exits.
image_cached() {
  image_reuse "$1" && return 0
  exec 8>"/tmp/kubenode-image-build.$(basename "${1%:*}").lock"
  flock 8
  image_reuse "$1"
}

# image_workdir PREFIX: a fresh directory $WORK (/tmp/PREFIX.XXXXXX, mode 0755 so
# apt's _apt user can traverse a root file system there) and a log $LOG, both
# removed when the script exits.
image_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  LOG=$WORK.log
  trap 'rm -rf --one-file-system "$WORK" "$LOG"' EXIT
  chmod 755 "$WORK"
}

# quiet COMMAND...: runs a noisy command with its output in $LOG; shows the tail
# only on failure.
quiet() { "$@" >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; return 1; }; }

# image_import ROOTFS IMAGE CMD_JSON: imports a root file system as IMAGE.
image_import() {
  image_log "importing $2"
  tar -C "$1" -c . | podman import --quiet --change "CMD=$3" - "$2" >/dev/null
}

# image_publish IMAGE: points NAME:latest at the new IMAGE, drops older builds of
# NAME (podman refuses, ignored, while a container or another image still uses
# one) and prints IMAGE.
image_publish() {
  local name=${1%:*}
  podman tag "$1" "$name:latest"
  podman images --format '{{.Repository}}:{{.Tag}}' "$name" | grep -vxF -e "$1" -e "$name:latest" |
    xargs -r podman rmi >/dev/null 2>&1 || true
  echo "$1"
}
