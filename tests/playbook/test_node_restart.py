"""node_restart on localhost: what it decides before it touches anything (the restarts run in molecule)."""

from __future__ import annotations

import json

import pytest


def restart_task(marker, **options):
    return {"kubenode.registry_mirror.node_restart": dict(strategy="pmk", pending_marker=str(marker), **options),
            "register": "restart"}


def test_nothing_requested_and_nothing_pending_does_nothing(run_playbook, tmp_path):
    run = run_playbook([restart_task(tmp_path / "marker", requested=False)])
    result = run.task_results("kubenode.registry_mirror.node_restart")
    assert run.rc == 0
    assert (result["changed"], result["restarted"], result["pending"], result["steps"]) == (False, False, None, [])


@pytest.mark.parametrize(
    ("marker_text", "requested", "pending", "changed"),
    [
        (None, True, None, True),
        # the stack was not seen stopped: the whole sequence runs again
        (json.dumps({"stage": "sequence", "restarted_at": 1.0}), False, "sequence", True),
        # a marker written by 1.0.0 (plain text) means the same
        ("kubenode.registry_mirror: the PMK agent restart sequence has not completed\n", False, "sequence", True),
        # restarted but not seen healthy: only waited for again, which changes nothing
        (json.dumps({"stage": "health", "restarted_at": 1.0}), False, "health", False),
    ],
)
def test_check_mode_reports_what_would_happen_and_touches_nothing(run_playbook, tmp_path, marker_text, requested,
                                                                  pending, changed):
    marker = tmp_path / "marker"
    if marker_text is not None:
        marker.write_text(marker_text)
    run = run_playbook([restart_task(marker, requested=requested)], check=True)
    result = run.task_results("kubenode.registry_mirror.node_restart")
    assert run.rc == 0, run.stdout
    assert (result["changed"], result["restarted"], result["pending"]) == (changed, False, pending)
    assert result["steps"] == []
    assert (marker.read_text() if marker.exists() else None) == marker_text


@pytest.mark.parametrize("option", ["health_timeout", "health_interval"])
def test_a_wait_below_one_second_is_refused(run_playbook, tmp_path, option):
    run = run_playbook([restart_task(tmp_path / "marker", **{option: 0})])
    assert run.rc != 0
    assert f"{option}: must be at least 1, got 0" in run.task_results("kubenode.registry_mirror.node_restart")["msg"]


@pytest.mark.parametrize("option", ["nodeletd", "kube_status", "etcd_raft_checker", "pending_marker"])
def test_a_node_path_is_taken_as_written_and_must_be_absolute(run_playbook, tmp_path, option):
    paths = {"pending_marker": tmp_path / "marker", option: "~/x"}
    run = run_playbook([restart_task(paths.pop("pending_marker"), requested=False, **paths)])
    assert run.rc != 0
    message = run.task_results("kubenode.registry_mirror.node_restart")["msg"]
    assert f"{option}: '~/x' must be an absolute path" in message
