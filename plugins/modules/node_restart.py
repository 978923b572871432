#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_restart
short_description: Restart what reads containerd's configuration, then wait until the node is healthy again
version_added: 1.1.0
description:
  - With O(strategy=pmk), runs Platform9's restart sequence on a PMK node, as the seed document gives it
    for a cluster update, and checks its outcome rather than its exit codes, which Platform9's
    C(nodeletd phases stop) does not make trustworthy (it exits 0 when a phase such as the drain failed).
    The sequence is C(systemctl stop pf9-hostagent), C(systemctl stop pf9-nodeletd),
    C(nodeletd phases stop) as O(pmk_user) (through C(su), as the seed does, so no become to that user is
    needed), then C(systemctl start pf9-hostagent), which runs even when a step before it failed.
  - When containerd still runs after C(phases stop), the stack was not stopped (a failed drain, for example)
    and the new configuration is not active; pf9-hostagent is started again and the task fails saying so.
  - A marker file (O(pending_marker)) is written before the sequence and removed only once the node is seen
    healthy again. So on the next call, even when nothing changed then, a sequence that did not see the stack
    stopped runs again, and a node that did not come back in time is waited for again (without a new
    restart) before the role goes on to the next node.
  - With O(strategy=containerd), restarts containerd.
  - Then, with O(wait=true), polls until the node is back, or fails after O(health_timeout) seconds with a
    message naming each condition that does not hold and what C(kube_status) last said. The conditions are
    containerd active, its CRI plugin loaded (C(ctr plugins ls)), and containerd started after the restart
    began; with O(strategy=pmk) also C(nodeletd phases status) exiting 0 as O(pmk_user), O(kube_status)
    saying C(ok) with a C(status_check_timestamp) later than the restart, and, where O(etcd_raft_checker)
    exists (masters), that checker exiting 0.
  - Nothing happens when O(requested=false) and no unfinished sequence is pending.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubenode.registry_mirror.attributes.no_files
attributes:
  check_mode:
    details: Reports whether a restart would happen; restarts nothing and waits for nothing.
options:
  strategy:
    description:
      - V(pmk) runs Platform9's agent restart sequence; V(containerd) restarts containerd.
    type: str
    choices: [pmk, containerd]
    required: true
  requested:
    description:
      - Whether the configuration changed and a restart is wanted. With V(false), only an unfinished PMK
        sequence (O(pending_marker)) is run again.
    type: bool
    default: true
  wait:
    description:
      - Wait until the node is healthy again after the restart.
    type: bool
    default: true
  health_timeout:
    description:
      - Seconds to wait for the node to be healthy again, from the end of the restart sequence.
    type: int
    default: 900
  health_interval:
    description:
      - Seconds between two health checks.
    type: int
    default: 5
  pmk_user:
    description:
      - The user Platform9's nodelet runs as.
    type: str
    default: pf9
  nodeletd:
    description:
      - Path of Platform9's nodeletd program.
    type: str
    default: /opt/pf9/nodelet/nodeletd
  kube_status:
    description:
      - The status file pf9-nodeletd rewrites on each of its checks.
    type: str
    default: /var/opt/pf9/kube_status
  etcd_raft_checker:
    description:
      - Platform9's etcd health checker, present on masters. Where it exists it must exit 0.
    type: str
    default: /opt/pf9/pf9-kube/bin/etcd_raft_checker
  pending_marker:
    description:
      - File that marks a PMK restart not yet seen through, from the start of the sequence until the node is
        healthy again; it says whether the stack was seen stopped.
    type: str
    default: /var/lib/kubenode-registry-mirror.restart-pending
notes:
  - Needs root (become). Platform9 restarts masters one by one and waits for node state C(ok) between them;
    run this with C(serial) so that the next node starts only when this one is healthy.
seealso:
  - module: kubenode.registry_mirror.containerd_config
    description: Changes what containerd reads at start.
  - name: Platform9 node agent (nodelet)
    description: The phases, C(phases status) and the C(kube_status) file.
    link: https://github.com/platform9/nodelet
"""

EXAMPLES = r"""
- name: Restart the PMK agents when the mirror settings changed, then wait for the node
  kubenode.registry_mirror.node_restart:
    strategy: pmk
    requested: "{{ hosts_result is changed or config_result is changed }}"
    health_timeout: 600
  register: restart

- name: Restart containerd after its configuration changed (no Platform9 agents)
  kubenode.registry_mirror.node_restart:
    strategy: containerd
    requested: "{{ config_result is changed }}"
"""

RETURN = r"""
restarted:
  description: Whether a restart ran (false in check mode).
  returned: always
  type: bool
  sample: true
pending:
  description:
    - What an earlier run left unfinished, from O(pending_marker) (V(null) when nothing).
    - V(sequence) when the stack was not seen stopped (the sequence runs again), V(health) when the node was
      restarted but not seen healthy (it is waited for again).
  returned: always
  type: str
  sample: null
