# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point containerd's CRI registry config_path at the certs.d directory in config.toml.

Controller-side, pure Python with no Ansible imports: the containerd_config
action plugin uses it. This module holds containerd's rules, as data below:
which section each config version reads, what is refused or warned about. The
edit itself (_toml_edit.py) keeps everything but the one setting (comments,
order, quoting, layout) byte-for-byte, and every result is parsed back with
tomllib and compared with the original settings plus the one change before it
may leave the controller. Bad input raises RegistrySettingError, its message
starting with the setting or file it is about.

Which section containerd reads depends on the file's ``version`` key:

* no key, 0 or 1: containerd 1.x reads version 1, where plugins go by their
  short ID: ``[plugins.cri.registry]``.
* 2: containerd 1.x, full plugin IDs: ``[plugins."io.containerd.grpc.v1.cri".registry]``
  (containerd 2.x migrates this on load, so it works there too).
* 3: containerd 2.x, where the image settings moved to their own plugin:
  ``[plugins."io.containerd.cri.v1.images".registry]``.
* 4: containerd 2.3 and later (its default; server settings moved into plugins), the same
  CRI images table as 3. containerd before 2.3 refuses a version 4 file.

containerd will not start its CRI plugin with the legacy ``mirrors`` table (or,
in 1.x, ``configs.<host>.tls``) next to ``config_path``. With
legacy_mirrors="migrate" those settings move to hosts.toml files
(_legacy_registry.py) and leave the file in the same edit; with "refuse" the
file is refused.

