"""playbooks/configure-mirror.yml in the execution environment image, run the way AWX runs a job.

AWX hands a job to ansible-runner as a private data directory (project, inventory, extra
vars, the machine credential's SSH key), streams it with `ansible-runner transmit` to
`ansible-runner worker` inside the EE container, and turns the results streamed back into
artifacts and job events with `ansible-runner process`. This test does exactly that against
two test bed nodes reached over SSH as the unprivileged operator `ops` (with become, as the
playbook says), with the extra vars of examples/cluster.json (a PMK cluster API body), then
checks the job's events and the nodes. Every pull that proves the mirror goes through containerd's
CRI with PMK's crictl, as kubelet pulls, and is found in the mirror's access log: the rollout's own
(each node's sandbox image, the role's default) and one more per node after the job.

Needs root, podman, the test bed's registry and node image, and the EE image: `bash
scripts/test.sh ee` provides them all and sets KUBENODE_EE_IMAGE; without it the test is
skipped.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EE_IMAGE = os.environ.get("KUBENODE_EE_IMAGE", "")
NODE_IMAGE = os.environ.get("KUBENODE_NODE_IMAGE", "localhost/kubenode-node:latest")
NODES = ["kubenode-ee-node1", "kubenode-ee-node2"]
COLLECTION_IN_EE = "/usr/share/ansible/collections/ansible_collections/kubenode/registry_mirror/"
CLUSTER = json.loads((ROOT / "examples" / "cluster.json").read_text())
MIRROR = CLUSTER["customRegistryUrl"].rstrip("/")
REPO_PATH = CLUSTER["customRegistryRepoPath"].strip("/")
# The mirror's access log (testbed/registry.sh env: TESTBED_REGISTRY_LOG).
REGISTRY_LOG = Path(os.environ.get("TESTBED_STATE") or "/tmp/kubenode-testbed") / "registry.log"
# PMK's CRI client on the node (the test bed's stand-in) and containerd's CRI socket, as nodelet calls it.
CRICTL = ["/opt/pf9/pf9-kube/bin/crictl", "-r", "unix:///run/containerd/containerd.sock"]
SANDBOX_IMAGE = "registry.k8s.io/pause:3.6"  # the stock config.toml's sandbox_image: what the role verifies

pytestmark = pytest.mark.skipif(not EE_IMAGE, reason="needs the EE image: run `bash scripts/test.sh ee`")


def podman(*args, check=True, timeout=120, **kwargs):
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "testbed" / "containers.conf"))
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=timeout,
                          check=False, **kwargs)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def log_requests(offset):
    """The mirror's access log after offset bytes: time (epoch seconds), method, uri, agent, status per request."""
    field = re.compile(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S+)')
    with REGISTRY_LOG.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", "replace").splitlines()
    requests = []
    for line in lines:
        if 'msg="response completed"' not in line:
            continue
        values = {key: json.loads(value) if value.startswith('"') else value for key, value in field.findall(line)}
        whole, fraction = re.match(r"(\S+?)(?:\.(\d+))?Z$", values["time"]).groups()
        requests.append({
            "time": calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (fraction or "0")),
            **{key: values.get("http." + source) for key, source in (
                ("method", "request.method"), ("uri", "request.uri"), ("agent", "request.useragent"),
                ("status", "response.status"))},
        })
    return requests


def manifest_requests(requests, image, agent, after, before):
    """Those of requests that fetched image's manifest by its tag through the mirror's repo path, by agent, 200."""
    registry, rest = image.split("/", 1)
    path, tag = rest.rsplit(":", 1)
    uri = f"/v2/{REPO_PATH}/{path}/manifests/{tag}?ns={registry}"
    return [request for request in requests if request["uri"] == uri and request["agent"] == agent
            and request["status"] == "200" and after < request["time"] < before]


def agent_of(node):
    """The node's containerd, as the access log names it: containerd/<crictl version's RuntimeVersion>."""
    version = podman("exec", node, *CRICTL, "version").stdout
    return "containerd/" + re.search(r"^RuntimeVersion:\s+(\S+)", version, re.M).group(1)


def event_times(node):
    """The node's agent events: (epoch seconds, component, action) in order."""
    lines = podman("exec", node, "cat", "/var/log/pf9-fake/events.log").stdout.splitlines()
    return sorted((float(t), component, action) for t, component, action, _user in
                  (line.split("\t") for line in lines if line))


