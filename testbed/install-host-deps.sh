#!/usr/bin/env bash
# Installs the Debian packages the test bed and the test suite need on the HOST
# (idempotent, quiet). containerd runs inside the node image; on the host, its
# binary only checks in the unit tests that edited config files load.
set -euo pipefail

PACKAGES=(
  podman runc          # node containers (runc: crun fails here, see containers.conf)
  debootstrap          # builds the node image without pulling from any registry
  gpgv debian-archive-keyring   # fetch-deb: checks other suites' signatures (node images 1.7, 2.1)
  docker-registry      # the mirror registry (distribution 2.8) running on the host
  apache2-utils        # htpasswd -B for the registry's basic auth
  openssl curl ca-certificates python3   # certs, health checks, CA HTTP server
  openssh-client       # ssh and ssh-keygen: the test bed's nodes are reached over SSH
  python3-venv         # scripts/venv.sh on a plain Debian python3
  containerd           # `containerd config dump` in tests/unit (config.toml edits load)
  shellcheck           # ansible-test sanity checks the shell scripts with it
)

missing=()
for p in "${PACKAGES[@]}"; do
  # "install ok installed" only when the package is fully installed
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are absent or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit)" ]]; then
  apt-get update -qq
fi
echo "install-host-deps: installing ${missing[*]}" >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
