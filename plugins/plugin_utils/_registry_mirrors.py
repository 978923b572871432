# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the mirror settings mean: a mirror host, and registry_mirrors read into one entry per registry.

Controller-side, pure Python with no Ansible imports; plugin_utils/_hosts_toml.py writes the files from
these. registry_mirrors maps a registry to its mirrors, tried in the order given:

    registry_mirrors:
      docker.io:                        # a list: the mirrors; upstream_fallback as set globally
        - url: https://harbor.example
          repo_path: dockerhub-proxy
      quay.io:                          # a mapping: the mirrors, and this registry's own upstream_fallback
        mirrors:
          - {url: https://harbor.example, repo_path: quay-proxy}
        upstream_fallback: false
      "*":                              # containerd's _default directory: every registry without its own
        mirrors:
          - {url: https://cache.example, repo_path: all-upstreams}
        repo_path_for_all: true         # a repo_path under * serves every registry from one path: say so

A mirror's settings are _settings.MIRROR_SETTINGS. Each registry is given once: names are compared
without case, and docker.io, index.docker.io and registry-1.docker.io are one (Docker Hub). Its directory is
the one containerd reads for it: Docker Hub's names are written to docker.io (a pull of index.docker.io/x
or of x reads docker.io), every other name in lower case. A CA, client
certificate or key given as text (ca_content, ...) is a file of the registry's certs.d directory, named after
the mirror's host[:port] (_hosts_files.TLS_FILES), which hosts.toml names.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    TLS_FILES,
    tls_file_name,
    unread_keys,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import registry_key
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry import (
    DEFAULT_DIRECTORY,
    Mirror,
    Registry,
    endpoint_of,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    basic_auth,
    check_host_port,
    type_name,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    BY_OPTION,
    DEFAULT_CAPABILITIES,
    MIRROR_SETTINGS,
    check_mirror,
    check_value,
)

WILDCARD = "*"
ENTRY_KEYS = ("mirrors", "upstream_fallback", "repo_path_for_all")
# The longest file name Linux file systems take (NAME_MAX): a host[:port] is a directory name.
MAX_DIRECTORY_NAME = 255
DEFAULT_CONFIG_PATH = BY_OPTION["config_path"].default
# The settings of a mirror that are secrets (password, client_key_content).
MIRROR_SECRETS = frozenset(setting.option for setting in MIRROR_SETTINGS if setting.no_log)


def make_mirror(settings, field="url", files_directory=None):
    """Return the Mirror of checked settings (from _settings.check_settings or check_mirror).

    files_directory: the registry's certs.d directory on the node, where the PEM texts given as content go.
    """
    server, path = settings["url"], settings.get("repo_path") or ""
    directory = server.split("://", 1)[1]
    username = settings.get("username")
    contents = tuple((key, settings[key]) for key in TLS_FILES if settings.get(key))
    paths = {key: posixpath.join(files_directory, tls_file_name(directory, key)) for key, _text in contents}
    ca_file = paths.get("ca_content", settings.get("ca_file"))
    if "client_cert_content" in paths:
        client = (paths["client_cert_content"], paths["client_key_content"])
    else:
        client = (settings["client_cert"], settings["client_key"]) if settings.get("client_cert") else None
    return Mirror(
        server=server,
        directory=directory,
        endpoint=endpoint_of(server, path),
        override_path=bool(path),
        ca_file=ca_file,
        skip_tls=settings.get("skip_tls") is True,
        authorization=basic_auth(username, settings["password"]) if username else None,
        client=client,
        capabilities=tuple(settings.get("capabilities") or DEFAULT_CAPABILITIES),
        dial_timeout=settings.get("dial_timeout"),
        field=field,
        contents=contents,
        username=username,
        token_realms=tuple(settings.get("token_realms") or ()),
        ca_sha256=tuple(settings.get("ca_sha256") or ()),
        password=settings["password"] if username else None,
    )


def check_directory_name(directory, field):
    if len(directory.encode("utf-8")) > MAX_DIRECTORY_NAME:
        raise RegistrySettingError(
            field,
            f"{directory[:40]!r}... is {len(directory)} characters long, too long for its certs.d directory "
            f"name (at most {MAX_DIRECTORY_NAME})",
        )
    return directory


def same_registry(directory):
    """The name two spellings of one registry share: without case; Docker Hub's names (docker.io, index.docker.io,
    registry-1.docker.io, Docker Hub's API host) as docker.io, as containerd's CRI reads them."""
    return registry_key(directory)


def _quoted(key):
    return json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)


