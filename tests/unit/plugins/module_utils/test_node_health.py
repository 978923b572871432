"""The pure half of node_restart: when is a node back, and what the operator is told when it is not."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _node_health as health

# `ctr plugins ls` of containerd 1.6.20 with its CRI plugin loaded, and refused (legacy mirrors + config_path).
CTR_OK = """TYPE                                  ID                       PLATFORMS      STATUS
io.containerd.content.v1              content                  -              ok
io.containerd.snapshotter.v1          overlayfs                linux/amd64    ok
io.containerd.grpc.v1                 cri                      linux/amd64    ok
io.containerd.grpc.v1                 introspection            -              ok
"""
CTR_ERROR = CTR_OK.replace("linux/amd64    ok\nio.containerd.grpc.v1                 introspection",
                           "linux/amd64    error\nio.containerd.grpc.v1                 introspection")
# containerd 2.1 lists the image service as its own plugin; the grpc cri row is what kubelet talks to.
CTR_2X = """TYPE                                      ID              PLATFORMS      STATUS
io.containerd.cri.v1                      images          -              ok
io.containerd.grpc.v1                     cri             -              ok
"""

RESTARTED_AT = 1_800_000_000.5
RESTARTED_MONOTONIC = 5000.0
READ_AT = RESTARTED_AT + 60


@pytest.mark.parametrize(
    ("output", "status"),
    [(CTR_OK, "ok"), (CTR_ERROR, "error"), (CTR_2X, "ok"), ("TYPE ID PLATFORMS STATUS\n", None), ("", None)],
)
def test_cri_plugin_status(output, status):
    assert health.cri_plugin_status(output) == status


def kube_status(state="ok", timestamp=RESTARTED_AT + 10, **extra):
    document = {
        "pf9_kube_service_state": "true" if state == "ok" else "false",
        "pf9_kube_node_state": state,
        "completed_tasks": [],
        "current_task": "",
        "last_failed_task": "",
        "status_check_timestamp": timestamp,
    }
    document.update(extra)
    return document


@pytest.mark.parametrize(
    ("document", "holds", "why"),
    [
        (kube_status(), True, ""),
        # phases stop does not rewrite the file: the old "ok" from before the restart must not count.
        (kube_status(timestamp=RESTARTED_AT - 30), False, "not rewritten since the restart"),
        (kube_status(timestamp=int(RESTARTED_AT)), False, "not rewritten since the restart"),
        (kube_status(state="converging"), False, "node state 'converging'"),
        (kube_status(state="failed"), False, "node state 'failed'"),
        (kube_status(timestamp=None), False, "no status_check_timestamp"),
        (None, False, "missing or not JSON"),
        # A clock stepped back: a timestamp later than the check proves nothing about the restart.
        (kube_status(timestamp=READ_AT + 3600), False, "3600 s in the future"),
        (kube_status(timestamp=READ_AT + 2 * health.FUTURE_TOLERANCE), False, "in the future"),
        (kube_status(timestamp=READ_AT + health.FUTURE_TOLERANCE / 2), True, ""),
        (kube_status(timestamp=float("nan")), False, "is not a time"),
        (kube_status(timestamp="NaN"), False, "is not a time"),
        (kube_status(timestamp=float("inf")), False, "is not a time"),
        (kube_status(timestamp="-inf"), False, "is not a time"),
        (kube_status(timestamp=10**400), False, "no status_check_timestamp"),
    ],
)
def test_kube_status_fresh_ok(document, holds, why):
    result = health.kube_status_fresh_ok(document, RESTARTED_AT, READ_AT)
    assert result[0] is holds
    assert why in result[1] if why else result[1] == ""


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '"ok"'])
def test_parse_kube_status_refuses_what_is_not_an_object(text):
    assert health.parse_kube_status(text) is None


def test_parse_kube_status():
    assert health.parse_kube_status('{"pf9_kube_node_state": "ok"}') == {"pf9_kube_node_state": "ok"}


def healthy_probes(**override):
    probes = {
        "containerd_active": "active",
        "ctr_plugins": CTR_OK,
        "containerd_started": int((RESTARTED_MONOTONIC + 20) * 1e6),
        "phases_status_rc": 0,
        "kube_status": kube_status(),
        "kube_status_read_at": READ_AT,
        "etcd_rc": None,
    }
    probes.update(override)
    return probes


def test_a_healthy_pmk_node_passes_every_condition():
    results = health.evaluate(healthy_probes(), "pmk", RESTARTED_AT, RESTARTED_MONOTONIC)
    assert list(results) == list(health.CONDITIONS["pmk"])
    assert health.failed_conditions(results) == []


@pytest.mark.parametrize(
    ("override", "failed", "detail"),
    [
        ({"containerd_active": "inactive"}, "containerd_active", "says inactive"),
        ({"ctr_plugins": CTR_ERROR}, "cri_plugin", "cri as error"),
        ({"ctr_plugins": None}, "cri_plugin", "ctr plugins ls failed"),
        ({"containerd_started": int((RESTARTED_MONOTONIC - 1) * 1e6)}, "containerd_restarted", "old configuration"),
        ({"containerd_started": 0}, "containerd_restarted", "old configuration"),
        ({"phases_status_rc": 1}, "phases_status", "exits 1"),
        ({"kube_status": kube_status(timestamp=RESTARTED_AT - 5)}, "kube_status", "not rewritten"),
        ({"etcd_rc": 1}, "etcd", "etcd_raft_checker exits 1"),
    ],
)
def test_each_pmk_condition_can_fail_alone(override, failed, detail):
    results = health.evaluate(healthy_probes(**override), "pmk", RESTARTED_AT, RESTARTED_MONOTONIC)
    assert [name for name, (holds, _detail) in results.items() if not holds] == [failed]
    assert detail in results[failed][1]


def test_the_containerd_strategy_ignores_the_pmk_agents():
    probes = healthy_probes(phases_status_rc=1, kube_status=None, etcd_rc=1)
    results = health.evaluate(probes, "containerd", RESTARTED_AT, RESTARTED_MONOTONIC)
    assert list(results) == ["containerd_active", "cri_plugin", "containerd_restarted"]
    assert health.failed_conditions(results) == []


def test_timeout_message_names_each_condition_and_what_kube_status_last_said():
    document = kube_status(state="retrying", current_task="Start kubelet", last_failed_task="Start kubelet")
    probes = healthy_probes(phases_status_rc=3, kube_status=document)
    results = health.evaluate(probes, "pmk", RESTARTED_AT, RESTARTED_MONOTONIC)
    message = health.timeout_message(results, document, RESTARTED_AT, 60)
    assert message.startswith("the node did not come back healthy within 60 s after the restart")
    assert "nodeletd phases status exits 3" in message
    assert "kube_status: node state 'retrying'" in message
    assert "kube_status last said: pf9_kube_service_state=false, pf9_kube_node_state=retrying" in message
    assert "current_task=Start kubelet" in message
    assert "last_failed_task=Start kubelet" in message
    assert "(10 s after the restart)" in message
    assert "rollout stops here" in message


def test_timeout_message_for_containerd_has_no_kube_status():
    results = health.evaluate(healthy_probes(containerd_active="failed"), "containerd", RESTARTED_AT,
                              RESTARTED_MONOTONIC)
    message = health.timeout_message(results, None, RESTARTED_AT, 30)
    assert "systemctl is-active containerd says failed" in message
    assert "kube_status" not in message


def test_a_node_without_an_etcd_checker_is_not_held_back_by_it():
    results = health.evaluate(healthy_probes(etcd_rc=None), "pmk", RESTARTED_AT, RESTARTED_MONOTONIC)
    assert results["etcd"] == (True, "no etcd_raft_checker on this node (not a master)")


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("containerd github.com/containerd/containerd v1.7.2 0cae528dd6cb557f7201036e9f43420650207b58\n", "1.7.2"),
        ("containerd containerd.io 1.6.21 3dce8eb055cbb6872793272b4f20ed16117344f8", "1.6.21"),
        ("containerd github.com/containerd/containerd 1.6.12-0ubuntu1~22.04.3", "1.6.12-0ubuntu1~22.04.3"),
        ("containerd github.com/containerd/containerd/v2 v2.0.0-rc.1 8e4e6f2", "2.0.0-rc.1"),
        ("", None),
        (None, None),
        ("containerd: command not found", None),
    ],
)
def test_containerd_version(output, version):
    assert health.containerd_version(output) == version
