# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containerd's effective configuration, the one kubelet's pulls go by: read, then checked.

Controller-side, pure Python with no Ansible imports. The containerd_config module's read (and its
write) runs `containerd --config <config.toml> config dump` on the node and returns its output with
the text of every file `imports` pulls in (module_utils/_containerd_dump.py). Here they are parsed
with tomllib and checked:

* the CRI registry table in effect follows the dump's config version (REGISTRY_SECTIONS): version 2
  (containerd 1.x) ``plugins."io.containerd.grpc.v1.cri".registry``, versions 3 and 4 (2.x)
  ``plugins."io.containerd.cri.v1.images".registry``;
* the sandbox image, pulled for every new pod: ``sandbox_image`` of the grpc.v1.cri plugin on 1.x,
  ``pinned_images.sandbox`` of the images plugin on 2.x (sandbox_image());
* before anything is written, drop-ins (imported files) that would defeat config.toml's config_path
  are refused, naming the file (drop_in_problems()): they are not edited or migrated;
* a dump whose config_path is not ours, or with legacy entries active, fails (dump_problems()).

How an imported file combines with config.toml, from containerd's source (mergeConfig):

* 1.x, services/server/config/config.go: after mergo.Merge, "Replace entire sections instead of
  merging map's values": ``for k, v := range from.Plugins { to.Plugins[k] = v }``. A drop-in with a
  ``[plugins."io.containerd.grpc.v1.cri"]`` table replaces config.toml's whole CRI section, its
  config_path included (seen on the test bed's 1.6). Its own config_path must then be ours.
* 2.x, cmd/containerd/server/config/config.go: ``mergo.Merge(to, from, mergo.WithOverride,
  mergo.WithTransformers(sliceTransformer{}))``, then only stream_processors, proxy_plugins and
  timeouts are replaced per key; ``plugins`` (a map[string]any) is merged key by key
  (containerd/containerd#9982, in 2.0). A drop-in overrides only the keys it sets: its own
  config_path wins, its legacy tables are added. LoadConfigWithPlugins first migrates a drop-in of
  an older version to the root's (version 1 short plugin IDs renamed, the grpc.v1.cri registry
  moved to the images plugin), so on 2.x each file is read by its own version (TABLES_ON_2X).
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from dataclasses import dataclass, field

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import (
    containerd_release,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import (
    go_clean,
    go_dir,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    CONTAINERD_MAJOR,
    REGISTRY_SECTIONS,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_edit import dotted_key

CRI = "io.containerd.grpc.v1.cri"
IMAGES = "io.containerd.cri.v1.images"
KEY = "config_path"

# dump config version -> where the sandbox ("pause") image is set
SANDBOX_IMAGE_KEYS = {
    1: ("plugins", "cri", "sandbox_image"),
    2: ("plugins", CRI, "sandbox_image"),
    3: ("plugins", IMAGES, "pinned_images", "sandbox"),
    4: ("plugins", IMAGES, "pinned_images", "sandbox"),
}
# a file's own config version -> the registry tables containerd 2.x takes from it once migrated
TABLES_ON_2X = {
    1: (REGISTRY_SECTIONS[1], REGISTRY_SECTIONS[2], REGISTRY_SECTIONS[3]),
    2: (REGISTRY_SECTIONS[2], REGISTRY_SECTIONS[3]),
    3: (REGISTRY_SECTIONS[3],),
    4: (REGISTRY_SECTIONS[4],),
}
# The legacy registry entries, as "<key>" names in messages.
MIRRORS, TLS, AUTHS = "mirrors", "configs.<host>.tls", "auths"

# What is said about a drop-in. Fields: section, keys, plugin, value, config_path, main.
DROP_IN_LEGACY = (
    "sets {keys} in [{section}]. Drop-ins are not edited (only {main} is), and containerd does not read "
    "{config_path} next to these legacy settings: move them into hosts.toml files under {config_path} (mirrors "
    "and tls become [host] settings, credentials a header; kubenode.registry_mirror.containerd_hosts writes "
    "them), delete them from this file, and run this again."
)
DROP_IN_CONFIG_PATH = {
    1: (
        "sets {section}.config_path = {value!r}; its [{plugin}] table replaces {main}'s whole section, so "
        "containerd would not read {config_path}. Set config_path = \"{config_path}\" there, and run this again."
    ),
    2: (
        "sets {section}.config_path = {value!r}, which overrides {main}'s, so containerd would not read "
        "{config_path}. Set it to \"{config_path}\" or remove it from this file, and run this again."
    ),
}
DROP_IN_REPLACES_SECTION = (
    "has a [{plugin}] table without {section}.config_path; containerd 1.x replaces {main}'s whole [{plugin}] "
    "section with an imported file's (it does not merge them), so {main}'s config_path would not be in effect. "
    "Add config_path = \"{config_path}\" to its [{section}] table, and run this again."
)
NOT_USED = "kubelet's pulls would not use the mirror"


class EffectiveConfigError(ValueError):
    """containerd's effective configuration could not be read, or does not read config_path."""


def _lookup(data, path):
    """The table at path in parsed settings; None when missing or not a table."""
    node = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node if isinstance(node, dict) else None


def _value(data, path):
    parent = _lookup(data, path[:-1])
    return None if parent is None else parent.get(path[-1])


def file_version(settings):
    """The config version containerd reads a file's settings as: its version key, 0 or none being 1."""
    version = settings.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        return 1
    return version or 1


def legacy_entries(table, active=False):
    """{MIRRORS/TLS/AUTHS: the registries or hosts} a CRI registry table sets.

    active: count a configs.<host>.tls table only when it holds a value (a dump prints empty ones).
    """
    found = {}
    mirrors = table.get("mirrors")
    if isinstance(mirrors, dict) and mirrors:
        found[MIRRORS] = sorted(mirrors)
    configs = table.get("configs")
    if isinstance(configs, dict):
        hosts = []
        for host, settings in configs.items():
            tls = settings.get("tls") if isinstance(settings, dict) else None
            if isinstance(tls, dict) and (not active or any(tls.values())):
                hosts.append(host)
        if hosts:
            found[TLS] = sorted(hosts)
    auths = table.get("auths")
    if isinstance(auths, dict) and auths:
        found[AUTHS] = sorted(auths)
    return found


def _keys(found):
    return ", ".join(f"{key} ({', '.join(names)})" for key, names in found.items())


def dump_version(settings, command):
    """The config version of a dump: 2 on containerd 1.x, 3 on 2.x, 4 on 2.3 and later."""
    version = settings.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or (version or 1) not in REGISTRY_SECTIONS:
        raise EffectiveConfigError(
            f"`{command}` printed config version {version!r}, which this module does not know (1 to 4)"
        )
    return version or 1


def sandbox_image(settings):
    """The sandbox image a dump sets ('' when none): sandbox_image on 1.x, pinned_images.sandbox on 2.x."""
    version = settings.get("version", 0) or 1
    image = _value(settings, SANDBOX_IMAGE_KEYS.get(version, SANDBOX_IMAGE_KEYS[4]))
    return image if isinstance(image, str) else ""


@dataclass
class Effective:
    """A parsed dump, with config.toml's settings and those of each file it imports, in load order."""

    command: str
    settings: dict
    main_path: str
    main: dict | None
    drop_ins: dict = field(default_factory=dict)

    @property
    def version(self):
        return self.settings.get("version", 0) or 1

    @property
    def major(self):
        return CONTAINERD_MAJOR[self.version]

    @property
    def section(self):
        return REGISTRY_SECTIONS[self.version]

    @property
    def registry(self):
        return _lookup(self.settings, self.section) or {}

    def tables_of(self, settings):
        """The CRI registry tables containerd reads from one file's settings."""
        if self.major == 2:
            return TABLES_ON_2X.get(file_version(settings), TABLES_ON_2X[4])
        # 1.x reads every file in the one version the merge ends with (a drop-in's own version key overrides
        # config.toml's, in an order its dump does not show): each version any of them says.
        files = ([self.main] if self.main is not None else []) + list(self.drop_ins.values())
        versions = {file_version(settings) for settings in files if file_version(settings) in (1, 2)}
        return tuple(REGISTRY_SECTIONS[version] for version in sorted(versions or {self.version}))

    def summary(self):
        """What the results say: the config_path in effect, its table, the dump's version, the drop-ins."""
        value = self.registry.get(KEY)
        return {
            "config_path": value if isinstance(value, str) else None,
            "section": dotted_key(self.section),
            "version": self.version,
            "imports": list(self.drop_ins),
        }


def _decoded(path, read):
    """The settings of one imported file from the node's report ({content: base64} or {error: why})."""
    if read is None:
        raise EffectiveConfigError(f"{path}: containerd imports it, but it was not read (please report this)")
    if "error" in read:
        raise EffectiveConfigError(f"{path}: containerd imports it, but it {read['error']}, so it cannot be checked")
    try:
        text = base64.b64decode(read["content"]).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise EffectiveConfigError(f"{path}: containerd imports it, but it is not UTF-8 text ({error})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EffectiveConfigError(
            f"{path}: containerd imports it, but it is not valid TOML ({error}), so it cannot be checked"
        ) from None


def _imports(path, settings):
    entries = settings.get("imports", [])
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise EffectiveConfigError(f"{path}: imports must be a list of strings, got {entries!r}")
    return entries


def _follow(effective, report):
    """The files containerd 2.x loads after config.toml, in its order: each file's own imports, breadth first.

    The node expanded the dump's entries against config.toml's directory; a relative entry in a
    file elsewhere means another file, which the node did not read: refused, naming it.
    """
    base = go_dir(effective.main_path)
    loaded = {effective.main_path}
    pending = [(effective.main_path, _imports(effective.main_path, effective.main or {}))]
    while pending:
        parent, entries = pending.pop(0)
        for entry in entries:
            if not os.path.isabs(go_clean(entry)) and go_dir(parent) != base:
                raise EffectiveConfigError(
                    f"{parent}: imports {entry!r}, relative to {go_dir(parent)}, which this module does not "
                    "follow; write it as an absolute path, and run this again"
                )
            matches = report["expanded"].get(entry)
            if matches is None:
                raise EffectiveConfigError(
                    f"{parent}: imports {entry!r}, which `{effective.command}` does not list (please report this)"
                )
            for path in matches:
                if path not in loaded:
                    loaded.add(path)
                    effective.drop_ins[path] = _decoded(path, report["files"].get(path))
                    pending.append((path, _imports(path, effective.drop_ins[path])))


def read_effective(report, main_path, main_text):
    """Return the Effective configuration of the module's report of the node.

    report: {command, found, error, dump (base64), imports, expanded: {entry: [paths]},
    files: {path: {content (base64) | error}}}.
    main_text: config.toml's text, None when there is none. Raises EffectiveConfigError.
    """
    command = report["command"]
    if report.get("error"):
        raise EffectiveConfigError(report["error"])
    try:
        settings = tomllib.loads(base64.b64decode(report["dump"]).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise EffectiveConfigError(f"`{command}` printed text that is not TOML ({error})") from None
    dump_version(settings, command)
    imports = settings.get("imports", [])
    if imports != report["imports"]:
        raise EffectiveConfigError(
            f"`{command}`: its imports {imports!r} were read on the node as {report['imports']!r} (please report this)"
        )
    try:
        main = None if main_text is None else tomllib.loads(main_text)
    except tomllib.TOMLDecodeError as error:
        raise EffectiveConfigError(f"{main_path}: is not valid TOML ({error})") from None
    effective = Effective(command, settings, main_path, main)
    if effective.major == 1:  # the files it loaded, config.toml among them
        for entry in imports:
            for path in report["expanded"].get(entry, []):
                if path != main_path and path not in effective.drop_ins:
                    effective.drop_ins[path] = _decoded(path, report["files"].get(path))
    else:
        _follow(effective, report)
    return effective


def drop_in_problems(effective, config_path):
    """Return, per drop-in that would keep containerd from reading config_path, what is wrong and what to do."""
    problems = []
    for path, settings in effective.drop_ins.items():
        found = []
        for section_path in effective.tables_of(settings):
            table = _lookup(settings, section_path)
            plugin = section_path[:-1]
            fields = {
                "section": dotted_key(section_path),
                "plugin": dotted_key(plugin),
                "config_path": config_path,
                "main": effective.main_path,
            }
            legacy = {} if table is None else legacy_entries(table)
            if legacy:
                found.append(DROP_IN_LEGACY.format(keys=_keys(legacy), **fields))
            if table is not None and KEY in table and table[KEY] != config_path:
                found.append(DROP_IN_CONFIG_PATH[effective.major].format(value=table[KEY], **fields))
            elif effective.major == 1 and _lookup(settings, plugin) is not None and (table is None or KEY not in table):
                found.append(DROP_IN_REPLACES_SECTION.format(**fields))
        if found:
            problems.append(f"{path}: {' Also, it '.join(found)}")  # each one starts with its verb
    return problems


def _setters(effective, key):
    """The files (config.toml first, then the drop-ins) whose CRI registry tables set key."""
    files = ([(effective.main_path, effective.main)] if effective.main is not None else [])
    files += list(effective.drop_ins.items())
    return [
        path
        for path, settings in files
        if any(key in (_lookup(settings, table) or {}) for table in effective.tables_of(settings))
    ]


def dump_problems(effective, config_path):
    """Return (problems, warnings) of the effective configuration: config_path not ours, legacy entries active."""
    section = dotted_key(effective.section)
    registry = effective.registry
    value = registry.get(KEY)
    problems, warnings = [], []
    if value != config_path:
        if isinstance(value, str) and ":" in value and config_path in value.split(":"):
            problems.append(
                f"{section}.config_path is {value!r}, which lists several directories: containerd 2.1 and later pull "
                "through the transfer service, which reads it as one directory, so no hosts.toml is read"
            )
        else:
            shown = "not set" if value is None else repr(value)
            problems.append(f"{section}.config_path is {shown}, not {config_path!r}")
    for key, names in legacy_entries(registry, active=True).items():
        if key == TLS and effective.major == 2:
            # 2.x uses configs.<host>.tls only without config_path (registryHosts); it warns that it is deprecated
            warnings.append(
                f"{section}.configs: tls for {', '.join(names)} is deprecated and not used next to config_path; "
                f"move it to {config_path}/<host>/hosts.toml (ca, client, skip_verify)"
            )
        else:
            problems.append(f"{section}.{key} is set for {', '.join(names)}")
    return problems, warnings


def not_used_message(effective, config_path, problems, drop_ins):
    """The failure message when the effective configuration does not read config_path: why, and the files to fix."""
    fixes = list(drop_ins)
    main_version = None if effective.main is None else file_version(effective.main)
    if main_version in CONTAINERD_MAJOR and CONTAINERD_MAJOR[main_version] != effective.major:
        fixes.append(
            f"{effective.main_path} is a config version {main_version} file, which this containerd (whose dump is "
            f"version {effective.version}) does not read as such: write it as a version {effective.version} file "
            f"with config_path in [{dotted_key(effective.section)}]."
        )
    elif not fixes:
        main_section = effective.section
        if main_version in REGISTRY_SECTIONS:
            main_section = REGISTRY_SECTIONS[main_version]
        setters = _setters(effective, KEY) or [effective.main_path]
        legacy = [path for key in (MIRRORS, TLS, AUTHS) for path in _setters(effective, key)]
        fixes.append(
            f"Set config_path = \"{config_path}\" in the [{dotted_key(main_section)}] table of "
            f"{', '.join(dict.fromkeys(setters))}"
            + (
                f", and move the legacy registry settings of {', '.join(dict.fromkeys(legacy))} into hosts.toml files "
                f"under {config_path} (containerd_config with state=present migrates config.toml's)"
                if legacy
                else ""
            )
            + "."
        )
    return (
        f"{NOT_USED}: in containerd's effective configuration (`{effective.command}`), {'; '.join(problems)}. "
        + " ".join(fixes)
    )


def main_file_problems(text, path, config_path, containerd_version):
    """What config.toml, once edited, would still keep containerd from reading config_path; refused before writing.

    A config version the node's containerd does not read (3 or 4 on 1.x, which ignores that CRI table; 4 before
    2.3, which refuses the file), and the deprecated auths table, which the edit does not migrate (it moves
    mirrors and configs.<host>.tls/auth to hosts.toml files, or refuses them).
    """
    settings = tomllib.loads(text)
    version = file_version(settings)
    release = containerd_release(containerd_version)
    problems = []
    if release is not None and release[0] < 2 and version >= 3:
        problems.append(
            f"{path}: would be a config version {version} file, which containerd {containerd_version} does not read "
            "(1.x reads versions 1 and 2), so its CRI plugin would not read config_path. Give it version = 2, or for "
            "a new file leave version unset (or set 2), and run this again."
        )
    elif release is not None and release < (2, 3) and version >= 4:
        problems.append(
            f"{path}: would be a config version 4 file, which containerd {containerd_version} refuses (version 4 "
            "needs containerd 2.3 or later). Give it version = 3, or for a new file leave version unset (or set 3), "
            "and run this again."
        )
    table = _lookup(settings, REGISTRY_SECTIONS[version]) if version in REGISTRY_SECTIONS else None
    auths = legacy_entries(table or {}).get(AUTHS)
    if auths:
        section = dotted_key(REGISTRY_SECTIONS[version])
        problems.append(
            f"{path}: sets auths ({', '.join(auths)}) in [{section}], deprecated credentials this module does not "
            f"migrate: move them into the hosts.toml files under {config_path} (as a header) or into "
            f"{section}.configs.<host>.auth, delete them, and run this again."
        )
    return problems
