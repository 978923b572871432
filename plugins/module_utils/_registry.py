# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One model of a mirror and of the registry it serves, and the one hosts.toml document built from it.

Pure Python with no Ansible imports. Every source of mirror settings reads into these: the PMK mirror of url
(plugin_utils/_hosts_toml.py, pmk_registry), an entry of registry_mirrors (plugin_utils/_registry_mirrors.py,
read_entry) and containerd's legacy CRI registry settings (plugin_utils/_legacy_registry.py). hosts_document
then writes each the same way, so a rule about what hosts.toml says lives in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import tls_file_name
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import DEFAULT_CAPABILITIES

# containerd's catch-all directory: applies to registries without their own.
DEFAULT_DIRECTORY = "_default"


def endpoint_of(server, repo_path):
    """The host URL containerd pulls from: the server, with /v2/ and the repository path when there is one."""
    return f"{server}/v2/{repo_path}" if repo_path else server


@dataclass(frozen=True)
class Mirror:
    """A validated mirror: where it is and how a node talks to it."""

    server: str  # scheme://host[:port]
    directory: str  # host[:port], the mirror's own certs.d directory
    endpoint: str  # the [host."..."] key containerd pulls from
    override_path: bool
    ca_file: str | None = None
    skip_tls: bool = False
    authorization: str | None = None
    # (certificate, key) paths on the node; a lone path (legacy configs) is a file holding both
    client: tuple | str | None = None
    capabilities: tuple = DEFAULT_CAPABILITIES
    dial_timeout: str | None = None
    field: str = "url"  # how errors and warnings name this mirror's settings
    # The PEM texts given as content, {setting: text} of _hosts_files.TLS_FILES' keys: the files ca_file and
    # client name, which containerd_hosts writes.
    contents: tuple = ()
    username: str | None = None
    # The hosts besides its own whose token realm may be asked for a token with its credentials (registry_preflight).
    token_realms: tuple = ()
    ca_sha256: tuple = ()  # the pin of its CA: the SHA-256 fingerprints of its certificates (_ca_pin.py)
    # With username: the password, for containerd 1.x's configs."<host>".auth (credentials()); never shown
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def repo_path(self):
        return self.endpoint[len(self.server) + len("/v2/"):] if self.override_path else ""

    def credentials(self):
        """containerd_config's credentials entry of this mirror ({host, username, password}); None without."""
        if not self.username:
            return None
        return {"host": self.directory, "username": self.username, "password": self.password}

    def content(self, setting):
        """The PEM text given for a setting of _hosts_files.TLS_FILES, or None."""
        return dict(self.contents).get(setting)

    def host_table(self, unread=(), capabilities=True):
        """The mirror's hosts.toml settings; the keys in unread (see _hosts_files.unread_keys) left out.

        capabilities false: the settings of a server, which has none (containerd gives it pull and resolve).
        """
        table = {"capabilities": list(self.capabilities)} if capabilities else {}
        if self.ca_file:
            table["ca"] = self.ca_file
        if isinstance(self.client, str):
            table["client"] = self.client
        elif self.client:
            table["client"] = [list(self.client)]  # a pair: containerd reads a lone string as cert and key in one
        if self.skip_tls:
            table["skip_verify"] = True
        if self.override_path:
            table["override_path"] = True
        if self.dial_timeout and "dial_timeout" not in unread:
            table["dial_timeout"] = self.dial_timeout
        if self.authorization:
            table["header"] = {"authorization": self.authorization}
        return table


@dataclass(frozen=True)
class Registry:
    """A registry as hosts.toml serves it: its certs.d directory, its mirrors and what containerd falls back to."""

    directory: str  # its certs.d directory: host[:port], or _default
    mirrors: tuple  # Mirror, in the order containerd tries them
    upstream_fallback: bool = True  # whether containerd may go on to the registry itself
    fallbacks: tuple = ()  # further host URLs, after the mirrors, that pull and resolve
    # With upstream_fallback, the server line: None for none (containerd then ends with the registry itself)
    server: str | None = None
    server_host: Mirror | None = None  # the TLS and auth settings of server, written next to it
    registry: str | None = None  # as the settings name it (* or host[:port]); None for its directory
    field: str = ""  # how errors name it, e.g. registry_mirrors["docker.io"]

    def tls_files(self):
        """{file name: PEM text} of the files its mirrors' ca_content, client_cert_content and client_key_content
        give, in its directory (read_entry made sure one name holds one text)."""
        return {tls_file_name(mirror.directory, key): text for mirror in self.mirrors for key, text in mirror.contents}


def hosts_document(registry, unread=()):
    """Return the hosts.toml content of a Registry as a dict: server and its settings first, then each host.

    containerd tries the [host] tables in order, then server. With upstream_fallback the server is the registry's
    own (registry.server, or none: containerd then ends with the registry itself, as it does without a file, and
    for _default this is the only right choice, where a server line would send every registry to one host).
    Without it the first mirror is the server too, so the last try is the first mirror again, never the upstream.
    A document with a server always has a [host] table: containerd 1.x (go-toml v1) reads a hosts.toml without one
    as broken and then pulls as if there were no file (no CA, no client certificate), so a server without any
    mirror (a legacy configs host of its own) is its own [host] too. unread: the keys containerd does not read
    (_hosts_files.unread_keys).
    """
    document = {}
    if not registry.upstream_fallback:
        first = registry.mirrors[0]
        document["server"] = first.endpoint
        document.update(first.host_table(unread))
    elif registry.server is not None:
        document["server"] = registry.server
        if registry.server_host is not None:
            document.update(registry.server_host.host_table(unread, capabilities=False))
    hosts = {}
    for mirror in registry.mirrors:
        hosts.setdefault(mirror.endpoint, mirror.host_table(unread))
    for host in registry.fallbacks:
        hosts.setdefault(host, {"capabilities": list(DEFAULT_CAPABILITIES)})
    if not hosts and registry.server_host is not None:
        hosts[registry.server] = registry.server_host.host_table(unread)
    if hosts:
        document["host"] = hosts
    return document
