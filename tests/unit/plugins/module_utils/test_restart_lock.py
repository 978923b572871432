"""The pure half of node_restart's lock and safety net: what to do given the marker, the unit and the lock."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _restart_lock as lock

NOW = 1_800_000_100.0
TAKEN = 1_800_000_000.0
HOLDER = lock.holder_document(TAKEN, 4321, "ops", "pmk", True)


def marker(stage="sequence", **fields):
    document = {"stage": stage, "restarted_at": TAKEN, "strategy": "pmk", "run": HOLDER}
    document.update(fields)
    return document


def step(command, rc=0, **extra):
    return {"step": command, "rc": rc, "seconds": 0.1, **extra}


PMK_STEPS = [step("systemctl stop pf9-hostagent"), step("systemctl stop pf9-nodeletd"),
             step("su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases stop'")]
RESTORE = step("systemctl start pf9-hostagent", restore=True)


@pytest.mark.parametrize(
    ("document", "requested", "unit_state", "waited_for_run", "action"),
    [
        # nothing asked, nothing left: touch nothing
        (None, False, "inactive", False, lock.NOTHING),
        # the configuration changed: restart
        (None, True, "inactive", False, lock.RESTART),
        (marker("health"), True, "inactive", False, lock.RESTART),
        # the stack was not seen stopped (or the marker is unreadable / from 1.0.0): the sequence again
        (marker("sequence"), False, "inactive", False, lock.RESTART),
        ({}, False, "inactive", False, lock.RESTART),
        # the stack was stopped and the agent started again: wait for the node only
        (marker("health"), False, "inactive", False, lock.WAIT_HEALTH),
        (marker("health"), False, "inactive", True, lock.WAIT_HEALTH),
        # an earlier run's unit still runs its sequence: wait for it, whatever else holds
        (marker("sequence"), True, "active", False, lock.WAIT_UNIT),
        (None, False, "activating", False, lock.WAIT_UNIT),
        (marker("health"), False, "deactivating", True, lock.WAIT_UNIT),
        # a unit that ended (collected, or failed) does not hold anything
        (marker("sequence"), False, "failed", False, lock.RESTART),
        # another live run held the lock and finished the node: leave the rollout to it
        (None, False, "inactive", True, lock.GIVE_UP),
        # ... unless this run changed the configuration itself: its change needs a restart of its own
        (None, True, "inactive", True, lock.RESTART),
    ],
)
def test_plan(document, requested, unit_state, waited_for_run, action):
    assert lock.plan(document, requested, unit_state, waited_for_run) == action


@pytest.mark.parametrize(
    ("document", "stage"),
    [(None, None), ({}, "sequence"), (marker("sequence"), "sequence"), (marker("health"), "health"),
     ({"stage": "other"}, "sequence"),
     # restart times that are not numbers: the health gate could not judge, so the restart runs again
     (marker("health", restarted_at="yesterday"), "sequence"), (marker("health", restarted_at=None), "sequence"),
     (marker("health", restarted_at=True), "sequence"), (marker("health", restarted_at=float("nan")), "sequence"),
     (marker("health", restarted_monotonic="x"), "sequence"), (marker("health", restarted_monotonic=12.5), "health"),
     ({"stage": "health"}, "sequence")],
)
def test_stage(document, stage):
    assert lock.stage(document) == stage


@pytest.mark.parametrize("text", [None, "", "not json", "[1]", '"x"'])
def test_parse_document_refuses_what_is_not_an_object(text):
    assert lock.parse_document(text) is None


def test_describe_run_names_when_the_run_took_the_node_and_who():
    assert lock.describe_run(HOLDER, NOW) == (
        "a run that took this node at 2027-01-15 08:00:00 UTC (100 s ago, node_restart pid 4321, by ops)")
    assert lock.describe_run({"taken_at": TAKEN}, NOW) == (
        "a run that took this node at 2027-01-15 08:00:00 UTC (100 s ago)")


@pytest.mark.parametrize("holder", [None, {}, {"taken_at": "yesterday"}])
def test_describe_run_without_a_start_time(holder):
    assert lock.describe_run(holder, NOW) == "a run that did not say when it started"


def test_a_run_that_gives_up_waiting_names_the_other_run_and_touched_nothing():
    message = lock.lock_timeout_message(HOLDER, 30.2, 30, NOW)
    assert message.startswith("another run holds this node: a run that took this node at 2027-01-15 08:00:00 UTC")
    assert "Waited 30 s (lock_timeout 30 s) and touched nothing on the node" in message


def test_a_run_whose_wait_ended_with_the_node_done_says_the_other_run_held_it():
    message = lock.gave_up_message(HOLDER, 12.4, NOW)
    assert message.startswith("another run held this node: a run that took this node at 2027-01-15 08:00:00 UTC")
    assert "restarted it while this run waited 12 s" in message
    assert "rather than follow that run onto the next nodes" in message


def test_a_unit_left_running_names_the_dead_run_and_the_worst_case():
    message = lock.unit_timeout_message(marker(), 40, 40, NOW)
    assert "the restart sequence of a run that took this node at 2027-01-15 08:00:00 UTC" in message
    assert f"at the latest {lock.WORST_CASE_DELAY} s after it began" in message
    assert "touched nothing" in message


def test_the_worst_case_delay_is_the_unit_limit_plus_its_stop_grace():
    # Every step's own limit fits in the unit's, so the program itself starts the agent again in time.
    assert lock.SEQUENCE_TIME_LIMIT > 2 * lock.AGENT_STOP_TIMEOUT + lock.PHASES_STOP_TIMEOUT
    assert lock.SEQUENCE_TIME_LIMIT > lock.RESTART_TIMEOUT
    assert lock.WORST_CASE_DELAY == lock.SEQUENCE_TIME_LIMIT + lock.STOP_GRACE == 1140


@pytest.mark.parametrize(
    ("document", "strategy", "stopped"),
    [
        ({"steps": PMK_STEPS + [RESTORE], "containerd_after_stop": "inactive"}, "pmk", True),
        ({"steps": PMK_STEPS + [RESTORE], "containerd_after_stop": "failed"}, "pmk", True),
        # phases stop exits 0 when a phase failed: containerd still running says so
        ({"steps": PMK_STEPS + [RESTORE], "containerd_after_stop": "active"}, "pmk", False),
        ({"steps": PMK_STEPS + [RESTORE], "containerd_after_stop": "deactivating"}, "pmk", False),
        # a step failed, or the sequence was cut short
        ({"steps": [PMK_STEPS[0], step("systemctl stop pf9-nodeletd", 1), RESTORE]}, "pmk", False),
        ({"steps": PMK_STEPS[:2] + [RESTORE]}, "pmk", False),
        ({"steps": []}, "pmk", False),
        ({"steps": [step("systemctl restart containerd"), step("systemctl start containerd", restore=True)]},
         "containerd", True),
        ({"steps": [step("systemctl restart containerd", 1)]}, "containerd", False),
    ],
)
def test_stack_stopped(document, strategy, stopped):
    assert lock.stack_stopped(document, strategy) is stopped


@pytest.mark.parametrize(
    ("document", "strategy", "expected"),
    [
        (marker("health", steps=PMK_STEPS + [RESTORE], containerd_after_stop="inactive", ended_at=NOW), "pmk", None),
        (None, "pmk", "the pending-restart marker vanished"),
        # the program was killed: systemd's ExecStopPost started the agent
        (marker(steps=PMK_STEPS[:2]), "pmk",
         "ended before its sequence did (killed, or over its 1080 s limit); its ExecStopPost started pf9-hostagent"),
        (marker(steps=PMK_STEPS[:2] + [step("su pf9 ...", -1, stderr="interrupted (SIGTERM)"), RESTORE],
                stopped_by="SIGTERM", ended_at=NOW), "pmk",
         "the restart unit was stopped (SIGTERM) before its sequence ended; su pf9 ... failed (rc -1): interrupted"),
        (marker(steps=[PMK_STEPS[0], step("systemctl stop pf9-nodeletd", 5, stderr="Unit not loaded."), RESTORE],
                ended_at=NOW), "pmk", "systemctl stop pf9-nodeletd failed (rc 5): Unit not loaded."),
        (marker(steps=PMK_STEPS + [RESTORE], containerd_after_stop="active", ended_at=NOW,
                phases_stop_output="INDEX NUMBER\tFILE\tNAME\tPHASE STATUS\n3\t-\tDrain\tfailed"), "pmk",
         "nodeletd phases stop exited 0 but containerd is still active: a phase failed"),
        (marker(steps=PMK_STEPS + [step("systemctl start pf9-hostagent", 1, restore=True, stderr="boom")],
                containerd_after_stop="inactive", ended_at=NOW), "pmk",
         "systemctl start pf9-hostagent failed (rc 1): boom"),
        (marker("health", strategy="containerd", ended_at=NOW,
                steps=[step("systemctl restart containerd"), step("systemctl start containerd", restore=True)]),
         "containerd", None),
        (marker(strategy="containerd", ended_at=NOW,
                steps=[step("systemctl restart containerd", 1, stderr="Job failed"),
                       step("systemctl start containerd", restore=True)]),
         "containerd", "systemctl restart containerd failed (rc 1): Job failed"),
    ],
)
def test_sequence_error(document, strategy, expected):
    error = lock.sequence_error(document, strategy)
    if expected is None:
        assert error is None
    else:
        assert expected in error, error


def test_the_not_stopped_message_carries_the_phase_table():
    document = marker(steps=PMK_STEPS + [RESTORE], containerd_after_stop="active", ended_at=NOW,
                      phases_stop_output="INDEX NUMBER\tFILE\tNAME\tPHASE STATUS\n3\t-\tDrain\tfailed\n")
    error = lock.sequence_error(document, "pmk")
    assert "pf9-hostagent was started again" in error
    assert error.endswith("3\t-\tDrain\tfailed")


@pytest.mark.parametrize(
    ("document", "action", "same_boot", "unit_waited", "expected"),
    [
        (None, lock.RESTART, True, None, None),
        # the sequence stopped the stack and the node brought itself back; the run died before the health gate
        (marker("health", steps=PMK_STEPS + [RESTORE], ended_at=TAKEN + 20), lock.WAIT_HEALTH, True, None,
         "found an unfinished restart: the restart of a run that took this node at 2027-01-15 08:00:00 UTC "
         "(100 s ago, node_restart pid 4321, by ops): its sequence stopped the stack and the node started "
         "pf9-hostagent again itself at 2027-01-15 08:00:20 UTC, but the node was not seen healthy; "
         "waited for the node to be healthy again, without a new restart"),
        # ... and its unit was still running when this run came
        (marker("health", steps=PMK_STEPS + [RESTORE], ended_at=TAKEN + 20), lock.WAIT_HEALTH, True, 7.6,
         "(its unit was still running; waited 8 s for it to end); waited for the node to be healthy again"),
        # the drain failed: the stack was not stopped, the sequence runs again
        (marker(steps=PMK_STEPS + [RESTORE], containerd_after_stop="active", ended_at=TAKEN + 20),
         lock.RESTART, True, None,
         "its sequence did not stop the stack (containerd was still active after phases stop: a phase failed, a "
         "drain for example); the node started pf9-hostagent again itself at "
         "2027-01-15 08:00:20 UTC; ran the restart sequence again"),
        (marker(steps=[PMK_STEPS[0], step("systemctl stop pf9-nodeletd", 1), RESTORE], ended_at=TAKEN + 2),
         lock.RESTART, True, None, "its sequence did not stop the stack (systemctl stop pf9-nodeletd failed (rc 1))"),
        (marker(steps=PMK_STEPS[:2] + [RESTORE], stopped_by="SIGTERM", ended_at=TAKEN + 2),
         lock.RESTART, True, None, "its sequence did not stop the stack (its unit was stopped (SIGTERM))"),
        # the program was killed mid-sequence (its ExecStopPost started the agent)
        (marker(steps=PMK_STEPS[:2]), lock.RESTART, True, None,
         "its sequence was cut short; ran the restart sequence again"),
        # the run died before its unit started anything, on a node rebooted since
        (marker(), lock.RESTART, False, None,
         "its sequence had not begun or left no record (the node has rebooted since); ran the restart sequence"),
        # a marker of 1.0.0 or 1.1.0 (no record of the run)
        ({}, lock.RESTART, True, None, "found an unfinished restart: the restart of an earlier run: its sequence"),
        ({"stage": "health", "restarted_at": TAKEN}, lock.WAIT_HEALTH, True, None,
         "the restart of an earlier run: its sequence had stopped the stack, but the node was not seen healthy"),
        (marker("health", strategy="containerd", ended_at=TAKEN + 3,
                steps=[step("systemctl restart containerd"), step("systemctl start containerd", restore=True)]),
         lock.WAIT_HEALTH, True, None,
         "its sequence restarted containerd and the node started containerd again itself at"),
    ],
)
def test_recovered_text(document, action, same_boot, unit_waited, expected):
    text = lock.recovered_text(document, action, NOW, same_boot, unit_waited)
    if expected is None:
        assert text is None
    else:
        assert expected in text, text
