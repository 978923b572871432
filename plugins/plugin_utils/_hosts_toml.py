# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate registry mirror settings and render containerd hosts.toml files.

Controller-side, pure Python with no Ansible imports: the containerd_hosts
action plugin and the filters share it. Every input is checked against a
strict grammar and refused when it does not fit, rather than escaped, so no
value can change the meaning of the TOML that containerd reads.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

try:
    import tomli_w
except ImportError:  # reported when rendering, so that documentation tools work without it
    tomli_w = None

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    DEFAULT_FALLBACKS,
    MARKER,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    basic_auth,
    check_host_port,
    normalize_repo_path,
    normalize_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    DEFAULT_REGISTRIES,
    check_settings,
)

# containerd's catch-all directory: applies to registries without their own.
DEFAULT_DIRECTORY = "_default"
CAPABILITIES = ("pull", "resolve")


class MissingDependencyError(RuntimeError):
    """A controller-side Python package is not installed."""


@dataclass(frozen=True)
class Mirror:
    """A validated mirror: where it is and how a node talks to it."""

    server: str  # scheme://host[:port]
    directory: str  # host[:port], the mirror's own certs.d directory
    endpoint: str  # the [host."..."] key containerd pulls from
    override_path: bool
    ca_file: str | None
    skip_tls: bool
    authorization: str | None

    def host_table(self):
        table = {"capabilities": list(CAPABILITIES)}
        if self.ca_file:
            table["ca"] = self.ca_file
        if self.skip_tls:
            table["skip_verify"] = True
        if self.override_path:
            table["override_path"] = True
        if self.authorization:
            table["header"] = {"authorization": self.authorization}
        return table


def mirror_endpoint(url, repo_path=None):
    """Return the host URL containerd pulls from, e.g. https://10.0.0.1:443/v2/infra/k8s."""
    server = normalize_url(url)[0]
    path = normalize_repo_path(repo_path)
    return f"{server}/v2/{path}" if path else server


def parse_mirror(url, repo_path=None, username=None, password=None, skip_tls=False, ca_file=None):
    """Validate the mirror settings; return a Mirror."""
    settings = check_settings(
        dict(state="present", url=url, repo_path=repo_path, username=username, password=password,
             skip_tls=skip_tls, ca_file=ca_file)
    )
    server, path = settings["url"], settings["repo_path"] or ""
    return Mirror(
        server=server,
        directory=server.split("://", 1)[1],
        endpoint=f"{server}/v2/{path}" if path else server,
        override_path=bool(path),
        ca_file=settings["ca_file"],
        skip_tls=settings["skip_tls"] is True,
        authorization=basic_auth(username, password) if username else None,
    )


def _check_fallbacks(hosts, mirror, field):
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise RegistrySettingError(field, "must be a list of registry URLs")
    seen = {mirror.endpoint}
    result = []
    for index, host in enumerate(hosts):
        server = normalize_url(host, f"{field}[{index}]")[0]
        if server in seen:
            raise RegistrySettingError(f"{field}[{index}]", f"{server} is listed twice")
        seen.add(server)
        result.append(server)
    return result


def hosts_document(registry, mirror, fallbacks):
    """Return the hosts.toml content for one registry as a dict, hosts in priority order."""
    document = {}
    if registry == mirror.directory:
        document["server"] = mirror.server
    elif registry != DEFAULT_DIRECTORY:
        document["server"] = f"https://{registry}"
    hosts = {mirror.endpoint: mirror.host_table()}
    for host in fallbacks:
        hosts[host] = {"capabilities": list(CAPABILITIES)}
    document["host"] = hosts
    return document


def dump_hosts_toml(document):
    """Serialise a hosts document with our marker; refuse text that does not parse back equal."""
    if tomli_w is None:
        raise MissingDependencyError("tomli-w is required on the controller: pip install tomli-w")
    text = f"{MARKER}\n{tomli_w.dumps(document)}"
    # containerd silently ignores a hosts.toml it cannot parse and pulls from
    # the internet instead, so a file that does not round-trip must never leave.
    if tomllib.loads(text) != document:
        raise RegistrySettingError("hosts.toml", "rendered text does not parse back to the intended settings")
    return text


# The longest file name Linux file systems take (NAME_MAX): a host[:port] is a directory name.
MAX_DIRECTORY_NAME = 255


def _check_directory_name(directory, field):
    if len(directory.encode("utf-8")) > MAX_DIRECTORY_NAME:
        raise RegistrySettingError(
            field,
            f"{directory[:40]!r}... is {len(directory)} characters long, too long for its certs.d directory "
            f"name (at most {MAX_DIRECTORY_NAME})",
        )
    return directory


def _check_registry(registry, field):
    if registry == DEFAULT_DIRECTORY:
        return registry
    return _check_directory_name(check_host_port(registry, field), field)


