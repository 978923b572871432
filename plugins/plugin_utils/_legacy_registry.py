# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move containerd's legacy CRI registry settings (registry.mirrors, registry.configs) to hosts.toml files.

Controller-side, pure Python with no Ansible imports: _containerd_config.py
uses it when containerd_config runs with legacy_mirrors=migrate. containerd
does not start its CRI plugin with ``mirrors`` (or, in 1.x, ``configs.<host>.tls``)
next to ``config_path``, so they have to move to certs.d before config_path is set.

What the legacy CRI resolver did, and what each piece becomes:

* ``mirrors."<registry>".endpoint``: the hosts tried in order, then the
  registry's own default host (``registry-1.docker.io`` for docker.io). In
  ``<registry>/hosts.toml`` they become ``[host."<url>"]`` tables, and the
  default host becomes ``server``. Registry ``*`` applied to every registry
  without its own entry: it becomes ``_default/hosts.toml``, without ``server``.
* An endpoint without a scheme got ``http://`` for localhost and loopback
  addresses, ``https://`` otherwise (docker.IsLocalhost: ``[::1]`` without a
  port is not one); one with a path used that path as the API
  root (no ``/v2`` appended): ``override_path = true``.
* ``configs."<host>".tls`` applied to every endpoint on that host[:port]: it
  goes into each such ``[host]`` table, and to the top level (the server) of
  ``<host>/hosts.toml``. A configs host without a mirrors entry of its own
  gets a file of its own, which also lists the ``*`` endpoints, as the legacy
  resolver tried those for it first.
* ``configs."<host>".auth`` stays in config.toml: containerd reads it next to
  ``config_path`` (the CRI's credentials for each host it contacts, on every
  release), and only from there does containerd 1.6 send it on to a token
  service; a hosts.toml header cannot carry ``identitytoken`` at all.

