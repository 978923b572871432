# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certs.d planner: what containerd_hosts does with every file under config_path, decided before any is written.

Given the files the settings want (each registry directory's hosts.toml and PEM files, and the CA the
files name) and what is on the node, read through a DiskReader, plan() returns a Plan: the Steps to carry
out in order (create or update, keep aside, restore, remove, leave alone), each with its reason, and the
problems that stop the task before anything is written. _certs_d_apply carries a Plan out.

Pure Python with no Ansible imports: the tests give it a fake disk.
"""

from __future__ import annotations

import errno
import posixpath

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ADOPT,
    CONFLICT,
    FOREIGN,
    HOSTS_FILE_NAME,
    KEEP,
    MARKER,
    MIGRATED,
    NOTHING,
    OURS,
    REFUSE,
    REMOVE,
    RESTORE,
    TLS_FILES,
    WRITE,
    absent_action,
    is_managed,
    kept_aside_path,
    owner,
    present_action,
    records_kept,
    tls_file_mode,
    with_kept_record,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import FileOperationError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry import DEFAULT_DIRECTORY

NOT_OURS = "was not written by kubenode.registry_mirror"

# What a Step does with one of our PEM files (_hosts_files.TLS_FILES) beside a hosts.toml.
WRITE_TLS = "write_tls"  # state=present: the file of a mirror's ca_content, client_cert_content or client_key_content
REMOVE_TLS = "remove_tls"  # ours, and no mirror of the settings gives it (any more), or state=absent
# ... and with the CA at ca_file.
PLACE_CA = "place_ca"  # from ca_content or ca_url: written (created, updated or unchanged)
CHECK_CA = "check_ca"  # ca_check: only checked, never changed

# The kinds of file a Step is about.
HOSTS = "hosts"
TLS = "tls"
CA = "ca"

# The mode of a key file: what tells a secret from a public certificate.
SECRET_MODE = TLS_FILES["client_key_content"][1]
MAX_TLS_BYTES = 1024 * 1024

_WHO = {None: "no hosts.toml", OURS: "ours", MIGRATED: "written by containerd_config's legacy migration",
        FOREIGN: f"a hosts.toml that {NOT_OURS}"}
_WHAT = {
    WRITE: "write ours",
    ADOPT: "keep it aside, then write ours",
    REFUSE: "foreign_files=refuse: nothing is written",
    CONFLICT: "a file is kept aside already: nothing is written",
    REMOVE: "remove ours",
    RESTORE: "put the kept-aside file back",
    KEEP: "leave it alone",
    NOTHING: "nothing to do",
}


class PlanError(ValueError):
    """Files handed to plan() that the action plugin cannot have rendered; str() says which."""


class Step:
    """One file and what to do with it: action (a constant of _hosts_files or of this module), why (reason), and
    what is known of it. before: its bytes now (None: no file); content: the text to write (None: none).
    touched is set by whoever carries the step out, once the node changed."""

    def __init__(self, action, path, reason, kind=HOSTS, registry=None, before=None, content=None, **more):
        self.action, self.path, self.reason, self.kind = action, path, reason, kind
        self.registry, self.before, self.content = registry, before, content
        self.kept = more.pop("kept", None)
        self.kept_exists = more.pop("kept_exists", False)
        self.name = more.pop("name", None)
        self.mode = more.pop("mode", None)
        self.sealed = more.pop("sealed", False)
        self.warning = more.pop("warning", None)
        if more:
            raise TypeError(f"Step: unknown fields {sorted(more)}")
        self.touched = False

    def __repr__(self):
        return f"Step({self.action!r}, {self.path!r}, {self.reason!r})"


class Plan:
    """The Steps in the order they are carried out, the problems that stop the task before any is (sentences), and
    the warnings to show (files that could not be looked at, and are left as they are)."""

    def __init__(self, steps=(), problems=(), warnings=()):
        self.steps, self.problems, self.warnings = list(steps), list(problems), list(warnings)


class DiskReader:
    """What the planner reads of the node. Every method raises FileOperationError for what cannot be read."""

    def read(self, path, max_bytes=None):
        """The bytes of the file at path (at most max_bytes + 1 of them when given); None when there is none."""
        raise NotImplementedError

    def exists(self, path):
        """Whether anything is at path (a symbolic link is not followed)."""
        raise NotImplementedError

    def kind(self, path):
        """What is at path: "file" (regular), "link" (symbolic), "other", or None (nothing, or it cannot be looked
        at); never raises."""
        raise NotImplementedError

    def directories(self, path):
        """The names of the directories (not symbolic links) in the directory path; [] when it is no directory."""
        raise NotImplementedError

    def files(self, path):
        """The names of the regular files (not symbolic links) in the directory path; [] when it is no directory."""
        raise NotImplementedError

    def links(self, path):
        """The names of the symbolic links in the directory path; [] when it is no directory."""
        raise NotImplementedError

    def followed(self, path):
        """What containerd finds at path when it looks for a registry's directory (it follows symbolic links):
        (path with every symbolic link resolved, "directory", "file", "other" or None for nothing or a dangling
        link)."""
        raise NotImplementedError


def _text(data):
    return None if data is None else data.decode("utf-8", errors="replace")


def _stray(disk, path, kept, who, before):
    """The warning about a kept-aside file that no hosts.toml of ours records (we did not keep it aside), or None."""
    if who == OURS and records_kept(_text(before), disk.read(kept)):
        return None
    why = "no hosts.toml of ours records it" if who == OURS else f"there is no {HOSTS_FILE_NAME} of ours"
    return (f"{kept} was not kept aside by kubenode.registry_mirror ({why}): it is left as it is, and "
            f"state=absent does not put it back in place of {path}.")


def hosts_step(disk, config_path, registry, content, state, foreign_files="adopt"):
    """Look at one registry's hosts.toml and its kept-aside file, and decide what state does with them. A kept-aside
    file counts only when our hosts.toml records it (with_kept_record); a stray one is left alone, with a warning."""
    path = posixpath.join(config_path, registry, HOSTS_FILE_NAME)
    kept = kept_aside_path(path)
    try:
        before = disk.read(path)
        kept_exists = disk.exists(kept)
    except FileOperationError as error:
        if state == "present" or error.errno != errno.ENOTDIR:
            raise
        before, kept_exists = None, False  # the registry's directory is a file: no hosts.toml to remove
    who = owner(_text(before))
    warning = _stray(disk, path, kept, who, before) if kept_exists and who in (None, OURS) else None
    kept_exists = kept_exists and warning is None
    if state == "present":
        action = present_action(who, kept_exists, foreign_files)
        if action == ADOPT or (action == WRITE and kept_exists):
            content = with_kept_record(content, before if action == ADOPT else disk.read(kept))
    else:
        action = absent_action(who, kept_exists)
    reason = f"{_WHO[who]}{', one kept aside' if kept_exists else ''}: {_WHAT[action]}"
    return Step(action, path, reason, registry=registry, before=before, content=content, kept=kept,
                kept_exists=kept_exists, warning=warning)


def tls_step(disk, config_path, registry, name, content):
    """Look at one PEM file of ours (content None: to be removed) and plan it."""
    path = posixpath.join(config_path, registry, name)
    setting = next(setting for setting, (suffix, _mode) in TLS_FILES.items() if name.endswith(suffix))
    if disk.kind(path) not in (None, "file"):
        raise FileOperationError("write", path, "it is not a regular file; move it away")
    before = disk.read(path, MAX_TLS_BYTES)
    if content is not None and before is not None and not is_managed(_text(before)):
        raise FileOperationError("write", path, f"it {NOT_OURS}; move it away (a mirror's {setting} goes there)")
    if content is None:
        action, reason = REMOVE_TLS, "ours, and no mirror gives it"
    else:
        action, reason = WRITE_TLS, f"{setting} of a mirror"
    return Step(action, path, reason, kind=TLS, registry=registry, before=before, content=content, name=name,
                mode=tls_file_mode(name))


def our_tls_files(disk, config_path, registry):
    """The names of our PEM files in a registry's directory (by their name and marker line), sorted."""
    directory = posixpath.join(config_path, registry)
    ours = []
    for name in sorted(name for name in disk.files(directory) if tls_file_mode(name)):
        # the marker line and its line end are all is_managed reads
        first = disk.read(posixpath.join(directory, name), len(MARKER.encode("utf-8")) + 2)
        if first is not None and is_managed(_text(first)):
            ours.append(name)
    return ours


