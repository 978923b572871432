"""_settings: every module's argument spec, its rules and its node path checks come from the one table."""

from __future__ import annotations

import importlib
import pathlib

import pytest
import yaml

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _settings as settings
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError

PLUGINS = pathlib.Path(__file__).parents[4] / "plugins"
MODULES = sorted(settings.MODULE_SETTINGS)
_PREFIX = "ansible_collections.kubenode.registry_mirror.plugins"


class _Built(Exception):
    pass


def _module_kwargs(monkeypatch, name):
    """The keywords the module's main() gives AnsibleModule."""
    module = importlib.import_module(f"{_PREFIX}.modules.{name}")
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise _Built

    monkeypatch.setattr(module, "AnsibleModule", fake)
    with pytest.raises(_Built):
        module.main()
    return seen


def _documented(name):
    """The options the module documents, with those of the collection's documentation fragments it extends."""
    module = importlib.import_module(f"{_PREFIX}.modules.{name}")
    documentation = yaml.safe_load(module.DOCUMENTATION)
    options = dict(documentation["options"])
    for fragment in documentation.get("extends_documentation_fragment", []):
        if not fragment.startswith("kubenode.registry_mirror."):
            continue
        plugin, _dot, variable = fragment.removeprefix("kubenode.registry_mirror.").partition(".")
        fragments = importlib.import_module(f"{_PREFIX}.doc_fragments.{plugin}").ModuleDocFragment
        options.update(yaml.safe_load(getattr(fragments, (variable or "documentation").upper())).get("options", {}))
    return options


@pytest.mark.parametrize("name", MODULES)
def test_each_module_takes_its_argument_spec_and_rules_from_the_table(monkeypatch, name):
    kwargs = _module_kwargs(monkeypatch, name)
    spec = kwargs["argument_spec"]
    table = settings.module_argument_spec(name, env_fallback=spec.get("auth_token", {}).get("fallback", (None,))[0])
    # only the internal options the action plugins set are the module's own
    assert {option: spec[option] for option in table} == table
    assert all(option.startswith("_") for option in set(spec) - set(table))
    rules = {key: kwargs[key] for key in kwargs if key.startswith(("required_", "mutually_"))}
    assert rules == settings.module_rules(name)


@pytest.mark.parametrize("name", MODULES)
def test_the_table_says_what_each_module_documents(name):
    documented = _documented(name)
    for setting in settings.MODULE_SETTINGS[name]:
        doc = documented[setting.option]
        entry = settings.option_spec(setting)
        assert doc.get("type", "str") == entry["type"], setting.option
        assert doc.get("elements") == entry.get("elements"), setting.option
        assert bool(doc.get("required")) is bool(entry.get("required")), setting.option
        assert doc.get("default") == entry.get("default"), setting.option
        assert doc.get("choices") == entry.get("choices"), setting.option
        assert sorted(doc.get("aliases", [])) == sorted(entry.get("aliases", [])), setting.option


@pytest.mark.parametrize(
    ("name", "option"),
    [(name, option) for name in MODULES for option in settings.node_path_options(name)],
)
@pytest.mark.parametrize("value", ["relative/file", "~/file", "$HOME/file", ""])
def test_every_node_path_is_refused_with_the_one_message(name, option, value):
    with pytest.raises(RegistrySettingError) as error:
        settings.check_node_paths(name, {option: value})
    assert str(error.value) == f"{option}: {value!r} must be an absolute path on the node"


@pytest.mark.parametrize(("name", "options"), [
    ("ca_certificate", ("path",)),
    ("containerd_config", ("path", "config_path", "pending_marker")),
    ("containerd_hosts", ("ca_file", "config_path")),
    ("cri_pull", ()),
    ("node_restart", ("lock_file", "nodeletd", "kube_status", "etcd_raft_checker", "pending_marker")),
    ("pmk_cluster_registry", ()),
    ("registry_preflight", ("ca_file",)),
])
def test_the_node_paths_of_each_module(name, options):
    assert settings.node_path_options(name) == options
    settings.check_node_paths(name, {option: "/an/absolute/path" for option in options})
    settings.check_node_paths(name, {option: None for option in options})  # not set: nothing to check


def test_no_other_absolute_path_message():
    """check_absolute says it once; the legacy registry entries of config.toml say why their rule differs."""
    sayers = sorted(
        str(path.relative_to(PLUGINS)) for path in PLUGINS.rglob("*.py")
        if "must be an absolute path" in path.read_text(encoding="utf-8")
    )
    assert sayers == ["module_utils/_settings.py", "plugin_utils/_legacy_registry.py"]


@pytest.mark.parametrize(("setting", "entry"), [
    (settings.Setting("a", "str"), {"type": "str"}),
    (settings.Setting("a", "list", elements="str", default=("x",)),
     {"type": "list", "elements": "str", "default": ["x"]}),
    (settings.Setting("a", "str", required=True, choices=("x", "y")),
     {"type": "str", "required": True, "choices": ["x", "y"]}),
    (settings.Setting("a_password", "str", default="x", log_ok=True), {"type": "str", "default": "x", "no_log": False}),
    (settings.Setting("a", "str", no_log=True, env=("A",)), {"type": "str", "no_log": True, "fallback": (len, ["A"])}),
    (settings.Setting("a", "str", pmk="customRegistryA", legacy_pmk=("customA",)),
     {"type": "str", "aliases": ["customRegistryA", "customA"]}),
])
def test_option_spec(setting, entry):
    assert settings.option_spec(setting, env_fallback=len) == entry


def test_without_env_fallback_no_fallback_and_without_defaults_no_default():
    setting = settings.Setting("a", "str", default="x", env=("A",))
    assert settings.option_spec(setting, defaults=False) == {"type": "str"}


def test_module_rules_are_a_fresh_copy():
    rules = settings.module_rules("registry_preflight")
    rules["mutually_exclusive"].append(["x", "y"])
    assert ["x", "y"] not in settings.module_rules("registry_preflight")["mutually_exclusive"]
    assert settings.module_rules("cri_pull") == {}


@pytest.mark.parametrize(("name", "options"), [
    ("ca_certificate", settings.CA_CERTIFICATE_CA_OPTIONS),
    ("containerd_hosts", settings.CA_OPTIONS),
    ("registry_preflight", settings.CA_OPTIONS),
    ("pmk_cluster_registry", settings.PMK_URL_OPTIONS),
    ("containerd_hosts", settings.HOSTS_NODE_OPTIONS),
])
def test_the_option_lists_name_options_of_the_module(name, options):
    assert set(options) <= set(settings.module_argument_spec(name))
