# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the node's containerd config.toml, edit it on the controller, write it: two module runs, one when unchanged.

The read (the module's internal read mode) also tells whether node_restart's pending
marker exists and which containerd the node runs, so that the role needs no other call
to know whether a restart is owed.

The edit sets config_path and, unless legacy_mirrors=refuse, moves the legacy
registry mirrors/configs entries to hosts.toml files that the same module call
writes first. Diffs are made here, where the TOML can be parsed, with every
secret masked.
"""

from __future__ import annotations

import base64
import hashlib

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import (
    ARGUMENT_SPEC,
    new_file_version,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import check_absolute
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    ensure_config_path,
    mask_secrets,
    remove_config_path,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import MissingDependencyError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import mask_diff

_MODULE = "kubenode.registry_mirror.containerd_config"
_RETURNED = ("section", "containerd_major", "version", "previous_config_path", "config_path")


def _diffs(path, text, new_text, migrated, written):
    """Return the diffs of a change: config.toml, then each hosts.toml created, every secret masked."""
    diffs = [
        {
            "before_header": path,
            "after_header": path,
            "before": mask_secrets(text or ""),
            "after": mask_secrets(new_text),
        }
    ]
    contents = {entry["registry"]: entry["content"] for entry in migrated}
    for entry in written:
        if entry.get("status") in ("created", "kept_aside") and entry.get("registry") in contents:
            before, after = mask_diff("", contents[entry["registry"]])
            header = entry["path"]
            diffs.append({"before_header": header, "after_header": header, "before": before, "after": after})
    return diffs


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _read(self, path, pending_marker, task_vars):
        """One module run: the node's file (bytes, None when there is none), the marker, containerd's version."""
        module_args = {"path": path, "_read": True}
        if pending_marker is not None:
            module_args["pending_marker"] = pending_marker
        read = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
        if read.get("failed"):
            raise AnsibleActionFail(read.get("msg", f"cannot read {path}"))
        content = None if read["content"] is None else base64.b64decode(read["content"])
        return content, {"pending_restart": read["pending_restart"], "containerd_version": read["containerd_version"]}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        path = args["path"]
        try:  # type str, not path: taken literally, no ~ or $VAR expansion here
            check_absolute(path, "path")
        except RegistrySettingError as error:
            raise AnsibleActionFail(str(error)) from None

        try:
            before, node = self._read(path, args["pending_marker"], task_vars)
            try:
                text = None if before is None else before.decode("utf-8")
            except UnicodeDecodeError as error:
                raise AnsibleActionFail(f"{path}: is not UTF-8 text ({error}); nothing was written") from None
            try:
                if args["state"] == "present":
                    version = new_file_version(args["version"], node["containerd_version"])
                    new_text, info = ensure_config_path(
                        text, args["config_path"], version, name=path, legacy_mirrors=args["legacy_mirrors"]
                    )
                else:
                    new_text, info = remove_config_path(text, args["config_path"], name=path)
            except (RegistrySettingError, MissingDependencyError) as error:
                raise AnsibleActionFail(str(error)) from None

            result.update({name: info[name] for name in _RETURNED}, path=path, changed=False, **node)
            result.update(migrated=[], legacy_removed=False)
            if info["warnings"]:
                result["warnings"] = list(info["warnings"])
            if new_text != text:
                module_args = {name: args[name] for name in ARGUMENT_SPEC if args[name] is not None}
                module_args["_content"] = new_text
                module_args["_read_sha256"] = "" if before is None else hashlib.sha256(before).hexdigest()
                module_args["_hosts_files"] = info["migrated"]
                module_args["_legacy_removed"] = info["legacy_removed"]
                written = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
                written.pop("diff", None)  # the module shows no file text; the masked diff is made below
                warnings = result.get("warnings", []) + written.pop("warnings", [])
                result.update(written)
                if warnings:
                    result["warnings"] = warnings
                if self._task.diff and not written.get("failed"):
                    result["diff"] = _diffs(path, text, new_text, info["migrated"], written.get("migrated", []))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

        # The module's own invocation holds the whole file; show what the user asked instead.
        result["invocation"] = {"module_args": args}
        return result
