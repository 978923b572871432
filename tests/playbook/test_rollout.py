"""configure-mirror.yml's rollout order on local stand-in hosts: masters one by one, then workers in batches."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from playbook_runner import write_config_reading

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "configure-mirror.yml"
NODE_PLAY = "Point containerd nodes at the registry mirror: "


def inventory(tmp_path, groups):
    """Local hosts, each with its own certs.d, in the given groups ({group: [hosts]})."""
    hosts = {name: None for members in groups.values() for name in members}
    document = {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": {name: {
            "containerd_mirror_config_path": str(tmp_path / name / "certs.d"),
            # not managed (SETTINGS): the role checks that containerd would read certs.d
            "containerd_mirror_containerd_config": str(write_config_reading(
                tmp_path / "configs" / f"{name}.toml", tmp_path / name / "certs.d")),
        } for name in hosts},
        "children": {group: {"hosts": {name: {} for name in members}} for group, members in groups.items()},
    }}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def batches(run):
    """Return [(tier, [hosts])] for each batch of the node plays, in the order they ran."""
    found = []
    for play in run.results["plays"]:
        name = play["play"]["name"]
        if name.startswith(NODE_PLAY):
            hosts = sorted({host for task in play["tasks"] for host in task["hosts"]})
            if hosts:  # a tier that matched no host
                found.append((name.removeprefix(NODE_PLAY), hosts))
    return found


SETTINGS = {
    "containerd_mirror_hosts": "all:!localhost",  # the fixture's own inventory holds localhost
    "containerd_mirror_url": "https://10.101.101.100:443",
    "containerd_mirror_restart_strategy": "none",
    "containerd_mirror_preflight": False,
    "containerd_mirror_manage_config": False,
    "containerd_mirror_verify_image": "",  # local hosts: no containerd runs there to pull through
}
FLEET = {"masters": ["m1", "m2"], "workers": ["w1", "w2", "w3", "w4", "w5"]}


@pytest.mark.parametrize(
    ("groups", "extra", "expected"),
    [
        (FLEET, {"containerd_mirror_worker_batch": 2}, [
            ("masters", ["m1"]), ("masters", ["m2"]),
            ("workers", ["w1", "w2"]), ("workers", ["w3", "w4"]), ("workers", ["w5"]),
        ]),
        (FLEET, {"containerd_mirror_worker_batch": "40%"}, [
            ("masters", ["m1"]), ("masters", ["m2"]), ("workers", ["w1", "w2"]), ("workers", ["w3", "w4"]),
            ("workers", ["w5"]),
        ]),
        # the default batch is 1
        ({"masters": ["m1"], "workers": ["w1", "w2"]}, {}, [
            ("masters", ["m1"]), ("workers", ["w1"]), ("workers", ["w2"]),
        ]),
        # no masters group: every node is treated as a master
        ({"workers": ["w1", "w2"]}, {"containerd_mirror_worker_batch": 2}, [
            ("masters", ["w1"]), ("masters", ["w2"]),
        ]),
        # another group name for the masters
        ({"control": ["c1"], "workers": ["w1", "w2"]},
         {"containerd_mirror_masters_group": "control", "containerd_mirror_worker_batch": 2},
         [("masters", ["c1"]), ("workers", ["w1", "w2"])]),
    ],
)
def test_masters_one_by_one_then_workers_in_batches(run_playbook, tmp_path, groups, extra, expected):
    run = run_playbook(None, "-i", str(inventory(tmp_path, groups)), playbook=PLAYBOOK,
                       extra_vars=dict(SETTINGS, **extra))
    assert run.rc == 0, run.stdout + run.stderr
    assert batches(run) == expected
    summary = run.task_results(
        "Show how long each batch took, and what changed, was migrated and restarted on each node",
        host=expected[0][1][0],
    )["msg"]
    assert [line.split(":")[0] for line in summary["batches"]] == [
        f"{tier} {', '.join(hosts)}" for tier, hosts in expected
    ]


def test_a_failed_master_stops_the_rollout_before_any_worker(run_playbook, tmp_path):
    path = inventory(tmp_path, FLEET)
    # m2's certs.d cannot be created: its parent is a file.
    (tmp_path / "m2").write_text("not a directory")
    run = run_playbook(None, "-i", str(path), playbook=PLAYBOOK, extra_vars=SETTINGS)
    assert run.rc != 0
    assert batches(run) == [("masters", ["m1"]), ("masters", ["m2"])]
    assert not (tmp_path / "w1").exists()
