#!/usr/bin/env bash
# End-to-end check of the test bed, one node container per containerd release
# (the images of build-node-image.sh 1.6, 1.7 and 2.1):
#   all (default): host packages, node images, registry mirrors (pulls through
#                  them, hosts.toml written by hand as the collection should),
#                  then the node checks below;
#   node:          node images and the node checks only (no registry).
# Node checks (the facts of testbed/README.md) on every release: boot to healthy
# with the expected containerd and the stock config.toml; a pull from the mTLS
# registry with the client certificate, and the same pull failing without it;
# the seed's restart sequence stops containerd and pf9-kubelet (and the k8s.io
# containers) and the node comes back healthy with a fresh kube_status;
# config_path next to the legacy mirrors breaks the CRI plugin; pulls the way
# kubelet pulls (containerd's CRI, through the crictl stand-in): with the stock
# config.toml a CRI pull ignores certs.d and fails at the legacy endpoint; with the
# legacy mirrors moved out and config_path set it goes through the mirror, the
# sandbox image registry.k8s.io/pause:3.6 too. Then the token-auth registries through the
# CRI: public/ pulls anonymously, private/ does not; a hosts.toml [header] with Basic alone
# pulls private/ on 2.1 only; configs."<host>".auth in config.toml pulls it on every release
# (the token server's log shows the POST password grant), and sends the credentials to a
# realm on another address (127.0.0.2) as well.
# On 1.6 also the checks of the stand-ins themselves: a pull through the
# basic-auth mirror; `phases stop` refused while the agents run; fail-drain;
# `phases start` by hand with slow-start; slow-drain (a SIGHUP during it, the
# caller's death); never-healthy; the operator's SSH login
# (ops, key only, sudo, on a 127.0.0.1 port of its own) and no setfacl in the node.
# The 1.7 and 2.1 nodes run in the background while the 1.6 node runs.
# Leaves the registries running (stop: testbed/registry.sh stop [--purge]);
# always removes the node containers. Exits non-zero on any failure.
# Env: TESTBED_SMOKE_NAME (container name, default kubenode-smoke; the 1.7 and
# 2.1 nodes add -1.7 and -2.1) + registry.sh's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$HERE/containers.conf"
NODE=${TESTBED_SMOKE_NAME:-kubenode-smoke}
NODE_16=$NODE
NEWER=(1.7 2.1)   # their nodes are $NODE_16-<release>
MODE=${1:-all}
[[ $MODE == all || $MODE == node ]] || { echo "usage: $0 [all|node]" >&2; exit 2; }

NODELETD=/opt/pf9/nodelet/nodeletd
CRICTL=/opt/pf9/pf9-kube/bin/crictl   # PMK's CRI client (the test bed's stand-in)
CERTS=/etc/containerd/certs.d
KUBE_STATUS=/var/opt/pf9/kube_status
EVENTS=/var/log/pf9-fake/events.log
REFUSED='cannot run this command while hostagent and/or nodeletd is running'
MIRRORS_DEPRECATED="level=warning msg=\"DEPRECATION: The \`mirrors\` property"
CONFIGS_DEPRECATED="level=warning msg=\"DEPRECATION: The \`configs\` property"   # once token_pulls sets configs

# Under pipefail a `cmd | grep -q` fails when grep exits before cmd has written all
# (SIGPIPE): pipelines below end in `grep ... >/dev/null`, which reads everything.
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
# to_node PATH [MODE]: stdin to a file in the node (mode 0644 unless given).
to_node() { podman exec -i "$NODE" sh -c "cat > '$1' && chmod ${2:-0644} '$1'"; }
# put_hosts_toml PATH SERVER HOST_URL CA [LINE...]: a hosts.toml in the node with one
# mirror host, which gets the LINEs after its own settings.
put_hosts_toml() {
  local path=$1 server=$2 url=$3 ca=$4
  shift 4
  {
    printf 'server = "%s"\n\n[host."%s"]\n' "$server" "$url"
    printf '  %s\n' 'capabilities = ["pull", "resolve"]' "ca = \"$ca\"" 'override_path = true' "$@"
  } | to_node "$path"
}
# The running containerd's version, as `ctr version` gets it from the daemon.
server_version() { on_node ctr version | awk '$1 == "Server:" {s = 1} s && $1 == "Version:" {print $2; exit}'; }
# since_offset LOG OFFSET: what LOG got after OFFSET bytes.
since_offset() { tail -c +$(($2 + 1)) "$1"; }
# One field of `crictl inspecti`'s JSON on stdin: status.<key> (lists joined by spaces).
inspect_field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)["status"][sys.argv[1]]
print(" ".join(v) if isinstance(v, list) else v)' "$1"
}