def hosts_directories(mirror_directory, registries):
    """Return the certs.d directories to manage: the mirror's own (when known) first, then each registry."""
    if isinstance(registries, (str, bytes)) or not isinstance(registries, Sequence):
        raise RegistrySettingError("registries", "must be a list of registry host[:port] names")
    directories = [] if mirror_directory is None else [_check_directory_name(mirror_directory, "url")]
    for index, registry in enumerate(registries):
        _check_registry(registry, f"registries[{index}]")
        if registry == mirror_directory:
            raise RegistrySettingError(
                f"registries[{index}]", f"{registry!r} is the mirror itself; its directory is always written"
            )
        if registry in directories:
            raise RegistrySettingError(f"registries[{index}]", f"{registry!r} is listed twice")
        directories.append(registry)
    return directories


def render_hosts_files(
    url,
    repo_path=None,
    username=None,
    password=None,
    skip_tls=False,
    ca_file=None,
    registries=DEFAULT_REGISTRIES,
    fallbacks=None,
):
    """Return [(directory, hosts.toml text)]: the mirror's own directory first, then each registry."""
    mirror = parse_mirror(url, repo_path, username, password, skip_tls, ca_file)
    directories = hosts_directories(mirror.directory, registries)
    if fallbacks is None:
        fallbacks = {name: hosts for name, hosts in DEFAULT_FALLBACKS.items() if name in directories}
    if not isinstance(fallbacks, Mapping):
        raise RegistrySettingError("fallbacks", "must be a mapping of registry to a list of host URLs")
    for name in fallbacks:
        if name not in directories[1:]:
            raise RegistrySettingError("fallbacks", f"{name!r} is not one of the registries")
    rendered = []
    for directory in directories:
        hosts = _check_fallbacks(fallbacks.get(directory, ()), mirror, f"fallbacks[{directory}]")
        rendered.append((directory, dump_hosts_toml(hosts_document(directory, mirror, hosts))))
    return rendered


def _check_keys(mapping, known, field):
    if not isinstance(mapping, Mapping):
        raise RegistrySettingError(field, "must be a mapping")
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise RegistrySettingError(field, f"unknown keys {', '.join(unknown)}; known: {', '.join(known)}")


HOSTS_FILES_SETTINGS_KEYS = (
    "url", "repo_path", "username", "password", "skip_tls", "ca_file", "registries", "fallbacks",
)


def render_hosts_files_from(settings):
    """Render every file from a mapping of containerd_hosts options (the hosts_files filter).

    A key that is missing or None takes the module's default.
    """
    _check_keys(settings, HOSTS_FILES_SETTINGS_KEYS, "settings")
    given = {name: value for name, value in settings.items() if value is not None}
    if "url" not in given:
        raise RegistrySettingError("url", "is required")
    return [{"directory": directory, "content": text} for directory, text in render_hosts_files(**given)]


HOSTS_TOML_SPEC_KEYS = (
    "registry", "url", "repo_path", "username", "password", "skip_tls", "ca_file", "fallbacks",
)


def render_hosts_toml(spec):
    """Render one registry's hosts.toml from a mapping (the hosts_toml filter).

    Keys: registry and url (required), repo_path, username, password,
    skip_tls, ca_file, fallbacks (a list; default: the seed's for that registry).
    """
    _check_keys(spec, HOSTS_TOML_SPEC_KEYS, "spec")
    for required in ("registry", "url"):
        if required not in spec:
            raise RegistrySettingError(required, "is required")
    mirror = parse_mirror(
        spec["url"],
        spec.get("repo_path"),
        spec.get("username"),
        spec.get("password"),
        spec.get("skip_tls", False),
        spec.get("ca_file"),
    )
    registry = _check_registry(spec["registry"], "registry")
    fallbacks = spec.get("fallbacks")
    if fallbacks is None:
        fallbacks = () if registry == mirror.directory else DEFAULT_FALLBACKS.get(registry, ())
    return dump_hosts_toml(hosts_document(registry, mirror, _check_fallbacks(fallbacks, mirror, "fallbacks")))


def check_mirror_settings(settings, prefix=""):
    """Check the containerd_mirror role's settings (the mirror_settings filter); return them normalised.

    Errors name prefix + the setting. With state present (the default) the hosts.toml files are also
    rendered, so everything containerd_hosts checks is checked here, before a node is touched.
    """

    def name(option):
        return prefix + option

    ca_src = settings.get("ca_src") if isinstance(settings, Mapping) else None
    # The one check that needs the controller's file system.
    if isinstance(ca_src, str) and ca_src and not os.path.isfile(ca_src):
        raise RegistrySettingError(name("ca_src"), f"{ca_src} is not a file on the controller")
    checked = check_settings(settings, name)
    if checked.get("state", "present") == "present":
        try:
            given = {key: checked[key] for key in HOSTS_FILES_SETTINGS_KEYS if checked.get(key) is not None}
            render_hosts_files(**given)
        except RegistrySettingError as error:
            if error.field.partition("[")[0] in HOSTS_FILES_SETTINGS_KEYS:
                raise error.renamed(name) from None
            raise
    return checked
