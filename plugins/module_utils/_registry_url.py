# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one grammar of registry settings: URLs, host[:port], repository paths, credentials.

Pure Python with no Ansible imports, standard library only and Python 3.8+, so
node-side modules, controller-side modules and the controller's renderer
(plugin_utils/_hosts_toml.py) all use this one definition. Values that do not
fit are refused, never escaped.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import urlsplit

SCHEMES = ("https", "http")

# A DNS label: letters, digits and inner hyphens. Its length (at most 63) is checked apart, to say so.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_PORT = re.compile(
    rf"(?P<host>\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]+))?"
)
# The longest host name DNS can carry (RFC 1035: 255 octets on the wire, 253 as text), and label.
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
# A label a URL parser reads as a number (WHATWG URL: decimal, or 0x hexadecimal): a host whose
# last label is one is an IPv4 address to browsers, Go and curl alike, never a DNS name.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
# One component of a repository path, as the distribution spec defines it.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RegistrySettingError(ValueError):
    """Bad input: the message starts with the field it is about, never with a secret's value."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def renamed(self, name):
        """The same error about name(option) instead of option; an index like [1] is kept."""
        option, bracket, index = self.field.partition("[")
        return RegistrySettingError(name(option) + bracket + index, self.problem)


def type_name(value):
    """The JSON-ish name of a value's type: int for Ansible's tagged int, not _AnsibleTaggedInt."""
    return next(kind.__name__ for kind in type(value).__mro__ if kind.__module__ == "builtins")


def require_str(value, field):
    if not isinstance(value, str):
        raise RegistrySettingError(field, f"must be a string, got {type_name(value)}")
    return value


def check_no_space(value, field):
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        raise RegistrySettingError(field, "must not contain whitespace or control characters")
    return value


def _check_host_name(host, value, field):
    """Refuse a DNS name or IPv4 literal that no resolver or URL parser reads as it is written."""
    if len(host) > MAX_HOST_LENGTH:
        raise RegistrySettingError(
            field, f"host {host[:40]!r}... is {len(host)} characters long; a host name has at most {MAX_HOST_LENGTH}"
        )
    labels = host.split(".")
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise RegistrySettingError(
                field,
                f"label {label[:20]!r}... of {value[:60]!r} is {len(label)} characters long; "
                f"a host name label has at most {MAX_LABEL_LENGTH}",
            )
    if _NUMERIC_LABEL.fullmatch(labels[-1]) and not _is_ipv4(labels):
        # Ends in a number, so URL parsers read it as an address: 999.999.999.999, 1.2.3.4.5, 10.1,
        # 0x7f.1 and 010.0.0.1 (octal to some) are refused rather than read differently by each.
        raise RegistrySettingError(
            field,
            f"{host!r} ends in a number, so it must be an IPv4 address of four decimal octets 0-255 "
            "without leading zeros, for example 10.0.0.1",
        )


def _is_ipv4(labels):
    """Return True for exactly four decimal octets 0-255 without leading zeros."""
    return len(labels) == 4 and all(
        label.isdigit() and label.isascii() and (label == "0" or not label.startswith("0")) and int(label) <= 255
        for label in labels
    )


def check_host_port(value, field):
    """Return value when it is a registry host[:port]; raise otherwise.

    host: a DNS name (at most 253 characters, labels of at most 63), an IPv4 address (four decimal
    octets 0-255; any host ending in a numeric label must be one) or an IPv6 address in brackets.
    port: 1-65535 in decimal without leading zeros, so that one registry has one spelling (containerd
    looks its certs.d directory up by the host[:port] text).
    """
    require_str(value, field)
    if value == "":
        raise RegistrySettingError(field, "must not be empty")
    match = _HOST_PORT.fullmatch(value)
    if not match:
        raise RegistrySettingError(
            field, f"{value[:80]!r} is not a valid registry host[:port] (for example docker.io or 10.0.0.1:5000)"
        )
    if match.group("ipv6") is not None:
        try:
            ipaddress.IPv6Address(match.group("ipv6"))
        except ValueError:
            raise RegistrySettingError(field, f"{value!r} holds an invalid IPv6 address") from None
    else:
        _check_host_name(match.group("host"), value, field)
    port = match.group("port")
    if port is not None:
        if len(port) > 1 and port.startswith("0"):
            raise RegistrySettingError(
                field, f"port {port} has a leading zero; write it as {int(port)} (one registry, one spelling)"
            )
        if not 1 <= int(port) <= 65535:
            raise RegistrySettingError(field, f"port {port} is out of range 1-65535")
    return value


def split_url(url, field="url"):
    """Return (lowercase scheme, urlsplit parts) of an http(s) URL; no scheme means https.

    Credentials, a query or a fragment are refused; the host must be a valid host[:port].
    """
    require_str(url, field)
    if url == "":
        raise RegistrySettingError(field, "must not be empty")
    check_no_space(url, field)
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. an invalid bracketed IPv6 host
        raise RegistrySettingError(field, f"{url!r} is not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RegistrySettingError(field, f"scheme {parts.scheme!r} is not supported; use https or http")
    if "@" in parts.netloc:
        raise RegistrySettingError(field, "must not contain credentials; use username and password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise RegistrySettingError(field, "must not contain a query or fragment")
    check_host_port(parts.netloc, field)
    return scheme, parts


def normalize_url(url, field="url"):
    """Return (scheme://host[:port], host[:port]) for a registry URL.

    No scheme means https; a trailing slash is dropped; a path, query,
    fragment or credentials are refused.
    """
    scheme, parts = split_url(url, field)
    if parts.path not in ("", "/"):
        raise RegistrySettingError(
            field, f"must not contain a path ({parts.path!r}); put the repository path in repo_path"
        )
    return f"{scheme}://{parts.netloc}", parts.netloc


def normalize_repo_path(repo_path, field="repo_path"):
    """Return the repository path without surrounding slashes ('' for the root)."""
    if repo_path is None:
        return ""
    require_str(repo_path, field)
    path = repo_path.strip("/")
    if path == "":
        return ""
    for segment in path.split("/"):
        if segment == "":
            raise RegistrySettingError(field, f"{repo_path!r} has an empty path segment")
        if not _PATH_COMPONENT.fullmatch(segment):
            raise RegistrySettingError(
                field,
                f"segment {segment!r} of {repo_path!r} is not a valid repository path component "
                "(lowercase letters and digits, separated by '.', '_', '__' or '-')",
            )
    return path


def check_username(value, field="username"):
    require_str(value, field)
    if _CONTROL.search(value):
        raise RegistrySettingError(field, "must not contain control characters")
    if ":" in value:
        raise RegistrySettingError(field, "must not contain ':' (HTTP Basic auth separates it from the password)")
    return value


def check_password(value, field="password"):
    require_str(value, field)
    if _CONTROL.search(value):
        raise RegistrySettingError(field, "must not contain control characters")
    return value


def basic_auth(username, password):
    """Return the HTTP Basic authorization header value for username and password (UTF-8)."""
    for field, value in (("username", username), ("password", password)):
        require_str(value, field)
        if value == "":
            raise RegistrySettingError(field, "must not be empty")
    check_username(username)
    check_password(password)
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def fetch_url_scheme(url, field="url"):
    """Return url when it is an http(s) URL with a host (a CA to download); raise otherwise."""
    require_str(url, field)
    check_no_space(url, field)
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise RegistrySettingError(field, f"{url!r} is not a valid URL ({error})") from None
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        raise RegistrySettingError(field, f"{url!r} must be an http:// or https:// URL")
    return url
