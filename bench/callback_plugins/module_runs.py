"""Callback plugin for bench/: counts, per host, the task results that ran a module on the node.

A loop item counts one, each retry of an ``until`` loop counts one; results of actions that run
only on the controller (set_fact, assert, debug, argument specs, ...), skipped results and
results delegated to another host do not count. An action plugin that runs more than one module
per result (``template``: ``stat``, then ``copy`` when the file changes) counts one per result.

Enabled by bench/ only: ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=module_runs, and KUBENODE_BENCH_MODULE_RUNS=FILE, where it writes
{host: {action: runs}} as JSON when the playbook ends.
"""

from __future__ import annotations

import collections
import json
import os

from ansible.plugins.callback import CallbackBase

# Actions whose plugins never execute a module on the managed node.
CONTROLLER_ACTIONS = frozenset(
    f"ansible.builtin.{name}"
    for name in ("add_host", "assert", "debug", "fail", "group_by", "import_role", "import_tasks",
                 "include_role", "include_tasks", "include_vars", "meta", "pause", "set_fact", "set_stats",
                 "validate_argument_spec")
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runs = collections.defaultdict(collections.Counter)  # host -> action -> module runs

    def _count(self, result):
        task, host = result._task, result._host.get_name()
        action = getattr(task, "resolved_action", None) or task.action
        if action in CONTROLLER_ACTIONS or f"ansible.builtin.{action}" in CONTROLLER_ACTIONS:
            return
        delegated = result._result.get("_ansible_delegated_vars", {}).get("ansible_delegated_host")
        if delegated not in (None, host):
            return
        items = result._result.get("results")
        if (task.loop is not None or task.loop_with) and isinstance(items, list):
            runs = sum(item.get("attempts", 1) for item in items
                       if isinstance(item, dict) and not item.get("skipped"))
        else:
            runs = result._result.get("attempts", 1)
        self.runs[host][action] += runs

    def v2_runner_on_ok(self, result):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("KUBENODE_BENCH_MODULE_RUNS")
        if path:
            with open(path, "w", encoding="utf-8") as file:
                json.dump({host: dict(actions) for host, actions in self.runs.items()}, file, indent=1)
