"""Never a node left down: a rollout interrupted mid-drain, or run twice at once (issue 21).

Each test starts two stock-PMK test bed nodes, reached over SSH as the unprivileged operator `ops` with
become, as an operator's controller reaches them, gives node 1 a slow drain (`/etc/pf9-fake/slow-drain`:
`phases stop` drains DRAIN seconds before it stops anything), and runs `ansible-playbook
playbooks/configure-mirror.yml -e @examples/cluster.json` as a process of its own (its own process group,
its own ANSIBLE_HOME, so its own SSH connections). Then, while node 1 drains:

- SIGINT to the playbook's process group (Ctrl-C), SIGKILL to it (a cancelled or killed job), or the
  node's sshd session of ops killed (the SSH connection cut): node 1 brings itself back with no further
  run, within the deadlines below, proven from the node's event log; node 2 is not touched; a re-run
  completes the rollout (and says what it found unfinished on node 1); a third run changes nothing.
- A second run started while the first drains node 1: on each node the restart sequences come one after
  the other (the next only once the node is healthy again), never interleaved; both runs end with every
  node healthy; a run that gave up says that another run held the node.

Deadlines are proven from the node's own clock (its event log), never from a process's wall time: the
machine may be slow. Needs root, podman, the test bed's registry (`bash testbed/registry.sh start`) and
its node image: `KUBENODE_NODE_IMAGE=$(bash testbed/build-node-image.sh | tail -n 1) pytest tests/testbed`.
Without KUBENODE_NODE_IMAGE the tests are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NODE_IMAGE = os.environ.get("KUBENODE_NODE_IMAGE", "")
RESTART_TASK = "Restart what reads the configuration and wait until the node is healthy again"

# node 1's drain, in seconds: `phases stop` waits this long before it stops anything.
DRAIN = 15
# After the drain ends, node 1 starts pf9-hostagent again within AGENT_BACK seconds and is healthy
# (nodeletd's daemon says so, kube_status rewritten "ok") within HEALTHY_BACK seconds, by the node's clock.
# The restart unit starts pf9-hostagent as soon as `phases stop` returns: the rest is containerd's stop
# and the test bed agents' own delays (hostagent starts nodeletd 2 s later, which checks every 3 s).
AGENT_BACK = 30
HEALTHY_BACK = 90

pytestmark = pytest.mark.skipif(
    not NODE_IMAGE,
    reason="needs the test bed: KUBENODE_NODE_IMAGE=$(bash testbed/build-node-image.sh | tail -n 1) "
    "pytest tests/testbed",
)


def podman(*args, check=True, timeout=120, **kwargs):
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "testbed" / "containers.conf"))
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=timeout,
                          check=False, **kwargs)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


class Node:
    def __init__(self, name):
        self.name = name
        self.port = None

    def sh(self, script, check=True, timeout=60):
        return podman("exec", self.name, "sh", "-c", script, check=check, timeout=timeout)

    def events(self):
        """The event log: (time, component, action, user), in time order."""
        rows = []
        for line in self.sh("cat /var/log/pf9-fake/events.log").stdout.splitlines():
            fields = line.split("\t")
            if len(fields) == 4:
                rows.append((float(fields[0]), fields[1], fields[2], fields[3]))
        return sorted(rows)

    def event_time(self, component, action, after=0.0):
        times = [t for t, c, a, _u in self.events() if (c, a) == (component, action) and t > after]
        return times[0] if times else None

    def healthy_since(self, since):
        """pf9-hostagent active, `phases status` passes, kube_status "ok" rewritten at or after `since`."""
        if self.sh("systemctl is-active pf9-hostagent", check=False).stdout.strip() != "active":
            return False
        if self.sh("su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases status'", check=False).returncode:
            return False
        try:
            status = json.loads(self.sh("cat /var/opt/pf9/kube_status").stdout)
        except ValueError:
            return False
        return status.get("pf9_kube_node_state") == "ok" and status.get("status_check_timestamp", 0) >= int(since)

    def wait_healthy(self, since, timeout=300):
        deadline = time.monotonic() + timeout
        while not self.healthy_since(since):
            assert time.monotonic() < deadline, f"{self.name}: not healthy since {since}: {self.events()}"
            time.sleep(1)

    def marker(self):
        done = self.sh("cat /var/lib/kubenode-registry-mirror.restart-pending", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def configured(self):
        config = self.sh("cat /etc/containerd/config.toml").stdout
        hosts = self.sh("cat /etc/containerd/certs.d/docker.io/hosts.toml", check=False).stdout
        return 'config_path = "/etc/containerd/certs.d"' in config and "127.0.0.1:15443" in hosts


def restart_sequences(events):
    """The node's restart sequences in order, as (hostagent stop, hostagent start, healthy) times.

    Fails when two interleave: a sequence starts (pf9-hostagent stop) or runs `phases stop` before the one
    before it has ended, which is when nodeletd's daemon says the node is healthy again; or `phases stop`
    was refused because the agents ran.
    """
    sequences, current = [], None
    for when, component, action, _user in events:
        event = (component, action)
        assert action not in ("phases-stop-refused", "phases-start-refused"), f"{event} at {when}: {events}"
        if event == ("pf9-hostagent", "stop"):
            assert current is None, f"a restart began at {when} while the one of {current[0]} ran: {events}"
            current = [when, None, None, 0]
        elif event == ("nodeletd", "phases-stop"):
            assert current is not None and current[1] is None and current[3] == 0, \
                f"phases stop at {when} outside a sequence of its own: {events}"
            current[3] += 1
        elif event == ("pf9-hostagent", "start") and current is not None:
            current[1] = when
        elif event == ("nodeletd-daemon", "healthy") and current is not None and current[1] is not None:
            current[2] = when
            sequences.append(tuple(current[:3]))
            current = None
    assert current is None, f"a restart that never ended (began at {current[0]}): {events}"
    return sequences


@pytest.fixture
def testbed(tmp_path):
    """Two healthy stock-PMK nodes, ops's key in, node 1 with a slow drain; an inventory that reaches them."""
    prefix = f"kubenode-intr-{os.getpid()}-{tmp_path.name[-12:].strip('_')}".replace("_", "-")
    nodes = [Node(f"{prefix}-node1"), Node(f"{prefix}-node2")]
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubenode-intr-ops", "-f", str(key)],
                   check=True)
    try:
        for node in nodes:
            podman("run", "-d", "--name", node.name, "--privileged", "--network", "host", "--systemd=always",
                   NODE_IMAGE, "/sbin/init")
        for node in nodes:
            deadline = time.monotonic() + 120
            while node.sh("su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases status'",
                          check=False).returncode != 0:
                assert time.monotonic() < deadline, f"{node.name} did not become healthy"
                time.sleep(1)
            node.port = int(podman("exec", "-i", node.name, "testbed-ssh-enable",
                                   input=(tmp_path / "id_ed25519.pub").read_text()).stdout.split()[-1])
            node.sh(": > /var/log/pf9-fake/events.log")
        nodes[0].sh(f"echo {DRAIN} > /etc/pf9-fake/slow-drain")
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(json.dumps({"all": {
            "vars": {
                "ansible_host": "127.0.0.1",
                "ansible_user": "ops",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            },
            "hosts": {node.name: {"ansible_port": node.port} for node in nodes},
        }}, indent=1))
        yield nodes, inventory
    finally:
        podman("rm", "-f", "-t", "0", *(node.name for node in nodes), check=False)
        # Also what a run left, its SSH master connections included, now that their nodes are gone.
        while Run.started:
            Run.started.pop().reap()


