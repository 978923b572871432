#!/usr/bin/env bash
# Builds a node image without pulling from any registry and prints its name on
# stdout (last line). Usage: build-node-image.sh [1.6|1.7|2.1], the containerd
# release in the node (default 1.6):
#   1.6  localhost/kubenode-node:<tag> (+ :latest): Debian bookworm via
#        debootstrap, systemd as PID 1, containerd 1.6 from Debian with the stock
#        Platform9 (PMK) config.toml, user pf9 and the PMK agent stand-ins from
#        testbed/node/, PMK's CRI client /opt/pf9/pf9-kube/bin/crictl (a stand-in on
#        python3-grpcio), and sshd for the operator's account ops (no setfacl, as on
#        a minimal Debian node; see testbed/README.md).
#   1.7  localhost/kubenode-node-1.7:<tag> (+ :latest): the 1.6 image with trixie's
#   2.1  localhost/kubenode-node-2.1:<tag> (+ :latest): or forky's containerd package
#        installed over it, in one layer. Everything else stays as in 1.6: bookworm's
#        systemd (newer ones do not boot as PID 1 on this host's cgroup v1) and the
#        stock PMK config.toml, which containerd 2.x migrates from version 2 on load.
# <tag> is a hash of the inputs (these scripts, testbed/node/*; for 1.7 and 2.1
# the 1.6 image too), so an unchanged image is reused in a second or so.
# TESTBED_NODE_IMAGE overrides the name (localhost/kubenode-node; 1.7 and 2.1 add
# -1.7, -2.1). Needs root (debootstrap, chroot).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"
# shellcheck source=testbed/image-lib.sh
source "$HERE/image-lib.sh"
NAME=${TESTBED_NODE_IMAGE:-localhost/kubenode-node}   # a scratch name builds apart from the shared images
VERSION=${1:-1.6}
case $VERSION in   # the Debian suite whose containerd package a newer image gets
  1.6) ;;
  1.7) SUITE=trixie ;;
  2.1) SUITE=forky ;;
  *) echo "usage: $0 [1.6|1.7|2.1]" >&2; exit 2 ;;
esac

# The Debian mirror the host's apt uses; TESTBED_DEBIAN_MIRROR overrides.
debian_mirror() { echo "${TESTBED_DEBIAN_MIRROR:-$(python3 "$HERE/debian-mirror")}"; }

# 1.7 and 2.1: the 1.6 image with the containerd package of $SUITE, checked from
# the archive's signature down to the .deb (fetch-deb), installed by dpkg in one layer.
if [[ $VERSION != 1.6 ]]; then
  BASE=$(bash "$HERE/build-node-image.sh" 1.6 | tail -n 1)
  IMAGE="$NAME-$VERSION:$(image_tag "$HERE"/{build-node-image.sh,image-lib.sh,fetch-deb} <(echo "$BASE $VERSION"))"
  if image_cached "$IMAGE"; then exit 0; fi
  image_workdir "kubenode-node-$VERSION"
  MIRROR=$(debian_mirror)
  image_log "fetching $SUITE's containerd $VERSION.* from $MIRROR"
  DEB=$(python3 "$HERE/fetch-deb" "$MIRROR" "$SUITE" containerd "$VERSION." "$WORK/containerd.deb")
  read -r POOL_PATH DEB_VERSION DEB_SHA256 <<<"$DEB"
  image_log "installing $POOL_PATH (SHA256 $DEB_SHA256) over $BASE"
  install -m 0644 "$HERE/node/config.toml" "$WORK/config.toml"
  # The 1.6 build's checks again after the upgrade: dpkg keeps the stock config.toml
  # (a changed conffile), the unit keeps Restart=always and stays disabled at boot.
  cat >"$WORK/Containerfile" <<EOF
FROM $BASE
RUN set -e; \\
    echo '$DEB_SHA256  /mnt/build/containerd.deb' | sha256sum --check --quiet; \\
    dpkg -i --force-confold /mnt/build/containerd.deb; \\
    cmp /mnt/build/config.toml /etc/containerd/config.toml || \\
      { echo 'the package replaced the stock config.toml' >&2; exit 1; }; \\
    grep -qx 'Restart=always' /lib/systemd/system/containerd.service || \\
      { echo "the package's containerd.service lacks Restart=always" >&2; exit 1; }; \\
    systemctl disable containerd.service; \\
    if [ "\$(systemctl is-enabled containerd.service)" = enabled ]; then \\
      echo 'containerd.service is enabled at boot' >&2; exit 1; fi; \\
    containerd --version | grep -q ' $VERSION\\.' || \\
      { echo "containerd --version: \$(containerd --version)" >&2; exit 1; }
EOF
  quiet podman build --pull=never --no-cache --network none --volume "$WORK:/mnt/build:ro" \
    --label "kubenode.containerd.deb=$POOL_PATH" --label "kubenode.containerd.version=$DEB_VERSION" \
    --label "kubenode.containerd.sha256=$DEB_SHA256" --file "$WORK/Containerfile" --tag "$IMAGE" "$WORK"
  image_publish "$IMAGE"
  exit 0
fi

IMAGE="$NAME:$(image_tag "$HERE"/{build-node-image.sh,image-lib.sh} "$HERE"/node/*)"
if image_cached "$IMAGE"; then exit 0; fi
image_workdir kubenode-node-rootfs
ROOT=$WORK
MIRROR=$(debian_mirror)
in_root() { chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive "$@"; }

image_log "debootstrap from $MIRROR"
quiet debootstrap --variant=minbase --include=systemd,systemd-sysv,python3,dbus,sudo \
  bookworm "$ROOT" "$MIRROR"

cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
image_log "installing containerd, openssh-server and python3-grpcio"
quiet in_root apt-get update
# python3-grpcio: for the crictl stand-in (Debian packages no crictl).
quiet in_root apt-get install -y --no-install-recommends \
  containerd ca-certificates procps iproute2 openssh-server python3-grpcio

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
# PMK's CRI client, where a PMK node has it (nodelet calls it with sudo): a stand-in that
# speaks CRI v1 to containerd, so a pull through it is containerd's CRI pull, as kubelet's.
install -d "$ROOT/opt/pf9/pf9-kube/bin"
{ echo '#!/usr/bin/python3'; cat "$HERE/node/crictl"; } > "$ROOT/opt/pf9/pf9-kube/bin/crictl"
chmod 0755 "$ROOT/opt/pf9/pf9-kube/bin/crictl"
quiet in_root /opt/pf9/pf9-kube/bin/crictl --help
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
