# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the node's containerd config.toml, set config_path on the controller, write it with one module call."""

from __future__ import annotations

import base64
import hashlib
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import ARGUMENT_SPEC
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    ContainerdConfigError,
    MissingDependencyError,
    ensure_config_path,
    remove_config_path,
)

_MODULE = "kubenode.registry_mirror.containerd_config"
_RETURNED = ("section", "containerd_major", "version", "previous_config_path", "config_path")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _read(self, path, task_vars):
        """Return the node's file as bytes, or None when it does not exist."""
        slurped = self._execute_module(
            module_name="ansible.builtin.slurp", module_args={"src": path}, task_vars=task_vars
        )
        if not slurped.get("failed"):
            return base64.b64decode(slurped["content"])
        # slurp fails for a missing file as for an unreadable one; stat tells them apart.
        found = self._execute_module(
            module_name="ansible.builtin.stat",
            module_args={"path": path, "get_checksum": False, "get_mime": False, "get_attributes": False},
            task_vars=task_vars,
        )
        if not found.get("failed") and not found["stat"]["exists"]:
            return None
        raise AnsibleActionFail(f"{path}: cannot be read: {slurped.get('msg', 'unknown error')}")

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        path = args["path"]
        if not os.path.isabs(path):
            raise AnsibleActionFail(f"path: {path!r} must be an absolute path")

        try:
            before = self._read(path, task_vars)
            try:
                text = None if before is None else before.decode("utf-8")
            except UnicodeDecodeError as error:
                raise AnsibleActionFail(f"{path}: is not UTF-8 text ({error}); nothing was written") from None
            try:
                if args["state"] == "present":
                    new_text, info = ensure_config_path(text, args["config_path"], args["version"], name=path)
                else:
                    new_text, info = remove_config_path(text, args["config_path"], name=path)
            except (ContainerdConfigError, MissingDependencyError) as error:
                raise AnsibleActionFail(str(error)) from None

            result.update({name: info[name] for name in _RETURNED}, path=path, changed=False)
            if info["warnings"]:
                result["warnings"] = list(info["warnings"])
            if new_text != text:
                module_args = {name: args[name] for name in ARGUMENT_SPEC}
                module_args["_content"] = new_text
                module_args["_read_sha256"] = "" if before is None else hashlib.sha256(before).hexdigest()
                written = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
                warnings = result.get("warnings", []) + written.pop("warnings", [])
                result.update(written)
                if warnings:
                    result["warnings"] = warnings
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

        # The module's own invocation holds the whole file; show what the user asked instead.
        result["invocation"] = {"module_args": args}
        return result