class Run:
    """ansible-playbook playbooks/configure-mirror.yml as a process in its own process group."""

    started = []  # every run of the current test, reaped at its end

    def __init__(self, tmp_path, inventory, label):
        Run.started.append(self)
        self.label = label
        home = tmp_path / f"home-{label}"
        home.mkdir()
        self.stdout_path = tmp_path / f"{label}.json"
        self.stderr_path = tmp_path / f"{label}.stderr"
        # SSH's control sockets need a short path (a Unix socket's is at most 108 bytes).
        self.control_dir = tempfile.mkdtemp(prefix="kni-cp-")
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_HOME=str(home),
            ANSIBLE_SSH_CONTROL_PATH_DIR=self.control_dir,
            HOME=str(home),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_NOCOLOR="1",
            PATH=f"{BIN}:{os.environ['PATH']}",
        )
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / "configure-mirror.yml"),
                 "-i", str(inventory), "-e", f"@{ROOT / 'examples' / 'cluster.json'}",
                 "-e", "containerd_mirror_health_interval=1"],
                cwd=ROOT, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)

    def signal_group(self, signum):
        os.killpg(self.process.pid, signum)

    def wait(self, timeout=900):
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.reap()

    def reap(self):
        """Ends what is left of the run's process group; removes its SSH control sockets' directory."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=60)
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def output(self):
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def report(self):
        return json.loads(self.stdout_path.read_text())

    def results(self, task_name):
        """{host: result} of the task of that name (a role's task: "<role> : <name>"), over every play."""
        found = {}
        for play in self.report()["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"].rpartition(" : ")[2] == task_name:
                    found.update(task["hosts"])
        return found


def wait_for_drain(node, run, since):
    """Until node 1 has begun to drain (after `since`); fails if the run ends first."""
    deadline = time.monotonic() + 600
    while (began := node.event_time("nodeletd", "drain-start", since)) is None:
        assert run.process.poll() is None, f"{run.label} ended before node 1 drained: {run.output()[-3000:]}"
        assert time.monotonic() < deadline, f"node 1 never drained: {node.events()}"
        time.sleep(0.5)
    return began


def cut_ssh(node):
    """Kill the node's sshd processes of ops's sessions (the connection the playbook runs through)."""
    done = node.sh("pgrep -f '^sshd: ops'", check=False)
    pids = done.stdout.split()
    assert pids, f"{node.name}: no sshd session of ops"
    node.sh("kill -KILL " + " ".join(pids), check=False)


@pytest.mark.parametrize("interrupt", ["sigint", "sigkill", "ssh-cut"])
def test_an_interrupted_rollout_leaves_no_node_down(testbed, tmp_path, interrupt):
    (node1, node2), inventory = testbed
    since = time.time()
    run = Run(tmp_path, inventory, f"interrupted-{interrupt}")
    began = wait_for_drain(node1, run, since)
    time.sleep(3)  # well inside the drain
    assert node1.event_time("nodeletd", "drain-end", since) is None
    if interrupt == "sigint":
        run.signal_group(signal.SIGINT)
    elif interrupt == "sigkill":
        run.signal_group(signal.SIGKILL)
    else:
        cut_ssh(node1)
    rc = run.wait(timeout=600)
    assert rc != 0, run.output()[-3000:]

    # No further run: node 1 brings itself back.
    node1.wait_healthy(began)
    drained = node1.event_time("nodeletd", "drain-end", since)
    assert drained is not None and drained - began >= DRAIN - 1
    agent_back = node1.event_time("pf9-hostagent", "start", drained)
    healthy = node1.event_time("nodeletd-daemon", "healthy", drained)
    assert agent_back is not None and agent_back - drained <= AGENT_BACK, node1.events()
    assert healthy is not None and healthy - drained <= HEALTHY_BACK, node1.events()
    print(f"{interrupt}: drain {drained - began:.1f} s; after it, pf9-hostagent started in "
          f"{agent_back - drained:.1f} s, node healthy in {healthy - drained:.1f} s (node 1's clock)")
    assert [sequence[:2] for sequence in restart_sequences(node1.events())] == [
        (node1.event_time("pf9-hostagent", "stop", since), agent_back)]
    # Node 2 was not touched, and not configured.
    assert node2.events() == []
    assert not node2.configured()

    # A re-run completes the rollout: node 1 is not restarted again, node 2 is, once.
    rerun = Run(tmp_path, inventory, f"rerun-{interrupt}")
    assert rerun.wait() == 0, rerun.output()[-5000:]
    restarts = rerun.results(RESTART_TASK)
    for node in (node1, node2):
        node.wait_healthy(since, timeout=60)
        assert node.configured() and node.marker() is None
    assert len(restart_sequences(node1.events())) == 1
    assert len(restart_sequences(node2.events())) == 1
    assert restarts[node2.name]["restarted"] is True
    if node1.name in restarts and not restarts[node1.name].get("skipped"):
        # The marker was still there (the module died with the run): the re-run says what it found.
        result = restarts[node1.name]
        assert result["restarted"] is False and result["pending"] == "health", result
        assert result["recovered"].startswith("found an unfinished restart: the restart of a run that took"), \
            result["recovered"]
        assert "the node started pf9-hostagent again itself" in result["recovered"], result["recovered"]
        assert "waited for the node to be healthy again, without a new restart" in result["recovered"]
        print(f"{interrupt}: the re-run's node_restart on node 1 says: recovered: {result['recovered']}")
    else:
        print(f"{interrupt}: the interrupted run's module outlived it on node 1 and saw the node healthy itself")

    # A third run changes nothing.
    events = {node.name: node.events() for node in (node1, node2)}
    third = Run(tmp_path, inventory, f"third-{interrupt}")
    assert third.wait() == 0, third.output()[-5000:]
    stats = third.report()["stats"]
    assert all(stats[node.name]["changed"] == 0 for node in (node1, node2)), stats
    assert {node.name: node.events() for node in (node1, node2)} == events


def test_two_runs_at_once_never_interleave_their_restarts(testbed, tmp_path):
    (node1, node2), inventory = testbed
    since = time.time()
    first = Run(tmp_path, inventory, "first")
    wait_for_drain(node1, first, since)
    # By now node 1's files are written and its pending-restart marker is set.
    assert node1.marker() is not None and node1.configured()
    second = Run(tmp_path, inventory, "second")
    runs = [first, second]
    codes = [run.wait(timeout=1500) for run in runs]

    for node in (node1, node2):
        node.wait_healthy(since, timeout=120)
        assert node.configured() and node.marker() is None
        # One restart after the other, each only once the node was healthy again after the one before.
        assert restart_sequences(node.events()), f"{node.name} was never restarted: {node.events()}"
    assert codes[0] == 0, first.output()[-5000:]
    # A run that gave up says that another run held the node (and never what it raced on).
    for run, rc in zip(runs, codes, strict=True):
        if rc != 0:
            assert re.search("another run (holds|held) this node: a run that took this node at", run.output()), \
                f"{run.label}: {run.output()[-5000:]}"
    # The second run reached node 1 while the first one held it, waited, touched none of its agents (one
    # restart only), and then stopped rather than follow the first run onto node 2.
    assert len(restart_sequences(node1.events())) == 1
    waited = second.results(RESTART_TASK)[node1.name]
    assert waited["lock_wait"]["seconds"] > 0, waited
    assert waited["lock_wait"]["holder"].startswith("a run that took this node at"), waited
    assert waited["restarted"] is False and waited["steps"] == [], waited
    assert len(restart_sequences(node2.events())) == 1
    print(f"the second run on node 1: {waited['msg']}")
