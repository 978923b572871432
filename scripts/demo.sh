#!/usr/bin/env bash
# The whole job on a local test bed: two systemd nodes running containerd and PMK
# agent stand-ins, a TLS + basic-auth registry mirror on 127.0.0.1, and
# playbooks/configure-mirror.yml run against them with examples/cluster.json.
# The nodes behave like stock PMK nodes (legacy mirrors in config.toml, a node agent that
# brings the stack back after the restart). The playbook reaches them as an operator would:
# over SSH as the unprivileged user ops (a key made here, in $work) and sudo.
# Fresh Debian 12, as root. KEEP=1 keeps the test bed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
nodes=(kubenode-demo-node1 kubenode-demo-node2)
work=/tmp/kubenode-demo
image_to_pull=docker.io/library/tiny:1
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

run_started=$(date +%s.%N)
say "ansible-playbook playbooks/configure-mirror.yml -i $work/inventory.yml -e @examples/cluster.json"
ansible-playbook playbooks/configure-mirror.yml -i "$work/inventory.yml" -e @examples/cluster.json \
    -e containerd_mirror_verify_image="$image_to_pull"

say "Summary"
for i in "${!nodes[@]}"; do
    node=${nodes[i]}
    echo "$node (ssh ops@127.0.0.1 -p ${ports[i]}):"
    echo "  certs.d: $(podman exec "$node" sh -c 'cd /etc/containerd/certs.d && ls -d */ | tr -d / | tr "\n" " "')"
    echo "  legacy mirrors migrated and kept aside for state=absent:" \
        "$(podman exec "$node" sh -c 'cd /etc/containerd/certs.d && ls -d */hosts.toml.before-kubenode 2>/dev/null | cut -d/ -f1 | tr "\n" " "')"
    echo "  config.toml backup: $(podman exec "$node" sh -c 'ls /etc/containerd/config.toml.*~ 2>/dev/null')"
    echo "  pulled through the mirror: $(podman exec "$node" ctr -n k8s.io images ls -q | grep -x "$image_to_pull")"
    echo "  kube_status: $(podman exec "$node" python3 -c 'import json, time
s = json.load(open("/var/opt/pf9/kube_status"))
print("node state", s["pf9_kube_node_state"] + ", checked", round(time.time() - s["status_check_timestamp"]), "s ago")')"
    echo "  what happened to its agents (seconds after the run started, unit, action, user):"
    podman exec "$node" cat /var/log/pf9-fake/events.log |
        awk -F'\t' -v t0="$run_started" '{ printf "    %6.1f  %-16s %-14s %s\n", $1 - t0, $2, $3, $4 }'
done