A config_path listing several directories separated by ':' (containerd 2.2's
default) is replaced by the one directory like any other value, with a warning
naming the directories dropped: containerd 2.1+'s transfer-service pull path
does not split the list (CONFIG_PATH_LIST_WARNING).
"""

from __future__ import annotations

import copy
import tomllib

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_LEGACY_MIRRORS,
    DEFAULT_VERSION,
    LEGACY_MIRRORS,
    NEW_FILE_VERSIONS,
    containerd_release,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import check_absolute
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._config_credentials import (
    check_credentials,
    edit_credentials,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._legacy_registry import (
    plan_migration,
    remove_legacy,
    render_migrated,
    restated,
    without_legacy,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_edit import (
    append_section,
    dotted_key,
    lookup_table,
    newline_of,
    parse,
    set_key,
    table_at,
    value_kind,
)

KEY = "config_path"

# containerd's rules. The config version is the file's `version` key (none, or 0, reads as 1); a new file
# is written in one of NEW_FILE_VERSIONS (the module's version option, _containerd_config_spec).

# config version -> the registry section containerd reads in that version
REGISTRY_SECTIONS = {
    1: ("plugins", "cri", "registry"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry"),
    4: ("plugins", "io.containerd.cri.v1.images", "registry"),  # containerd 2.3's default, same CRI table as 3
}
# config version -> the containerd major release that reads it
CONTAINERD_MAJOR = {1: 1, 2: 1, 3: 2, 4: 2}
# containerd major -> what it does with a legacy registry table next to config_path: "fatal" (it runs
# without its CRI plugin, so the file is refused) or "deprecated" (a warning)
LEGACY_TABLES = {
    1: {"mirrors": "fatal", "configs.<host>.tls": "fatal"},
    2: {"mirrors": "fatal", "configs.<host>.tls": "deprecated"},
}
# What is said about them. Fields: section, names (registries or hosts), key, config_path.
LEGACY_REFUSALS = {
    "mirrors": (
        "sets mirrors for {names}. containerd treats `mirrors` together with `{key}` as a fatal error "
        "(\"`mirrors` cannot be set when `config_path` is provided\") and then runs without its CRI plugin, so "
        "nothing was written. To migrate, write {config_path}/<registry>/hosts.toml for each of these registries "
        "(the kubenode.registry_mirror.containerd_hosts module does), delete the entries under {section}.mirrors "
        "(an empty table may stay), and run this again."
    ),
    "configs.<host>.tls": (
        "sets tls for {names}. containerd 1.x treats `configs.<host>.tls` together with `{key}` as a fatal error "
        "(\"`configs.tls` cannot be set when `config_path` is provided\") and then runs without its CRI plugin, "
        "so nothing was written. To migrate, move these settings to {config_path}/<host>/hosts.toml (ca_file "
        "becomes ca, cert_file and key_file become client, insecure_skip_verify becomes skip_verify), delete the "
        "tls tables (auth may stay), and run this again."
    ),
}
LEGACY_DEPRECATIONS = {
    "configs.<host>.tls": (
        "{section}.configs: tls for {names} is deprecated in containerd 2.x; move it to "
        "{config_path}/<host>/hosts.toml (ca, client, skip_verify)"
    ),
}
# The CRI plugin's IDs: disabled_plugins listing any of them turns off what kubelet talks to.
CRI_PLUGIN_IDS = ("cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images")
# config version -> the CRI plugin ID whose plugins.<ID> section containerd ignores there, and why
IGNORED_CRI_SECTIONS = {
    1: (
        "io.containerd.grpc.v1.cri",
        "containerd 1.x reads this file as version 1 (it does not say version = 2), where plugins go by their "
        "short ID, and ignores this section; add version = 2 at the top if that section is meant to apply (then "
        "run this again)",
    ),
    2: ("cri", "a version 2 file names plugins by their full ID, so containerd ignores this section"),
    3: ("cri", "a version 3 file names plugins by their full ID, so containerd ignores this section"),
    4: ("cri", "a version 4 file names plugins by their full ID, so containerd ignores this section"),
}
# Other settings that keep config_path from working although the file parses. Fields: names, section, key.
# (The files config.toml imports are read and checked by the action: _effective_config.py.)
DISABLED_CRI_WARNING = (
    "disabled_plugins: lists {names}; containerd's CRI plugin is off, so kubelet cannot use this containerd and "
    "{section}.{key} has no effect until it is removed from that list"
)
# A config_path holding several directories separated by ':' (containerd 2.2's default is
# '/etc/containerd/certs.d:/etc/docker/certs.d') is replaced by our one directory, with this warning. Only
# the CRI's local pull path splits the value (filepath.SplitList in registryHosts); the transfer-service
# pull path of containerd 2.1+ passes it whole to registry.WithHostDir as one directory
# (internal/cri/server/images/image_pull.go), which then reads no hosts.toml at all: containerd/containerd#12636.
# Fields: setting, previous, config_path, dropped.
CONFIG_PATH_LIST_WARNING = (
    "{setting}: {previous!r} lists several directories separated by ':'; it is replaced by {config_path!r}, as "
    "containerd 2.1 and later pull images through the transfer service, which reads config_path as one "
    "directory (it does not split the list), so with the list it read no hosts.toml at all. {dropped}"
)
CONFIG_PATH_DROPPED = (
    "Dropped from the list: {directories}; containerd no longer reads the files there, so move any "
    "<registry>/hosts.toml in them into {config_path}."
)
CONFIG_PATH_NOTHING_DROPPED = "No other directory was listed."


def check_config_path(config_path, field="config_path"):
    """Return config_path when it is one absolute directory containerd can be pointed at."""
    check_absolute(config_path, field)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in config_path):
        raise RegistrySettingError(field, "must not contain control characters")
    if ":" in config_path:
        raise RegistrySettingError(
            field,
            f"{config_path!r} must not contain ':' (containerd splits config_path at ':' into several directories)",
        )
    return config_path


def _check_new_version(version):
    if isinstance(version, bool) or version not in NEW_FILE_VERSIONS:
        raise RegistrySettingError(
            "version",
            "must be 2 (containerd 1.x, also read by 2.x), 3 (containerd 2.x only) or 4 (containerd 2.3 and later), "
            f"got {version!r}",
        )
    return version


def config_version(data):
    """Return the config version containerd reads the parsed file as (1, 2, 3 or 4)."""
    if "version" not in data:
        return 1
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise RegistrySettingError("version", f"must be an integer, got {version!r}")
    if version == 0:  # containerd reads 0 (unset) as 1
        return 1
    if version not in REGISTRY_SECTIONS:
        raise RegistrySettingError(
            "version",
            f"containerd config version {version} is not supported "
            "(containerd 1.x reads 1 and 2, containerd 2.x reads 3, containerd 2.3 and later 4)",
        )
    return version


def _warnings(data, version):
    """Return what in the file keeps config_path from working although it parses."""
    path = REGISTRY_SECTIONS[version]
    warnings = []
    disabled = data.get("disabled_plugins")
    if isinstance(disabled, list):
        off = [plugin for plugin in disabled if plugin in CRI_PLUGIN_IDS]
        if off:
            warnings.append(DISABLED_CRI_WARNING.format(names=", ".join(off), section=dotted_key(path), key=KEY))
    plugins = data.get("plugins")
    ignored, why = IGNORED_CRI_SECTIONS[version]
    if isinstance(plugins, dict) and ignored in plugins:
        warnings.append(f"{dotted_key(('plugins', ignored))}: {why}")
    return warnings


def _legacy_tables(registry, section):
    """Return {legacy table: the registries or hosts it is set for} of a parsed registry section."""
    found = {}
    mirrors = registry.get("mirrors")
    if mirrors is not None and not isinstance(mirrors, dict):
        raise RegistrySettingError(f"{section}.mirrors", f"is {value_kind(mirrors)}, not a table")
    if mirrors:
        found["mirrors"] = ", ".join(sorted(mirrors))
    configs = registry.get("configs")
    if isinstance(configs, dict):
        tls_hosts = sorted(host for host, tables in configs.items() if isinstance(tables, dict) and "tls" in tables)
        if tls_hosts:
            found["configs.<host>.tls"] = ", ".join(tls_hosts)
    return found


def _check_legacy(registry, section, version, config_path, warnings):
    """Refuse the legacy registry tables containerd will not start its CRI plugin with next to config_path."""
    for table, names in _legacy_tables(registry, section).items():
        fields = {"section": section, "names": names, "key": KEY, "config_path": config_path}
        if LEGACY_TABLES[CONTAINERD_MAJOR[version]][table] == "fatal":
            where = table.split(".")[0]  # the section's mirrors or configs table
            raise RegistrySettingError(f"{section}.{where}", LEGACY_REFUSALS[table].format(**fields))
        warnings.append(LEGACY_DEPRECATIONS[table].format(**fields))


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
            parent = lookup_table(settings, drop_empty[:-1])
            if parent is not None and parent.get(drop_empty[-1]) == {}:
                del parent[drop_empty[-1]]
    if result != expected:
        raise RegistrySettingError(
            name,
            "the edited text does not parse back to the intended settings; nothing was written (please report this)",
        )


def _info(version, previous, config_path, created, warnings):
    section = None if version is None else dotted_key(REGISTRY_SECTIONS[version])
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


def _config_path_list_warning(section, previous, config_path):
    """Return the warning for a config_path that lists several directories, naming those dropped."""
    dropped = []
    for directory in previous.split(":"):
        if directory and directory != config_path and directory not in dropped:
            dropped.append(directory)
    return CONFIG_PATH_LIST_WARNING.format(
        setting=f"{section}.{KEY}",
        previous=previous,
        config_path=config_path,
        dropped=CONFIG_PATH_DROPPED.format(directories=", ".join(dropped), config_path=config_path)
        if dropped
        else CONFIG_PATH_NOTHING_DROPPED,
    )


def _current(registry, section):
    if registry is None or KEY not in registry:
        return None
    previous = registry[KEY]
    if not isinstance(previous, str):
        raise RegistrySettingError(f"{section}.{KEY}", f"is {value_kind(previous)}, not a string")
    return previous


def _check_legacy_mode(legacy_mirrors):
    if legacy_mirrors not in LEGACY_MIRRORS:
        raise RegistrySettingError(
            "legacy_mirrors", f"must be one of {', '.join(LEGACY_MIRRORS)}, got {legacy_mirrors!r}"
        )
    return legacy_mirrors


def _migration(registry, path, name):
    """Return the rendered Migration of the registry section's legacy settings (empty when there are none)."""
    try:
        return render_migrated(plan_migration(registry, path), name, dotted_key(path))
    except RegistrySettingError as error:
        raise restated(error, suffix="; nothing was written") from None


