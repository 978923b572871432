#!/usr/bin/env bash
# Builds the node image localhost/kubenode-node:<tag> (+ :latest) without pulling
# from any registry: Debian bookworm via debootstrap, systemd as PID 1,
# containerd 1.6 with its default config, user pf9 and the PMK agent
# stand-ins from testbed/node/. <tag> is a hash of this script and
# testbed/node/*, so an unchanged image is reused in a second or so.
# Prints the image name on stdout. Needs root (debootstrap, chroot).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"
NAME=localhost/kubenode-node

TAG=$(cd "$HERE" && sha256sum build-node-image.sh node/* | sha256sum | cut -c1-12)
IMAGE="$NAME:$TAG"

if podman image exists "$IMAGE"; then
  podman tag "$IMAGE" "$NAME:latest"   # :latest may point at another build
  echo "$IMAGE"
  exit 0
fi

# The Debian mirror the host's apt uses (one-line and deb822 formats), e.g.
# http://deb.debian.org/debian; TESTBED_DEBIAN_MIRROR overrides.
find_mirror() {
  python3 - <<'PY'
import glob, re
files = glob.glob('/etc/apt/sources.list') + sorted(glob.glob('/etc/apt/sources.list.d/*.list'))
for f in files:
    for line in open(f):
        m = re.match(r'\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s', line)
        if m:
            print(m.group(1)); raise SystemExit
for f in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
    for stanza in re.split(r'\n\s*\n', open(f).read()):
        fields = dict(re.findall(r'^(\w[\w-]*):\s*(.*)$', stanza, re.M))
        if 'deb' in fields.get('Types', '').split() and 'bookworm' in fields.get('Suites', '').split() \
                and fields.get('Enabled', 'yes') != 'no':
            print(fields['URIs'].split()[0]); raise SystemExit
print('http://deb.debian.org/debian')
PY
}
MIRROR=${TESTBED_DEBIAN_MIRROR:-$(find_mirror)}

ROOT=$(mktemp -d /tmp/kubenode-node-rootfs.XXXXXX)
LOG=$ROOT.log
trap 'rm -rf --one-file-system "$ROOT" "$LOG"' EXIT
chmod 755 "$ROOT"   # mktemp makes it 0700; apt's _apt user must traverse it

# Runs a noisy command with its output in $LOG; shows the tail only on failure.
quiet() { "$@" >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; return 1; }; }
in_root() { chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive "$@"; }

echo "build-node-image: debootstrap from $MIRROR" >&2
quiet debootstrap --variant=minbase --include=systemd,systemd-sysv,python3,dbus,sudo \
  bookworm "$ROOT" "$MIRROR"

cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
echo "build-node-image: installing containerd" >&2
quiet in_root apt-get update
quiet in_root apt-get install -y --no-install-recommends \
  containerd ca-certificates procps iproute2

# A realistic containerd 1.6 config, plus a comment line so that the
# collection's comment-preserving edit can be checked.
{ echo '# containerd config written by the test bed image (containerd config default)'
  in_root containerd config default; } >"$ROOT/etc/containerd/config.toml.new"
mv "$ROOT/etc/containerd/config.toml.new" "$ROOT/etc/containerd/config.toml"

# User pf9 (PMK's agent user) and the agent stand-ins.
in_root useradd --system --create-home --home-dir /home/pf9 --shell /bin/bash pf9
install -D -m 0755 "$HERE/node/pf9-fake-event" "$ROOT/opt/pf9-fake/bin/pf9-fake-event"
install -D -m 0755 "$HERE/node/pf9-fake-daemon" "$ROOT/opt/pf9-fake/bin/pf9-fake-daemon"
install -D -m 0755 "$HERE/node/nodeletd" "$ROOT/opt/pf9/nodelet/nodeletd"
install -m 0644 "$HERE"/node/pf9-*.service "$ROOT/etc/systemd/system/"
# One event log, writable by root and pf9 (setgid dir keeps group pf9).
install -d -m 2775 -g 0 "$ROOT/var/log/pf9-fake" "$ROOT/etc/pf9-fake"
in_root chgrp pf9 /var/log/pf9-fake
install -m 0664 /dev/null "$ROOT/var/log/pf9-fake/events.log"
in_root chgrp pf9 /var/log/pf9-fake/events.log
quiet in_root systemctl enable containerd.service pf9-hostagent.service pf9-nodeletd.service

in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/etc/resolv.conf

echo "build-node-image: importing $IMAGE" >&2
tar -C "$ROOT" -c . | podman import --quiet --change 'CMD=["/sbin/init"]' - "$IMAGE" >/dev/null
podman tag "$IMAGE" "$NAME:latest"
# Drop older builds; podman refuses (ignored) while a container still uses one.
podman images --format '{{.Repository}}:{{.Tag}}' "$NAME" | grep -vxF -e "$IMAGE" -e "$NAME:latest" |
  xargs -r podman rmi >/dev/null 2>&1 || true
echo "$IMAGE"
