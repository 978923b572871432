"""The benchmark on the test bed: real nodes (podman containers with systemd, containerd and the PMK agent
stand-ins, testbed/README.md), reached over SSH as ops with sudo, as an operator reaches a cluster.

- bench_testbed: ours against the baseline on 1 master + 4 workers, first apply and re-run;
- bench_rollout: ours' rollout time with worker batches of 1 and of 2, every node restarting in a fixed
  window (the stand-ins' slow-start fault switch), and each node's restart window as its event log shows it.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

import yaml
from check import BenchError, check_rollout, check_run, compare_trees, expected_batches, node_batches
from run import PHASES, PLAYBOOKS, ROOT, SIDES, summarise

PREFIX = "kubenode-bench-"  # every podman container the benchmark starts, and removes, is named so
MASTERS = [f"{PREFIX}master1"]
WORKERS = [f"{PREFIX}worker{index}" for index in range(1, 5)]
CLUSTER_FILE = ROOT / "examples" / "cluster.json"
# PMK cluster API fields -> the role's variables (what the first play of configure-mirror.yml does), for the
# baseline, which reads only the role's variables.
CLUSTER_FIELDS = {
    "customRegistryUrl": "containerd_mirror_url",
    "customRegistryRepoPath": "containerd_mirror_repo_path",
    "customRegistryUsername": "containerd_mirror_username",
    "customRegistryPassword": "containerd_mirror_password",
    "customRegistrySkipTls": "containerd_mirror_skip_tls",
    "customRegistrySelfSignedCerts": "containerd_mirror_self_signed_certs",
    "customRegistryCertPath": "containerd_mirror_cert_path",
}
# What ours changes on a node as shipped, and how it restarts it (the playbook's defaults).
FIRST_CHANGES = ("ca", "certs.d", "config.toml")
RESTART = "pmk"
NODE_BOOT_SECONDS = 90
EVENTS_LOG = "/var/log/pf9-fake/events.log"


class Nodes:
    """The test bed's nodes: started fresh from the node image for each measurement, removed at the end."""

    def __init__(self, scratch, log):
        if os.geteuid() != 0 or shutil.which("podman") is None:
            raise BenchError("--testbed needs root and podman (see testbed/README.md)")
        self.scratch, self.log = scratch, log
        self.env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "testbed" / "containers.conf"))
        self.names = MASTERS + WORKERS
        # The registry mirror and its CA server (idempotent; left running for the other users of the test bed).
        subprocess.run(["bash", str(ROOT / "testbed" / "registry.sh"), "start"], check=True, env=self.env,
                       stdout=subprocess.DEVNULL)
        built = subprocess.run(["bash", str(ROOT / "testbed" / "build-node-image.sh")], check=True, env=self.env,
                               capture_output=True, text=True)
        self.image = built.stdout.split()[-1]
        self.key = scratch / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{PREFIX}ops", "-f", str(self.key)],
                       check=True)
        cluster = json.loads(CLUSTER_FILE.read_text())
        self.settings = {CLUSTER_FIELDS[field]: value for field, value in cluster.items() if field in CLUSTER_FIELDS}
        self.mirror_directory = cluster["customRegistryUrl"].split("://", 1)[1]

    def podman(self, *args, check=True, stdin=None):
        done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False, env=self.env,
                              input=stdin)
        if check and done.returncode != 0:
            raise BenchError(f"test bed: podman {' '.join(args[:3])} ... exited {done.returncode}: "
                             f"{done.stderr.strip()[-1000:]}")
        return done

    def fresh(self, slow_start=None):
        """Start every node anew from the image, healthy, its event log empty, ops let in over SSH; with
        slow_start, its start phases then take that many seconds more. Return the inventory's path."""
        self.remove()
        for name in self.names:
            self.podman("run", "-d", "--name", name, "--privileged", "--network", "host", "--systemd=always",
                        self.image, "/sbin/init")
        ports = {}
        for name in self.names:
            self.wait_healthy(name)
            switch = f"echo {int(slow_start)} > /etc/pf9-fake/slow-start" if slow_start else "true"
            self.podman("exec", name, "sh", "-c", f": > {EVENTS_LOG} && {switch}")
            enabled = self.podman("exec", "-i", name, "testbed-ssh-enable", stdin=self.key.with_suffix(".pub")
                                  .read_text())
            ports[name] = int(enabled.stdout.split()[-1])
        return self.write_inventory(ports)

    def wait_healthy(self, name):
        deadline = time.monotonic() + NODE_BOOT_SECONDS
        while time.monotonic() < deadline:
            status = self.podman("exec", name, "su", "pf9", "-s", "/bin/bash", "-c",
                                 "/opt/pf9/nodelet/nodeletd phases status", check=False)
            if status.returncode == 0:
                return
            time.sleep(1)
        raise BenchError(f"test bed: {name} was not healthy {NODE_BOOT_SECONDS} s after it started:"
                         f" {status.stdout.strip()[-500:]} {status.stderr.strip()[-500:]}")

    def write_inventory(self, ports):
        """The inventory an operator would write (examples/inventory.yml): masters and workers, SSH as ops."""
        group_vars = {
            "ansible_user": "ops",
            "ansible_ssh_private_key_file": str(self.key),
            # Each node makes a fresh host key, on a port that changes.
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": "/usr/bin/python3",
            "containerd_mirror_config_path": "/etc/containerd/certs.d",  # the role's default, for the baseline
            **self.settings,
        }

        def hosts(names):
            return {"hosts": {name: {"ansible_host": "127.0.0.1", "ansible_port": ports[name]} for name in names}}

        inventory = self.scratch / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"vars": group_vars, "children": {
            "masters": hosts(MASTERS), "workers": hosts(WORKERS)}}}, sort_keys=False))
        return inventory

    def events(self, name):
        """[(epoch seconds, component, action)] of the node's event log, in time order."""
        text = self.podman("exec", name, "cat", EVENTS_LOG).stdout
        found = []
        for line in text.splitlines():
            stamp, component, action, *_user = line.split("\t")
            found.append((float(stamp), component, action))
        return sorted(found)

    def tree(self, name):
        """{relative path: (kind, mode, bytes)} of the hosts.toml files in a node's /etc/containerd/certs.d."""
        done = subprocess.run(["podman", "exec", name, "tar", "-C", "/etc/containerd/certs.d", "-cf", "-", "."],
                              capture_output=True, check=True, env=self.env)
        tree = {}
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith("/hosts.toml"):
                    tree[member.name.removeprefix("./")] = ("file", oct(member.mode),
                                                            archive.extractfile(member).read())
        return tree

    def expected_files(self):
        return {f"{self.mirror_directory}/hosts.toml"} | {
            f"{registry}/hosts.toml" for registry in ("platform9.io", "docker.io", "gcr.io", "quay.io",
                                                      "registry.k8s.io")}

    def remove(self):
        for name in self.names:
            self.podman("rm", "-f", "-t", "0", name, check=False)


