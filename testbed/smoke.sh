#!/usr/bin/env bash
# End-to-end check of the test bed: host packages, node image, registry mirror,
# one node container that pulls docker.io/library/tiny:1 through the mirror
# (hosts.toml written by hand, as the collection should), and the PMK agent
# stand-ins' event log for the documented restart sequence.
# Leaves the registry running (stop: testbed/registry.sh stop [--purge]);
# always removes the node container. Exits non-zero on any failure.
# Env: TESTBED_SMOKE_NAME (container name, default kubenode-smoke) + registry.sh's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"
NODE=${TESTBED_SMOKE_NAME:-kubenode-smoke}

step() { echo "== $*"; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
on_node() { podman exec "$NODE" "$@"; }

step "host packages";   "$HERE/install-host-deps.sh"
step "node image";      IMAGE=$("$HERE/build-node-image.sh"); echo "$IMAGE"
step "registry mirror"; "$HERE/registry.sh" start
eval "$("$HERE/registry.sh" env)"
"$HERE/registry.sh" env | grep -v PASSWORD

step "node container $NODE"
podman rm -f -t 0 "$NODE" >/dev/null 2>&1 || true
trap 'podman rm -f -t 0 "$NODE" >/dev/null 2>&1 || true' EXIT
podman run -d --name "$NODE" --privileged --network host --systemd=always "$IMAGE" /sbin/init >/dev/null

# Poll: right after start, systemctl may not reach systemd's bus yet.
state=unknown
for _ in $(seq 60); do
  state=$(on_node systemctl is-system-running 2>/dev/null) || true
  [[ $state == running || $state == degraded ]] && break
  sleep 1
done
echo "systemd: $state"
if [[ $state != running ]]; then
  on_node systemctl --failed --no-pager || true
  fail "systemd in the node is '$state', not 'running'"
fi
on_node systemctl is-active containerd pf9-hostagent pf9-nodeletd

step "pull through the mirror"
CERTS=/etc/containerd/certs.d
MIRROR="$TESTBED_REGISTRY_URL/v2/$TESTBED_REPO_PATH"
AUTH=$(printf '%s:%s' "$TESTBED_REGISTRY_USER" "$TESTBED_REGISTRY_PASSWORD" | base64 -w0)
on_node mkdir -p "$CERTS/$TESTBED_REGISTRY_HOST" "$CERTS/docker.io"
podman exec -i "$NODE" sh -c "cat > '$CERTS/$TESTBED_REGISTRY_HOST/ca.crt'" <"$TESTBED_CA_FILE"
podman exec -i "$NODE" sh -c "cat > '$CERTS/docker.io/hosts.toml'" <<EOF
server = "https://docker.io"

[host."$MIRROR"]
  capabilities = ["pull", "resolve"]
  ca = "$CERTS/$TESTBED_REGISTRY_HOST/ca.crt"
  override_path = true
  [host."$MIRROR".header]
    authorization = "Basic $AUTH"
EOF
# ctr reads certs.d only with --hosts-dir (the CRI plugin uses config_path instead).
on_node ctr -n k8s.io images pull --hosts-dir "$CERTS" docker.io/library/tiny:1 | tail -n 1   # skip the progress bars
on_node ctr -n k8s.io images ls -q | grep -qx docker.io/library/tiny:1 || fail "image not in containerd"

step "PMK agent restart sequence"
MARK=$(on_node date +%s.%N)   # the log also holds the boot-time starts: look after MARK
on_node systemctl stop pf9-hostagent
on_node systemctl stop pf9-nodeletd
on_node su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases stop'
on_node systemctl start pf9-hostagent
echo "--- /var/log/pf9-fake/events.log"
on_node cat /var/log/pf9-fake/events.log
got=$(on_node cat /var/log/pf9-fake/events.log | awk -F'\t' -v m="$MARK" '$1 > m {print $2, $3, $4}')
want="pf9-hostagent stop root
pf9-nodeletd stop root
nodeletd phases-stop pf9
pf9-hostagent start root"
[[ $got == "$want" ]] || fail "events after $MARK were:"$'\n'"$got"
echo "events after $MARK: as expected"

step "stand-in checks"
on_node touch /etc/pf9-fake/fail-phases-stop
if on_node su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases stop' 2>/dev/null; then
  fail "phases stop succeeded despite /etc/pf9-fake/fail-phases-stop"
fi
on_node rm /etc/pf9-fake/fail-phases-stop
if on_node /opt/pf9/nodelet/nodeletd phases stop 2>/dev/null; then fail "phases stop succeeded as root"; fi
on_node tail -n 2 /var/log/pf9-fake/events.log | cut -f2- | tr '\t' ' ' |
  diff - <(printf '%s\n' 'nodeletd phases-stop-failed pf9' 'nodeletd phases-stop-wrong-user root') ||
  fail "unexpected failure events"
echo "failure injection and user check: as expected"

echo "SMOKE OK"
