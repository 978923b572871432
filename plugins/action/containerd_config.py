# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the node's containerd config.toml, edit it on the controller, write it: two module runs, one when unchanged.

The read (the module's internal read mode) also tells whether node_restart's pending
marker exists and which containerd the node runs, so that the role needs no other call
to know whether a restart is owed, and (state present or check) returns containerd's
effective configuration: `containerd config dump` and the files its imports pull in.
Before anything is written, a drop-in that would defeat config_path is refused; after
the write, the module's new dump must read config_path with no legacy entry active,
else config.toml is put back as it was (a third module run, only then). state=check
only reads, and fails when kubelet's pulls would not use certs.d.

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

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import new_file_version
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    check_absolute,
    module_argument_spec,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._config_credentials import holds_ours
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    check_config_path,
    ensure_config_path,
    remove_config_path,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._effective_config import (
    NOT_USED,
    EffectiveConfigError,
    drop_in_problems,
    dump_problems,
    main_file_problems,
    not_used_message,
    read_effective,
    sandbox_image,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import masked_registry_mirrors
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import MissingDependencyError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import holds_secrets, mask_diff

_MODULE = "kubenode.registry_mirror.containerd_config"
ARGUMENT_SPEC = module_argument_spec("containerd_config")
_RETURNED = ("section", "containerd_major", "version", "previous_config_path", "config_path")
NOTHING_WRITTEN = "nothing was written"
_NO_LOG_PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
# Options the write run does not need: the credentials reach the node only inside the new text (_content).
_NOT_SENT = ("credentials",)


def _diffs(path, text, new_text, migrated, written):
    """Return the diffs of a change: config.toml, then each hosts.toml created, every secret masked."""
    before, after = mask_diff(text, new_text)  # says "changed" where neither side can be shown
    diffs = [{"before_header": path, "after_header": path, "before": before, "after": after}]
    contents = {entry["registry"]: entry["content"] for entry in migrated}
    for entry in written:
        if entry.get("status") in ("created", "kept_aside") and entry.get("registry") in contents:
            before, after = mask_diff("", contents[entry["registry"]])
            header = entry["path"]
            diffs.append({"before_header": header, "after_header": header, "before": before, "after": after})
    return diffs


def _effective(report, path, text):
    """The Effective configuration the module's read reported; AnsibleActionFail naming the command when it cannot
    be read (nothing is written then)."""
    try:
        return read_effective(report, path, text)
    except EffectiveConfigError as error:
        raise AnsibleActionFail(f"{error}; {NOTHING_WRITTEN}") from None


def _effective_results(effective):
    """sandbox_image and effective, as the results say them (the dump itself may hold credentials: never returned)."""
    if effective is None:
        return {"sandbox_image": "", "effective": None}
    return {"sandbox_image": sandbox_image(effective.settings), "effective": effective.summary()}


def _check_paths(args):
    """Refuse a node path that is not absolute, and a config_path containerd cannot be pointed at."""
    try:  # type str, not path: taken literally, no ~ or $VAR expansion here
        check_absolute(args["path"], "path")
        if args["state"] != "absent":
            check_config_path(args["config_path"])
    except RegistrySettingError as error:
        raise AnsibleActionFail(str(error)) from None


def _edited(args, text, node):
    """(the new text of config.toml, what the edit did) for state present or absent."""
    path, config_path = args["path"], args["config_path"]
    try:
        if args["state"] == "present":
            version = new_file_version(args["version"], node["containerd_version"])
            return ensure_config_path(text, config_path, version, name=path, legacy_mirrors=args["legacy_mirrors"],
                                      credentials=args["credentials"], containerd_version=node["containerd_version"])
        return remove_config_path(text, config_path, name=path)
    except (RegistrySettingError, MissingDependencyError) as error:
        raise AnsibleActionFail(str(error)) from None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _read(self, path, pending_marker, dump, task_vars):
        """One module run: the node's file (bytes, None when there is none), the marker, containerd's version and,
        with dump, the module's report of containerd's effective configuration."""
        module_args = {"path": path, "_read": True, "_dump": dump}
        if pending_marker is not None:
            module_args["pending_marker"] = pending_marker
        read = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
        if read.get("failed"):
            raise AnsibleActionFail(read.get("msg", f"cannot read {path}"))
        content = None if read["content"] is None else base64.b64decode(read["content"])
        node = {"pending_restart": read["pending_restart"], "containerd_version": read["containerd_version"]}
        return content, node, read.get("effective")

    def _check(self, result, path, text, report, config_path):
        """state=check: fail when containerd's effective configuration does not read config_path; write nothing.

        A failure still returns sandbox_image and effective, for what the caller says next.
        """
        if text is None:
            result.update(_effective_results(None), failed=True, msg=(
                f"{NOT_USED}: {path} does not exist, so containerd runs with its built-in defaults, which do not set "
                f"config_path = \"{config_path}\". Create it with that setting (state=present does)."
            ))
            return
        effective = _effective(report, path, text)
        result.update(_effective_results(effective))
        problems, warnings = dump_problems(effective, config_path)
        drop_ins = drop_in_problems(effective, config_path)
        if problems:
            result.update(failed=True, msg=not_used_message(effective, config_path, problems, drop_ins))
        else:
            warnings += drop_ins  # in effect now, but an import that says otherwise is one change away from winning
        if warnings:
            result["warnings"] = warnings

    def _before_write(self, report, path, text, new_text, config_path, containerd_version):
        """The Effective configuration now (None for a file yet to be created); refuse what a write cannot fix."""
        if not report["found"]:
            raise AnsibleActionFail(f"{report['error']}, so its effective configuration cannot be checked; "
                                    f"{NOTHING_WRITTEN}")
        problems = main_file_problems(new_text, path, config_path, containerd_version)
        if text is None:  # a new file imports nothing, and containerd's defaults no longer apply once it exists
            effective = None
        else:
            effective = _effective(report, path, text)
            problems += drop_in_problems(effective, config_path)
        if problems:
            refused = " ".join(problems)
            raise AnsibleActionFail(f"containerd would not read {config_path} after this change, so {NOTHING_WRITTEN}. "
                                    f"{refused}")
        return effective

    def _after_write(self, written, path, text, new_text, config_path, task_vars):
        """Check the dump the write returned; when config_path is not in effect, put the file back and fail."""
        try:
            effective = read_effective(written.pop("effective"), path, new_text)
            problems, warnings = dump_problems(effective, config_path)
            drop_ins = drop_in_problems(effective, config_path)
            cause = not_used_message(effective, config_path, problems, drop_ins) if problems or drop_ins else None
        except EffectiveConfigError as error:
            effective, warnings, cause = None, [], str(error)
        if cause is None:
            return effective, warnings
        # The file as it was read: its bytes, as the edit was refused for anything but UTF-8 text.
        module_args = {"path": path, "_rollback": True,
                       "_read_sha256": hashlib.sha256(new_text.encode("utf-8")).hexdigest()}
        if text is not None:
            module_args["_content"] = text
        restored = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
        cause = cause.rstrip(".")
        if restored.get("failed"):
            raise AnsibleActionFail(f"{path} was written, but {cause}. Putting it back failed: {restored.get('msg')}")
        put_back = "removed again" if text is None else "put back as it was"
        kept = [entry["path"] for entry in written.get("migrated", []) if entry["status"] in ("created", "kept_aside")]
        also = f" The hosts.toml files migrated from it stay: {', '.join(kept)}." if kept else ""
        raise AnsibleActionFail(f"{path} was written, but {cause}. So {path} was {put_back}.{also}")

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        path, state = args["path"], args["state"]
        _check_paths(args)
        try:
            before, node, report = self._read(path, args["pending_marker"], state != "absent", task_vars)
            try:
                text = None if before is None else before.decode("utf-8")
            except UnicodeDecodeError as error:
                raise AnsibleActionFail(f"{path}: is not UTF-8 text ({error}); {NOTHING_WRITTEN}") from None
            result.update(path=path, changed=False, **node)
            if state == "check":
                self._check(result, path, text, report, args["config_path"])
            else:
                self._apply(args, result, (before, text), node, report, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
            # The module's own invocation holds the whole file; show what the user asked instead, passwords masked.
            result["invocation"] = {"module_args": dict(
                args, credentials=masked_registry_mirrors(args["credentials"], _NO_LOG_PLACEHOLDER))}
        return result

    def _apply(self, args, result, read, node, report, task_vars):
        """state present or absent: edit the file read (bytes and text), write it when it changed, check the result."""
        path, state, config_path = args["path"], args["state"], args["config_path"]
        text = read[1]
        new_text, info = _edited(args, text, node)
        effective = None
        if state == "present":
            effective = self._before_write(report, path, text, new_text, config_path, node["containerd_version"])
        result.update({name: info[name] for name in _RETURNED})
        result.update(migrated=[], legacy_removed=False)
        warnings = list(info["warnings"])
        if new_text != text:
            effective, written_warnings = self._write(args, result, read, new_text, info, effective, task_vars)
            warnings += written_warnings
        elif effective is not None:  # unchanged: what containerd runs with must read config_path already
            problems, dump_warnings = dump_problems(effective, config_path)
            if problems:
                drop_ins = drop_in_problems(effective, config_path)
                message = not_used_message(effective, config_path, problems, drop_ins)
                result.update(failed=True, msg=f"{message} ({NOTHING_WRITTEN})")
            warnings += dump_warnings
        if state == "present":
            result.update(_effective_results(effective))
        if warnings:
            result["warnings"] = warnings

    def _write(self, args, result, read, new_text, info, effective, task_vars):
        """The module run that writes new_text (and the migrated hosts.toml files); with state present, check the
        dump it returns. Return (the Effective configuration, warnings)."""
        path, config_path = args["path"], args["config_path"]
        before, text = read
        module_args = {name: args[name] for name in ARGUMENT_SPEC if args[name] is not None and name not in _NOT_SENT}
        module_args["_content"] = new_text
        module_args["_read_sha256"] = "" if before is None else hashlib.sha256(before).hexdigest()
        module_args["_hosts_files"] = info["migrated"]
        module_args["_legacy_removed"] = info["legacy_removed"]
        module_args["_backup_private"] = holds_secrets(text)  # a backup of a file with secrets is 0600
        module_args["_private"] = holds_ours(new_text)  # it holds the mirror credentials: 0600 before they are in it
        module_args["_dump"] = args["state"] == "present"  # the write returns the new dump (not in check mode)
        written = self._execute_module(module_name=_MODULE, module_args=module_args, task_vars=task_vars)
        written.pop("diff", None)  # the module shows no file text; the masked diff is made below
        warnings = written.pop("warnings", [])
        if not written.get("failed") and "effective" in written:
            effective, dump_warnings = self._after_write(written, path, text, new_text, config_path, task_vars)
            warnings += dump_warnings
        result.update(written)
        if self._task.diff and not written.get("failed"):
            result["diff"] = _diffs(path, text, new_text, info["migrated"], written.get("migrated", []))
        return effective, warnings