def stale_tls_steps(disk, config_path, registry, declared=()):
    """Steps removing our PEM files in a registry's directory that declared (names) does not hold."""
    stale = [name for name in our_tls_files(disk, config_path, registry) if name not in declared]
    return [tls_step(disk, config_path, registry, name, None) for name in stale]


def check_declared(hosts_file):
    """Raise PlanError unless hosts_file (one of _hosts_files) names a registry directory and PEM files of ours."""
    registry, tls_files = hosts_file["directory"], hosts_file.get("tls_files") or {}
    if not registry or registry in (".", "..") or "/" in registry:
        raise PlanError(f"_hosts_files: {registry!r} is not a registry directory name")
    for name, text in tls_files.items():
        if "/" in name or not tls_file_mode(name) or not isinstance(text, str) or not is_managed(text):
            raise PlanError(f"_hosts_files: {name!r} in {registry} is not one of our PEM files")


def declared_steps(disk, config_path, hosts_file, state, foreign_files="adopt"):
    """The steps of one declared directory: its PEM files written before the hosts.toml that names them, then
    the hosts.toml, then our PEM files it no longer names removed. Return (steps, problems)."""
    check_declared(hosts_file)
    registry, tls_files = hosts_file["directory"], hosts_file.get("tls_files") or {}
    steps, problems, causes = [], [], set()
    makers = [(tls_step, (disk, config_path, registry, name, text)) for name, text in sorted(tls_files.items())]
    makers += [(hosts_step, (disk, config_path, registry, hosts_file.get("content"), state, foreign_files)),
               (stale_tls_steps, (disk, config_path, registry, tls_files))]
    for make, args in makers:
        try:
            made = make(*args)
        except FileOperationError as error:
            # one cause (a parent that is a file, a name too long) is named once per directory
            if error.errno is None or error.errno not in causes:
                problems.append(f"{error}.")
            causes.add(error.errno)
            continue
        steps += made if isinstance(made, list) else [made]
    return steps, problems


