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
  - B(The node brings itself back.) The sequence does not run in the module's process but in a transient
    systemd unit, C(kubenode-registry-mirror-restart.service), that the module starts with C(systemd-run
    --wait --collect) and watches. PID 1 owns that unit, so killing the module, its SSH session, sudo or the
    controller at any instant does not stop it. The unit's program runs the sequence and, at its end
    (finished, failed, or stopped by a signal), always starts pf9-hostagent again (containerd with
    O(strategy=containerd)); the unit's C(ExecStopPost) starts it again too, should that program itself be
    killed, and C(RuntimeMaxSec) bounds the unit at 1080 s, after which systemd stops it (C(TimeoutStopSec)
    60 s). Worst-case delay, pf9-hostagent is started at the latest 1140 s after the sequence began, whatever
    happens to the controller; normally the moment C(phases stop) returns (the drain's own time, up to
    300 s on a real node, plus the stop of the stack). The unit records each step in O(pending_marker), which
    the module reads back for its outcome. Needs systemd 236 or later on the node.
  - When containerd still runs after C(phases stop), the stack was not stopped (a failed drain, for example)
    and the new configuration is not active; pf9-hostagent is started again and the task fails saying so.
  - A marker file (O(pending_marker)) is written before the sequence and removed only once the node is seen
    healthy again. So on the next call, even when nothing changed then, a sequence that did not see the stack
    stopped runs again, and a node that did not come back in time is waited for again (without a new
    restart) before the role goes on to the next node. RV(recovered) then says what an earlier run left
    unfinished and how this run finished it.
  - B(One run per node at a time.) Before it looks at the node's agents, a run takes an exclusive lock,
    C(flock) on O(lock_file), and holds it through the sequence and the health wait; the kernel releases it
    when the run's module dies. A run that finds the lock taken waits up to O(lock_timeout) seconds, touching
    nothing. Then, when it holds the lock, it first waits (within the same time) for a restart unit that a
    run which died left running, and reads the marker again. When the other run finished the restart and
    nothing is left to do here, the task fails saying that another run held the node and when that run took
    it, rather than go on to the next nodes behind that run (with nothing requested and nothing pending when
    it starts, a run does not wait at all). When the wait times out, the task fails naming the other run and
    when it took the node. systemd refuses a second unit of the same name, which also keeps two sequences
    apart.
  - With O(strategy=containerd), restarts containerd (C(systemctl restart containerd) in the same kind of
    unit, which starts containerd again at its end), under the same lock and marker.
  - Then, with O(wait=true), polls until the node is back, or fails after O(health_timeout) seconds with a
    message naming each condition that does not hold and what C(kube_status) last said. The conditions are
    containerd active, its CRI plugin loaded (C(ctr plugins ls)), and containerd started after the restart
    began; with O(strategy=pmk) also C(nodeletd phases status) exiting 0 as O(pmk_user), O(kube_status)
    saying C(ok) with a C(status_check_timestamp) later than the restart, and, where O(etcd_raft_checker)
    exists (masters), that checker exiting 0.
  - Nothing happens when O(requested=false) and no unfinished sequence is pending.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubenode.registry_mirror.attributes.no_files
attributes:
  check_mode:
    details: Reports whether a restart would happen; restarts nothing and waits for nothing, not for the lock either.
author:
  - kubenode maintainers (@kubenode)
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
  lock_timeout:
    description:
      - Seconds to wait for another run that holds this node (its restart sequence and health wait), or for
        the restart unit a run that died left running, before failing. V(0) does not wait.
      - The default covers a drain of 300 s and a health wait of 900 s.
    type: int
    default: 1200
  lock_file:
    description:
      - The node's lock file, created root-only. A run holds an exclusive C(flock) on it from before it looks
        at the agents until its health wait ends, and writes in it when it took the node and who it is, for a
        run that has to wait. Under C(/run), so that a reboot clears it.
    type: str
    default: /run/kubenode-registry-mirror.lock
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
      - File that marks a restart not yet seen through, from before the sequence starts until the node is
        healthy again; it says whether the stack was seen stopped, which run started the sequence, and each
        step the restart unit ran.
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
  description:
    - The commands the restart unit ran, in order, with their exit codes and durations; the last one starts
      pf9-hostagent (or containerd) again. An exit code of V(-1) is a step interrupted by a signal.
  returned: always
  type: list
  elements: dict
  sample: [{"step": "systemctl stop pf9-hostagent", "rc": 0, "seconds": 0.4}]
