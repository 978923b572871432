# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point containerd's CRI registry config_path at the certs.d directory in config.toml.

Controller-side, pure Python with no Ansible imports: the containerd_config
action plugin uses it. The file is edited with tomlkit so that everything but
the one setting (comments, order, quoting, layout) stays byte-for-byte, and
every result is parsed back with tomllib and compared with the original
settings plus the one change before it may leave the controller.

Which section containerd reads depends on the file's ``version`` key:

* no key, 0 or 1: containerd 1.x reads version 1, where plugins go by their
  short ID: ``[plugins.cri.registry]``.
* 2: containerd 1.x, full plugin IDs: ``[plugins."io.containerd.grpc.v1.cri".registry]``
  (containerd 2.x migrates this on load, so it works there too).
* 3: containerd 2.x, where the image settings moved to their own plugin:
  ``[plugins."io.containerd.cri.v1.images".registry]``.

containerd will not start its CRI plugin with the legacy ``mirrors`` table (or,
in 1.x, ``configs.<host>.tls``) next to ``config_path``. With
legacy_mirrors="migrate" those settings move to hosts.toml files
(_legacy_registry.py) and leave the file in the same edit; with "refuse" the
file is refused.
"""

from __future__ import annotations

import copy
import tomllib

try:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import AoT, InlineTable, Table
except ImportError:  # reported when editing, so that documentation tools work without it
    tomlkit = None

from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import MissingDependencyError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._legacy_registry import (
    LegacyRegistryError,
    plan_migration,
    remove_legacy,
    render_migrated,
    without_legacy,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import mask_toml

KEY = "config_path"
DEFAULT_CONFIG_PATH = "/etc/containerd/certs.d"

# config version -> the registry section containerd reads in that version
REGISTRY_SECTIONS = {
    1: ("plugins", "cri", "registry"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry"),
}
# config version -> the containerd major release that reads it
CONTAINERD_MAJOR = {1: 1, 2: 1, 3: 2}
# versions a new file may be written in: 2 for containerd 1.x (2.x migrates it), 3 for 2.x only
NEW_FILE_VERSIONS = (2, 3)
DEFAULT_VERSION = 2

_CRI_IDS = ("cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images")

# What containerd_config does with legacy registry.mirrors / registry.configs.<host>.tls|auth entries.
LEGACY_MIRRORS = ("migrate", "refuse")
DEFAULT_LEGACY_MIRRORS = "migrate"


class ContainerdConfigError(ValueError):
    """Bad input or a file we must not touch: the message starts with what it is about."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field


def dotted(path):
    """Return a key path the way a TOML table header spells it, e.g. plugins."io.containerd.grpc.v1.cri".registry."""
    return tomlkit.key(list(path)).as_string()


