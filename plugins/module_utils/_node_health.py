# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When is a node back after a restart: the pure half of the node_restart module.

Pure Python with no Ansible imports. The module probes the node (systemctl,
ctr, nodeletd, the kube_status file) and hands the raw answers to these
functions, which say which conditions hold and, when the wait times out, what
to tell the operator.

What counts as back comes from Platform9's node agent (nodelet): `nodeletd
phases status` exits 0 only when every phase's check passes; pf9-nodeletd
rewrites /var/opt/pf9/kube_status on each check, but `phases stop` does not,
so right after a restart the file still says the old "ok": only a
status_check_timestamp later than the restart counts.
"""

from __future__ import annotations

import json
import math
import re

# Condition names, in the order they are reported.
PHASES_STATUS = "phases_status"
KUBE_STATUS = "kube_status"
CONTAINERD_ACTIVE = "containerd_active"
CRI_PLUGIN = "cri_plugin"
CONTAINERD_RESTARTED = "containerd_restarted"
ETCD = "etcd"

# The conditions each restart strategy waits for (etcd only where its checker exists: masters).
CONDITIONS = {
    "pmk": (CONTAINERD_ACTIVE, CRI_PLUGIN, CONTAINERD_RESTARTED, PHASES_STATUS, KUBE_STATUS, ETCD),
    "containerd": (CONTAINERD_ACTIVE, CRI_PLUGIN, CONTAINERD_RESTARTED),
}

# How far ahead of the check a kube_status timestamp may be and still count: the writer and the
# check read the same node clock, so only rounding separates them; anything later is a stale file
# from before the clock was stepped back.
FUTURE_TOLERANCE = 5.0

# The kube_status fields shown to the operator (nodelet's extensionfile).
KUBE_STATUS_FIELDS = (
    "pf9_kube_service_state",
    "pf9_kube_node_state",
    "current_task",
    "last_failed_task",
    "status_check_timestamp",
)


def cri_plugin_status(ctr_plugins_output):
    """Return the status of containerd's CRI plugin from `ctr plugins ls` (ok, error, ...), None when absent.

    The table's columns are TYPE, ID, PLATFORMS, STATUS; PLATFORMS may be
    empty ("-"), so the status is the last column.
    """
    for line in ctr_plugins_output.splitlines():
        columns = line.split()
        if len(columns) >= 3 and columns[0] == "io.containerd.grpc.v1" and columns[1] == "cri":
            return columns[-1]
    return None


def parse_kube_status(text):
    """Return the kube_status document as a dict, or None when it is missing or not a JSON object."""
    if text is None:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def kube_status_fresh_ok(document, restarted_at, now):
    """Return (holds, why not): node state ok, checked after the restart began and not after now.

    Times are epoch seconds; now is when the file was read.
    """
    if document is None:
        return False, "the file is missing or not JSON"
    state = document.get("pf9_kube_node_state")
    try:
        checked_at = float(document.get("status_check_timestamp"))
    except (TypeError, ValueError, OverflowError):
        return False, f"no status_check_timestamp (node state {state!r})"
    if not math.isfinite(checked_at):
        return False, f"status_check_timestamp {checked_at} is not a time (node state {state!r})"
    if checked_at > now + FUTURE_TOLERANCE:
        return False, (f"status_check_timestamp is {checked_at - now:.0f} s in the future (clock stepped back?),"
                       f" so it does not prove a check since the restart (node state {state!r})")
    if checked_at <= restarted_at:
        return False, f"not rewritten since the restart (still says node state {state!r})"
    if state != "ok":
        return False, f"node state {state!r}"
    return True, ""


def describe_kube_status(document, restarted_at):
    """Return what kube_status last said, in one line, for a failure message."""
    if document is None:
        return "kube_status last said nothing (missing or not JSON)"
    fields = []
    for name in KUBE_STATUS_FIELDS:
        value = document.get(name)
        if name == "status_check_timestamp" and isinstance(value, (int, float)):
            offset = value - restarted_at
            when = "after" if offset > 0 else "before"
            value = f"{value} ({abs(offset):.0f} s {when} the restart)"
        fields.append(f"{name}={value if value not in (None, '') else '-'}")
    return "kube_status last said: " + ", ".join(fields)


def evaluate(probes, strategy, restarted_at, restarted_monotonic):
    """Return {condition: (holds, detail)} for the strategy's conditions.

    probes holds the raw answers: containerd_active (systemctl is-active
    output), ctr_plugins (output or None when ctr failed), containerd_started
    (containerd's ActiveEnterTimestampMonotonic in microseconds, 0 when
    never), phases_status_rc, kube_status (parsed document or None),
    kube_status_read_at (epoch seconds when it was read), etcd_rc (None when the node has no etcd checker).
    """
    results = {}
    for condition in CONDITIONS[strategy]:
        if condition == CONTAINERD_ACTIVE:
            state = probes["containerd_active"]
            results[condition] = (state == "active", f"systemctl is-active containerd says {state or 'nothing'}")
        elif condition == CRI_PLUGIN:
            status = None if probes["ctr_plugins"] is None else cri_plugin_status(probes["ctr_plugins"])
            results[condition] = (
                status == "ok",
                "ctr plugins ls failed" if probes["ctr_plugins"] is None
                else f"ctr plugins ls shows io.containerd.grpc.v1 cri as {status or 'missing'}",
            )
        elif condition == CONTAINERD_RESTARTED:
            started = probes["containerd_started"] / 1e6
            results[condition] = (
                started > restarted_monotonic,
                "containerd has not started since the restart began, so it still runs the old configuration",
            )
        elif condition == PHASES_STATUS:
            rc = probes["phases_status_rc"]
            results[condition] = (rc == 0, f"nodeletd phases status exits {rc}")
        elif condition == KUBE_STATUS:
            holds, why = kube_status_fresh_ok(probes["kube_status"], restarted_at, probes["kube_status_read_at"])
            results[condition] = (holds, f"kube_status: {why}")
        elif condition == ETCD:
            rc = probes["etcd_rc"]
            if rc is None:
                results[condition] = (True, "no etcd_raft_checker on this node (not a master)")
            else:
                results[condition] = (rc == 0, f"etcd_raft_checker exits {rc}")
    return results


def failed_conditions(results):
    """Return the details of the conditions that do not hold, in order."""
    return [detail for holds, detail in results.values() if not holds]


def timeout_message(results, kube_status, restarted_at, timeout):
    """Return the message for a node that did not come back within timeout seconds."""
    message = (
        f"the node did not come back healthy within {timeout} s after the restart; "
        f"not yet: {'; '.join(failed_conditions(results))}"
    )
    if KUBE_STATUS in results:
        message += f". {describe_kube_status(kube_status, restarted_at)}"
    return message + ". The rollout stops here: look at this node (journalctl -u pf9-nodeletd) before the next."


_CONTAINERD_VERSION = re.compile(r"(?<!\S)v?(\d+\.\d+\.\d+(?:[-+~][0-9A-Za-z.+~-]+)?)(?=\s|$)")


def containerd_version(version_output):
    """Return the version `containerd --version` prints ("1.7.2", "2.0.0-rc.1"), None when there is none.

    Distributions print it differently: "containerd github.com/containerd/containerd v1.7.2 <commit>",
    "containerd containerd.io 1.6.21 <commit>", "containerd github.com/containerd/containerd 1.6.12-0ubuntu1".
    """
    match = _CONTAINERD_VERSION.search(version_output or "")
    return match.group(1) if match else None