recovered:
  description:
    - What this run found unfinished by an earlier run (from O(pending_marker)) and how it finished it, in one
      line for the node's summary; V(null) when it found nothing.
    - It names the earlier run (when it took the node), how far its sequence got (for example that the stack
      was stopped and the node started pf9-hostagent again itself, and when), whether its restart unit was
      still running, and then what this run did (waited for the node, or ran the sequence again) and how long
      the node took to be healthy again.
  returned: always
  type: str
  sample: >-
    found an unfinished restart: the restart of a run that took this node at 2026-12-04 16:38:16 UTC (26 s ago,
    node_restart pid 530, by ops): its sequence stopped the stack and the node started pf9-hostagent again
    itself at 2026-12-04 16:38:31 UTC, but the node was not seen healthy; waited for the node to be healthy
    again, without a new restart; healthy again after 0.1 s
lock_wait:
  description:
    - When another run held this node's lock, how long this run waited and which run held it (when it took
      the node, its module's process id, the user that ran it). V(null) when the lock was free.
  returned: always
  type: dict
  sample:
    seconds: 10.0
    holder: a run that took this node at 2026-12-04 16:46:56 UTC (20 s ago, node_restart pid 583, by ops)
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

import fcntl
import json
import os
import shlex
import sys
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _node_health as health
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _restart_lock as lock
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _restart_unit as unit
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    check_node_paths,
    module_argument_spec,
)

# A probe must not hang the wait beyond its deadline.
_PROBE_TIMEOUT = 30
# How often a run that waits looks again at the lock, and at the unit an earlier run left running.
_LOCK_POLL = 0.5
_UNIT_POLL = 1.0
# systemd-run --wait returns when the unit has ended, which RuntimeMaxSec and TimeoutStopSec bound.
_UNIT_WAIT_TIMEOUT = lock.WORST_CASE_DELAY + lock.RESTORE_TIMEOUT + 60


class _Node:
    """Runs commands on the node and keeps the list of steps taken."""

    def __init__(self, module):
        self.module = module

    def run(self, argv, timeout=_PROBE_TIMEOUT):
        return self.module.run_command(["timeout", str(timeout), *argv])

    def as_user(self, user, argv, timeout=_PROBE_TIMEOUT):
        # su as the seed does: needs no become to the user, so no world-readable module files.
        return self.run(["su", user, "-s", "/bin/bash", "-c", shlex.join(argv)], timeout=timeout)

    def containerd_state(self):
        return self.run(["systemctl", "is-active", "containerd"])[1].strip()

    def unit_state(self):
        """The ActiveState of the restart unit ("inactive" when it does not exist)."""
        rc, out, _err = self.run(["systemctl", "show", f"{lock.UNIT}.service", "--property=ActiveState", "--value"])
        return out.strip() if rc == 0 and out.strip() else "inactive"


class _Lock:
    """An exclusive flock on a file: held until released or until this process dies (the kernel drops it)."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def try_take(self):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def holder(self):
        """The holder's document, as it wrote it (None before it did)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                return lock.parse_document(handle.read())
        except OSError:
            return None

    def write(self, document):
        data = (json.dumps(document) + "\n").encode("utf-8")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self):
        os.ftruncate(self.fd, 0)
        os.close(self.fd)