def _legacy_settings(registry, path, version, config_path, name, legacy_mirrors, warnings):
    """The Migration of the registry section's legacy settings, or None: there is no section, or legacy_mirrors is
    refuse (then legacy settings containerd refuses next to config_path are refused here)."""
    if registry is None:
        return None
    if legacy_mirrors == "refuse":
        _check_legacy(registry, dotted_key(path), version, config_path, warnings)
        return None
    return _migration(registry, path, name)


def _with_credentials(text, version, wanted, name, containerd_version=None):
    """text with our configs."<host>".auth tables as wanted ({host: (username, password)}) where containerd 1.x
    reads them for the token flow, and none of ours anywhere else. None on containerd 2.x, which sends the
    hosts.toml header to the token service (and calls `configs` deprecated), even in a version 2 file it
    migrates; the node's release decides, else the file's version (1 and 2 are for 1.x)."""
    if text is None:
        return None
    release = containerd_release(containerd_version)
    major = CONTAINERD_MAJOR[version] if release is None else release[0]
    keep = wanted if major == 1 else {}
    sections = list(dict.fromkeys(REGISTRY_SECTIONS.values()))
    return edit_credentials(text, REGISTRY_SECTIONS[version], keep, sections, name)


def ensure_config_path(
    text,
    config_path=DEFAULT_CONFIG_PATH,
    version_if_new=DEFAULT_VERSION,
    name="config.toml",
    legacy_mirrors=DEFAULT_LEGACY_MIRRORS,
    credentials=None,
    containerd_version=None,
):
    """Return (new text, info) with config_path set where containerd reads it, and the credentials
    (the credentials option: a list of {host, username, password}) where containerd 1.x reads them
    for the token flow (_config_credentials.py); containerd_version: the node's, None when unknown."""
    wanted = check_credentials(credentials)
    new_text, info = _ensure_config_path(text, config_path, version_if_new, name, legacy_mirrors)
    return _with_credentials(new_text, info["version"], wanted, name, containerd_version), info