def _registry_directory(registry, field):
    if not isinstance(registry, str):
        raise RegistrySettingError(field, f"a registry is a string (host[:port] or *), got {type_name(registry)}")
    if registry == WILDCARD:
        return DEFAULT_DIRECTORY
    if registry == DEFAULT_DIRECTORY:
        raise RegistrySettingError(field, f"write * for containerd's {DEFAULT_DIRECTORY} directory")
    # The directory containerd reads the registry from: Docker Hub's names as docker.io, the rest in lower case.
    return check_directory_name(same_registry(check_host_port(registry, field)), field)


def _check_bool(value, field):
    if not isinstance(value, bool):
        raise RegistrySettingError(field, f"must be a boolean, got {type_name(value)}")
    return value


def read_entry(registry, value, upstream_fallback=True, field="", registry_field=None,
               config_path=DEFAULT_CONFIG_PATH):
    """Return the Registry of one registry (a registry_mirrors key) and its value, a list or a mapping.

    field names the value (e.g. registry_mirrors["docker.io"]; "" for the hosts_toml filter's own keys),
    registry_field the registry (default: field). upstream_fallback is the default of a list or a mapping
    without its own. config_path is the node's certs.d directory, where the PEM texts given as content go.
    """
    directory = _registry_directory(registry, registry_field or field)

    def key_field(key):
        return f"{field}.{key}" if field else key

    mirrors_field, for_all = field or "mirrors", False
    if isinstance(value, Mapping):
        known = ENTRY_KEYS if registry == WILDCARD else ENTRY_KEYS[:2]
        unknown = sorted(str(key) for key in value if key not in known)
        if unknown:
            problem = "is only for the * entry" if unknown[0] == "repo_path_for_all" else f"known: {', '.join(known)}"
            raise RegistrySettingError(key_field(unknown[0]), f"is not a setting here; {problem}")
        mirrors_field = key_field("mirrors")
        if "mirrors" not in value:
            raise RegistrySettingError(mirrors_field, "is required")
        if value.get("upstream_fallback") is not None:
            upstream_fallback = _check_bool(value["upstream_fallback"], key_field("upstream_fallback"))
        for_all = _check_bool(value.get("repo_path_for_all", False), key_field("repo_path_for_all"))
        value = value["mirrors"]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise RegistrySettingError(
            mirrors_field, f"must be a list of mirrors (mappings with url, ...), got {type_name(value)}"
        )
    if not value:
        raise RegistrySettingError(
            mirrors_field, "lists no mirror; a registry left out of registry_mirrors is pulled as it was before"
        )
    mirrors = []
    files_directory = posixpath.join(config_path, directory)
    for index, settings in enumerate(value):
        mirror_field = f"{mirrors_field}[{index}]"
        mirror = make_mirror(check_mirror(settings, mirror_field), mirror_field, files_directory)
        if any(mirror.endpoint == other.endpoint for other in mirrors):
            raise RegistrySettingError(f"{mirror_field}.url", f"{mirror.endpoint} is listed twice")
        _check_one_text_a_file(mirror, mirrors)
        if registry == WILDCARD and mirror.override_path and not for_all:
            raise RegistrySettingError(
                f"{mirror_field}.repo_path",
                "under * serves every registry from this one path; set repo_path_for_all: true in the * entry "
                "to mean it, or give each registry its own entry",
            )
        mirrors.append(mirror)
    return Registry(directory, tuple(mirrors), upstream_fallback, registry=registry, field=field)


def _check_one_text_a_file(mirror, others):
    """Refuse a mirror whose PEM text would go to the file of an earlier mirror on the same host with another."""
    for other in others:
        for key, text in mirror.contents:
            if other.directory == mirror.directory and other.content(key) not in (None, text):
                raise RegistrySettingError(
                    f"{mirror.field}.{key}",
                    f"differs from the {key} of {other.field} on the same host, and both would be written to "
                    f"{tls_file_name(mirror.directory, key)}: give the mirrors of one host the same one",
                )


