#!/usr/bin/env bash
# The whole job on a local test bed: two systemd nodes running containerd and PMK
# agent stand-ins, a TLS + basic-auth registry mirror on 127.0.0.1, and
# playbooks/configure-mirror.yml run against them with examples/cluster.json.
# The nodes behave like stock PMK nodes (legacy mirrors in config.toml, a node agent that
# brings the stack back after the restart). The playbook reaches them as an operator would:
# over SSH as the unprivileged user ops (a key made here, in $work) and sudo.
# Every pull shown goes through containerd's CRI with PMK's crictl, as kubelet pulls: the
# rollout's own (each node's sandbox image, the role's default) and one more per node after
# it, each found in the mirror's access log.
# Fresh Debian 12, as root. KEEP=1 keeps the test bed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
nodes=(kubenode-demo-node1 kubenode-demo-node2)
work=/tmp/kubenode-demo
image_to_pull=docker.io/library/tiny:1   # pulled on each node after the rollout
crictl=(/opt/pf9/pf9-kube/bin/crictl -r unix:///run/containerd/containerd.sock)   # PMK's CRI client
ports=()   # each node's sshd port, once it has one

say() { printf '\n== %s\n' "$*"; }
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        say "Kept the test bed. Remove it with:"
        echo "   CONTAINERS_CONF=$repo/testbed/containers.conf podman rm -f ${nodes[*]}; bash testbed/registry.sh stop"
        echo "Log in to a node as the playbook did:"
        echo "   ssh -i $work/id_ed25519 -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -p ${ports[0]:-PORT} ops@127.0.0.1"
        return
    fi
    say "Cleaning up"
    podman rm -f "${nodes[@]}" >/dev/null 2>&1 || true
    bash testbed/registry.sh stop >/dev/null 2>&1 || true
}

say "Installing what the demo needs"
bash testbed/install-host-deps.sh
source scripts/venv.sh
export CONTAINERS_CONF="$repo/testbed/containers.conf"

say "Building the test bed"
bash testbed/registry.sh start
eval "$(bash testbed/registry.sh env)"   # TESTBED_REGISTRY_LOG: the mirror's access log
image=$(bash testbed/build-node-image.sh | tail -n 1)
trap cleanup EXIT
mkdir -p "$work"
# The operator's key: a fresh one for each demo, put into the nodes below.
rm -f "$work/id_ed25519" "$work/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C kubenode-demo-ops -f "$work/id_ed25519"
for node in "${nodes[@]}"; do
    podman rm -f "$node" >/dev/null 2>&1 || true
    podman run -d --name "$node" --privileged --network host --systemd=always "$image" /sbin/init >/dev/null
done
# Like a booted PMK node: hostagent starts nodeletd, which brings containerd and kubelet up.
for node in "${nodes[@]}"; do
    for _ in $(seq 90); do
        podman exec "$node" su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases status' >/dev/null 2>&1 && break
        sleep 1
    done
    podman exec "$node" sh -c ': > /var/log/pf9-fake/events.log'
    # ops's key in, sshd on a free port of 127.0.0.1 (the nodes share the host's network).
    ports+=("$(podman exec -i "$node" testbed-ssh-enable <"$work/id_ed25519.pub")")
done
# Host key checking off: each node makes a fresh host key, on a port that changes.
cat > "$work/inventory.yml" <<INVENTORY
all:
  vars:
    ansible_user: ops
    ansible_ssh_private_key_file: $work/id_ed25519
    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  hosts:
$(for i in "${!nodes[@]}"; do echo "    ${nodes[i]}: {ansible_host: 127.0.0.1, ansible_port: ${ports[i]}}"; done)
INVENTORY
say "Inventory ($work/inventory.yml): SSH as ops, the playbook becomes root with sudo"
cat "$work/inventory.yml"

# requests LOG OFFSET AFTER BEFORE AGENT IMAGE: the requests LOG got after OFFSET bytes, between the
# times AFTER and BEFORE (epoch seconds), from user agent AGENT, for IMAGE's manifest by its tag
# (through any repo path): "METHOD URI STATUS, +SECONDS s" (seconds after the run started), one a line.
requests() {
    python3 - "$@" "$run_started" <<'PY'
import calendar, json, re, sys, time
log, offset, after, before, agent, image, started = sys.argv[1:]
registry, rest = image.split("/", 1)
path, tag = rest.rsplit(":", 1)
manifest = re.compile("^/v2/(.+/)?" + re.escape(path) + "/manifests/" + re.escape(tag) + r"\?ns=" + re.escape(registry) + "$")
field = re.compile(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S+)')
with open(log, "rb") as lines:
    lines.seek(int(offset))
    for line in lines.read().decode("utf-8", "replace").splitlines():
        if 'msg="response completed"' not in line:
            continue
        values = {key: json.loads(value) if value.startswith('"') else value for key, value in field.findall(line)}
        whole, fraction = re.match(r"(\S+?)(?:\.(\d+))?Z$", values["time"]).groups()
        at = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (fraction or "0"))
        if (float(after) < at < float(before) and values.get("http.request.useragent") == agent
                and manifest.match(values.get("http.request.uri", ""))):
            print(f'{values["http.request.method"]} {values["http.request.uri"]} {values["http.response.status"]},'
                  f' +{at - float(started):.1f} s')
