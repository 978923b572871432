# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carry out a certs.d Plan (_certs_d) on the node, with check mode and diff, through _io; and place a CA.

The module object is the one the modules pass in (check_mode, warn, params, file attributes); nothing here
imports Ansible. NodeDisk is the planner's DiskReader on the node itself.
"""

from __future__ import annotations

import base64
import os
import stat

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import CaError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d import (
    CHECK_CA,
    NOT_OURS,
    PLACE_CA,
    REMOVE_TLS,
    SECRET_MODE,
    TLS,
    WRITE_TLS,
    DiskReader,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ADOPT,
    CHANGED_MASK,
    DEFAULT_MODE,
    FOREIGN,
    KEEP,
    NOTHING,
    REMOVE,
    RESTORE,
    SECRET_MASK,
    WRITE,
    owner,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import (
    FileOperationError,
    backup,
    describe,
    ensure_directory,
    exists,
    file_arguments,
    load_file_if_exists,
    remove,
    rename,
    set_attributes,
    write_file,
)


class NodeDisk(DiskReader):
    """The planner's view of this node's files."""

    def read(self, path, max_bytes=None):
        return load_file_if_exists(path, max_bytes)

    def exists(self, path):
        return exists(path)

    def kind(self, path):
        if os.path.islink(path):
            return "link"
        if not os.path.lexists(path):
            return None
        return "file" if os.path.isfile(path) else "other"

    def _names(self, path, wanted):
        try:
            with os.scandir(path) as entries:
                return [entry.name for entry in entries if wanted(entry)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            raise FileOperationError("list", path, describe(error, path, path), error.errno) from None

    def directories(self, path):
        return self._names(path, lambda entry: entry.is_dir(follow_symlinks=False))

    def files(self, path):
        return self._names(path, lambda entry: entry.is_file(follow_symlinks=False))

    def links(self, path):
        return self._names(path, lambda entry: entry.is_symlink())

    def followed(self, path):
        real = os.path.realpath(path)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return real, None
        except OSError as error:
            raise FileOperationError("look at", path, describe(error, path, path), error.errno) from None
        return real, "directory" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _text(data):
    return None if data is None else data.decode("utf-8", errors="replace")


def _encoded(data):
    return None if data is None else base64.b64encode(data).decode("ascii")


def _texts(path, before, after):
    """The file's old and new bytes, for the action plugin to mask and show as a diff.

    Never shown as they are: the action plugin parses them on the controller, which has a TOML
    parser, masks every header value and drops this entry. Base64, so that no text of a file is
    altered by Ansible's own hiding of the authorization value on its way back.
    """
    return {"path": path, "before": _encoded(before), "after": _encoded(after)}


def text_diff(path, before, text):
    """The diff of a public file (a CA) whose bytes before (None: no file) become text; None when they are equal."""
    if before == text.encode("utf-8"):
        return None
    shown = "" if before is None else before.decode("utf-8", errors="replace")
    return {"before_header": path, "after_header": path, "before": shown, "after": text}


def _undo(module, path, before, old_stat, created):
    """Put the node back as it was before this run wrote path: the old file, or no file and no new directory."""
    if before is None:
        remove(path)
        for directory in reversed(created):
            os.rmdir(directory)
        return
    write_file(module, path, before)
    os.chown(path, old_stat.st_uid, old_stat.st_gid)
    os.chmod(path, old_stat.st_mode & 0o7777)


def apply_ca(module, path, text, before, file_args, attributes_diff=None, verify=None):
    """Write a checked CA's text to path unless it holds it already (before: its bytes, None: no file), and give
    it file_args; return whether the node changed (in check mode: would change).

    verify(), when given, is called once the file is written: a CaError it raises puts the file back as it was
    (no file and no new directory, when there was none), and is raised again saying so.
    """
    new_bytes = text.encode("utf-8")
    content_changed = before != new_bytes
    if module.check_mode:
        return content_changed if before is None else set_attributes(module, file_args, content_changed,
                                                                     attributes_diff)
    old_stat = os.stat(path) if before is not None and verify is not None else None
    created = ensure_directory(os.path.dirname(path))
    if content_changed:
        write_file(module, path, new_bytes)  # 0600 (umask 077) until file_args are applied
    changed = set_attributes(module, file_args, content_changed or bool(created), attributes_diff)
    if verify is not None:
        try:
            verify()
        except CaError as error:
            _undo(module, path, before, old_stat, created)
            raise CaError(f"{error}; the file was put back as it was") from None
    return changed


def _place_ca(module, step):
    """The CA step: written when placed (from ca_content or ca_url), only checked otherwise."""
    entry = {"path": step.path, "status": "checked"}
    if step.action == CHECK_CA:
        return entry, None, False
    file_args = file_arguments(module, step.path, step.mode, from_task=False)
    changed = apply_ca(module, step.path, step.content, step.before, file_args)
    entry["status"] = "created" if step.before is None else "updated" if changed else "unchanged"
    return entry, text_diff(step.path, step.before, step.content), changed  # a CA is public: its text is shown


# Each _APPLY function carries out one step and returns (files entry, texts for the diff or None,
# changed). It sets step.touched as soon as it changed the node, so that a failure after that
# still reports the change.


def _write(module, step):
    """Write ours where there was no file or ours."""
    entry = {"path": step.path}
    if step.kept_exists:
        entry["kept_aside"] = step.kept
    file_args = file_arguments(module, step.path, DEFAULT_MODE)
    return _put(module, step, entry, file_args, module.params["backup"],
                lambda content: _texts(step.path, step.before, content))


def _put(module, step, entry, file_args, keep_backup, diff):
    """Write step's content unless the file holds it already; give it file_args. diff(new bytes) is its diff."""
    path, before = step.path, step.before
    content = step.content.encode("utf-8")
    if before == content:
        attributes_changed = set_attributes(module, file_args)
        entry["status"] = "updated" if attributes_changed else "unchanged"
        return entry, None, attributes_changed
    entry["status"] = "created" if before is None else "updated"
    if not module.check_mode:
        # 0755: a CA placed beside hosts.toml must stay readable by pf9
        if ensure_directory(os.path.dirname(path)):
            step.touched = True
        if before is not None and keep_backup:
            entry["backup_file"] = backup(module, path)
        write_file(module, path, content, file_args)  # 0600 (umask 077) until file_args are applied
        step.touched = True
    return entry, diff(content), True