def ssh_key_pair(directory):
    """An ed25519 key pair in OpenSSH format, made with cryptography (ansible-core's dependency)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path = directory / "id_ed25519"
    path.write_bytes(private)
    path.chmod(0o600)
    return path, public + b" kubenode-ee-test\n"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """Two healthy stock-PMK test bed nodes with sshd for ops on their own 127.0.0.1 ports: name -> port."""
    keys = tmp_path_factory.mktemp("ssh")
    private_key, public_key = ssh_key_pair(keys)
    podman("rm", "-f", *NODES)
    ports = {}
    try:
        for node in NODES:
            podman("run", "-d", "--name", node, "--privileged", "--network", "host", "--systemd=always",
                   NODE_IMAGE, "/sbin/init")
        for node in NODES:
            # Like a booted PMK node: hostagent starts nodeletd, which brings containerd and kubelet up.
            deadline = time.monotonic() + 90
            while podman("exec", node, "su", "pf9", "-s", "/bin/bash", "-c",
                         "/opt/pf9/nodelet/nodeletd phases status", check=False).returncode != 0:
                assert time.monotonic() < deadline, f"{node} did not become healthy"
                time.sleep(1)
            podman("exec", node, "sh", "-c", ": > /var/log/pf9-fake/events.log")
            enabled = podman("exec", "-i", node, "testbed-ssh-enable", input=public_key.decode())
            ports[node] = int(enabled.stdout.strip().splitlines()[-1])
        yield {"ports": ports, "private_key": private_key}
    finally:
        podman("rm", "-f", *NODES, check=False)


@pytest.fixture(scope="module")
def log_offset(nodes):
    """The size of the mirror's access log before the job: what the job's pulls add comes after it."""
    return REGISTRY_LOG.stat().st_size


@pytest.fixture(scope="module")
def job(nodes, log_offset, tmp_path_factory):
    """Run the job: transmit | podman run EE ansible-runner worker | process. Returns the artifacts dir."""
    base = tmp_path_factory.mktemp("awx-job")
    private_data = base / "private_data_dir"
    # The project: this repository's playbooks only. The collection must come from the image.
    shutil.copytree(ROOT / "playbooks", private_data / "project" / "playbooks")
    (private_data / "inventory").mkdir(parents=True)
    (private_data / "inventory" / "hosts.yml").write_text(json.dumps({"all": {
        "vars": {
            "ansible_host": "127.0.0.1",
            "ansible_user": "ops",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        },
        "hosts": {node: {"ansible_port": port} for node, port in nodes["ports"].items()},
    }}, indent=1))
    (private_data / "env").mkdir()
    # The job template's extra vars: the PMK cluster API body, as is.
    shutil.copy(ROOT / "examples" / "cluster.json", private_data / "env" / "extravars")
    # The machine credential: ansible-runner loads it into an ssh-agent in the EE.
    shutil.copy(nodes["private_key"], private_data / "env" / "ssh_key")

    processed = base / "processed"
    transmit = subprocess.Popen(
        [str(BIN / "ansible-runner"), "transmit", str(private_data), "-p", "playbooks/configure-mirror.yml"],
        stdout=subprocess.PIPE)
    worker = subprocess.Popen(
        ["podman", "run", "--rm", "-i", "--network", "host", "--pull=never", EE_IMAGE,
         "ansible-runner", "worker", "--private-data-dir=/runner"],
        stdin=transmit.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, CONTAINERS_CONF=str(ROOT / "testbed" / "containers.conf")))
    transmit.stdout.close()
    process = subprocess.run([str(BIN / "ansible-runner"), "process", str(processed)], stdin=worker.stdout,
                             capture_output=True, text=True, timeout=1200, check=False)
    worker.stdout.close()
    worker_stderr = worker.stderr.read().decode(errors="replace")
    assert transmit.wait(timeout=60) == 0
    assert worker.wait(timeout=60) == 0, worker_stderr
    artifacts = processed / "artifacts"
    assert (artifacts / "status").read_text() == "successful", process.stdout + process.stderr + worker_stderr
    assert (artifacts / "rc").read_text() == "0"
    assert process.returncode == 0, process.stdout + process.stderr
    return artifacts


def events_of(artifacts):
    paths = (artifacts / "job_events").glob("*.json")
    return [json.loads(path.read_text()) for path in sorted(paths, key=lambda p: int(p.name.split("-", 1)[0]))]


def test_job_events(job):
    events = events_of(job)
    names = [event["event"] for event in events if event["event"] != "verbose"]  # verbose: ssh-add's output
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert "runner_on_failed" not in names and "runner_on_unreachable" not in names

    stats = events[-1]["event_data"]
    assert stats["failures"] == {} and stats["dark"] == {}
    assert set(stats["ok"]) == set(NODES)
    assert set(stats["changed"]) == set(NODES)  # stock nodes: migrated, files written, agents restarted

    # The role ran from the collection installed in the image, not from any checkout.
    # (The argument spec check ansible-core adds to a role names the play's line as its path.)
    role_tasks = [event["event_data"] for event in events
                  if event["event"] == "runner_on_ok" and event["event_data"].get("role") == "containerd_mirror"
                  and event["event_data"]["task_action"] != "ansible.builtin.validate_argument_spec"]
    assert len(role_tasks) > 10
    assert all(data["task_path"].startswith(COLLECTION_IN_EE) for data in role_tasks), \
        {data["task_path"] for data in role_tasks}
    # Each node was restarted and healthy again, one after the other (serial: 1).
    restarts = [event["event_data"]["host"] for event in events if event["event"] == "runner_on_ok"
                and event["event_data"]["task_action"] == "kubenode.registry_mirror.node_restart"
                and event["event_data"]["res"].get("changed")]
    assert restarts == NODES
    # Then each node's sandbox image pulled through containerd's CRI (the role's default verify image).
    pulls = {event["event_data"]["host"]: event["event_data"]["res"] for event in events
             if event["event"] == "runner_on_ok"
             and event["event_data"]["task_action"] == "kubenode.registry_mirror.cri_pull"}
    assert set(pulls) == set(NODES)
    for res in pulls.values():
        assert res["method"] == "cri" and res["verified"], res
        assert [(pull["image"], pull["ok"]) for pull in res["pulls"]] == [(SANDBOX_IMAGE, True)], res
    # The rollout's summary says so, per node.
    summary = [event["event_data"]["res"]["msg"] for event in events if event["event"] == "runner_on_ok"
               and event["event_data"]["task"].startswith("Show how long each batch took")]
    assert len(summary) == 1
    assert {node: line.rpartition("; ")[2] for node, line in summary[0]["nodes"].items()} == \
        {node: f"pulled through the CRI: {SANDBOX_IMAGE}" for node in NODES}


def test_no_secret_in_artifacts(job):
    for path in job.rglob("*"):
        if path.is_file():
            assert CLUSTER["customRegistryPassword"] not in path.read_text(errors="replace"), path


def test_rollout_pulled_each_sandbox_image_through_the_mirror(job, log_offset):
    """The access log shows each node's containerd fetching its sandbox image's manifest after its restart."""
    requests = log_requests(log_offset)
    for index, node in enumerate(NODES):
        events = event_times(node)
        restarted = [at for at, component, action in events if (component, action) == ("containerd", "start")]
        assert restarted, events
        # one node after the other: the next node's first event ends this node's part of the rollout
        until = event_times(NODES[index + 1])[0][0] if index + 1 < len(NODES) else time.time()
        assert manifest_requests(requests, SANDBOX_IMAGE, agent_of(node), restarted[-1], until), \
            [request for request in requests if "/manifests/" in request["uri"]]


def test_nodes_use_the_mirror(job):
    endpoint = f"{MIRROR}/v2/{REPO_PATH}"
    for node in NODES:
        hosts_toml = podman("exec", node, "cat", "/etc/containerd/certs.d/docker.io/hosts.toml").stdout
        assert f'[host."{endpoint}"]' in hosts_toml
        config = podman("exec", node, "cat", "/etc/containerd/config.toml").stdout
        assert 'config_path = "/etc/containerd/certs.d"' in config
        # healthy again after the restart, and its agents went through PMK's sequence
        podman("exec", node, "su", "pf9", "-s", "/bin/bash", "-c", "/opt/pf9/nodelet/nodeletd phases status")
        events = podman("exec", node, "cat", "/var/log/pf9-fake/events.log").stdout
        assert "pf9-hostagent\tstop\troot" in events and "nodeletd\tphases-stop\tpf9" in events
        # no internet in the node: a pull through the CRI, as kubelet pulls, can only come through the mirror
        image = "docker.io/library/tiny:1"
        podman("exec", node, *CRICTL, "rmi", image, check=False)
        offset, since = REGISTRY_LOG.stat().st_size, time.time()
        pulled = podman("exec", node, "timeout", "120", *CRICTL, "pull", image, timeout=150)
        assert pulled.stdout.startswith("Image is up to date for sha256:"), pulled.stdout
        assert manifest_requests(log_requests(offset), image, agent_of(node), since, time.time()), \
            log_requests(offset)


def test_image_documents_every_plugin():
    """ansible-doc in the image lists this checkout's modules and filters, from the installed collection."""
    listed = {}
    for plugin_type, directory, pattern in (("module", "modules", "*.py"), ("filter", "filter", "*.yml")):
        done = podman("run", "--rm", "--pull=never", EE_IMAGE, "ansible-doc", "--json", "-l", "-t", plugin_type,
                      "kubenode.registry_mirror")
        listed[plugin_type] = sorted(name.rpartition(".")[2] for name in json.loads(done.stdout))
        assert listed[plugin_type] == sorted(path.stem for path in (ROOT / "plugins" / directory).glob(pattern)
                                             if not path.stem.startswith("_"))
    done = podman("run", "--rm", "--pull=never", EE_IMAGE, "ansible-galaxy", "collection", "list",
                  "kubenode.registry_mirror", "--format", "json")
    installed = json.loads(done.stdout)
    assert list(installed) == ["/usr/share/ansible/collections/ansible_collections"]
