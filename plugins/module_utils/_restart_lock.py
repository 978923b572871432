# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One restart of a node at a time, and a node that brings itself back: the pure half of node_restart.

Pure Python with no Ansible imports. node_restart runs the restart sequence
not in its own process but in a transient systemd unit (UNIT), started with
`systemd-run` and watched from the module. The unit's own program
(UNIT_PROGRAM) runs the sequence and, at its end, whatever happened, starts
again what the sequence stopped (pf9-hostagent, or containerd); the unit's
ExecStopPost does the same should the program itself be killed, and
RuntimeMaxSec bounds the whole unit. So the node comes back even when the
module, its SSH session, sudo or the controller dies at any instant: PID 1
owns the unit, not the Ansible process.

One run per node at a time: a run holds an exclusive flock on a file under
/run (the lock) from before it looks at the node until its health wait ends;
the kernel releases it when the holder dies. A run that dies leaves its unit
running, so the next holder of the lock first waits for a running unit of the
same name (systemd itself also refuses a second unit of that name).

These functions decide what to do from what the module read on the node (the
pending-restart marker, the unit's state, the lock's holder) and say it.
"""

from __future__ import annotations

import json
import math
import time

# The transient unit that runs the sequence; its name is also a lock (systemd refuses a second one).
UNIT = "kubenode-registry-mirror-restart"
LOCK_FILE = "/run/kubenode-registry-mirror.lock"

# Time limits of the sequence inside the unit, in seconds.
AGENT_STOP_TIMEOUT = 60  # each `systemctl stop` of pf9-hostagent and pf9-nodeletd
PHASES_STOP_TIMEOUT = 900  # `nodeletd phases stop`: Platform9's drain alone has a 300 s timeout
RESTART_TIMEOUT = 900  # `systemctl restart containerd` (strategy containerd)
RESTORE_TIMEOUT = 120  # `systemctl start pf9-hostagent` (or containerd) at the end
# RuntimeMaxSec of the unit: its own steps' limits and a margin. Past it, systemd stops the unit.
SEQUENCE_TIME_LIMIT = 2 * AGENT_STOP_TIMEOUT + PHASES_STOP_TIMEOUT + 60
# TimeoutStopSec of the unit: from SIGTERM to SIGKILL, and the budget of its ExecStopPost.
STOP_GRACE = 60
# The longest a node can stay with its agents stopped: the program hung past RuntimeMaxSec and did not
# end on SIGTERM, so systemd kills it after STOP_GRACE and its ExecStopPost starts the agent.
WORST_CASE_DELAY = SEQUENCE_TIME_LIMIT + STOP_GRACE

# What the module does once it holds the lock.
NOTHING = "nothing"  # nothing requested, nothing unfinished: touch nothing
RESTART = "restart"  # run the restart sequence (requested, or an unfinished one did not stop the stack)
WAIT_HEALTH = "wait_health"  # the stack was stopped and the agent started again: only wait for the node
WAIT_UNIT = "wait_unit"  # the unit of an earlier run still runs its sequence: wait for it, touch nothing
GIVE_UP = "give_up"  # another (live) run held the node and finished it: leave the rollout to that run

# systemctl's ActiveState values of a unit that still runs (or is being stopped).
RUNNING_STATES = ("active", "activating", "deactivating", "reloading")

# What the sequence stops, and what is started again at its end whatever happened.
RESTORED = {"pmk": "pf9-hostagent", "containerd": "containerd"}
PMK_AGENTS = ("pf9-hostagent", "pf9-nodeletd")


def when(epoch):
    """Return an epoch time as the operator reads it: 2026-12-05 10:00:03 UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def stage(marker):
    """Return what a marker document says is unfinished: None (no marker), "health" or "sequence".

    An unreadable marker, one written by 1.0.0 (plain text), or a "health" marker whose restart times are
    not numbers (the health gate could not tell a fresh check from an old one) means the sequence did not
    finish.
    """
    if marker is None:
        return None
    if marker.get("stage") == "health" and _is_time(marker.get("restarted_at")) and \
            _is_time(marker.get("restarted_monotonic", 0)):
        return "health"
    return "sequence"