def one_directory_each(disk, config_path, declared):
    """Return (problems, the resolved paths of the declared directories): two declared directories that are one
    (a symbolic link) would each be rewritten in turn on every run, and one registry's mirrors would serve both."""
    seen, problems = {}, []
    for directory in declared:
        path = posixpath.join(config_path, directory)
        real, _kind = disk.followed(path)
        if real in seen:
            problems.append(f"{seen[real]} and {path} are one directory ({real}, through a symbolic link): "
                            "containerd reads one hosts.toml for both registries, and each would overwrite the "
                            "other's: make one of them a directory of its own, or drop one registry.")
        else:
            seen[real] = path
    return problems, set(seen)


def host_directory(registry):
    """containerd's hostDirectory (remotes/docker/config/hosts.go): for host:port, the directory host_port_ that it
    looks for before host:port itself (the last ':' of the name, when it is not the first character)."""
    index = registry.rfind(":")
    return registry if index <= 0 else f"{registry[:index]}_{registry[index + 1:]}_"


def shadowing_directories(disk, config_path, declared):
    """The problems of the declared directories that containerd never reads: for a registry with a port, anything
    it finds (os.Stat, following links) at host_port_ is read instead, even an empty directory."""
    problems = []
    for directory in declared:
        first = host_directory(directory)
        if first != directory and disk.followed(posixpath.join(config_path, first))[1] is not None:
            path, ours = posixpath.join(config_path, first), posixpath.join(config_path, directory)
            problems.append(f"{path} is where containerd looks for {directory} first, so it would never read "
                            f"{ours}: move {path} away (or merge it into {ours}) and run again.")
    return problems


def undeclared_directories(disk, config_path, declared, declared_real=()):
    """The directories under config_path (not symbolic links) that the settings do not declare, sorted; one that a
    declared symbolic link points to (declared_real: their resolved paths) is the declared one's."""
    names = sorted(set(disk.directories(config_path)) - set(declared))
    if not declared_real:
        return names
    return [name for name in names if disk.followed(posixpath.join(config_path, name))[0] not in declared_real]


def unsealed_links(disk, config_path, declared, declared_real=()):
    """The problems of the seal (see stale_steps()) with the symbolic links under config_path: containerd follows a
    link to a directory as a registry's own directory, so one is sealed only when it points to a directory that
    gets the seal (an undeclared directory of config_path) or to _default."""
    covered = {disk.followed(posixpath.join(config_path, name))[0]
               for name in undeclared_directories(disk, config_path, declared, declared_real) + [DEFAULT_DIRECTORY]}
    problems = []
    for name in sorted(set(disk.links(config_path)) - set(declared)):
        path = posixpath.join(config_path, name)
        real, kind = disk.followed(path)
        if kind == "directory" and real not in covered:
            problems.append(f"{path} is a symbolic link to {real}, which containerd follows for {name}: it would "
                            f"route {name} around the mirrors of * without upstream fallback. Replace it with a "
                            "directory (it then gets the mirrors of *), or remove it.")
    return problems


