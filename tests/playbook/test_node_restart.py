"""node_restart on localhost: what it decides before it touches anything (the restarts run in molecule)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path

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
        # ... unless the marker's restart time is unreadable: the restart runs again
        (json.dumps({"stage": "health", "restarted_at": "1.0 s"}), False, "sequence", True),
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


@pytest.mark.parametrize("option", ["nodeletd", "kube_status", "etcd_raft_checker", "pending_marker", "lock_file"])
def test_a_node_path_is_taken_as_written_and_must_be_absolute(run_playbook, tmp_path, option):
    paths = {"pending_marker": tmp_path / "marker", option: "~/x"}
    run = run_playbook([restart_task(paths.pop("pending_marker"), requested=False, **paths)])
    assert run.rc != 0
    message = run.task_results("kubenode.registry_mirror.node_restart")["msg"]
    assert f"{option}: '~/x' must be an absolute path" in message


def test_a_negative_lock_timeout_is_refused(run_playbook, tmp_path):
    run = run_playbook([restart_task(tmp_path / "marker", lock_timeout=-1)])
    assert run.rc != 0
    message = run.task_results("kubenode.registry_mirror.node_restart")["msg"]
    assert "lock_timeout: must be at least 0, got -1" in message


@contextlib.contextmanager
def other_run_holds(lock_file, taken_at):
    """Hold the node's lock as another run's node_restart does: flock, and who it is in the file."""
    with open(lock_file, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps({"taken_at": taken_at, "pid": 4242, "user": "someone", "strategy": "pmk",
                                 "requested": True}))
        handle.flush()
        yield handle


def opened_elsewhere(path):
    """Whether a process other than this one has the file open."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        if fd_dir.parent.name == str(os.getpid()):
            continue
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                return True
        except OSError:
            continue
    return False


PENDING = json.dumps({"stage": "sequence", "restarted_at": 1.0}) + "\n"


def test_a_second_run_waits_for_the_lock_then_fails_naming_the_other_run(run_playbook, tmp_path):
    """It touches nothing meanwhile: the marker stays as it was, no step ran."""
    marker, lock_file = tmp_path / "marker", tmp_path / "lock"
    marker.write_text(PENDING)
    with other_run_holds(lock_file, 1_800_000_000.0):
        run = run_playbook([restart_task(marker, requested=False, lock_file=str(lock_file), lock_timeout=2)])
    result = run.task_results("kubenode.registry_mirror.node_restart")
    assert run.rc != 0
    assert result["msg"].startswith(
        "another run holds this node: a run that took this node at 2027-01-15 08:00:00 UTC (")
    assert "node_restart pid 4242, by someone" in result["msg"]
    assert "Waited 2 s (lock_timeout 2 s) and touched nothing on the node" in result["msg"]
    assert result["lock_wait"]["seconds"] >= 1.5
    assert (result["restarted"], result["steps"], result["recovered"]) == (False, [], None)
    assert marker.read_text() == PENDING


def test_a_run_that_waited_while_another_finished_the_node_stops_saying_so(run_playbook, tmp_path):
    """The other run restarted the node and removed the marker: nothing left here, and this run stops rather
    than follow that run onto the next nodes."""
    marker, lock_file = tmp_path / "marker", tmp_path / "lock"
    marker.write_text(PENDING)
    taken_at = time.time()

    def other_run():
        with other_run_holds(lock_file, taken_at):
            held.set()
            # Until the module waits on the lock (it has the file open), then a little longer.
            deadline = time.monotonic() + 300
            while not opened_elsewhere(lock_file) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
            marker.unlink()

    held = threading.Event()
    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait()
    run = run_playbook([restart_task(marker, requested=False, lock_file=str(lock_file), lock_timeout=600)])
    thread.join()
    result = run.task_results("kubenode.registry_mirror.node_restart")
    assert run.rc != 0
    assert result["msg"].startswith("another run held this node: a run that took this node at ")
    assert "restarted it while this run waited" in result["msg"]
    assert result["lock_wait"]["seconds"] > 0
    assert (result["changed"], result["restarted"], result["pending"], result["steps"]) == (False, False, None, [])


def test_check_mode_does_not_wait_for_the_lock(run_playbook, tmp_path):
    marker, lock_file = tmp_path / "marker", tmp_path / "lock"
    marker.write_text(PENDING)
    with other_run_holds(lock_file, time.time()):
        run = run_playbook([restart_task(marker, requested=False, lock_file=str(lock_file), lock_timeout=600)],
                           check=True)
    result = run.task_results("kubenode.registry_mirror.node_restart")
    assert run.rc == 0
    assert (result["changed"], result["pending"], result["lock_wait"]) == (True, "sequence", None)