def _take_lock(module, params, result):
    """Wait up to lock_timeout for the node's lock; fail naming its holder when it stays taken.

    Returns the lock, the deadline of the whole wait (also for a unit an earlier run left running), and the
    holder waited for (None when the lock was free; {} when the holder had not written itself yet).
    """
    started = time.monotonic()
    deadline = started + params["lock_timeout"]
    try:
        held = _Lock(params["lock_file"])
    except OSError as exc:
        module.fail_json(msg=f"lock_file: {params['lock_file']}: {exc.strerror}", **result)
    holder = None
    while not held.try_take():
        holder = held.holder() or holder or {}
        if time.monotonic() + _LOCK_POLL > deadline:
            waited = time.monotonic() - started
            result["lock_wait"] = {"seconds": round(waited, 1), "holder": lock.describe_run(holder, time.time())}
            module.fail_json(msg=lock.lock_timeout_message(holder, waited, params["lock_timeout"], time.time()),
                             **result)
        time.sleep(_LOCK_POLL)
    if holder is not None:
        result["lock_wait"] = {"seconds": round(time.monotonic() - started, 1),
                               "holder": lock.describe_run(holder, time.time())}
    return held, deadline, holder


def _wait_unit(module, node, params, result, deadline):
    """Wait, touching nothing, until the unit an earlier run left running has ended; return seconds waited."""
    started = time.monotonic()
    while node.unit_state() in lock.RUNNING_STATES:
        if time.monotonic() + _UNIT_POLL > deadline:
            marker = _read_marker(params["pending_marker"])
            module.fail_json(msg=lock.unit_timeout_message(marker, time.monotonic() - started,
                                                           params["lock_timeout"], time.time()), **result)
        time.sleep(_UNIT_POLL)
    return time.monotonic() - started


def _probe(node, params, strategy):
    module = node.module
    ctr = module.get_bin_path("ctr")
    probes = {"containerd_active": node.containerd_state(), "ctr_plugins": None}
    if ctr:
        rc, out, _err = node.run([ctr, "plugins", "ls"])
        probes["ctr_plugins"] = out if rc == 0 else None
    out = node.run(["systemctl", "show", "containerd", "--property=ActiveEnterTimestampMonotonic", "--value"])[1]
    out = out.strip()
    probes["containerd_started"] = int(out) if out.isdigit() else 0
    if strategy == "pmk":
        probes["phases_status_rc"] = node.as_user(params["pmk_user"], [params["nodeletd"], "phases", "status"])[0]
        try:
            with open(params["kube_status"], encoding="utf-8") as handle:
                probes["kube_status"] = health.parse_kube_status(handle.read())
        except OSError:
            probes["kube_status"] = None
        probes["kube_status_read_at"] = time.time()
        checker = params["etcd_raft_checker"]
        probes["etcd_rc"] = node.run([checker])[0] if os.path.exists(checker) else None
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
    return lock.parse_document(text) or {}


def _write_marker(path, document):
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document) + "\n")
    os.replace(temporary, path)


def _run_sequence(module, params, strategy, holder, restarted_at, restarted_monotonic):
    """Run the sequence as the transient unit and wait for it to end; return (error or None, steps)."""
    marker = params["pending_marker"]
    tools = {name: module.get_bin_path(name) for name in ("systemd-run", "systemctl")}
    missing = [name for name, path in tools.items() if not path]
    if missing:
        return f"{' and '.join(missing)} not found: node_restart runs the restart as a systemd unit", []
    document = {
        "what": "kubenode.registry_mirror: a restart of this node has not been seen through",
        "stage": "sequence",
        "strategy": strategy,
        "restarted_at": restarted_at,
        "restarted_monotonic": restarted_monotonic,
        "boot_id": _boot_id(),
        "run": holder,
    }
    try:
        # Before anything stops: a run that dies from here on leaves the marker for the next one.
        _write_marker(marker, document)
    except OSError as exc:
        return f"{marker}: {exc.strerror}; nothing was stopped", []
    arguments = unit.unit_arguments(marker, strategy, params["pmk_user"], params["nodeletd"])
    argv = unit.unit_command(tools["systemd-run"], tools["systemctl"], sys.executable, arguments)
    # Returns once the unit has ended. Should this process die meanwhile, the unit goes on without it.
    rc, _out, err = module.run_command(["timeout", str(_UNIT_WAIT_TIMEOUT), *argv])
    document = _read_marker(marker)
    if document is not None and "unit_started_at" not in document:
        return (f"systemd-run could not start the restart unit {lock.UNIT}.service (rc {rc}): {err.strip()}; "
                "nothing was stopped"), []
    steps = [{"step": step.get("step"), "rc": step.get("rc"), "seconds": step.get("seconds")}
             for step in (document or {}).get("steps") or []]
    return lock.sequence_error(document, strategy, params["pmk_user"]), steps