# mirror_certs_d: /etc/containerd/certs.d for the PMK mirror (the basic-auth registry, repo
# path infra/k8s) as the collection writes it: docker.io and registry.k8s.io (the sandbox image).
mirror_certs_d() {
  local mirror="$TESTBED_REGISTRY_URL/v2/$TESTBED_REPO_PATH" auth registry
  auth=$(printf '%s:%s' "$TESTBED_REGISTRY_USER" "$TESTBED_REGISTRY_PASSWORD" | base64 -w0)
  on_node mkdir -p "$CERTS/$TESTBED_REGISTRY_HOST" "$CERTS/docker.io" "$CERTS/registry.k8s.io"
  to_node "$CERTS/$TESTBED_REGISTRY_HOST/ca.crt" <"$TESTBED_CA_FILE"
  for registry in docker.io registry.k8s.io; do
    put_hosts_toml "$CERTS/$registry/hosts.toml" "https://$registry" "$mirror" "$CERTS/$TESTBED_REGISTRY_HOST/ca.crt" \
      "[host.\"$mirror\".header]" "  authorization = \"Basic $auth\""
  done
}

# cri_pull_stock: with the stock config.toml (legacy mirrors, no config_path) containerd's CRI
# ignores certs.d: a crictl pull (kubelet's path) goes to the legacy endpoint
# dockermirror.platform9.io, unreachable here, and fails as crictl fails (exit 1, the CRI
# client's error line, then crictl's fatal one, both with containerd's error naming the host).
cri_pull_stock() {
  local out rc=0
  step "a CRI pull with the stock config.toml ignores certs.d (crictl pull, as kubelet pulls)"
  [[ -n $(on_node ls "$CERTS/docker.io") ]] || fail "no certs.d to ignore"
  T=$(ms)
  out=$(on_node timeout 120 "$CRICTL" pull docker.io/library/tiny:1 2>&1) || rc=$?
  ((rc == 1)) || fail "crictl pull with the stock config.toml: exit $rc, not 1: $out"
  [[ $out == *'"PullImage from image service failed" err="rpc error: code = '* &&
    $out == *'pulling image: rpc error: code = '* ]] || fail "crictl pull did not fail as crictl does: $out"
  [[ $out == *'https://dockermirror.platform9.io/v2/library/tiny/manifests/1'* ]] ||
    fail "the CRI pull did not go to the legacy endpoint: $out"
  echo "exit 1 in $(secs_since "$T"): ...${out##*failed to do request: }"
}