def bench_testbed(runner, nodes, repeats, health_interval, log):
    """Ours against the baseline on fresh nodes, first apply and re-run, one node at a time for both
    (the playbooks' default batch); return the run records."""
    extra = {"ours": ["-e", f"@{CLUSTER_FILE}", "-e", f"containerd_mirror_health_interval={health_interval}"],
             "baseline": []}
    records = []
    for repeat in range(repeats):
        trees = {}
        for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
            inventory = nodes.fresh()
            for phase in PHASES:
                label = f"testbed-r{repeat}-{side}-{phase}"
                document, wall = runner.run(label, PLAYBOOKS[side], inventory, *extra[side])
                check_run(label, side, phase, document, nodes.names, FIRST_CHANGES, RESTART)
                records.append({"where": "testbed", "n": len(nodes.names), "repeat": repeat, "side": side,
                                "phase": phase, **summarise(document, wall, nodes.names)})
                log(f"{label}: {wall:.2f} s, {records[-1]['module_runs']['per_node']} module runs per node")
            trees[side] = {name: nodes.tree(name) for name in nodes.names}
        for name in nodes.names:
            compare_trees(f"testbed-r{repeat} {name}", trees["ours"][name], trees["baseline"][name],
                          nodes.expected_files())
        log(f"testbed-r{repeat}: both sides wrote identical hosts.toml files on all {len(nodes.names)} nodes")
    return records


def restart_span(happened):
    """(epoch of pf9-hostagent stop, of nodeletd-daemon healthy) from a node's events: its restart window."""
    stops = [stamp for stamp, component, action in happened if (component, action) == ("pf9-hostagent", "stop")]
    healthy = [stamp for stamp, component, action in happened if (component, action) == ("nodeletd-daemon", "healthy")]
    return min(stops), max(healthy)


def batch_timeline(tier, hosts, duration, spans):
    """A batch's time split: before its first node stopped, its restart window, after its last node was healthy."""
    start, end = (datetime.datetime.fromisoformat(duration[key]).timestamp() for key in ("start", "end"))
    stop, healthy = min(spans[host][0] for host in hosts), max(spans[host][1] for host in hosts)
    return {"tier": tier, "hosts": hosts, "seconds": end - start, "before": stop - start, "window": healthy - stop,
            "after": end - healthy}


def bench_rollout(runner, nodes, batches, slow_start, repeats, health_interval, log):
    """Ours' first apply on fresh nodes that come back slow_start seconds later than they would, with each
    worker batch size; return the run records (wall time, each batch's time, each node's restart window)."""
    records = []
    for repeat in range(repeats):
        for batch in batches if repeat % 2 == 0 else batches[::-1]:
            label = f"rollout-r{repeat}-batch{batch}"
            inventory = nodes.fresh(slow_start)
            document, wall = runner.run(label, PLAYBOOKS["ours"], inventory, "-e", f"@{CLUSTER_FILE}",
                                        "-e", f"containerd_mirror_worker_batch={batch}",
                                        "-e", f"containerd_mirror_health_interval={health_interval}")
            check_run(label, "ours", "first", document, nodes.names, FIRST_CHANGES, RESTART)
            ran = node_batches(document)
            events = {name: nodes.events(name) for name in nodes.names}
            check_rollout(label, [(tier, hosts) for tier, hosts, _duration in ran],
                          expected_batches(MASTERS, WORKERS, batch),
                          {host: [event[1:] for event in happened] for host, happened in events.items()})
            spans = {host: restart_span(happened) for host, happened in events.items()}
            records.append({
                "where": "rollout", "batch": batch, "repeat": repeat, "masters": len(MASTERS),
                "workers": len(WORKERS), "slow_start": slow_start, **summarise(document, wall, nodes.names),
                "batches": [batch_timeline(tier, hosts, duration, spans) for tier, hosts, duration in ran],
                "windows": {host: healthy - stop for host, (stop, healthy) in spans.items()},
            })
            log(f"{label}: {wall:.2f} s in {len(ran)} batches; restart windows "
                + ", ".join(f"{seconds:.1f}" for seconds in records[-1]["windows"].values()) + " s")
    return records