def stale_steps(disk, config_path, declared, sealed=None, foreign_files="adopt", declared_real=()):
    """Steps for the directories the settings do not declare: our file removed, a file kept aside put back (as
    state=absent does), our PEM files removed. Files we did not write are not touched, nor reported.
    Return (steps, warnings): a directory that cannot be looked at is left as it is, with a warning.

    sealed (state=present under a * entry without upstream fallback) is the text of _default/hosts.toml. containerd
    takes a registry's own directory over _default as soon as it exists, with a hosts.toml or without (it then
    pulls from the registry itself, with the directory's certificates), so no other directory may route around
    the mirrors of *: each gets that text as ours, a file we did not write there kept aside as for a declared one.
    """
    steps, warnings = [], []
    for registry in undeclared_directories(disk, config_path, declared, declared_real):
        try:
            if sealed is None:
                step = hosts_step(disk, config_path, registry, None, "absent")
                steps += [step] if step.action in (REMOVE, RESTORE) else []
                warnings += [step.warning] if step.warning and step.action not in (REMOVE, RESTORE) else []
            else:
                step = hosts_step(disk, config_path, registry, sealed, "present", foreign_files)
                step.sealed = True
                step.reason += " (no directory may route around the mirrors of *)"
                steps.append(step)
            steps += stale_tls_steps(disk, config_path, registry)
        except FileOperationError as error:  # not known to be ours: it does not stop the declared files
            warnings.append(f"{error}; left as it is (a file of ours there would be stale).")
    return steps, warnings


def problem(step):
    """The sentence that explains why a planned file stops the task, or None."""
    path, kept = step.path, step.kept
    if step.action == REFUSE and step.sealed:
        return (f"{path} {NOT_OURS} and foreign_files=refuse, and it would route {step.registry} around the "
                "mirrors of * without upstream fallback: move it away, or set foreign_files=adopt to keep it as "
                f"{kept} while the mirror is applied.")
    if step.action == REFUSE:
        return (f"{path} {NOT_OURS} and foreign_files=refuse: move it away, or set foreign_files=adopt "
                f"to keep it as {kept} while the mirror is applied.")
    if step.action == CONFLICT:
        return (f"{path} {NOT_OURS}, and {kept} already holds the file kept aside when the mirror was "
                "applied: keep one of the two (move the other away) and run again.")
    return None


def ca_step(path, text, before, place, mode):
    """The step of the CA at path, checked already: written from text (place), or only checked."""
    if not place:
        return Step(CHECK_CA, path, "ca_check: checked, never changed", kind=CA, before=before, content=text,
                    mode=mode)
    reason = "no CA file" if before is None else "the CA file" if before == text.encode("utf-8") else "a CA differs"
    return Step(PLACE_CA, path, f"{reason}: write ca_content or ca_url", kind=CA, before=before, content=text,
                mode=mode)


def plan(disk, config_path, hosts_files, state, foreign_files="adopt", sealed=None, ca=None):
    """The Plan of config_path: the CA first (ca: a ca_step() or None), then each declared directory of
    hosts_files (what the action plugin rendered), then every other directory of config_path (state=absent
    too: ours anywhere goes, what was kept aside comes back). sealed: see stale_steps(), for state=present.

    Nothing is written. Raise PlanError for hosts_files the action plugin cannot have rendered.
    """
    for hosts_file in hosts_files:
        check_declared(hosts_file)
    result = Plan(steps=[] if ca is None else [ca])
    declared = [hosts_file["directory"] for hosts_file in hosts_files]
    # what stops config_path itself from being looked at is named only when no declared file names it already
    unreadable = []
    try:
        result.problems, declared_real = one_directory_each(disk, config_path, declared)
        if state == "present":
            result.problems += shadowing_directories(disk, config_path, declared)
    except FileOperationError as error:
        unreadable, declared_real = [f"{error}."], ()
    for hosts_file in hosts_files:
        steps, problems = declared_steps(disk, config_path, hosts_file, state, foreign_files)
        result.steps += steps
        result.problems += problems
    try:
        steps, result.warnings = stale_steps(disk, config_path, declared, sealed if state == "present" else None,
                                             foreign_files, declared_real)
        result.steps += steps
        if state == "present" and sealed is not None:
            result.problems += unsealed_links(disk, config_path, declared, declared_real)
    except FileOperationError as error:
        unreadable.append(f"{error}.")
    if not result.problems:
        result.problems = unreadable
    result.problems += [sentence for sentence in map(problem, result.steps) if sentence]
    result.warnings += [step.warning for step in result.steps if step.warning]
    return result