def read_registry_mirrors(registry_mirrors, upstream_fallback=True, field="registry_mirrors",
                          config_path=DEFAULT_CONFIG_PATH):
    """Return a Registry per registry of registry_mirrors, in the order given; () for None or {}.

    upstream_fallback is the global setting (None: true), a registry's default; config_path (None: the default)
    is where the PEM texts given as content go.
    """
    config_path = config_path or DEFAULT_CONFIG_PATH
    upstream_fallback = check_value("upstream_fallback", upstream_fallback)
    if registry_mirrors is None:
        return ()
    if not isinstance(registry_mirrors, Mapping):
        raise RegistrySettingError(
            field, f"must be a mapping of registry to its mirrors, got {type_name(registry_mirrors)}"
        )
    entries, seen = [], {}
    for registry, value in registry_mirrors.items():
        entry = read_entry(registry, value, upstream_fallback is not False, f"{field}[{_quoted(registry)}]",
                           config_path=config_path)
        first = seen.setdefault(same_registry(entry.directory), registry)
        if first != registry:
            raise RegistrySettingError(entry.field, f"is the same registry as {first!r}; give each registry once")
        entries.append(entry)
    return tuple(entries)


def unread_warnings(entries, containerd_version=None):
    """Return a warning for each setting of entries' mirrors that containerd_version does not read (left out)."""
    unread = unread_keys(containerd_version)
    return [
        f"{mirror.field}.{key}: left out of hosts.toml: {why}"
        for entry in entries
        for mirror in entry.mirrors
        for key, why in unread.items()
        if getattr(mirror, key, None)
    ]


def preflight_targets(entries):
    """Return (targets, secrets): every distinct mirror of entries as registry_preflight calls it from the node,
    and the secrets they hold (authorization headers, client keys) for the module's no_log.

    A target is a mapping of the mirror's url (scheme://host[:port]), repo_path, skip_tls, its CA and client pair
    (node paths, or the texts given: they are not on the node yet), username and authorization, and fields: how
    the settings name each mirror it stands for. Mirrors the same in all of these are called once.
    """
    targets = {}
    for entry in entries:
        for mirror in entry.mirrors:
            target = _preflight_target(mirror)
            targets.setdefault(preflight_target_key(mirror), dict(target, fields=[]))["fields"].append(mirror.field)
    secrets = {target[key] for target in targets.values() for key in ("authorization", "client_key_content")}
    return list(targets.values()), sorted(secret for secret in secrets if secret)


def _preflight_target(mirror):
    texts = dict(mirror.contents)
    client = () if mirror.client is None or "client_cert_content" in texts else mirror.client
    return {
        "url": mirror.server,
        "repo_path": mirror.repo_path or None,
        "skip_tls": mirror.skip_tls,
        "ca_file": None if "ca_content" in texts else mirror.ca_file,
        "client_cert": client[0] if client else None,
        "client_key": client[1] if client else None,
        **{key: texts.get(key) for key in TLS_FILES},
        "username": mirror.username,
        "authorization": mirror.authorization,
        "token_realms": list(mirror.token_realms),
        "ca_sha256": list(mirror.ca_sha256) or None,
    }


def pinned_ca_files(entries):
    """The CA files on the node that mirrors of entries pin (ca_file with ca_sha256), for containerd_hosts to check
    before it writes anything: [{"path", "sha256", "field"}], field naming the mirror. A pinned ca_content is
    checked where it is read (_settings.check_mirror)."""
    return [{"path": mirror.ca_file, "sha256": list(mirror.ca_sha256), "field": mirror.field}
            for entry in entries for mirror in entry.mirrors
            if mirror.ca_sha256 and mirror.content("ca_content") is None]


def preflight_target_key(mirror):
    """What makes two mirrors one preflight target: everything the node calls them with."""
    return json.dumps(_preflight_target(mirror), sort_keys=True)


def masked_registry_mirrors(value, placeholder):
    """registry_mirrors as a task's invocation shows it: every mirror secret (password, client_key_content), at any
    depth, replaced by placeholder."""
    if isinstance(value, Mapping):
        return {key: placeholder if key in MIRROR_SECRETS else masked_registry_mirrors(inner, placeholder)
                for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked_registry_mirrors(inner, placeholder) for inner in value]
    return value