def _ensure_config_path(text, config_path, version_if_new, name, legacy_mirrors):
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
    data, document = parse(text or "", name)
    fresh = not data  # nothing in it yet: write it in the requested version
    version = version_if_new if fresh else config_version(data)
    path = REGISTRY_SECTIONS[version]
    section = dotted_key(path)
    registry = lookup_table(data, path)
    warnings = _warnings(data, version)
    migration = _legacy_settings(registry, path, version, config_path, name, legacy_mirrors, warnings)
    previous = _current(registry, section)
    if previous is not None and ":" in previous:
        warnings.append(_config_path_list_warning(section, previous, config_path))
    info = _info(version, previous, config_path, text is None, warnings)
    if migration:
        info["migrated"] = [dict(migrated.summary(), content=migrated.content) for migrated in migration.files]
        info["legacy_removed"] = True
    elif previous == config_path:
        return text, info

    expected = copy.deepcopy(data)
    if fresh:
        expected["version"] = version
        new_text = append_section(text or "", path, KEY, config_path, top={"version": version})
    else:
        if migration:
            expected = without_legacy(data, path, migration)
            remove_legacy(document, path, migration, name)
        if previous == config_path or set_key(document, path, KEY, config_path, newline_of(text)):
            new_text = document.as_string()
        else:
            new_text = append_section(document.as_string(), path, KEY, config_path)
    _set_in(expected, path, config_path)
    _verify(name, new_text, expected)
    return new_text, info


def remove_config_path(text, config_path=DEFAULT_CONFIG_PATH, name="config.toml"):
    """Return (new text, info) without config_path when it holds exactly config_path.

    Any other value is left alone, and so is everything else, including the
    section itself, but the credentials this module wrote (_config_credentials.py), which go
    whatever config_path holds. A missing file (None) stays missing.
    """
    new_text, info = _remove_config_path(text, config_path, name)
    return _with_credentials(new_text, info["version"] or 1, {}, name), info


def _remove_config_path(text, config_path, name):
    check_config_path(config_path)
    if text is None:
        return None, _info(None, None, None, False, [])
    data, document = parse(text, name)
    version = config_version(data)
    path = REGISTRY_SECTIONS[version]
    section = dotted_key(path)
    registry = lookup_table(data, path)
    previous = _current(registry, section)
    if previous != config_path:
        return text, _info(version, previous, previous, False, [])

    del table_at(document, path)[KEY]
    new_text = document.as_string()

    expected = copy.deepcopy(data)
    del lookup_table(expected, path)[KEY]
    _verify(name, new_text, expected, drop_empty=path)
    return new_text, _info(version, previous, None, False, [])
