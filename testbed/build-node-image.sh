#!/usr/bin/env bash
# Builds the node image localhost/kubenode-node:<tag> (+ :latest) without pulling
# from any registry: Debian bookworm via debootstrap, systemd as PID 1,
# containerd 1.6 from Debian with the stock Platform9 (PMK) config.toml, user
# pf9 and the PMK agent stand-ins from testbed/node/, and sshd for the
# operator's account ops (no setfacl, as on a minimal Debian node; see
# testbed/README.md).
# <tag> is a hash of this script, image-lib.sh and testbed/node/*, so an
# unchanged image is reused in a second or so. Prints the image name on stdout
# (last line).
# Needs root (debootstrap, chroot).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"
# shellcheck source=testbed/image-lib.sh
source "$HERE/image-lib.sh"
NAME=localhost/kubenode-node

IMAGE="$NAME:$(image_tag "$HERE" build-node-image.sh image-lib.sh node/*)"
if image_cached "$IMAGE"; then exit 0; fi

# The Debian mirror the host's apt uses; TESTBED_DEBIAN_MIRROR overrides.
MIRROR=${TESTBED_DEBIAN_MIRROR:-$(python3 "$HERE/debian-mirror")}

image_workdir kubenode-node-rootfs
ROOT=$WORK
in_root() { chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive "$@"; }

image_log "debootstrap from $MIRROR"
quiet debootstrap --variant=minbase --include=systemd,systemd-sysv,python3,dbus,sudo \
  bookworm "$ROOT" "$MIRROR"

cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
image_log "installing containerd and openssh-server"
quiet in_root apt-get update
quiet in_root apt-get install -y --no-install-recommends \
  containerd ca-certificates procps iproute2 openssh-server

# Debian's containerd unit must keep Restart=always (PMK's has it too).
grep -qx 'Restart=always' "$ROOT/lib/systemd/system/containerd.service" ||
  { echo "build-node-image: Debian's containerd.service lacks Restart=always" >&2; exit 1; }

# The stock PMK /etc/containerd/config.toml, verbatim (legacy registry.mirrors).
install -m 0644 "$HERE/node/config.toml" "$ROOT/etc/containerd/config.toml"

# PMK's user and group: pf9 (system user), primary group pf9group, home
# /opt/pf9/home. Group pf9 is the test bed's own (its fake dirs below), not PMK's.
in_root groupadd --system pf9group
in_root groupadd --system pf9
in_root useradd --system --gid pf9group --groups pf9 --create-home \
  --home-dir /opt/pf9/home --shell /bin/bash pf9
install -m 0440 "$HERE/node/pf9-nodelet.sudoers" "$ROOT/etc/sudoers.d/pf9-nodelet"
quiet in_root visudo -cf /etc/sudoers.d/pf9-nodelet

# The operator's account: ops, passwordless sudo, key-only SSH (no password set,
# the account not locked). sshd starts only once testbed-ssh-enable, run when the
# node is created, has given it a 127.0.0.1 port and ops an authorized key.
in_root useradd --create-home --user-group --shell /bin/bash ops
in_root usermod -p '*' ops
install -m 0440 "$HERE/node/ops.sudoers" "$ROOT/etc/sudoers.d/ops"
quiet in_root visudo -cf /etc/sudoers.d/ops
install -m 0644 "$HERE/node/sshd-testbed.conf" "$ROOT/etc/ssh/sshd_config.d/testbed.conf"
install -D -m 0644 "$HERE/node/ssh-listen.conf" "$ROOT/etc/systemd/system/ssh.service.d/testbed.conf"
install -m 0755 "$HERE/node/testbed-ssh-enable" "$ROOT/usr/local/sbin/testbed-ssh-enable"
rm -f "$ROOT"/etc/ssh/ssh_host_*   # each node makes its own (testbed-ssh-enable)
quiet in_root systemctl enable ssh.service
# A minimal Debian node has no setfacl: Ansible's become to an unprivileged user
# then needs pipelining; the collection must not (testbed/README.md).
if in_root sh -c 'command -v setfacl' >/dev/null; then
  echo "build-node-image: the node has setfacl (package acl); it must not" >&2; exit 1
fi

# The agent stand-ins.
for f in pf9-fake-event pf9-fake-daemon pf9-fake-hostagent; do
  install -D -m 0755 "$HERE/node/$f" "$ROOT/opt/pf9-fake/bin/$f"
done
install -D -m 0755 "$HERE/node/nodeletd" "$ROOT/opt/pf9/nodelet/nodeletd"
install -m 0644 "$HERE"/node/pf9-*.service "$ROOT/etc/systemd/system/"
install -D -m 0644 "$HERE/node/containerd-events.conf" \
  "$ROOT/etc/systemd/system/containerd.service.d/pf9-fake-events.conf"
# kube_status lives in /var/opt/pf9, written by nodeletd as pf9.
install -d -m 0755 "$ROOT/var/opt/pf9"
in_root chown pf9:pf9group /var/opt/pf9
# One event log, writable by root and pf9, and the fault-switch directory
# (setgid dirs keep group pf9).
install -d -m 2775 -g 0 "$ROOT/var/log/pf9-fake" "$ROOT/etc/pf9-fake"
in_root chgrp pf9 /var/log/pf9-fake /etc/pf9-fake
install -m 0664 /dev/null "$ROOT/var/log/pf9-fake/events.log"
in_root chgrp pf9 /var/log/pf9-fake/events.log
# At boot only pf9-hostagent starts; it starts pf9-nodeletd, whose start phases
# start containerd and pf9-kubelet.
quiet in_root systemctl disable containerd.service
quiet in_root systemctl enable pf9-hostagent.service
for unit in containerd pf9-kubelet pf9-nodeletd; do
  state=$(in_root systemctl is-enabled "$unit.service" 2>/dev/null) || true
  if [[ $state == enabled ]]; then
    echo "build-node-image: $unit.service is enabled at boot" >&2; exit 1
  fi
done

in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/etc/resolv.conf

image_import "$ROOT" "$IMAGE" '["/sbin/init"]'
image_publish "$IMAGE"