def _keep_aside(module, step, why):
    """Rename a file we did not write to its kept-aside path (the same file: its mode, owner and content stay),
    saying so when why (the end of the warning) is given."""
    path, kept = step.path, step.kept
    if why:
        would = "would be" if module.check_mode else "is"
        module.warn(f"{path} {NOT_OURS}: it {would} kept as {kept}{why}, and state=absent puts it back.")
    if not module.check_mode:
        rename(path, kept)
        step.touched = True


def _adopt(module, step):
    """Keep a file we did not write aside, then write ours."""
    path, kept, content = step.path, step.kept, step.content.encode("utf-8")
    # a migrated file is expected on stock PMK nodes: no warning
    _keep_aside(module, step, " while the mirror is applied" if owner(_text(step.before)) == FOREIGN else "")
    if not module.check_mode:
        try:
            write_file(module, path, content, file_arguments(module, path, DEFAULT_MODE))
        except FileOperationError:
            try:  # put theirs back: the node pulls as it did before
                rename(kept, path)
                step.touched = False
            except FileOperationError:
                pass
            raise
    entry = {"path": path, "status": "adopted", "kept_aside": kept}
    return entry, _texts(path, step.before, content), True


def _unlink(step):
    """Remove step's file, and its directory when nothing else is left there: containerd takes a registry's
    directory over _default whenever it exists, even empty."""
    remove(step.path)
    step.touched = True
    try:
        os.rmdir(os.path.dirname(step.path))  # only succeeds when nothing else lives there
    except OSError:
        pass


def _remove(module, step):
    """Remove our file."""
    entry = {"path": step.path, "status": "removed"}
    if not module.check_mode:
        if module.params["backup"]:
            entry["backup_file"] = backup(module, step.path)
        _unlink(step)
    return entry, _texts(step.path, step.before, None), True


def _restore(module, step):
    """Put the kept-aside file back in place of ours (or of no file)."""
    path, kept, before = step.path, step.kept, step.before
    entry = {"path": path, "status": "restored", "kept_aside": kept}
    restored = load_file_if_exists(kept)
    if not module.check_mode:
        if before is not None and module.params["backup"]:
            entry["backup_file"] = backup(module, path)
        rename(kept, path)  # replaces ours in one step
        step.touched = True
    return entry, _texts(path, before, restored), True


def _keep(module, step):
    """Leave a file we did not write alone on state=absent."""
    entry = {"path": step.path, "status": "foreign"}
    if step.kept_exists:
        entry["kept_aside"] = step.kept
        module.warn(f"{step.path} {NOT_OURS}, and {step.kept} holds the file kept aside when the mirror "
                    "was applied: both are left as they are.")
    return entry, None, False


def _nothing(module, step):
    """No file and nothing kept aside on state=absent."""
    return {"path": step.path, "status": "unchanged"}, None, False


