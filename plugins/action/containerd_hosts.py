# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render every hosts.toml of a node on the controller, then write them with one module call."""

from __future__ import annotations

import base64

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS
from ansible.plugins.action import ActionBase

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    REQUIRED_IF,
    TLS_FILES,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._http import credentials_error, url_credentials
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    HOSTS_NODE_OPTIONS,
    RENDER_OPTIONS,
    STATE_RULE_OPTIONS,
    check_absolute,
    check_rules,
    module_argument_spec,
    module_rules,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    RegistrySettingError,
    hosts_directories,
    normalize_url,
    registry_mirror_warnings,
    render_node_files,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import (
    DEFAULT_DIRECTORY,
    MIRROR_SECRETS,
    WILDCARD,
    masked_registry_mirrors,
    pinned_ca_files,
    read_registry_mirrors,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import MissingDependencyError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import mask_diff, secret_strings

_MODULE = "kubenode.registry_mirror.containerd_hosts"
_SPEC = module_argument_spec("containerd_hosts")
_NODE_ARGS = (*HOSTS_NODE_OPTIONS, *FILE_COMMON_ARGUMENTS)
_NO_LOG_PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
_SECRET_FILE_SUFFIXES = tuple(suffix for option, (suffix, _mode) in TLS_FILES.items() if option in MIRROR_SECRETS)


def _decoded(data):
    return None if data is None else base64.b64decode(data).decode("utf-8", errors="replace")


def _diffs(texts):
    """Return the diffs of the files the module changed, every header value masked on the parsed TOML."""
    diffs = []
    for text in texts:
        before, after = mask_diff(_decoded(text["before"]), _decoded(text["after"]))
        diffs.append({"before_header": text["path"], "after_header": text["path"], "before": before, "after": after})
    return diffs


def _hosts_files(args):
    """Validate the settings; return (files for the module, the secrets they hold, warnings).

    The secrets are every header value of the hosts.toml files and the text of every client key file: the
    module's no_log _secrets, so that Ansible masks them in whatever the module returns or logs.
    """
    if args["state"] == "absent":
        mirror_directory = None if args["url"] is None else normalize_url(args["url"])[1]
        directories = hosts_directories(mirror_directory, args["registries"], args["registry_mirrors"])
        return [{"directory": d} for d in directories], [], []
    # Ansible's required_if counts registry_mirrors' default {} as given: the rule is checked here.
    check_rules({name: args[name] for name in STATE_RULE_OPTIONS})
    rendered = render_node_files(**{name: args[name] for name in RENDER_OPTIONS})
    secrets = {secret for _directory, text, _files in rendered for secret in secret_strings(text)}
    secrets.update(text for _directory, _text, files in rendered for name, text in files.items()
                   if name.endswith(_SECRET_FILE_SUFFIXES))
    warnings = registry_mirror_warnings(args["registry_mirrors"], args["containerd_version"])
    hosts_files = [dict({"directory": d, "content": text}, **({"tls_files": files} if files else {}))
                   for d, text, files in rendered]
    return hosts_files, sorted(secrets), warnings


def _ca_pins(args):
    """The pinned CA files of registry_mirrors' mirrors, which the module checks before it writes anything."""
    if args["state"] != "present":
        return []
    return pinned_ca_files(read_registry_mirrors(args["registry_mirrors"], args["upstream_fallback"],
                                                 config_path=args["config_path"]))


def _sealed(args, hosts_files):
    """The text of _default/hosts.toml when a * entry without upstream fallback must serve every registry that
    has no entry of its own (the module writes it into every other directory of config_path); else None."""
    if args["state"] != "present" or not any(
        entry.registry == WILDCARD and not entry.upstream_fallback
        for entry in read_registry_mirrors(args["registry_mirrors"], args["upstream_fallback"])
    ):
        return None
    return next(hosts_file["content"] for hosts_file in hosts_files if hosts_file["directory"] == DEFAULT_DIRECTORY)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(
            argument_spec=dict(_SPEC, **FILE_COMMON_ARGUMENTS),
            required_if=REQUIRED_IF,
            **module_rules("containerd_hosts"),
        )[1]
        if url_credentials(args["ca_url"]):
            raise AnsibleActionFail(str(credentials_error("ca_url", "; a CA certificate is public")))
        try:
            # type str, not path: taken literally, no ~ or $VAR expansion here
            check_absolute(args["config_path"], "config_path")
            hosts_files, secrets, warnings = _hosts_files(args)
            sealed = _sealed(args, hosts_files)
            ca_pins = _ca_pins(args)
        except (RegistrySettingError, MissingDependencyError) as error:
            raise AnsibleActionFail(str(error)) from None

        module_args = {name: args[name] for name in _NODE_ARGS if args.get(name) is not None}
        module_args["_hosts_files"] = hosts_files
        if sealed is not None:
            module_args["_sealed"] = sealed
        if ca_pins:
            module_args["_ca_pins"] = ca_pins
        if secrets:
            module_args["_secrets"] = secrets
        done = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
        texts = done.pop("_texts", None)  # raw hosts.toml texts: never returned as they are
        safe_diffs = done.pop("_shown_diffs", None)  # the CA and PEM files: public, a key masked by the module
        done.pop("diff", None)
        warnings += done.pop("warnings", [])
        result.update(done)
        if warnings:
            result["warnings"] = warnings
        if self._task.diff and (texts or safe_diffs):
            result["diff"] = (safe_diffs or []) + _diffs(texts or [])

        # The module's own invocation lists the rendered files; show what the user asked instead.
        shown = {
            name: value
            for name, value in args.items()
            if (name in _SPEC or name in FILE_COMMON_ARGUMENTS) and value is not None
        }
        if "password" in shown:
            shown["password"] = _NO_LOG_PLACEHOLDER
        shown["registry_mirrors"] = masked_registry_mirrors(shown["registry_mirrors"], _NO_LOG_PLACEHOLDER)
        result["invocation"] = {"module_args": shown}
        return result
