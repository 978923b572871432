#!/usr/bin/env bash
# The whole job on a local test bed: two systemd nodes running containerd and PMK
# agent stand-ins, a TLS + basic-auth registry mirror on 127.0.0.1, and
# playbooks/configure-mirror.yml run against them with examples/cluster.json.
# Fresh Debian 12, as root. KEEP=1 keeps the test bed running afterwards.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
nodes=(kubenode-demo-node1 kubenode-demo-node2)
work=/tmp/kubenode-demo
image_to_pull=docker.io/library/tiny:1

say() { printf '\n== %s\n' "$*"; }
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        say "Kept the test bed. Remove it with:"
        echo "   CONTAINERS_CONF=$repo/testbed/containers.conf podman rm -f ${nodes[*]}; bash testbed/registry.sh stop"
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
for node in "${nodes[@]}"; do
    podman rm -f "$node" >/dev/null 2>&1 || true
    podman run -d --name "$node" --privileged --network host --systemd=always "$image" /sbin/init >/dev/null
done
for node in "${nodes[@]}"; do
    for _ in $(seq 60); do
        [[ $(podman exec "$node" systemctl is-system-running 2>/dev/null) == running ]] && break
        sleep 1
    done
done
cat > "$work/inventory.yml" <<INVENTORY
all:
  vars:
    ansible_connection: containers.podman.podman
  hosts:
$(for node in "${nodes[@]}"; do echo "    $node: {}"; done)
INVENTORY

say "ansible-playbook playbooks/configure-mirror.yml -i $work/inventory.yml -e @examples/cluster.json"
ansible-playbook playbooks/configure-mirror.yml -i "$work/inventory.yml" -e @examples/cluster.json \
    -e containerd_mirror_verify_image="$image_to_pull"

say "Summary"
for node in "${nodes[@]}"; do
    echo "$node:"
    echo "  certs.d: $(podman exec "$node" sh -c 'cd /etc/containerd/certs.d && ls -d */ | tr -d / | tr "\n" " "')"
    echo "  pulled through the mirror: $(podman exec "$node" ctr -n k8s.io images ls -q | grep -x "$image_to_pull")"
    echo "  PMK agents: $(podman exec "$node" cut -f2,3 /var/log/pf9-fake/events.log | tail -n 4 | tr '\t' ' ' | paste -sd, -)"
done