def _tls_diff(step, after):
    """The diff of one PEM file: certificates are public and shown; a key is masked as passwords are."""
    before, path = step.before, step.path
    if step.mode == SECRET_MODE:
        shown_before = "" if before is None else f"{SECRET_MASK}\n"
        shown_after = "" if after is None else f"{SECRET_MASK if after == before else CHANGED_MASK}\n"
    else:
        shown_before, shown_after = _text(before) or "", _text(after) or ""
    return {"before_header": path, "after_header": path, "before": shown_before, "after": shown_after}


def _write_tls(module, step):
    """Write one PEM file of ours: a key 0600, certificates 0644, owned by the user the module runs as (root).

    Not backed up: a copy of a key would be one more file holding it.
    """
    file_args = file_arguments(module, step.path, step.mode, from_task=False)
    entry = {"path": step.path, "name": step.name}
    return _put(module, step, entry, file_args, False, lambda content: _tls_diff(step, content))


def _remove_tls(module, step):
    """Remove one PEM file of ours, and its directory when nothing else is left there."""
    if not module.check_mode:
        _unlink(step)
    return {"path": step.path, "name": step.name, "status": "removed"}, _tls_diff(step, None), True


_APPLY = {WRITE: _write, ADOPT: _adopt, REMOVE: _remove, RESTORE: _restore, KEEP: _keep, NOTHING: _nothing,
          WRITE_TLS: _write_tls, REMOVE_TLS: _remove_tls}


def _label(entry):
    return f"{entry['registry']}/{entry['name']}" if "name" in entry else entry["registry"]


def _failure(error, step, files, changed):
    """The task's message when a file fails after others were handled: the error, then what was done."""
    done = [f"{_label(f)} {f['status']}" for f in files if f["status"] not in ("failed", "skipped")]
    skipped = [_label(f) for f in files if f["status"] == "skipped"]
    parts = [f"{error}."]
    if step.touched:
        parts.append(f"{step.path} was partly changed before that.")
    parts.append(f"Done before the failure: {', '.join(done)}." if done else "Nothing else was done before it.")
    if skipped:
        parts.append(f"Not attempted: {', '.join(skipped)}.")
    parts.append("The node was changed." if changed else "Nothing on the node changed.")
    return " ".join(parts)


def _entry(step, **more):
    """A files (or tls_files, with the file's name) entry for a step that was not carried out."""
    entry = {"registry": step.registry, "path": step.path, **more}
    if step.kind == TLS:
        entry["name"] = step.name
    return entry


def _listed(entries):
    """The results' files (the hosts.toml files) and tls_files (our PEM files, which have a name)."""
    return {"files": [e for e in entries if "name" not in e], "tls_files": [e for e in entries if "name" in e]}


def _apply_files(module, steps, result, changed):
    """Carry out the file steps in order into result (changed: whether the node changed before them); return
    whether one failed."""
    entries, texts, shown = [], result["_texts"], result["_shown_diffs"]
    for index, step in enumerate(steps):
        try:
            entry, diff, file_changed = _APPLY[step.action](module, step)
        except FileOperationError as error:
            changed = changed or step.touched
            entries.append(_entry(step, status="failed", msg=str(error)))
            entries += [_entry(later, status="skipped") for later in steps[index + 1:]]
            result.update(msg=_failure(error, step, entries, changed), changed=changed, **_listed(entries))
            return True
        entries.append(dict(entry, registry=step.registry))
        if diff:
            (shown if step.kind == TLS else texts).append(diff)
        changed = changed or file_changed
    result.update(changed=changed, **_listed(entries))
    return False


def apply_plan(module, plan):
    """Carry out plan's steps in order (module.check_mode: only say what would happen); return (result, failed).

    result holds changed, files and tls_files, ca for a CA step, msg when failed, and with --diff _texts (the
    hosts.toml files, for the action plugin to mask) and _shown_diffs (public, or masked here).
    """
    result, changed, steps = {"_texts": [], "_shown_diffs": []}, False, plan.steps
    if steps and steps[0].action in (PLACE_CA, CHECK_CA):
        try:
            result["ca"], ca_diff, changed = _place_ca(module, steps[0])
        except FileOperationError as error:
            return {"msg": f"ca_file: {error}. No hosts.toml was written.", "changed": False, "files": [],
                    "tls_files": []}, True
        if ca_diff is not None:
            result["_shown_diffs"].append(ca_diff)
        steps = steps[1:]
    failed = _apply_files(module, steps, result, changed)
    if not module._diff:
        del result["_texts"], result["_shown_diffs"]
    return result, failed