def _kind(value):
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def check_config_path(config_path, field="config_path"):
    """Return config_path when it is one absolute directory containerd can be pointed at."""
    if not isinstance(config_path, str):
        raise ContainerdConfigError(field, f"must be a string, got {type(config_path).__name__}")
    if not config_path.startswith("/"):
        raise ContainerdConfigError(field, f"{config_path!r} must be an absolute path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in config_path):
        raise ContainerdConfigError(field, "must not contain control characters")
    if ":" in config_path:
        raise ContainerdConfigError(
            field,
            f"{config_path!r} must not contain ':' (containerd splits config_path at ':' into several directories)",
        )
    return config_path


def _check_new_version(version):
    if isinstance(version, bool) or version not in NEW_FILE_VERSIONS:
        raise ContainerdConfigError(
            "version", f"must be 2 (containerd 1.x, also read by 2.x) or 3 (containerd 2.x only), got {version!r}"
        )
    return version


def _parse(text, name):
    """Return (settings, tomlkit document); refuse text that either parser rejects."""
    if tomlkit is None:
        raise MissingDependencyError("tomlkit is required on the controller: pip install tomlkit")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ContainerdConfigError(
            name, f"is not valid TOML ({error}); nothing was written, fix the file first"
        ) from None
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as error:
        raise ContainerdConfigError(
            name, f"cannot be edited without losing its layout ({error}); nothing was written"
        ) from None
    return data, document


def config_version(data):
    """Return the config version containerd reads the parsed file as (1, 2 or 3)."""
    if "version" not in data:
        return 1
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ContainerdConfigError("version", f"must be an integer, got {version!r}")
    if version == 0:  # containerd reads 0 (unset) as 1
        return 1
    if version not in REGISTRY_SECTIONS:
        raise ContainerdConfigError(
            "version",
            f"containerd config version {version} is not supported "
            "(containerd 1.x reads 1 and 2, containerd 2.x reads 3)",
        )
    return version


def _lookup(data, path):
    """Return the table at path in the parsed settings, None when missing; refuse a non-table on the way."""
    node = data
    for depth, part in enumerate(path):
        if part not in node:
            return None
        node = node[part]
        if not isinstance(node, dict):
            raise ContainerdConfigError(
                dotted(path[: depth + 1]), f"is {_kind(node)}, not a table, so containerd cannot read this file"
            )
    return node


def _warnings(data, version):
    """Return what in the file keeps config_path from working although it parses."""
    path = REGISTRY_SECTIONS[version]
    section = dotted(path)
    warnings = []
    disabled = data.get("disabled_plugins")
    if isinstance(disabled, list):
        off = [plugin for plugin in disabled if plugin in _CRI_IDS]
        if off:
            warnings.append(
                f"disabled_plugins: lists {', '.join(off)}; containerd's CRI plugin is off, so kubelet cannot use "
                f"this containerd and {section}.{KEY} has no effect until it is removed from that list"
            )
    imports = data.get("imports")
    if isinstance(imports, list) and imports:
        warnings.append(
            f"imports: this file imports {', '.join(map(str, imports))}; a plugin section in an imported file "
            f"replaces this file's section as a whole, so check that none of them sets {dotted(path[:-1])}"
        )
    plugins = data.get("plugins")
    if isinstance(plugins, dict):
        if version == 1 and "io.containerd.grpc.v1.cri" in plugins:
            warnings.append(
                'plugins."io.containerd.grpc.v1.cri": containerd 1.x reads this file as version 1 (it does not say '
                "version = 2), where plugins go by their short ID, and ignores this section; add version = 2 at "
                "the top if that section is meant to apply (then run this again)"
            )
        if version != 1 and "cri" in plugins:
            warnings.append(
                f"plugins.cri: a version {version} file names plugins by their full ID, so containerd ignores "
                "this section"
            )
    return warnings


def _check_legacy(registry, section, version, config_path, warnings):
    """Refuse the legacy registry tables containerd will not start its CRI plugin with next to config_path."""
    mirrors = registry.get("mirrors")
    if mirrors is not None and not isinstance(mirrors, dict):
        raise ContainerdConfigError(f"{section}.mirrors", f"is {_kind(mirrors)}, not a table")
    if mirrors:
        raise ContainerdConfigError(
            f"{section}.mirrors",
            f"sets mirrors for {', '.join(sorted(mirrors))}. containerd treats `mirrors` together with `{KEY}` as a "
            f"fatal error (\"`mirrors` cannot be set when `config_path` is provided\") and then runs without its CRI "
            f"plugin, so nothing was written. To migrate, write {config_path}/<registry>/hosts.toml for each of "
            "these registries (the kubenode.registry_mirror.containerd_hosts module does), delete the entries "
            f"under {section}.mirrors (an empty table may stay), and run this again.",
        )
    configs = registry.get("configs")
    if not isinstance(configs, dict):
        return
    tls_hosts = sorted(host for host, settings in configs.items() if isinstance(settings, dict) and "tls" in settings)
    if not tls_hosts:
        return
    hosts = ", ".join(tls_hosts)
    if CONTAINERD_MAJOR[version] == 1:
        raise ContainerdConfigError(
            f"{section}.configs",
            f"sets tls for {hosts}. containerd 1.x treats `configs.<host>.tls` together with `{KEY}` as a fatal error "
            "(\"`configs.tls` cannot be set when `config_path` is provided\") and then runs without its CRI plugin, "
            f"so nothing was written. To migrate, move these settings to {config_path}/<host>/hosts.toml (ca_file "
            "becomes ca, cert_file and key_file become client, insecure_skip_verify becomes skip_verify), delete the "
            "tls tables (auth may stay), and run this again.",
        )
    warnings.append(
        f"{section}.configs: tls for {hosts} is deprecated in containerd 2.x; move it to "
        f"{config_path}/<host>/hosts.toml (ca, client, skip_verify)"
    )


def _newline(text):
    return "\r\n" if "\r\n" in text else "\n"


def _header_indent(table):
    return table.trivia.indent.rsplit("\n", 1)[-1]


def _add_to_table(table, value, newline="\n"):
    """Add the key to an explicit [table]: after its last key, before trailing comments and sub-tables.

    tomlkit's own add() appends after any comment that ends the table, which
    usually introduces the next table, so the position is chosen here; the
    indent follows the table's other keys (or containerd's two spaces), the
    line ends as the file's lines do.
    """
    body = table.value.body
    last, indent = None, None
    for index, (key, item) in enumerate(body):
        if key is None or isinstance(item, (Table, AoT)):
            continue  # whitespace, comments, sub-tables
        last = index
        if indent is None:
            indent = item.trivia.indent.rsplit("\n", 1)[-1]
    item = tomlkit.item(value)
    item.trivia.indent = _header_indent(table) + "  " if indent is None else indent
    item.trivia.trail = newline
    position = 0 if last is None else last + 1
    if position < len(body):
        table.value._insert_at(position, KEY, item)  # tomlkit has no public insert
    else:
        table.add(KEY, item)


def _set_with_tomlkit(document, path, value, newline="\n"):
    """Set path.KEY in the document where the section or an inline ancestor is; False to append a section instead."""
    node = document
    for depth, part in enumerate(path):
        if part not in node:
            if isinstance(node, InlineTable):
                nested = {KEY: value}
                for inner in reversed(path[depth + 1 :]):
                    nested = {inner: nested}
                node[part] = nested
                return True
            return False
        node = node[part]
    if KEY in node or isinstance(node, InlineTable):
        node[KEY] = value  # replaces in place, comment kept
        return True
    table = _header_table(document, path)
    if table is not None:
        _add_to_table(table, value, newline)
    elif isinstance(node, Table):  # defined by dotted keys, or only through sub-tables
        node[KEY] = value
        item = node.value.item(KEY)
        if not item.trivia.indent:
            item.trivia.indent = _first_indent(node) or "  "
        if item.trivia.trail == "\n":
            item.trivia.trail = newline
    else:  # only through sub-tables spread over the file: a header of its own at the end will do
        return False
    return True


def _header_table(container, path):
    """Return the table whose [header] spells path, in whichever fragment of an out-of-order file it is."""
    for key, item in container.body:
        if key is None or key.is_dotted() or key.key != path[0] or not isinstance(item, Table):
            continue
        if len(path) == 1:
            if not item.is_super_table():
                return item
        else:
            found = _header_table(item.value, path[1:])
            if found is not None:
                return found
    return None


def _first_indent(table):
    """Return the indent of the first key under table, sub-tables included ('' when none)."""
    for key, item in table.value.body:
        if isinstance(item, Table):
            indent = _first_indent(item)
            if indent:
                return indent
        elif key is not None and not isinstance(item, AoT):
            return item.trivia.indent.rsplit("\n", 1)[-1]
    return ""


def _append_section(text, path, value, version=None):
    """Return text with a new [section] (and version key) appended at its end.

    tomlkit would nest the new table inside its parent, between sections it
    does not own; the end of the file is the one place that moves nothing.
    """
    newline = _newline(text)
    if text and not text.endswith(newline):
        text += newline
    if text.strip() and not text.endswith(newline * 2):
        text += newline
    if version is not None:
        text += f"version = {version}{newline}{newline}"
    return f"{text}[{dotted(path)}]{newline}  {KEY} = {tomlkit.item(value).as_string()}{newline}"


def _set_in(data, path, value):
    node = data
    for part in path:
        node = node.setdefault(part, {})
    node[KEY] = value


def _verify(name, text, expected, drop_empty=None):
    """Refuse an edit that does not parse back to exactly the intended settings.

    drop_empty: a table path that may vanish from the result when it is left
    empty (removing the only key of a dotted-key table removes the table).
    """
    try:
        result = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        result = None
    if drop_empty is not None and result is not None:
        for settings in (expected, result):
            parent = _lookup(settings, drop_empty[:-1])
            if parent is not None and parent.get(drop_empty[-1]) == {}:
                del parent[drop_empty[-1]]
    if result != expected:
        raise ContainerdConfigError(
            name,
            "the edited text does not parse back to the intended settings; nothing was written (please report this)",
        )


def _info(version, previous, config_path, created, warnings):
    section = None if version is None else dotted(REGISTRY_SECTIONS[version])
    return {
        "section": section,
        "version": version,
        "containerd_major": None if version is None else CONTAINERD_MAJOR[version],
        "previous_config_path": previous,
        "config_path": config_path,
        "created": created,
        "warnings": warnings,
        "migrated": [],  # {registry, hosts, content} of each hosts.toml the legacy settings move to
        "legacy_removed": False,
    }


def _current(registry, section):
    if registry is None or KEY not in registry:
        return None
    previous = registry[KEY]
    if not isinstance(previous, str):
        raise ContainerdConfigError(f"{section}.{KEY}", f"is {_kind(previous)}, not a string")
    return previous


def _check_legacy_mode(legacy_mirrors):
    if legacy_mirrors not in LEGACY_MIRRORS:
        raise ContainerdConfigError(
            "legacy_mirrors", f"must be one of {', '.join(LEGACY_MIRRORS)}, got {legacy_mirrors!r}"
        )
    return legacy_mirrors


def _migration(registry, path, name):
    """Return the rendered Migration of the registry section's legacy settings (empty when there are none)."""
    try:
        return render_migrated(plan_migration(registry, path), name, dotted(path))
    except LegacyRegistryError as error:
        raise ContainerdConfigError(error.field, f"{error.problem}; nothing was written") from None


def ensure_config_path(
    text,
    config_path=DEFAULT_CONFIG_PATH,
    version_if_new=DEFAULT_VERSION,
    name="config.toml",
    legacy_mirrors=DEFAULT_LEGACY_MIRRORS,
):
    """Return (new text, info) with config_path set where containerd reads it.

    text is the current file, or None when there is none: then a minimal file
    in version version_if_new is made. A file with no settings at all (empty,
    or only comments) gets the version key too and keeps its comments.
    name labels errors about the file itself (its path, for the action).

    Legacy registry settings that containerd refuses next to config_path are
    refused (legacy_mirrors="refuse") or, by default, deleted from the text:
    info["migrated"] then lists the hosts.toml files that must be written
    before the new text ({registry, hosts, content}), and info["legacy_removed"]
    is True.
    """
    check_config_path(config_path)
    _check_new_version(version_if_new)
    _check_legacy_mode(legacy_mirrors)
    data, document = _parse(text or "", name)
    fresh = not data  # nothing in it yet: write it in the requested version
    version = version_if_new if fresh else config_version(data)
    path = REGISTRY_SECTIONS[version]
    section = dotted(path)
    registry = _lookup(data, path)
    warnings = _warnings(data, version)
    migration = None
    if registry is not None:
        if legacy_mirrors == "refuse":
            _check_legacy(registry, section, version, config_path, warnings)
        else:
            migration = _migration(registry, path, name)
    previous = _current(registry, section)
    info = _info(version, previous, config_path, text is None, warnings)
    if migration:
        info["migrated"] = [dict(migrated.summary(), content=migrated.content) for migrated in migration.files]
        info["legacy_removed"] = True
    elif previous == config_path:
        return text, info

    expected = copy.deepcopy(data)
    if fresh:
        expected["version"] = version
        new_text = _append_section(text or "", path, config_path, version)
    else:
        if migration:
            expected = without_legacy(data, path, migration)
            try:
                remove_legacy(document, path, migration)
            except (TOMLKitError, KeyError, IndexError, ValueError) as error:
                raise ContainerdConfigError(
                    name, f"cannot delete the legacy registry settings without losing its layout ({error}); "
                    "nothing was written"
                ) from None
        if previous == config_path or _set_with_tomlkit(document, path, config_path, _newline(text)):
            new_text = document.as_string()
        else:
            new_text = _append_section(document.as_string(), path, config_path)
    _set_in(expected, path, config_path)
    _verify(name, new_text, expected)
    return new_text, info


def mask_secrets(text):
    """Return config.toml text for a diff: every password, auth, identitytoken and header value masked.

    Done on the parsed document (see _toml_mask), so inline tables and dotted keys are masked as
    well as [tables]; comments and layout stay. Text that cannot be parsed is not shown at all.
    """
    return mask_toml(text)


def remove_config_path(text, config_path=DEFAULT_CONFIG_PATH, name="config.toml"):
    """Return (new text, info) without config_path when it holds exactly config_path.

    Any other value is left alone, and so is everything else, including the
    section itself. A missing file (None) stays missing.
    """
    check_config_path(config_path)
    if text is None:
        return None, _info(None, None, None, False, [])
    data, document = _parse(text, name)
    version = config_version(data)
    path = REGISTRY_SECTIONS[version]
    section = dotted(path)
    registry = _lookup(data, path)
    previous = _current(registry, section)
    if previous != config_path:
        return text, _info(version, previous, previous, False, [])

    node = document
    for part in path:
        node = node[part]
    del node[KEY]
    new_text = document.as_string()

    expected = copy.deepcopy(data)
    del _lookup(expected, path)[KEY]
    _verify(name, new_text, expected, drop_empty=path)
    return new_text, _info(version, previous, None, False, [])