PY
}
# The rollout's summary play (configure-mirror.yml) as it printed it: "NODE<tab>its line" per node.
rollout_summary() {
    python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
task = text.rindex("TASK [Show how long each batch took")
summary = json.JSONDecoder().raw_decode(text, text.index("=> {", task) + 3)[0]["msg"]
for node, line in summary["nodes"].items():
    print(f"{node}\t{line}")
PY
}

log_offset=$(stat -c %s "$TESTBED_REGISTRY_LOG")
run_started=$(date +%s.%N)
say "ansible-playbook playbooks/configure-mirror.yml -i $work/inventory.yml -e @examples/cluster.json"
ansible-playbook playbooks/configure-mirror.yml -i "$work/inventory.yml" -e @examples/cluster.json |
    tee "$work/configure-mirror.log"
run_ended=$(date +%s.%N)

say "Pulling $image_to_pull on each node through the CRI, as kubelet would (crictl rmi, then pull)"
pulled=()   # per node: its pull's output, then the mirror's requests during it
for node in "${nodes[@]}"; do
    podman exec "$node" "${crictl[@]}" rmi "$image_to_pull" >/dev/null 2>&1 || true
    offset=$(stat -c %s "$TESTBED_REGISTRY_LOG") since=$(date +%s.%N)
    out=$(podman exec "$node" timeout 120 "${crictl[@]}" pull "$image_to_pull" 2>&1) || true
    agent="containerd/$(podman exec "$node" "${crictl[@]}" version | awk '$1 == "RuntimeVersion:" {print $2}')"
    seen=$(requests "$TESTBED_REGISTRY_LOG" "$offset" "$since" "$(date +%s.%N)" "$agent" "$image_to_pull" |
        paste -sd ';' - | sed 's/;/; /g')
    pulled+=("$out; the mirror's access log: ${seen:-no request for it from $agent}")
    echo "$node: $out"
done

say "Summary"
declare -A reported=()
while IFS=$'\t' read -r node line; do reported[$node]=$line; done < <(rollout_summary "$work/configure-mirror.log")
for i in "${!nodes[@]}"; do
    node=${nodes[i]}
    agent="containerd/$(podman exec "$node" "${crictl[@]}" version | awk '$1 == "RuntimeVersion:" {print $2}')"
    events=$(podman exec "$node" cat /var/log/pf9-fake/events.log)
    # The node's restart (containerd started again) to the next node's first event: its rollout's pulls.
    restarted=$(awk -F'\t' '$2 == "containerd" && $3 == "start" {t = $1} END {print t}' <<<"$events")
    if ((i + 1 < ${#nodes[@]})); then
        until=$(podman exec "${nodes[i + 1]}" cat /var/log/pf9-fake/events.log | sort -n | awk -F'\t' 'NR == 1 {print $1}')
    else
        until=$run_ended
    fi
    report=${reported[$node]:-}
    sandbox=$(sed -n 's/.*pulled through the CRI: \(.*\)$/\1/p' <<<"$report")
    [[ $sandbox != nothing ]] || sandbox=
    echo "$node (ssh ops@127.0.0.1 -p ${ports[i]}, containerd ${agent#containerd/}):"
    echo "  the rollout's report: ${report:-none}"
    echo "  pulled through the CRI by the rollout: ${sandbox:-nothing}; the mirror's access log since its restart:"
    for image in ${sandbox//,/ }; do
        seen=$(requests "$TESTBED_REGISTRY_LOG" "$log_offset" "${restarted:-0}" "${until:-$run_ended}" "$agent" "$image")
        while IFS= read -r line; do echo "    $line"; done <<<"${seen:-no request for $image from $agent}"
    done
    echo "  pulled through the CRI after the rollout: $image_to_pull: ${pulled[i]}"
    echo "  certs.d: $(podman exec "$node" sh -c 'cd /etc/containerd/certs.d && ls -d */ | tr -d / | tr "\n" " "')"
    echo "  legacy mirrors migrated and kept aside for state=absent:" \
        "$(podman exec "$node" sh -c 'cd /etc/containerd/certs.d && ls -d */hosts.toml.before-kubenode 2>/dev/null | cut -d/ -f1 | tr "\n" " "')"
    echo "  config.toml backup: $(podman exec "$node" sh -c 'ls /etc/containerd/config.toml.*~ 2>/dev/null')"
    echo "  kube_status: $(podman exec "$node" python3 -c 'import json, time
s = json.load(open("/var/opt/pf9/kube_status"))
print("node state", s["pf9_kube_node_state"] + ", checked", round(time.time() - s["status_check_timestamp"]), "s ago")')"
    echo "  what happened to its agents (seconds after the run started, unit, action, user):"
    podman exec "$node" cat /var/log/pf9-fake/events.log |
        awk -F'\t' -v t0="$run_started" '{ printf "    %6.1f  %-16s %-14s %s\n", $1 - t0, $2, $3, $4 }'
done
