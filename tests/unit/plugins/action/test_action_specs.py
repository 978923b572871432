"""The action plugins validate and hand on the options of the settings table (module_utils/_settings.py).

Here, not beside the table's own tests: ansible-test runs tests/unit/plugins/module_utils where only
ansible.module_utils can be imported, and an action plugin imports ansible.errors.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _settings as settings

_PREFIX = "ansible_collections.kubenode.registry_mirror.plugins"


@pytest.mark.parametrize(("name", "spec"), [
    ("containerd_config", "ARGUMENT_SPEC"),
    ("containerd_hosts", "_SPEC"),
])
def test_the_action_plugins_validate_the_same_spec(name, spec):
    action = importlib.import_module(f"{_PREFIX}.action.{name}")
    assert getattr(action, spec) == settings.module_argument_spec(name)


def test_containerd_hosts_renders_from_and_hands_on_options_of_the_table():
    from ansible_collections.kubenode.registry_mirror.plugins.action import containerd_hosts as action
    from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils import _hosts_toml

    assert tuple(inspect.signature(_hosts_toml.plan_node_files).parameters) == settings.RENDER_OPTIONS
    options = set(settings.module_argument_spec("containerd_hosts"))
    assert set(settings.RENDER_OPTIONS) <= options
    assert set(settings.HOSTS_NODE_OPTIONS) <= options
    assert set(settings.STATE_RULE_OPTIONS) <= options
    assert set(settings.HOSTS_NODE_OPTIONS) <= set(action._NODE_ARGS)
    assert _hosts_toml.HOSTS_FILES_SETTINGS_KEYS == settings.RENDER_OPTIONS
