#!/usr/bin/env bash
# End-to-end check of the test bed on one node container:
#   all (default): host packages, node image, registry mirror (a pull through
#                  it, hosts.toml written by hand as the collection should),
#                  then the node checks below;
#   node:          node image and the node checks only (no registry).
# Node checks (the facts of testbed/README.md): boot to healthy; `phases stop`
# refused while the agents run; the seed's restart sequence stops containerd
# and pf9-kubelet (and the k8s.io containers) and the node comes back healthy
# with a fresh kube_status; fail-drain; `phases start` by hand with slow-start;
# never-healthy; config_path next to the legacy mirrors breaks the CRI plugin;
# the operator's SSH login (ops, key only, sudo, on a 127.0.0.1 port of its own)
# and no setfacl in the node.
# Leaves the registry running (stop: testbed/registry.sh stop [--purge]);
# always removes the node container. Exits non-zero on any failure.
# Env: TESTBED_SMOKE_NAME (container name, default kubenode-smoke) + registry.sh's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"
NODE=${TESTBED_SMOKE_NAME:-kubenode-smoke}
MODE=${1:-all}
[[ $MODE == all || $MODE == node ]] || { echo "usage: $0 [all|node]" >&2; exit 2; }

NODELETD=/opt/pf9/nodelet/nodeletd
KUBE_STATUS=/var/opt/pf9/kube_status
EVENTS=/var/log/pf9-fake/events.log
REFUSED='cannot run this command while hostagent and/or nodeletd is running'

