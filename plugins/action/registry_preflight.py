# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read registry_mirrors on the controller, then call every distinct mirror from the node in one module run.

The node is also told which mirrors serve each registry (the routes), as containerd_hosts will write them, so that
it can ask them for its own sandbox image, which only the node knows.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    normalize_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import BY_OPTION, DEFAULT_REGISTRIES
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    parse_mirror,
    preflight_routes,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import (
    masked_registry_mirrors,
    preflight_targets,
    read_registry_mirrors,
)

_MODULE = "kubenode.registry_mirror.registry_preflight"
_NO_LOG_PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
_INTERNAL = ("_mirrors", "_secrets", "_routes")


def _pmk_name(args, option):
    """The name one of the PMK mirror's options is given by in args: its own or a PMK alias (its own when not given)."""
    return next((name for name in (option, *BY_OPTION[option].aliases) if name in args), option)


def _pmk_option(args, option):
    """The value of one of the PMK mirror's options the routes need, given by its name or a PMK alias."""
    return args.get(_pmk_name(args, option))


def _pmk_url(args):
    """The PMK mirror's URL when it is a valid one; the module reports a bad one itself, with its status."""
    url = _pmk_option(args, "url")
    try:
        return None if url in (None, "") else normalize_url(url)[0]
    except RegistrySettingError:
        return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        for name in _INTERNAL:
            if name in args:
                raise AnsibleActionFail(f"{name}: is set by the action plugin, not by the task")
        registry_mirrors = args.pop("registry_mirrors", None)
        upstream_fallback = args.pop("upstream_fallback", None)
        try:
            try:
                upstream_fallback = None if upstream_fallback is None else boolean(upstream_fallback, strict=True)
            except TypeError:
                raise RegistrySettingError("upstream_fallback", "must be a boolean") from None
            entries = read_registry_mirrors(registry_mirrors, upstream_fallback)
            targets, secrets = preflight_targets(entries)
            # Which mirrors serve each registry, for the node's sandbox image (the module reads it there).
            registries = args.get("registries")
            url = _pmk_url(args)
            mirror = None if url is None else parse_mirror(url, _pmk_option(args, "repo_path"))
            routes = preflight_routes(entries, targets, mirror,
                                      DEFAULT_REGISTRIES if registries is None else registries, upstream_fallback)
        except RegistrySettingError as error:
            raise AnsibleActionFail(str(error)) from None
        if mirror is not None:
            # The module probes the PMK mirror's repo_path as containerd_hosts writes it: read here, once.
            args[_pmk_name(args, "repo_path")] = mirror.repo_path
        module_args = dict(args, _mirrors=targets, _routes=routes)
        if secrets:
            module_args["_secrets"] = secrets  # no_log: Ansible masks them in all the module returns and logs
        result.update(self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars))

        # The module's invocation lists the mirrors as sent; show what the task asked, its secrets masked.
        shown = dict(result.get("invocation", {}).get("module_args", {}))
        for name in _INTERNAL:
            shown.pop(name, None)
        if registry_mirrors is not None:
            shown["registry_mirrors"] = masked_registry_mirrors(registry_mirrors, _NO_LOG_PLACEHOLDER)
        if upstream_fallback is not None:
            shown["upstream_fallback"] = upstream_fallback
        result["invocation"] = {"module_args": shown}
        return result