steps:
  description: The commands run, in order, with their exit codes and durations.
  returned: always
  type: list
  elements: dict
  sample: [{"step": "systemctl stop pf9-hostagent", "rc": 0, "seconds": 0.4}]
health_wait:
  description: Seconds from the end of the restart until every condition held; null when no wait ran.
  returned: always
  type: float
  sample: 42.5
health:
  description: Each condition of the last check, whether it held, and why not.
  returned: when a wait ran
  type: dict
  sample: {"containerd_active": {"holds": true, "detail": "systemctl is-active containerd says active"}}
kube_status:
  description: The O(kube_status) document as last read (strategy pmk).
  returned: when a wait ran with O(strategy=pmk)
  type: dict
  sample: {"pf9_kube_node_state": "ok", "status_check_timestamp": 1795833351}
"""

import json
import os
import shlex
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _node_health as health

# A probe must not hang the wait beyond its deadline.
_PROBE_TIMEOUT = 30
# phases stop drains the node (Platform9's drain has a 300 s timeout).
_STOP_TIMEOUT = 900


class _Node:
    """Runs commands on the node and keeps the list of steps taken."""

    def __init__(self, module):
        self.module = module
        self.steps = []

    def run(self, argv, record=True, timeout=_PROBE_TIMEOUT):
        started = time.monotonic()
        rc, out, err = self.module.run_command(["timeout", str(timeout), *argv])
        if record:
            self.steps.append({"step": shlex.join(argv), "rc": rc, "seconds": round(time.monotonic() - started, 1)})
        return rc, out, err

    def as_user(self, user, argv, timeout=_PROBE_TIMEOUT, record=True):
        # su as the seed does: needs no become to the user, so no world-readable module files.
        return self.run(["su", user, "-s", "/bin/bash", "-c", shlex.join(argv)], record=record, timeout=timeout)

    def containerd_state(self):
        return self.run(["systemctl", "is-active", "containerd"], record=False)[1].strip()


def _probe(node, params, strategy):
    module = node.module
    ctr = module.get_bin_path("ctr")
    probes = {"containerd_active": node.containerd_state(), "ctr_plugins": None}
    if ctr:
        rc, out, _err = node.run([ctr, "plugins", "ls"], record=False)
        probes["ctr_plugins"] = out if rc == 0 else None
    out = node.run(["systemctl", "show", "containerd", "--property=ActiveEnterTimestampMonotonic", "--value"],
                   record=False)[1].strip()
    probes["containerd_started"] = int(out) if out.isdigit() else 0
    if strategy == "pmk":
        probes["phases_status_rc"] = node.as_user(
            params["pmk_user"], [params["nodeletd"], "phases", "status"], record=False
        )[0]
        try:
            with open(params["kube_status"], encoding="utf-8") as handle:
                probes["kube_status"] = health.parse_kube_status(handle.read())
        except OSError:
            probes["kube_status"] = None
        checker = params["etcd_raft_checker"]
        probes["etcd_rc"] = node.run([checker], record=False)[0] if os.path.exists(checker) else None
    return probes


def _wait_healthy(node, params, strategy, restarted_at, restarted_monotonic):
    """Poll until every condition holds or the timeout; return (healthy, seconds waited, results, kube_status)."""
    started = time.monotonic()
    deadline = started + params["health_timeout"]
    while True:
        probes = _probe(node, params, strategy)
        results = health.evaluate(probes, strategy, restarted_at, restarted_monotonic)
        healthy = not health.failed_conditions(results)
        if healthy or time.monotonic() + params["health_interval"] > deadline:
            return healthy, round(time.monotonic() - started, 1), results, probes.get("kube_status")
        time.sleep(params["health_interval"])


def _shown(results):
    return {name: {"holds": holds, "detail": detail} for name, (holds, detail) in results.items()}


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _read_marker(path):
    """Return the marker's document ({} for an unreadable or older marker), None when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _write_marker(path, stage, restarted_at, restarted_monotonic):
    document = {
        "what": "kubenode.registry_mirror: a restart of this node has not been seen through",
        "stage": stage,
        "restarted_at": restarted_at,
        "restarted_monotonic": restarted_monotonic,
        "boot_id": _boot_id(),
    }
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document) + "\n")