A legacy setting that cannot be migrated raises RegistrySettingError, its
message starting with the setting's TOML key, never with a secret.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import MIGRATED_MARKER_PREFIX
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry import (
    DEFAULT_DIRECTORY,
    Mirror,
    Registry,
    hosts_document,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    check_host_port,
    split_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import dump_checked
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_edit import (
    EDIT_ERRORS,
    dotted_key,
    is_array_of_tables,
    is_table,
    table_at,
    value_kind,
    whitespace,
)

WILDCARD = "*"
# docker.io's images are served from this host: the legacy resolver's default host for docker.io.
DOCKER_IO = "docker.io"
DOCKER_IO_HOST = "registry-1.docker.io"

TLS_KEYS = ("ca_file", "cert_file", "key_file", "insecure_skip_verify")
_QUOTES = re.compile(r"[\"'\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def restated(error, field=None, suffix=""):
    """Return error's RegistrySettingError said about another field, or with suffix after its problem."""
    problem = str(error).removeprefix(f"{error.field}: ")
    return RegistrySettingError(error.field if field is None else field, f"{problem}{suffix}")


def _setting(call, field, *args):
    """Run a _registry_url check, reporting its error under the TOML key field."""
    try:
        return call(*args)
    except RegistrySettingError as error:
        raise restated(error, field) from None


@dataclass(frozen=True)
class Endpoint:
    url: str  # scheme://host[:port][/path], the [host."..."] key
    host: str  # host[:port], the key configs are looked up by
    override_path: bool


@dataclass
class MigratedFile:
    registry: str  # the certs.d directory: host[:port], or _default for '*'
    hosts: list  # the [host] URLs, in order
    document: dict  # the hosts.toml settings
    content: str = ""  # the hosts.toml text, marker first
    tls_from: list = field(default_factory=list)  # the configs."<host>".tls keys whose settings it carries

    def summary(self):
        """Return what the module is told about the file: no settings, so no credentials."""
        return {"registry": self.registry, "hosts": list(self.hosts), "tls_from": list(self.tls_from)}


@dataclass
class Migration:
    files: list = field(default_factory=list)  # MigratedFile, in the order of the legacy entries
    removals: list = field(default_factory=list)  # key paths under the registry section, deepest last

    def __bool__(self):
        return bool(self.removals)


def _split_host_port(host_port):
    """The host of Go's net.SplitHostPort, or None where it returns an error (no port, say)."""
    last = host_port.rfind(":")
    if last < 0:
        return None
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or end + 1 != last:
            return None
        host, rest = host_port[1:end], host_port[end + 1 :]
        if "[" in host_port[1:] or "]" in rest:
            return None
        return host
    host = host_port[:last]
    return None if ":" in host or "[" in host_port or "]" in host_port else host


def _loopback(authority):
    """Return True where containerd's addDefaultScheme gave http:// (docker.IsLocalhost): the host, its port
    stripped when net.SplitHostPort can ("[::1]" without a port keeps its brackets), is "localhost" exactly or an
    address net.ParseIP reads as a loopback one (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)."""
    split = _split_host_port(authority)
    host = authority if split is None else split
    if host == "localhost":
        return True
    if "%" in host:  # a zone: ParseIP reads none
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def parse_endpoint(value, field):
    """Return the Endpoint a legacy mirrors endpoint string stands for; raise RegistrySettingError otherwise."""
    if not isinstance(value, str):
        raise RegistrySettingError(field, f"is {value_kind(value)}, not a URL string")
    if _CONTROL.search(value):
        raise RegistrySettingError(field, "must not contain control characters")
    if _QUOTES.search(value):
        raise RegistrySettingError(field, "must not contain quotes or backslashes")
    if "://" not in value:  # containerd's addDefaultScheme
        scheme = "http" if _loopback(re.split(r"[/?#]", value, maxsplit=1)[0].rpartition("@")[2]) else "https"
        value = f"{scheme}://{value}"
    try:
        netloc = urlsplit(value).netloc
    except ValueError:
        netloc = ""
    if "@" in netloc:  # checked first, so that no message repeats the credentials
        raise RegistrySettingError(
            field, "must not contain user information (user:password@); put credentials in configs.<host>.auth"
        )
    scheme, parts = _setting(split_url, field, value, field)
    path = "" if parts.path == "/" else parts.path
    return Endpoint(url=f"{scheme}://{parts.netloc}{path}", host=parts.netloc, override_path=bool(path))


def _table(value, field):
    if not isinstance(value, dict):
        raise RegistrySettingError(field, f"is {value_kind(value)}, not a table")
    return value


def _unknown(table, known, field, why):
    unknown = [name for name in table if name not in known]
    if unknown:
        raise RegistrySettingError(
            dotted_key((*field, unknown[0])), f"cannot be migrated: {why}"
        )


def _string(table, name, field):
    value = table.get(name, "")
    if not isinstance(value, str):
        raise RegistrySettingError(dotted_key((*field, name)), f"is {value_kind(value)}, not a string")
    return value


def _file_path(table, name, field):
    value = _string(table, name, field)
    if value == "":
        return ""
    key = dotted_key((*field, name))
    if _CONTROL.search(value):
        raise RegistrySettingError(key, "must not contain control characters")
    if not value.startswith("/"):
        raise RegistrySettingError(
            key, f"{value!r} must be an absolute path (hosts.toml reads relative paths from its own directory)"
        )
    return value


def _tls_settings(tls, field):
    """Return the Mirror settings (ca_file, client, skip_tls) of a legacy configs.<host>.tls table."""
    _table(tls, dotted_key(field))
    _unknown(tls, TLS_KEYS, field, f"containerd's legacy tls table knows only {', '.join(TLS_KEYS)}")
    settings = {}
    ca_file = _file_path(tls, "ca_file", field)
    cert_file = _file_path(tls, "cert_file", field)
    key_file = _file_path(tls, "key_file", field)
    skip = tls.get("insecure_skip_verify", False)
    if not isinstance(skip, bool):
        raise RegistrySettingError(
            dotted_key((*field, "insecure_skip_verify")), f"is {value_kind(skip)}, not a boolean"
        )
    if ca_file:
        settings["ca_file"] = ca_file
    if key_file and not cert_file:
        raise RegistrySettingError(dotted_key((*field, "key_file")), "is set without cert_file")
    if cert_file:
        settings["client"] = (cert_file, key_file) if key_file else cert_file
    if skip:
        settings["skip_tls"] = True
    return settings


def _server_host(registry, endpoints, configs):
    """The Mirror the legacy resolver (criService.registryEndpoints) ended with, as hosts.toml's server.

    When an endpoint's host is the registry itself, the resolver added nothing after the endpoints: that endpoint
    is the server, so the last try is one legacy made too. Otherwise it added the registry's default host, with
    http:// for a loopback one (defaultScheme), and the configs of the registry or, without any, of that host.
    """
    own = next((endpoint for endpoint in endpoints if endpoint.host == registry), None)
    if own is not None:
        scheme = urlsplit(own.url).scheme
        return Mirror(f"{scheme}://{own.host}", own.host, own.url, own.override_path, **configs.get(own.host, {}))
    host = DOCKER_IO_HOST if registry == DOCKER_IO else registry
    server = f"{'http' if _loopback(host) else 'https'}://{host}"
    settings = configs[registry] if registry in configs else configs.get(host, {})
    return Mirror(server, host, server, False, **settings)


def _migrated_registry(registry, endpoints, configs):
    """Return the Registry of one legacy registry: its endpoints as mirrors, each with the configs of its host, and
    (but for _default) the server the legacy resolver ended with (_server_host)."""
    server = server_host = None
    if registry != DEFAULT_DIRECTORY:
        server_host = _server_host(registry, endpoints, configs)
        server = server_host.endpoint
    mirrors = tuple(
        Mirror(f"{urlsplit(endpoint.url).scheme}://{endpoint.host}", endpoint.host, endpoint.url,
               endpoint.override_path, **configs.get(endpoint.host, {}))
        for endpoint in endpoints
    )
    return Registry(registry, mirrors, server=server, server_host=server_host, field=registry)


def _read_mirrors(mirrors, mirrors_field):
    """Return {registry: [Endpoint]} of a legacy mirrors table, in the order given."""
    endpoints = {}
    for name, mirror in mirrors.items():
        field = (*mirrors_field, name)
        if name != WILDCARD:
            _setting(check_host_port, dotted_key(field), name, dotted_key(field))
        _table(mirror, dotted_key(field))
        _unknown(
            mirror,
            ("endpoint",),
            field,
            "hosts.toml has no equivalent of this mirror setting (only endpoint moves over)",
        )
        listed = mirror.get("endpoint", [])
        if not isinstance(listed, list):
            raise RegistrySettingError(dotted_key((*field, "endpoint")), f"is {value_kind(listed)}, not an array")
        endpoints[name] = [
            parse_endpoint(value, f"{dotted_key((*field, 'endpoint'))}[{index}]") for index, value in enumerate(listed)
        ]
    return endpoints


def _read_configs(configs, configs_field, removals):
    """Return {host: Mirror settings} of a legacy configs table's tls tables; append what moves to removals."""
    settings = {}
    for host, config in configs.items():
        field = (*configs_field, host)
        _table(config, dotted_key(field))
        if "tls" not in config:
            continue
        _setting(check_host_port, dotted_key(field), host, dotted_key(field))
        settings[host] = _tls_settings(config["tls"], (*field, "tls"))
        removals.append(("configs", host, "tls"))
        if list(config) == ["tls"]:
            removals.append(("configs", host))
    if configs and all(("configs", host) in removals for host in configs):
        removals.append(("configs",))
    return settings


def _migrated_file(directory, endpoints, settings, configs_field):
    registry = _migrated_registry(directory, endpoints, settings)
    document = hosts_document(registry)
    # the server takes the registry's own configs before its default host's (_server_host)
    used = {directory, *(mirror.directory for mirror in (*registry.mirrors, registry.server_host) if mirror)}
    tls_from = [dotted_key((*configs_field, host, "tls")) for host in sorted(used) if settings.get(host)]
    return MigratedFile(directory, list(document.get("host", {})), document, tls_from=tls_from)


def plan_migration(registry, section_path):
    """Return the Migration of a parsed registry section: the hosts.toml files to write, the keys to delete.

    registry: the parsed section (a dict); section_path: its key path, for messages.
    """
    mirrors = registry.get("mirrors")
    mirrors_field = (*section_path, "mirrors")
    if mirrors is not None:
        _table(mirrors, dotted_key(mirrors_field))
    configs = registry.get("configs")
    configs_field = (*section_path, "configs")
    if configs is not None:
        _table(configs, dotted_key(configs_field))

    migration = Migration()
    endpoints = _read_mirrors(mirrors or {}, mirrors_field)  # registry -> [Endpoint]
    if mirrors:
        migration.removals.append(("mirrors",))
    settings = _read_configs(configs or {}, configs_field, migration.removals)  # configs host -> Mirror settings

    for name, listed in endpoints.items():
        directory = DEFAULT_DIRECTORY if name == WILDCARD else name
        migration.files.append(_migrated_file(directory, listed, settings, configs_field))
    for host, config in settings.items():
        if host not in endpoints and config:
            migration.files.append(_migrated_file(host, endpoints.get(WILDCARD, []), settings, configs_field))
    return migration


def render_migrated(migration, name, section):
    """Fill in each file's text: the migrated marker naming name (config.toml) and section, then the TOML."""
    marker = f"{MIGRATED_MARKER_PREFIX}{name} ({section}); state=absent keeps it."
    if _CONTROL.search(marker):
        raise RegistrySettingError(name, "must not contain control characters")
    for migrated in migration.files:
        migrated.content = dump_checked(migrated.document, marker, f"{migrated.registry}/hosts.toml")
    return migration


def without_legacy(data, section_path, migration):
    """Return a deep copy of the parsed settings with the migration's keys deleted."""
    expected = copy.deepcopy(data)
    registry = expected
    for part in section_path:
        registry = registry[part]
    for path in migration.removals:
        node = registry
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return expected


# Editing the document: delete the keys, keep the comments that introduce what follows.


def _render_order(container, out):
    """Append ("header"|"key"|"trivia", item) for container's items, in the order they render."""
    for key, item in container.body:
        if key is None:
            out.append(("trivia", item))
        elif is_table(item) and not key.is_dotted():
            if not item.is_super_table():
                out.append(("header", item))
            _render_order(item.value, out)
        elif is_array_of_tables(item):
            for table in item.body:
                out.append(("header", table))
                _render_order(table.value, out)
        else:
            out.append(("key", item))
    return out


def _is_blank(item):
    return not item.as_string().strip()


def _outermost(removals):
    """Return the removals without those inside another one (deleting a table deletes what it holds)."""
    return [path for path in removals if not any(path[: len(other)] == other != path for other in removals)]


def remove_legacy(document, section_path, migration, name):
    """Delete the migration's keys from the tomlkit document, in place; name labels an error (the file's path).

    Comments at the end of a deleted table usually introduce the table after
    it (the parser files them under the deleted one); they are kept, in front
    of the next header that survives, or at the end of the file.
    """
    try:
        _remove_legacy(document, section_path, migration)
    except EDIT_ERRORS as error:
        raise RegistrySettingError(
            name, f"cannot delete the legacy registry settings without losing its layout ({error}); nothing was written"
        ) from None


def _remove_legacy(document, section_path, migration):
    before = _render_order(document, [])
    for path in _outermost(migration.removals):
        # A fresh lookup each time: an out-of-order table's proxy does not survive a deletion.
        del table_at(document, (*section_path, *path[:-1]))[path[-1]]
    survivors = {id(entry[1]) for entry in _render_order(document, [])}

    index = 0
    while index < len(before):
        if id(before[index][1]) in survivors:
            index += 1
            continue
        end = index
        while end < len(before) and id(before[end][1]) not in survivors:
            end += 1
        _keep_trailing_comments(document, before, index, end)
        index = end


def _keep_trailing_comments(document, order, start, end):
    """Put the comments (and a blank line) that end the deleted run order[start:end] where the run was."""
    first = end
    while first > start and order[first - 1][0] == "trivia":
        first -= 1
    trailing = [entry[1] for entry in order[first:end]]
    blank = []
    while trailing and _is_blank(trailing[0]):
        blank.append(trailing.pop(0))
    text = "".join(item.as_string() for item in trailing)
    blank_before = start > 0 and order[start - 1][0] == "trivia" and _is_blank(order[start - 1][1])
    if blank and not blank_before:
        text = blank[0].as_string() + text  # the run was set apart by a blank line: what follows still is
    if not text:
        return
    if end == len(order):
        document.add(whitespace(text))
    elif order[end][0] == "header":
        header = order[end][1]
        header.trivia.indent = text + header.trivia.indent