step() { echo "== $*"; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
on_node() { podman exec "$NODE" "$@"; }
as_pf9() { podman exec "$NODE" su pf9 -s /bin/bash -c "$1"; }
ms() { date +%s%3N; }
secs_since() { local d=$(($(ms) - $1)); printf '%d.%d s' $((d / 1000)) $((d % 1000 / 100)); }
node_now() { on_node date +%s; }
mark() { on_node date +%s.%N; }
active() { [[ $(on_node systemctl is-active "$1" 2>/dev/null) == active ]]; }
expect_active() { local u; for u; do active "$u" || fail "$u is not active"; done; }
expect_inactive() { local u; for u; do ! active "$u" || fail "$u is still active"; done; }
# One field of kube_status ('' if missing).
kube() {
  on_node python3 -c 'import json, sys
try: print(json.load(open(sys.argv[1]))[sys.argv[2]])
except (OSError, ValueError, KeyError): print("")' "$KUBE_STATUS" "$1"
}
# "component action user" of the events after mark $1, in timestamp order.
events_since() {
  on_node cat "$EVENTS" | awk -F'\t' -v m="$1" '$1 > m' | sort -n | cut -f2- | tr '\t' ' '
}
expect_events() {   # mark, expected lines
  local got
  got=$(events_since "$1")
  [[ $got == "$2" ]] || fail "events after $1 were:"$'\n'"$got"$'\n'"expected:"$'\n'"$2"
}
# Polls up to $1 seconds until the command succeeds.
wait_for() {
  local limit=$(($(ms) + $1 * 1000)); shift
  until "$@"; do (($(ms) < limit)) || return 1; sleep 0.2; done
}
# kube_status says ok with a timestamp later than $1 and status passes as pf9.
healthy_since() {
  [[ $(kube pf9_kube_node_state) == ok && $(kube status_check_timestamp) -gt $1 ]] &&
    as_pf9 "$NODELETD phases status" >/dev/null
}
stop_agents() { on_node systemctl stop pf9-hostagent; on_node systemctl stop pf9-nodeletd; }

if [[ $MODE == all ]]; then step "host packages"; "$HERE/install-host-deps.sh"; fi
step "node image"; IMAGE=$("$HERE/build-node-image.sh" | tail -n 1); echo "$IMAGE"
if [[ $MODE == all ]]; then
  step "registry mirror"; "$HERE/registry.sh" start
  eval "$("$HERE/registry.sh" env)"
  "$HERE/registry.sh" env | grep -v PASSWORD
fi

step "boot node $NODE to healthy"
podman rm -f -t 0 "$NODE" >/dev/null 2>&1 || true
KEYS=$(mktemp -d /tmp/kubenode-smoke-ssh.XXXXXX)
trap 'podman rm -f -t 0 "$NODE" >/dev/null 2>&1 || true; rm -rf "$KEYS"' EXIT
T=$(ms)
podman run -d --name "$NODE" --privileged --network host --systemd=always "$IMAGE" /sbin/init >/dev/null
# Poll: right after start, systemctl may not reach systemd's bus yet.
state=unknown
for _ in $(seq 60); do
  state=$(on_node systemctl is-system-running 2>/dev/null) || true
  [[ $state == running || $state == degraded ]] && break
  sleep 0.5
done
if [[ $state != running ]]; then
  on_node systemctl --failed --no-pager || true
  fail "systemd in the node is '$state', not 'running'"
fi
wait_for 30 healthy_since 0 || fail "the node did not become healthy within 30 s"
echo "boot to healthy: $(secs_since "$T") after podman run"
expect_active pf9-hostagent pf9-nodeletd containerd pf9-kubelet
for unit in containerd pf9-kubelet pf9-nodeletd; do
  [[ $(on_node systemctl is-enabled "$unit" 2>/dev/null) != enabled ]] || fail "$unit is enabled at boot"
done
[[ $(on_node systemctl is-enabled pf9-hostagent) == enabled ]] || fail "pf9-hostagent is not enabled"
[[ $(on_node systemctl show -P Restart containerd) == always ]] || fail "containerd: Restart is not always"
[[ $(on_node systemctl show -P Restart pf9-nodeletd) == always ]] || fail "pf9-nodeletd: Restart is not always"
[[ $(on_node systemctl show -P User pf9-nodeletd) == pf9 ]] || fail "pf9-nodeletd does not run as pf9"
on_node cat /etc/containerd/config.toml | cmp -s - "$HERE/node/config.toml" ||
  fail "/etc/containerd/config.toml is not the stock PMK file"
[[ $(on_node id -gn pf9) == pf9group && $(on_node getent passwd pf9 | cut -d: -f6,7) == /opt/pf9/home:/bin/bash ]] ||
  fail "user pf9: $(on_node id pf9; on_node getent passwd pf9)"
on_node visudo -cf /etc/sudoers.d/pf9-nodelet >/dev/null || fail "sudoers.d/pf9-nodelet does not parse"
[[ $(on_node stat -c '%U:%G %a' /run/containerd/containerd.sock) == "pf9:pf9group 660" ]] ||
  fail "containerd socket: $(on_node stat -c '%U:%G %a' /run/containerd/containerd.sock)"
[[ $(on_node stat -c '%U %a' "$KUBE_STATUS") == "pf9 644" ]] || fail "kube_status: $(on_node stat -c '%U %a' "$KUBE_STATUS")"
on_node /bin/bash -c "$NODELETD phases status" | tail -n 1 | grep -qx 'Platform9 Kubernetes stack is running' ||
  fail "phases status as root does not pass"
# Only containerd's CRI streaming server (127.0.0.1, a random port) may listen.
listeners=$(on_node ss -ltnpH | grep 'users:' | grep -v '"containerd"' || true)
[[ -z $listeners ]] || fail "TCP listeners in the node: $listeners"
expect_events 0 "pf9-hostagent start root
pf9-nodeletd start root
nodeletd-daemon converge pf9
containerd start root
pf9-kubelet start root
nodeletd-daemon healthy pf9"
echo "units, files, user, sudoers, kube_status, events: as expected"

step "the operator's SSH login: ops, key only, sudo, 127.0.0.1 only; no setfacl"
if on_node sh -c 'command -v setfacl' >/dev/null; then fail "the node has setfacl"; fi
[[ $(on_node systemctl is-active ssh.service 2>/dev/null) != active ]] || fail "sshd runs before it was given a port"
ssh-keygen -q -t ed25519 -N '' -C kubenode-smoke -f "$KEYS/id_ed25519"
SSH_PORT=$(podman exec -i "$NODE" testbed-ssh-enable <"$KEYS/id_ed25519.pub") || fail "testbed-ssh-enable failed"
echo "sshd on 127.0.0.1:$SSH_PORT"
listening=$(ss -ltnH "sport = :$SSH_PORT" | awk '{print $4}')
[[ $listening == "127.0.0.1:$SSH_PORT" ]] || fail "port $SSH_PORT: listening on '$listening', not 127.0.0.1 only"
ssh_as() {   # user, command...
  local user=$1; shift
  ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o IdentitiesOnly=yes -o ConnectTimeout=10 -i "$KEYS/id_ed25519" -p "$SSH_PORT" "$user@127.0.0.1" "$@"
}
out=$(ssh_as ops 'id -un; sudo -n id -un') || fail "ssh as ops with sudo failed: $out"
[[ $out == $'ops\nroot' ]] || fail "ssh as ops, then sudo: $out"
# Root's own key is refused; only publickey is offered, so no password login.
podman exec -i "$NODE" sh -c 'install -d -m 0700 /root/.ssh && cat > /root/.ssh/authorized_keys' <"$KEYS/id_ed25519.pub"
if ssh_as root true 2>/dev/null; then fail "root logged in over SSH"; fi
on_node rm /root/.ssh/authorized_keys
out=$(ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  -o PubkeyAuthentication=no -o ConnectTimeout=10 -p "$SSH_PORT" ops@127.0.0.1 true 2>&1) &&
  fail "ssh as ops without a key succeeded"
[[ $out == *"Permission denied (publickey)"* ]] || fail "ssh without a key: $out"
echo "ops logs in with its key and sudoes to root; root and passwords are refused; no setfacl"

if [[ $MODE == all ]]; then
  step "pull through the mirror, and a k8s.io container for phases stop to kill"
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
  # The native snapshotter: overlayfs mounts fail inside this podman container.
  on_node ctr -n k8s.io images pull --snapshotter native --hosts-dir "$CERTS" docker.io/library/tiny:1 | tail -n 1
  on_node ctr -n k8s.io images ls -q | grep -qx docker.io/library/tiny:1 || fail "image not in containerd"
  # The one-file image borrows the node's /usr to run a sleep.
  on_node ctr -n k8s.io run -d --snapshotter native \
    --mount type=bind,src=/usr,dst=/usr,options=rbind:ro \
    --mount type=bind,src=/usr/lib,dst=/lib,options=rbind:ro \
    --mount type=bind,src=/usr/lib64,dst=/lib64,options=rbind:ro \
    docker.io/library/tiny:1 smoke-task /usr/bin/sleep infinity
  on_node ctr -n k8s.io tasks ls | grep -q 'smoke-task.*RUNNING' || fail "smoke-task is not running"
fi

step "phases stop/start refused while the agents run"
MARK=$(mark)
for op in stop start; do
  if out=$(as_pf9 "$NODELETD phases $op" 2>&1); then fail "phases $op ran while the agents run"; fi
  [[ $out == *"$REFUSED"* ]] || fail "phases $op said: $out"
done
expect_active containerd pf9-kubelet
expect_events "$MARK" "nodeletd phases-stop-refused pf9
nodeletd phases-start-refused pf9"
echo "refused, nothing stopped"

step "the seed's restart sequence"
MARK=$(mark)
stop_agents
STOPPED_TS=$(kube status_check_timestamp)
if on_node "$NODELETD" phases stop >/dev/null 2>&1; then fail "phases stop ran as root"; fi
out=$(as_pf9 "$NODELETD phases stop") || fail "phases stop exited non-zero"
echo "$out"
[[ $out == *"INDEX NUMBER"* ]] || fail "no phase table"
expect_inactive containerd pf9-kubelet
[[ $(kube pf9_kube_node_state) == ok && $(kube status_check_timestamp) == "$STOPPED_TS" ]] ||
  fail "phases stop touched kube_status"
echo "kube_status still says ok, timestamp $STOPPED_TS (stale)"
if out=$(as_pf9 "$NODELETD phases status"); then fail "phases status passes with the stack stopped"; fi
[[ $out == *"containerd active"* ]] || fail "phases status did not name the failed check: $out"
RESTART=$(node_now); T=$(ms)
on_node systemctl start pf9-hostagent
wait_for 30 healthy_since "$RESTART" || fail "not healthy within 30 s of starting pf9-hostagent"
echo "restart to healthy: $(secs_since "$T") after systemctl start pf9-hostagent"
if [[ $MODE == all ]]; then
  [[ -z $(on_node ctr -n k8s.io containers ls -q) ]] || fail "phases stop left k8s.io containers"
  echo "k8s.io containers deleted by phases stop"
fi
expect_events "$MARK" "pf9-hostagent stop root
pf9-nodeletd stop root
nodeletd phases-stop-wrong-user root
nodeletd phases-stop pf9
pf9-kubelet stop root
containerd stop root
pf9-hostagent start root
pf9-nodeletd start root
nodeletd-daemon converge pf9
containerd start root
pf9-kubelet start root
nodeletd-daemon healthy pf9"
echo "events, kube_status: as expected"

step "fail-drain: phases stop halts at the drain and exits 0"
stop_agents
MARK=$(mark)
on_node touch /etc/pf9-fake/fail-drain
out=$(as_pf9 "$NODELETD phases stop" 2>/dev/null) || fail "phases stop exited non-zero on a failed drain"
on_node rm /etc/pf9-fake/fail-drain
if ! grep -qP '^3\t.*\tfailed$' <<<"$out" || ! grep -qP '^2\t.*\tnot executed$' <<<"$out"; then
  fail "unexpected table:"$'\n'"$out"
fi
expect_active containerd pf9-kubelet
expect_events "$MARK" "nodeletd phases-stop pf9
nodeletd drain-failed pf9"
echo "drain failed, containerd and pf9-kubelet still running, exit 0"

step "phases start by hand, with slow-start 2"
as_pf9 "$NODELETD phases stop" >/dev/null
expect_inactive containerd pf9-kubelet
MARK=$(mark)
on_node sh -c 'echo 2 > /etc/pf9-fake/slow-start'
T=$(ms)
as_pf9 "$NODELETD phases start" >/dev/null || fail "phases start exited non-zero"
(($(ms) - T >= 2000)) || fail "slow-start did not delay phases start"
echo "phases start: $(secs_since "$T")"
on_node rm /etc/pf9-fake/slow-start
as_pf9 "$NODELETD phases status" >/dev/null || fail "not healthy after phases start"
expect_events "$MARK" "nodeletd phases-start pf9
containerd start root
pf9-kubelet start root"

step "never-healthy keeps status failing"
MARK=$(mark)
on_node touch /etc/pf9-fake/never-healthy
on_node sh -c 'echo 1 > /etc/pf9-fake/check-interval'
as_pf9 "$NODELETD phases stop" >/dev/null
RESTART=$(node_now)
on_node systemctl start pf9-hostagent
retrying() { [[ $(kube pf9_kube_node_state) == retrying && $(kube status_check_timestamp) -gt $RESTART ]]; }
wait_for 20 retrying || fail "kube_status did not turn retrying: $(on_node cat "$KUBE_STATUS")"
sleep 2
if as_pf9 "$NODELETD phases status" >/dev/null; then fail "phases status passes with never-healthy"; fi
expect_active containerd
expect_inactive pf9-kubelet
[[ $(kube last_failed_task) == "Configure and start kubelet" ]] || fail "last_failed_task: $(kube last_failed_task)"
converges=$(events_since "$MARK" | grep -c 'nodeletd-daemon converge') || true
((converges >= 2)) || fail "the daemon did not retry ($converges converge events)"
if events_since "$MARK" | grep -q healthy; then fail "healthy despite never-healthy"; fi
echo "status failing, state retrying, $converges start attempts"
on_node rm /etc/pf9-fake/never-healthy
RECOVER=$(node_now)
wait_for 20 healthy_since "$RECOVER" || fail "not healthy after removing never-healthy"
echo "healthy again once the switch is gone"

step "config_path next to the legacy mirrors: the CRI plugin does not load"
on_node sed -i 's|^    \[plugins."io.containerd.grpc.v1.cri".registry\]$|&\n      config_path = "/etc/containerd/certs.d"|' \
  /etc/containerd/config.toml
on_node grep -q '^      config_path = "/etc/containerd/certs.d"$' /etc/containerd/config.toml || fail "config_path not added"
# The agents stay stopped while containerd restarts: nodeletd would otherwise start or stop
# containerd itself in the middle of the restart (systemd then cancels one of the two jobs).
on_node systemctl stop pf9-hostagent pf9-nodeletd
on_node systemctl restart containerd
cri=$(on_node ctr plugins ls | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" {print $NF}')
[[ $cri != ok ]] || fail "containerd loaded its CRI plugin with mirrors and config_path"
echo "ctr plugins ls: io.containerd.grpc.v1 cri $cri"
if out=$(on_node "$NODELETD" phases status); then fail "phases status passes without the CRI plugin"; fi
[[ $out == *"CRI plugin"* ]] || fail "phases status did not name the CRI check: $out"
BROKEN=$(node_now)
on_node systemctl start pf9-hostagent
not_ok() { [[ $(kube pf9_kube_node_state) != ok && $(kube status_check_timestamp) -gt $BROKEN ]]; }
wait_for 20 not_ok || fail "kube_status still ok: $(on_node cat "$KUBE_STATUS")"
echo "phases status fails, kube_status $(kube pf9_kube_node_state)"

echo "SMOKE OK"