def _stop_stack(node, params):
    """Stop the agents and the stack as the seed does; return an error message or None."""
    for unit in ("pf9-hostagent", "pf9-nodeletd"):
        rc, _out, err = node.run(["systemctl", "stop", unit])
        if rc != 0:
            return f"systemctl stop {unit} failed (rc {rc}): {err.strip()}"
    rc, out, err = node.as_user(params["pmk_user"], [params["nodeletd"], "phases", "stop"], timeout=_STOP_TIMEOUT)
    if rc != 0:
        return f"nodeletd phases stop as {params['pmk_user']} failed (rc {rc}): {(err or out).strip()}"
    state = node.containerd_state()
    if state in ("active", "activating", "reloading", "deactivating"):
        return (
            "nodeletd phases stop exited 0 but containerd is still "
            f"{state}: a phase failed (a failed drain, for example), so the stack was not stopped and "
            "the new configuration is not active. pf9-hostagent was started again. Fix the cause (the "
            "phase table below says which phase failed; `kubectl drain` on this node shows why), then run "
            "again: the restart sequence is still pending and will run even though nothing changes.\n"
            + out.strip()
        )
    return None


def _pmk_sequence(node, params, restarted_at, restarted_monotonic):
    """Run the seed's sequence; return an error message or None. pf9-hostagent is always started again."""
    marker = params["pending_marker"]
    error = None
    try:
        _write_marker(marker, "sequence", restarted_at, restarted_monotonic)
        error = _stop_stack(node, params)
        if error is None:
            _write_marker(marker, "health", restarted_at, restarted_monotonic)
    except OSError as exc:
        error = f"{marker}: {exc.strerror}"
    finally:
        # Also when the module is failing: a node must not be left with its agents stopped.
        rc, _out, err = node.run(["systemctl", "start", "pf9-hostagent"])
    if rc != 0:
        error = f"{error + '; ' if error else ''}systemctl start pf9-hostagent failed (rc {rc}): {err.strip()}"
    return error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            strategy=dict(type="str", required=True, choices=["pmk", "containerd"]),
            requested=dict(type="bool", default=True),
            wait=dict(type="bool", default=True),
            health_timeout=dict(type="int", default=900),
            health_interval=dict(type="int", default=5),
            pmk_user=dict(type="str", default="pf9"),
            nodeletd=dict(type="str", default="/opt/pf9/nodelet/nodeletd"),
            kube_status=dict(type="str", default="/var/opt/pf9/kube_status"),
            etcd_raft_checker=dict(type="str", default="/opt/pf9/pf9-kube/bin/etcd_raft_checker"),
            pending_marker=dict(type="str", default="/var/lib/kubenode-registry-mirror.restart-pending"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name in ("health_timeout", "health_interval"):
        if params[name] < 1:
            module.fail_json(msg=f"{name}: must be at least 1, got {params[name]}")
    # Node paths are taken as written: no ~ or $VAR expansion.
    for name in ("nodeletd", "kube_status", "etcd_raft_checker", "pending_marker"):
        if not params[name].startswith("/"):
            module.fail_json(msg=f"{name}: {params[name]!r} must be an absolute path on the node")
    strategy = params["strategy"]
    marker = _read_marker(params["pending_marker"]) if strategy == "pmk" else None
    pending = None if marker is None else "health" if marker.get("stage") == "health" else "sequence"
    result = dict(changed=False, restarted=False, pending=pending, steps=[], health_wait=None)
    if not (params["requested"] or pending):
        module.exit_json(**result)
    # Only waiting again for a node restarted earlier changes nothing on it.
    result["changed"] = params["requested"] or pending == "sequence"
    if module.check_mode:
        module.exit_json(**result)

    node = _Node(module)
    if result["changed"]:
        restarted_at, restarted_monotonic = time.time(), time.monotonic()
        if strategy == "pmk":
            error = _pmk_sequence(node, params, restarted_at, restarted_monotonic)
        else:
            rc, _out, err = node.run(["systemctl", "restart", "containerd"], timeout=_STOP_TIMEOUT)
            error = f"systemctl restart containerd failed (rc {rc}): {err.strip()}" if rc != 0 else None
        result.update(restarted=True, steps=node.steps)
        if error:
            module.fail_json(msg=error, **result)
    else:
        restarted_at = float(marker.get("restarted_at", 0))
        # A monotonic time means nothing after a reboot, which restarted containerd anyway.
        same_boot = marker.get("boot_id") == _boot_id()
        restarted_monotonic = float(marker.get("restarted_monotonic", 0)) if same_boot else 0.0
    if params["wait"]:
        healthy, waited, results, kube_status = _wait_healthy(node, params, strategy, restarted_at,
                                                              restarted_monotonic)
        result.update(health=_shown(results))
        if strategy == "pmk":
            result["kube_status"] = kube_status
        if not healthy:
            module.fail_json(
                msg=health.timeout_message(results, kube_status, restarted_at, params["health_timeout"]), **result
            )
        result["health_wait"] = waited
    if marker is not None or result["restarted"]:
        try:
            os.remove(params["pending_marker"])
        except FileNotFoundError:
            pass
    module.exit_json(**result)


if __name__ == "__main__":
    main()