def _check_params(module):
    """Fail the module on an option out of its range, or a node path that is not absolute."""
    params = module.params
    for name in ("health_timeout", "health_interval"):
        if params[name] < 1:
            module.fail_json(msg=f"{name}: must be at least 1, got {params[name]}")
    if params["lock_timeout"] < 0:
        module.fail_json(msg=f"lock_timeout: must be at least 0, got {params['lock_timeout']}")
    try:  # node paths are taken as written: no ~ or $VAR expansion
        check_node_paths("node_restart", params)
    except RegistrySettingError as error:
        module.fail_json(msg=str(error))


def _wait_after_restart(module, node, result, restarted_at, restarted_monotonic):
    """Wait until the node is healthy again, into result; fail the module when it is not within health_timeout."""
    params, strategy = module.params, module.params["strategy"]
    healthy, waited, results, kube_status = _wait_healthy(node, params, strategy, restarted_at, restarted_monotonic)
    result.update(health=_shown(results))
    if strategy == "pmk":
        result["kube_status"] = kube_status
    if not healthy:
        module.fail_json(
            msg=health.timeout_message(results, kube_status, restarted_at, params["health_timeout"]), **result
        )
    result["health_wait"] = waited
    if result["recovered"]:
        result["recovered"] += f"; healthy again after {waited} s"


def main():
    module = AnsibleModule(
        argument_spec=module_argument_spec("node_restart"),
        supports_check_mode=True,
    )
    params = module.params
    _check_params(module)
    strategy = params["strategy"]
    marker = _read_marker(params["pending_marker"])
    pending = lock.stage(marker)
    result = dict(changed=False, restarted=False, pending=pending, steps=[], health_wait=None, recovered=None,
                  lock_wait=None)
    if not (params["requested"] or pending):
        module.exit_json(**result)
    # Only waiting again for a node restarted earlier changes nothing on it.
    result["changed"] = params["requested"] or pending == "sequence"
    if module.check_mode:
        module.exit_json(**result)

    # One run per node: nothing below touches the node before this run holds its lock.
    held, deadline, waited_for = _take_lock(module, params, result)
    holder = lock.holder_document(time.time(), os.getpid(), os.environ.get("SUDO_USER") or None, strategy,
                                  params["requested"])
    held.write(holder)
    node = _Node(module)
    unit_waited = None
    if node.unit_state() in lock.RUNNING_STATES:
        # The sequence of a run that died still runs: it brings the node back itself; wait for it.
        unit_waited = _wait_unit(module, node, params, result, deadline)
    # Read again under the lock: the run waited for may have finished the restart, or left it unfinished.
    marker = _read_marker(params["pending_marker"])
    same_boot = marker is not None and marker.get("boot_id") == _boot_id()
    action = lock.plan(marker, params["requested"], "inactive", waited_for is not None)
    result.update(pending=lock.stage(marker), changed=action == lock.RESTART)
    if action in (lock.NOTHING, lock.GIVE_UP):
        held.release()
        if action == lock.GIVE_UP:
            module.fail_json(msg=lock.gave_up_message(waited_for, result["lock_wait"]["seconds"], time.time()),
                             **result)
        module.exit_json(**result)
    result["recovered"] = lock.recovered_text(marker, action, time.time(), same_boot, unit_waited)

    if action == lock.RESTART:
        restarted_at, restarted_monotonic = time.time(), time.monotonic()
        error, steps = _run_sequence(module, params, strategy, holder, restarted_at, restarted_monotonic)
        result.update(restarted=True, steps=steps)
        if error:
            module.fail_json(msg=error, **result)
    else:
        restarted_at = float(marker.get("restarted_at", 0))
        # A monotonic time means nothing after a reboot, which restarted containerd anyway.
        restarted_monotonic = float(marker.get("restarted_monotonic", 0)) if same_boot else 0.0
    if params["wait"]:
        _wait_after_restart(module, node, result, restarted_at, restarted_monotonic)
    try:
        os.remove(params["pending_marker"])
    except FileNotFoundError:
        pass
    held.release()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
