"""The benchmark's checks: a number is kept only when the run it comes from did what it should.

Every function raises BenchError, saying what did not hold, or returns quietly.
"""

from __future__ import annotations

import difflib
import stat
from pathlib import Path

# The role's last task: sets containerd_mirror_report on each node.
REPORT_TASK = "Record what happened on this node"
# configure-mirror.yml's node plays (one per batch in the json callback's document) start with this name.
NODE_PLAY = "Point containerd nodes at the registry mirror: "
# Every hosts.toml both sides write, relative to containerd_mirror_config_path, for the local fleet's mirror.
LOCAL_MIRROR = "10.101.101.100:443"
EXPECTED_FILES = frozenset(
    f"{registry}/hosts.toml"
    for registry in (LOCAL_MIRROR, "platform9.io", "docker.io", "gcr.io", "quay.io", "registry.k8s.io")
)
# What a node's event log shows for one restart by the role (testbed/README.md, "Event log"), in order.
RESTART_EVENTS = (
    ("pf9-hostagent", "stop"),
    ("pf9-nodeletd", "stop"),
    ("nodeletd", "phases-stop"),
    ("pf9-hostagent", "start"),
    ("nodeletd-daemon", "healthy"),
)


class BenchError(RuntimeError):
    """A run failed or a check did not hold: the numbers cannot be trusted."""


def failures(document):
    """Return 'host: task: message' for every failed or unreachable result in a json callback document."""
    found = []
    for play in document.get("plays", []):
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") or result.get("unreachable"):
                    found.append(f"{host}: {task['task']['name']}: {result.get('msg', result)}")
    return found


def reports(document):
    """Return {host: containerd_mirror_report} from our run (each batch is a play of its own)."""
    found = {}
    for play in document["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].rpartition(" : ")[2] == REPORT_TASK:
                found.update((host, result["ansible_facts"]["containerd_mirror_report"])
                             for host, result in task["hosts"].items() if not result.get("skipped"))
    if not found:
        raise BenchError(f"our run has no task {REPORT_TASK!r}: the role changed; update bench/check.py")
    return found


def check_run(label, side, phase, document, hosts, first_changes=("certs.d",), first_restart="none"):
    """Fail unless every host ran, a first apply changed each host, a re-run changed nothing, and (ours)
    each node's report says what changed and what was restarted."""
    run_stats = document["stats"]
    if set(run_stats) != set(hosts):
        raise BenchError(f"{label}: ran on {sorted(run_stats)}, expected {sorted(hosts)}")
    for host in hosts:
        changed = run_stats[host]["changed"]
        if phase == "rerun" and changed != 0:
            raise BenchError(f"{label}: {host} reports changed={changed} on an unchanged re-run")
        if phase == "first" and changed == 0:
            raise BenchError(f"{label}: {host} changed nothing on a first apply")
    if side != "ours":
        return
    found = reports(document)
    expected_changes = set(first_changes) if phase == "first" else set()
    expected_restart = first_restart if phase == "first" else "none"
    for host in hosts:
        report = found.get(host)
        if report is None or set(report["changed"]) != expected_changes or report["restarted"] != expected_restart:
            raise BenchError(f"{label}: {host} reports {report}, expected changed={sorted(expected_changes)} "
                             f"and restarted={expected_restart!r}")


def local_tree(path):
    """{relative path: (kind, mode, bytes)} of everything under path."""
    tree = {}
    for entry in sorted(Path(path).rglob("*")):
        info = entry.lstat()
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        tree[str(entry.relative_to(path))] = (kind, oct(stat.S_IMODE(info.st_mode)),
                                              entry.read_bytes() if kind == "file" else b"")
    return tree


def compare_trees(label, ours, baseline, expected=EXPECTED_FILES):
    """Fail unless both trees are identical (and hold the expected files); say where they differ."""
    missing = sorted(expected - set(ours))
    if missing:
        raise BenchError(f"{label}: ours did not write {missing}")
    if ours == baseline:
        return
    for name in sorted(set(ours) | set(baseline)):
        mine, theirs = ours.get(name), baseline.get(name)
        if mine != theirs:
            detail = ""
            if mine and theirs and mine[0] == theirs[0] == "file" and mine[2] != theirs[2]:
                detail = "\n" + "".join(difflib.unified_diff(
                    mine[2].decode(errors="replace").splitlines(True),
                    theirs[2].decode(errors="replace").splitlines(True), "ours", "baseline"))
            raise BenchError(f"{label}: {name} differs: ours {mine and mine[:2]}, baseline {theirs and theirs[:2]}"
                             + detail)


def node_batches(document):
    """[(tier, [hosts], seconds)] of configure-mirror.yml's node plays, one per batch, in the order they ran."""
    found = []
    for play in document["plays"]:
        name = play["play"]["name"]
        hosts = sorted({host for task in play["tasks"] for host in task["hosts"]})
        if name.startswith(NODE_PLAY) and hosts:  # a tier that matched no host has no batch
            found.append((name.removeprefix(NODE_PLAY), hosts, play["play"]["duration"]))
    return found


def expected_batches(masters, workers, batch):
    """[(tier, [hosts])] as configure-mirror.yml orders them: masters one at a time, then workers in batches."""
    order = [("masters", [master]) for master in masters]
    return order + [("workers", sorted(workers[start:start + batch])) for start in range(0, len(workers), batch)]


def check_rollout(label, batches, expected, events):
    """Fail unless the batches ran as expected and every node was restarted once and came back healthy.

    batches: [(tier, [hosts])] as they ran; events: {host: [(component, action)]} since the run started.
    """
    if batches != expected:
        raise BenchError(f"{label}: the batches ran as {batches}, expected {expected}")
    for host, happened in sorted(events.items()):
        seen = [event for event in happened if event in RESTART_EVENTS]
        if seen != list(RESTART_EVENTS):
            raise BenchError(f"{label}: {host}'s events {happened} are not one restart that came back healthy "
                             f"({list(RESTART_EVENTS)})")