# cri_pull_config_path: what a rollout leaves on a node: the stock config.toml with its legacy
# mirrors moved out (certs.d holds the mirror) and config_path set, nothing else changed (the
# snapshotter stays the stock overlayfs); containerd restarted with the agents stopped, then
# pf9-hostagent started and the node healthy again. A crictl pull of docker.io/library/tiny:1
# is then containerd's CRI pull through certs.d: the mirror's access log shows this node's
# containerd asking for the manifest under infra/k8s; CRI unpacks it with its snapshotter.
# The sandbox image registry.k8s.io/pause:3.6 comes from the mirror the same way. Also
# crictl's inspecti, rmi and version.
cri_pull_config_path() {
  local restart out ref agent offset chain
  step "config_path instead of the legacy mirrors: a CRI pull goes through the mirror"
  on_node systemctl stop pf9-hostagent pf9-nodeletd
  sed -e '/registry\.mirrors/d' -e '/^ *endpoint = /d' \
    -e 's|^    \[plugins."io.containerd.grpc.v1.cri".registry\]$|&\n      config_path = "/etc/containerd/certs.d"|' \
    "$HERE/node/config.toml" | to_node /etc/containerd/config.toml
  on_node grep -qx '      config_path = "/etc/containerd/certs.d"' /etc/containerd/config.toml || fail "config_path not written"
  on_node systemctl restart containerd
  # The effective configuration (2.x: migrated to io.containerd.cri.v1.images, in single quotes).
  on_node containerd config dump 2>/dev/null | grep -E "^ *config_path = [\"']${CERTS}[\"']\$" >/dev/null ||
    fail "containerd config dump does not show config_path = $CERTS"
  restart=$(node_now)
  on_node systemctl start pf9-hostagent
  wait_for 30 healthy_since "$restart" || fail "not healthy within 30 s with config_path: $(on_node cat "$KUBE_STATUS")"
  out=$(on_node "$CRICTL" version) || fail "crictl version failed"
  [[ $out == *$'RuntimeName:  containerd\n'*"RuntimeVersion:  $(server_version)"* ]] || fail "crictl version: $out"
  agent="containerd/$(server_version)"
  if on_node "$CRICTL" inspecti -q docker.io/library/tiny:1 >/dev/null 2>&1; then   # from a ctr pull before
    on_node "$CRICTL" rmi docker.io/library/tiny:1 >/dev/null || fail "crictl rmi failed"
  fi
  out=$(on_node "$CRICTL" inspecti docker.io/library/tiny:1 2>&1) && fail "crictl inspecti found a removed image"
  [[ $out == *'no such image \"docker.io/library/tiny:1\" present'* ]] || fail "crictl inspecti of a missing image: $out"
  offset=$(stat -c %s "$TESTBED_REGISTRY_LOG")
  T=$(ms)
  out=$(on_node timeout 120 "$CRICTL" pull docker.io/library/tiny:1 2>&1) || fail "crictl pull through config_path failed: $out"
  echo "crictl pull docker.io/library/tiny:1 in $(secs_since "$T"): $out"
  ref=${out#Image is up to date for }
  [[ $out == "Image is up to date for sha256:"* && $ref != *$'\n'* ]] || fail "crictl pull said: $out"
  since_offset "$TESTBED_REGISTRY_LOG" "$offset" |
    grep -F "/v2/$TESTBED_REPO_PATH/library/tiny/manifests/1?ns=docker.io HTTP/" | grep -F '" 200 ' |
    grep -F "\"$agent\"" >/dev/null || fail "$TESTBED_REGISTRY_LOG: no manifest request of $agent for tiny:1"
  out=$(on_node "$CRICTL" inspecti docker.io/library/tiny:1) || fail "crictl inspecti after the pull failed"
  [[ $(inspect_field id <<<"$out") == "$ref" && " $(inspect_field repoTags <<<"$out") " == *" docker.io/library/tiny:1 "* ]] ||
    fail "crictl inspecti: $out"
  # Unpacked by CRI into its snapshotter (the stock file's overlayfs): the image's chain ID is a snapshot there.
  chain=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["info"]["chainID"])' <<<"$out")
  on_node ctr -n k8s.io snapshots --snapshotter overlayfs info "$chain" >/dev/null 2>&1 ||
    fail "tiny:1 is not unpacked in the overlayfs snapshotter ($chain)"
  echo "manifest from $TESTBED_REGISTRY_HOST/v2/$TESTBED_REPO_PATH by $agent; unpacked (overlayfs snapshot $chain)"
  offset=$(stat -c %s "$TESTBED_REGISTRY_LOG")
  out=$(on_node timeout 120 "$CRICTL" pull registry.k8s.io/pause:3.6 2>&1) || fail "crictl pull of the sandbox image failed: $out"
  since_offset "$TESTBED_REGISTRY_LOG" "$offset" |
    grep -F "/v2/$TESTBED_REPO_PATH/pause/manifests/3.6?ns=registry.k8s.io HTTP/" | grep -F '" 200 ' |
    grep -F "\"$agent\"" >/dev/null || fail "$TESTBED_REGISTRY_LOG: no manifest request of $agent for pause:3.6"
  [[ ${out#Image is up to date for } != "$ref" ]] || fail "pause:3.6 is the same image as tiny:1"
  echo "registry.k8s.io/pause:3.6 from $TESTBED_REGISTRY_HOST/v2/$TESTBED_REPO_PATH/pause: $out"
  out=$(on_node "$CRICTL" rmi docker.io/library/tiny:1) || fail "crictl rmi failed"
  [[ $out == "Deleted: docker.io/library/tiny:1" ]] || fail "crictl rmi said: $out"
  ! on_node "$CRICTL" inspecti -q docker.io/library/tiny:1 >/dev/null 2>&1 || fail "tiny:1 still there after crictl rmi"
  on_node "$CRICTL" inspecti -q registry.k8s.io/pause:3.6 >/dev/null || fail "crictl rmi of tiny:1 removed pause:3.6"
  echo "crictl inspecti, rmi, version: as crictl's"
}

# token_requests LOG OFFSET AGENT: the token server's requests after OFFSET from user agent
# AGENT (the nodes of other releases pull at the same time), one line each:
# "form user status granted..." (user '-' when anonymous, granted: scope with the actions given).
token_requests() {
  since_offset "$1" "$2" | python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["user_agent"] == sys.argv[1]:
        print(r["form"], r["user"] or "-", r["status"], " ".join(r["granted"]) or "-")' "$3"
}
# token_pull TOKEN_LOG REGISTRY_LOG REF: a CRI pull of REF (crictl, kubelet's path) by this node,
# REF removed first. Sets OUT (crictl's output), RC (its exit status), REQS (this node's token
# requests to the server of TOKEN_LOG meanwhile, token_requests' lines) and HEADS (the HTTP
# status of each manifest HEAD of this node in REGISTRY_LOG meanwhile).
token_pull() {
  local offset reg_offset repo=${3#*/} agent
  agent="containerd/$(server_version)"
  on_node "$CRICTL" rmi "$3" >/dev/null 2>&1 || true
  offset=$(stat -c %s "$1")
  reg_offset=$(stat -c %s "$2")
  RC=0
  OUT=$(on_node timeout 120 "$CRICTL" pull "$3" 2>&1) || RC=$?
  REQS=$(token_requests "$1" "$offset" "$agent")
  HEADS=$(since_offset "$2" "$reg_offset" | grep -F "\"HEAD /v2/${repo%:*}/manifests/${repo##*:} HTTP/1.1\"" |
    grep -F "\"$agent\"" | awk '{print $9}' | tr '\n' ' ')
}
# The token requests and manifest HEADs of the last token_pull, for a report line.
token_seen() { echo "token requests: $(paste -sd ';' <<<"$REQS"); manifest HEADs: ${HEADS% }"; }
# denied: the registry's refusal in crictl's output of the last token_pull.
denied() { grep -o 'pull access denied[^"\\]*' <<<"$OUT" | head -n 1; }

# token_config_auth: containerd restarted with, for both token registries,
# configs."<host>".auth (username/password) in config.toml next to config_path.
token_config_auth() {
  local host
  on_node systemctl stop pf9-hostagent pf9-nodeletd
  for host in "$TESTBED_TOKEN_HOST" "$TESTBED_TOKEN_OTHER_HOST"; do
    printf '%s\n' "      [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"$host\".auth]" \
      "        username = \"$TESTBED_TOKEN_USER\"" "        password = \"$TESTBED_TOKEN_PASSWORD\""
  done | podman exec -i "$NODE" sh -c 'cat >> /etc/containerd/config.toml'
  on_node systemctl restart containerd
  wait_for 30 on_node "$CRICTL" version >/dev/null 2>&1 || fail "containerd's CRI did not come back with configs auth"
}

# token_hosts_toml HOST [LINE...]: certs.d/HOST/hosts.toml with the test bed CA (and LINEs
# in its host table).
token_hosts_toml() {
  local host=$1 dir=$CERTS/$1
  shift
  on_node mkdir -p "$dir"
  to_node "$dir/ca.crt" <"$TESTBED_CA_FILE"
  put_hosts_toml "$dir/hosts.toml" "https://$host" "https://$host/v2" "$dir/ca.crt" "$@"
}

# token_pulls: the token-auth registries, through the CRI with config_path (as
# cri_pull_config_path left it): anonymous pulls of public/ work and of private/ fail; what a
# hosts.toml [header] with Basic does for private/ (the release's own behaviour); with
# configs."<host>".auth the robot account pulls private/ and the token server's log shows its
# POST password grant; the registry whose realm is on 127.0.0.2 gets the credentials sent there.
token_pulls() {
  local public private other grant start
  step "token-auth registries: CRI pulls, anonymous and with the robot account"
  start=$(ms)
  token_hosts_toml "$TESTBED_TOKEN_HOST"
  token_hosts_toml "$TESTBED_TOKEN_OTHER_HOST"
  public=$TESTBED_TOKEN_HOST/$TESTBED_TOKEN_PUBLIC/library/tiny:1
  private=$TESTBED_TOKEN_HOST/$TESTBED_TOKEN_PRIVATE/library/tiny:1
  other=$TESTBED_TOKEN_OTHER_HOST/$TESTBED_TOKEN_PRIVATE/library/tiny:1
  grant="$TESTBED_TOKEN_USER 200 repository:$TESTBED_TOKEN_PRIVATE/library/tiny:pull"
  token_pull "$TESTBED_TOKEN_LOG" "$TESTBED_TOKEN_REGISTRY_LOG" "$public"
  ((RC == 0)) || fail "anonymous CRI pull of $public failed: $OUT"
  grep -xF "anonymous - 200 repository:$TESTBED_TOKEN_PUBLIC/library/tiny:pull" <<<"$REQS" >/dev/null ||
    fail "$TESTBED_TOKEN_LOG: no anonymous token for $public: $REQS"
  echo "anonymous, public: pulled; $(token_seen)"
  token_pull "$TESTBED_TOKEN_LOG" "$TESTBED_TOKEN_REGISTRY_LOG" "$private"
  ((RC != 0)) || fail "anonymous CRI pull of $private succeeded"
  [[ $(denied) == *insufficient_scope* && $REQS == "anonymous - 200 repository:$TESTBED_TOKEN_PRIVATE/library/tiny:"* &&
    $HEADS == *401* && $HEADS != *200* ]] || fail "anonymous pull of $private: $OUT; $(token_seen)"
  echo "anonymous, private: $(denied); $(token_seen)"
  token_header "$private" "$grant"
  token_config_auth
  token_pull "$TESTBED_TOKEN_LOG" "$TESTBED_TOKEN_REGISTRY_LOG" "$private"
  ((RC == 0)) || fail "CRI pull of $private with configs auth failed: $OUT; $(token_seen)"
  if ! grep -xF "post-password-grant $grant" <<<"$REQS" >/dev/null || grep -v '^post-password-grant ' <<<"$REQS" >/dev/null; then
    fail "$TESTBED_TOKEN_LOG: not only POST password grants of the robot for $private: $REQS"
  fi
  [[ $HEADS == *200* ]] || fail "$TESTBED_TOKEN_REGISTRY_LOG: no manifest HEAD answered 200: $HEADS"
  echo "configs auth, private: pulled; $(token_seen)"
  token_pull "$TESTBED_TOKEN_OTHER_LOG" "$TESTBED_TOKEN_OTHER_REGISTRY_LOG" "$other"
  grep -xF "post-password-grant $grant" <<<"$REQS" >/dev/null ||
    fail "$TESTBED_TOKEN_OTHER_LOG: the credentials of $TESTBED_TOKEN_OTHER_HOST did not reach its realm: $REQS"
  ((RC == 0)) || fail "CRI pull of $other with configs auth failed: $OUT"
  echo "configs auth, realm on 127.0.0.2: the credentials went there, $TESTBED_TOKEN_OTHER_LOG: $(paste -sd ';' <<<"$REQS")"
  echo "token-auth checks in $(secs_since "$start")"
}

# token_header PRIVATE GRANT: a hosts.toml [header] authorization = "Basic ..." for the robot
# account, without configs auth: containerd 1.6 and 1.7 send it to the registry but ask the token
# server anonymously, and the pull fails; 2.1 sends it with its token request (GET), and pulls.
token_header() {
  local auth
  auth=$(printf '%s:%s' "$TESTBED_TOKEN_USER" "$TESTBED_TOKEN_PASSWORD" | base64 -w0)
  token_hosts_toml "$TESTBED_TOKEN_HOST" "[host.\"https://$TESTBED_TOKEN_HOST/v2\".header]" \
    "  authorization = \"Basic $auth\""
  token_pull "$TESTBED_TOKEN_LOG" "$TESTBED_TOKEN_REGISTRY_LOG" "$1"
  if [[ $(server_version) == 1.* ]]; then
    [[ $RC != 0 && $(denied) == *insufficient_scope* && $REQS == anonymous* && $REQS != *"$TESTBED_TOKEN_USER"* ]] ||
      fail "hosts.toml [header] alone on $(server_version): exit $RC, not a refusal after anonymous token requests: $OUT; $(token_seen)"
    echo "hosts.toml [header] Basic alone: refused ($(denied)); $(token_seen)"
  else
    if ((RC != 0)) || ! grep -xF "get-basic $2" <<<"$REQS" >/dev/null; then
      fail "hosts.toml [header] alone on $(server_version): exit $RC, not pulled with GET Basic: $OUT; $(token_seen)"
    fi
    echo "hosts.toml [header] Basic alone: pulled; $(token_seen)"
  fi
  token_hosts_toml "$TESTBED_TOKEN_HOST"
}

# boot_checks IMAGE RELEASE: $NODE from IMAGE becomes healthy, with containerd
# RELEASE.*, the stock config.toml, and the units, files and events of a fresh node.
boot_checks() {
  local image=$1 release=$2 state listeners unit version
  step "boot node $NODE ($image) to healthy"
  podman rm -f -t 0 "$NODE" >/dev/null 2>&1 || true
  T=$(ms)
  podman run -d --name "$NODE" --privileged --network host --systemd=always "$image" /sbin/init >/dev/null
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
  version=$(server_version)
  [[ $version == "$release".* && $(on_node containerd --version) == *" $release".* ]] ||
    fail "containerd $release.* expected; the daemon is '$version', the binary '$(on_node containerd --version)'"
  echo "containerd $version"
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
}

# mtls_pull NAMESPACE: pulls docker.io/library/tiny:1 into NAMESPACE from the mTLS
# registry's dockerhub-proxy project by a hosts.toml written by hand, with the
# client certificate; the same pull without it fails. The upstream (server) is a
# closed port: nothing leaves the host, and a failed pull fails at once.
# ctr with --hosts-dir, not crictl: the point is containerd's TLS client with and without
# the client certificate, two hosts directories side by side, which CRI (one config_path,
# read at start) cannot switch between without a restart; and run_task needs the image in
# the native snapshotter.
mtls_pull() {
  local ns=$1 dir=/etc/kubenode-smoke-mtls out offset pull=(--snapshotter native)
  step "pull from the mTLS registry, with and without the client certificate"
  on_node mkdir -p "$dir/with-cert/docker.io" "$dir/without-cert/docker.io"
  to_node "$dir/ca.crt" <"$TESTBED_MTLS_CA_FILE"
  to_node "$dir/client.cert" <"$TESTBED_MTLS_CLIENT_CERT"
  to_node "$dir/client.key" 0600 <"$TESTBED_MTLS_CLIENT_KEY"
  # client: a pair in a list; a flat ["cert", "key"] would be two files of cert and key each.
  put_hosts_toml "$dir/with-cert/docker.io/hosts.toml" https://127.0.0.1:1 "$TESTBED_MTLS_URL/v2/dockerhub-proxy" \
    "$dir/ca.crt" "client = [[\"$dir/client.cert\", \"$dir/client.key\"]]"
  on_node sh -c "grep -v '^  client = ' $dir/with-cert/docker.io/hosts.toml > $dir/without-cert/docker.io/hosts.toml"
  # ctr of containerd 1.7 and 2.x pulls through the daemon's transfer service, which
  # unpacks only to the snapshotters of its unpack_config (overlayfs); --local pulls in ctr.
  if on_node ctr images pull --help | grep -- '--local' >/dev/null; then pull+=(--local); fi
  offset=$(stat -c %s "$TESTBED_MTLS_LOG")
  on_node ctr -n "$ns" images pull "${pull[@]}" --hosts-dir "$dir/with-cert" docker.io/library/tiny:1 | tail -n 1
  on_node ctr -n "$ns" images ls -q | grep -x docker.io/library/tiny:1 >/dev/null || fail "image not in containerd ($ns)"
  # The access log names the project and, in the user agent, this node's containerd.
  tail -c +$((offset + 1)) "$TESTBED_MTLS_LOG" |
    grep -F '/v2/dockerhub-proxy/library/tiny/manifests/1?ns=docker.io HTTP/' | grep -F '" 200 ' |
    grep -F "\"containerd/$(server_version)\"" >/dev/null ||
    fail "$TESTBED_MTLS_LOG has no request of this node for dockerhub-proxy/library/tiny:1"
  if out=$(on_node ctr -n smoke-without-cert images pull "${pull[@]}" --hosts-dir "$dir/without-cert" \
      docker.io/library/tiny:1 2>&1); then
    fail "pulled from the mTLS registry without a client certificate"
  fi
  [[ $out == *"tls: "* ]] || fail "the pull without a client certificate did not fail in TLS: $out"
  echo "pulled with the client certificate; without it: tls: ${out##*tls: }"
}

# A k8s.io container for phases stop to kill. The one-file image borrows the
# node's /usr to run a sleep.
run_task() {
  on_node ctr -n k8s.io run -d --snapshotter native \
    --mount type=bind,src=/usr,dst=/usr,options=rbind:ro \
    --mount type=bind,src=/usr/lib,dst=/lib,options=rbind:ro \
    --mount type=bind,src=/usr/lib64,dst=/lib64,options=rbind:ro \
    docker.io/library/tiny:1 smoke-task /usr/bin/sleep infinity
  on_node ctr -n k8s.io tasks ls | grep 'smoke-task.*RUNNING' >/dev/null || fail "smoke-task is not running"
}

restart_sequence() {
  local mark stopped_ts out restart
  step "the seed's restart sequence"
  mark=$(mark)
  stop_agents
  stopped_ts=$(kube status_check_timestamp)
  if on_node "$NODELETD" phases stop >/dev/null 2>&1; then fail "phases stop ran as root"; fi
  out=$(as_pf9 "$NODELETD phases stop") || fail "phases stop exited non-zero"
  echo "$out"
  [[ $out == *"INDEX NUMBER"* ]] || fail "no phase table"
  expect_inactive containerd pf9-kubelet
  [[ $(kube pf9_kube_node_state) == ok && $(kube status_check_timestamp) == "$stopped_ts" ]] ||
    fail "phases stop touched kube_status"
  echo "kube_status still says ok, timestamp $stopped_ts (stale)"
  if out=$(as_pf9 "$NODELETD phases status"); then fail "phases status passes with the stack stopped"; fi
  [[ $out == *"containerd active"* ]] || fail "phases status did not name the failed check: $out"
  restart=$(node_now); T=$(ms)
  on_node systemctl start pf9-hostagent
  wait_for 30 healthy_since "$restart" || fail "not healthy within 30 s of starting pf9-hostagent"
  echo "restart to healthy: $(secs_since "$T") after systemctl start pf9-hostagent"
  if [[ $MODE == all ]]; then
    [[ -z $(on_node ctr -n k8s.io containers ls -q) ]] || fail "phases stop left k8s.io containers"
    echo "k8s.io containers deleted by phases stop"
  fi
  expect_events "$mark" "pf9-hostagent stop root
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
}

config_path_conflict() {
  local cri out broken
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
  broken=$(node_now)
  on_node systemctl start pf9-hostagent
  not_ok() { [[ $(kube pf9_kube_node_state) != ok && $(kube status_check_timestamp) -gt $broken ]]; }
  wait_for 20 not_ok || fail "kube_status still ok: $(on_node cat "$KUBE_STATUS")"
  echo "phases status fails, kube_status $(kube pf9_kube_node_state)"
}

# The checks of a newer release (in the background, output to a log).
check_newer() {
  local release=$1 image=$2
  NODE=$NODE_16-$release
  boot_checks "$image" "$release"
  if [[ $MODE == all ]]; then mirror_certs_d; cri_pull_stock; mtls_pull k8s.io; run_task; fi
  restart_sequence
  config_path_conflict
  if [[ $MODE == all ]]; then cri_pull_config_path; token_pulls; fi
}

START=$(ms)
if [[ $MODE == all ]]; then step "host packages"; "$HERE/install-host-deps.sh"; fi
step "node images"
declare -A IMAGES
for release in 1.6 "${NEWER[@]}"; do
  IMAGES[$release]=$("$HERE/build-node-image.sh" "$release" | tail -n 1)
  echo "$release: ${IMAGES[$release]}" \
    "$(podman image inspect --format '{{index .Labels "kubenode.containerd.deb"}}' "${IMAGES[$release]}")"
done
if [[ $MODE == all ]]; then
  step "registry mirrors"; "$HERE/registry.sh" start
  eval "$("$HERE/registry.sh" env)"
  "$HERE/registry.sh" env | grep -v PASSWORD
fi

KEYS=$(mktemp -d /tmp/kubenode-smoke-ssh.XXXXXX)
LOGS=$(mktemp -d /tmp/kubenode-smoke-logs.XXXXXX)
declare -A PIDS
cleanup() {
  local release
  for release in "${!PIDS[@]}"; do kill "${PIDS[$release]}" 2>/dev/null || true; done
  podman rm -f -t 0 "$NODE_16" "${NEWER[@]/#/$NODE_16-}" >/dev/null 2>&1 || true
  rm -rf "$KEYS" "$LOGS"
}
trap cleanup EXIT
for release in "${NEWER[@]}"; do
  check_newer "$release" "${IMAGES[$release]}" >"$LOGS/$release" 2>&1 &
  PIDS[$release]=$!
done

boot_checks "${IMAGES[1.6]}" 1.6

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
  mirror_certs_d
  cri_pull_stock
  step "pull through the basic-auth mirror with ctr, and a k8s.io container for phases stop to kill"
  # ctr, not crictl, because the container is the point: `ctr run` needs the image unpacked
  # to the native snapshotter (overlayfs mounts fail inside this podman container), and CRI
  # unpacks only to the stock file's overlayfs. ctr reads certs.d only with --hosts-dir:
  # this pull proves the files, not kubelet's path (cri_pull_config_path does that).
  on_node ctr -n k8s.io images pull --snapshotter native --hosts-dir "$CERTS" docker.io/library/tiny:1 | tail -n 1
  on_node ctr -n k8s.io images ls -q | grep -x docker.io/library/tiny:1 >/dev/null || fail "image not in containerd"
  run_task
  mtls_pull smoke-mtls   # its own namespace: k8s.io has the image already
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

restart_sequence

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

step "slow-drain 2: phases stop drains before it stops anything; SIGHUP is caught, the caller's death ends it"
# As the real command: SIGHUP (also SIGINT, SIGQUIT) is caught and the stop goes on.
MARK=$(mark)
on_node sh -c 'echo 2 > /etc/pf9-fake/slow-drain'
T=$(ms)
out=$(on_node bash -c "su pf9 -s /bin/bash -c '$NODELETD phases stop' & sleep 1
  pkill -HUP -u pf9 -f 'nodeletd phases stop'; wait \$!") || fail "phases stop with slow-drain exited non-zero"
(($(ms) - T >= 2000)) || fail "slow-drain did not delay phases stop"
echo "phases stop with slow-drain 2 and a SIGHUP: $(secs_since "$T")"
[[ $out == *"Signal received: hangup"* && $out == *"INDEX NUMBER"* ]] || fail "phases stop said: $out"
expect_inactive containerd pf9-kubelet
expect_events "$MARK" "nodeletd phases-stop pf9
nodeletd drain-start pf9
nodeletd phases-stop-sighup pf9
nodeletd drain-end pf9
pf9-kubelet stop root
containerd stop root
nodeletd phases-stop-end pf9"
# Its stdout's reader dies during the drain: the drain ends, the next line kills it (SIGPIPE).
as_pf9 "$NODELETD phases start" >/dev/null
MARK=$(mark)
on_node bash -c "su pf9 -s /bin/bash -c '$NODELETD phases stop' 2>/dev/null | sleep 1; sleep 0.5" || true
expect_active containerd pf9-kubelet
expect_events "$MARK" "nodeletd phases-stop pf9
nodeletd drain-start pf9
nodeletd drain-end pf9"
on_node rm /etc/pf9-fake/slow-drain
echo "drain-start and drain-end around the drain; the stop goes on after SIGHUP, not after its reader died"

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
if events_since "$MARK" | grep healthy >/dev/null; then fail "healthy despite never-healthy"; fi
echo "status failing, state retrying, $converges start attempts"
on_node rm /etc/pf9-fake/never-healthy
RECOVER=$(node_now)
wait_for 20 healthy_since "$RECOVER" || fail "not healthy after removing never-healthy"
echo "healthy again once the switch is gone"

config_path_conflict
if [[ $MODE == all ]]; then cri_pull_config_path; token_pulls; fi

failed=()
for release in "${NEWER[@]}"; do
  rc=0
  wait "${PIDS[$release]}" || rc=$?
  unset "PIDS[$release]"
  step "node $NODE_16-$release (containerd $release, in the background)"
  # ctr of 1.7 and 2.x warns on stderr at each call that the stock file's mirrors (and, once
  # set, configs) are deprecated.
  deprecated=$(grep -cF -e "$MIRRORS_DEPRECATED" -e "$CONFIGS_DEPRECATED" "$LOGS/$release") || true
  grep -vF -e "$MIRRORS_DEPRECATED" -e "$CONFIGS_DEPRECATED" "$LOGS/$release" | sed 's/^/  /'
  ((deprecated == 0)) ||
    echo "  ($deprecated lines of ctr's warnings '${MIRRORS_DEPRECATED#*: }...', '${CONFIGS_DEPRECATED#*: }...' left out)"
  ((rc == 0)) || failed+=("$release")
done
((${#failed[@]} == 0)) || fail "the checks of containerd ${failed[*]} failed (above)"
echo "SMOKE OK: containerd 1.6 ${NEWER[*]} in $(secs_since "$START")"