def _is_time(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plan(marker, requested, unit_state, waited_for_run=False):
    """Return what to do once the lock is held: NOTHING, RESTART, WAIT_HEALTH, WAIT_UNIT or GIVE_UP.

    marker: the pending-restart marker document (None when there is none); requested: this run changed the
    configuration; unit_state: the ActiveState of UNIT ("inactive" when it does not exist); waited_for_run:
    this run had to wait for the lock, that is for another live run.
    """
    if unit_state in RUNNING_STATES:
        # A run that died left its sequence running: it starts the agent again itself; never touch the agents.
        return WAIT_UNIT
    if requested:
        return RESTART
    pending = stage(marker)
    if pending is None:
        # Another run restarted this node while this one waited, and goes on to the next nodes: following it
        # there, this run would write the same files at the same moments as that one.
        return GIVE_UP if waited_for_run else NOTHING
    return WAIT_HEALTH if pending == "health" else RESTART


def holder_document(taken_at, pid, user, strategy, requested):
    """Return what the lock's holder writes into the lock file, for a run that has to wait."""
    return {"taken_at": taken_at, "pid": pid, "user": user, "strategy": strategy, "requested": requested}


def parse_document(text):
    """Return a JSON object from text (the lock file, the marker), None when it is empty or not an object."""
    try:
        document = json.loads(text or "")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def describe_run(holder, now):
    """Return which run a holder document names, in words: when it took the node, since how long, who."""
    if not holder or not isinstance(holder.get("taken_at"), (int, float)):
        return "a run that did not say when it started"
    details = [f"{now - holder['taken_at']:.0f} s ago"]
    if holder.get("pid"):
        details.append(f"node_restart pid {holder['pid']}")
    if holder.get("user"):
        details.append(f"by {holder['user']}")
    return f"a run that took this node at {when(holder['taken_at'])} ({', '.join(details)})"


def lock_timeout_message(holder, waited, lock_timeout, now):
    """Return the message of a run that gave up waiting for the lock; it touched nothing."""
    return (
        f"another run holds this node: {describe_run(holder, now)} is restarting it or waiting for it to be "
        f"healthy again. Waited {waited:.0f} s (lock_timeout {lock_timeout} s) and touched nothing on the node. "
        "Run again once that run is over: it then finds nothing left to do, or finishes what that run left."
    )


def gave_up_message(holder, waited, now):
    """Return the message of a run that waited for another run which then finished this node's restart."""
    return (
        f"another run held this node: {describe_run(holder, now)} restarted it while this run waited "
        f"{waited:.0f} s, and nothing is left to do here. This run stops rather than follow that run onto the "
        "next nodes, where both would write the same files at once; that run goes on with the rollout. Run again "
        "once it is over: this run then changes nothing, or finishes what that run left."
    )


def unit_timeout_message(marker, waited, lock_timeout, now):
    """Return the message of a run that gave up waiting for the unit an earlier (dead) run left running."""
    return (
        f"the restart sequence of {describe_run((marker or {}).get('run'), now)} still runs on this node "
        f"(unit {UNIT}.service; that run is gone). Waited {waited:.0f} s (lock_timeout {lock_timeout} s) and "
        f"touched nothing; the unit starts the agents again itself at its end, at the latest "
        f"{SEQUENCE_TIME_LIMIT + STOP_GRACE} s after it began. Run again later to wait for the node."
    )


def stack_stopped(document, strategy):
    """Return whether the unit's sequence did what it must: every step ran and exited 0, containerd stopped.

    UNIT_PROGRAM applies the same rule to move the marker to stage "health".
    """
    steps = document.get("steps") or []
    wanted = len(PMK_AGENTS) + 1 if strategy == "pmk" else 1
    ran = [step for step in steps if not step.get("restore")]
    if len(ran) < wanted or any(step.get("rc") != 0 for step in ran):
        return False
    return strategy != "pmk" or document.get("containerd_after_stop") not in RUNNING_STATES


def sequence_error(document, strategy, pmk_user="pf9"):
    """Return why the unit's sequence did not do its job (None when it did), from the marker it updated.

    document: the marker after the unit ended (None when it vanished). The unit records each step's
    command and exit code, containerd's state after `phases stop` and its table, what stopped it early,
    and the start of the agent at its end.
    """
    if document is None:
        return "the pending-restart marker vanished while the restart unit ran; the outcome is unknown"
    restored = RESTORED[strategy]
    errors = []
    if "ended_at" not in document:
        errors.append(
            f"the restart unit {UNIT}.service ended before its sequence did (killed, or over its "
            f"{SEQUENCE_TIME_LIMIT} s limit); its ExecStopPost started {restored} again"
        )
    elif document.get("stopped_by"):
        errors.append(f"the restart unit was stopped ({document['stopped_by']}) before its sequence ended")
    for step in document.get("steps") or []:
        if step.get("restore") or step.get("rc") == 0:
            continue
        detail = f"{step.get('step')} failed (rc {step.get('rc')})"
        if step.get("stderr"):
            detail += f": {step['stderr']}"
        errors.append(detail)
        break
    state = document.get("containerd_after_stop")
    if strategy == "pmk" and not errors and state in RUNNING_STATES:
        errors.append(
            "nodeletd phases stop exited 0 but containerd is still "
            f"{state}: a phase failed (a failed drain, for example), so the stack was not stopped and "
            f"the new configuration is not active. {restored} was started again. Fix the cause (the "
            "phase table below says which phase failed; `kubectl drain` on this node shows why), then run "
            "again: the restart sequence is still pending and will run even though nothing changes.\n"
            + (document.get("phases_stop_output") or "").strip()
        )
    if not errors and not stack_stopped(document, strategy):
        errors.append(f"the restart sequence did not finish (as {pmk_user}: see the steps)")
    restore = [step for step in document.get("steps") or [] if step.get("restore")]
    if restore and restore[-1].get("rc") != 0:
        errors.append(
            f"systemctl start {restored} failed (rc {restore[-1].get('rc')}): {restore[-1].get('stderr', '')}"
        )
    return "; ".join(errors) or None


def _short_reason(document):
    """Return in a few words why a sequence that ended did not stop the stack."""
    if document.get("stopped_by"):
        return f"its unit was stopped ({document['stopped_by']})"
    for step in document.get("steps") or []:
        if not step.get("restore") and step.get("rc") != 0:
            return f"{step.get('step')} failed (rc {step.get('rc')})"
    state = document.get("containerd_after_stop")
    if state in RUNNING_STATES:
        return f"containerd was still {state} after phases stop: a phase failed, a drain for example"
    return "the stack was not seen stopped"


def describe_unfinished(marker, now, same_boot=True):
    """Return, in words, what an earlier run left unfinished, from its marker: whose, and how far it got."""
    whose = describe_run(marker.get("run"), now) if marker.get("run") else "an earlier run"
    if not marker.get("steps") and "ended_at" not in marker:
        if marker.get("stage") == "health":
            how = "its sequence had stopped the stack, but the node was not seen healthy"
        else:
            how = "its sequence had not begun or left no record"
        text = f"the restart of {whose}: {how}"
    elif "ended_at" not in marker:
        text = f"the restart of {whose}: its sequence was cut short"
    else:
        strategy = marker.get("strategy", "pmk")
        restored = RESTORED.get(strategy, "pf9-hostagent")
        ended = f"the node started {restored} again itself at {when(marker['ended_at'])}"
        if marker.get("stage") == "health":
            what = "stopped the stack" if strategy == "pmk" else "restarted containerd"
            text = f"the restart of {whose}: its sequence {what} and {ended}, but the node was not seen healthy"
        else:
            text = f"the restart of {whose}: its sequence did not stop the stack ({_short_reason(marker)}); {ended}"
    if not same_boot:
        text += " (the node has rebooted since)"
    return text


def recovered_text(marker, action, now, same_boot=True, unit_waited=None):
    """Return what this run found unfinished and how it finishes it (None when it found nothing)."""
    if marker is None:
        return None
    found = describe_unfinished(marker, now, same_boot)
    if unit_waited is not None:
        found += f" (its unit was still running; waited {unit_waited:.0f} s for it to end)"
    finish = {
        WAIT_HEALTH: "waited for the node to be healthy again, without a new restart",
        RESTART: "ran the restart sequence again",
    }[action]
    return f"found an unfinished restart: {found}; {finish}"
