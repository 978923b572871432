# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mirror URL and Basic credentials as the node sees them.

Pure Python with no Ansible imports, standard library only and Python 3.8+:
node-side modules use it. It follows plugins/plugin_utils/_hosts_toml.py
(normalize_url, basic_auth), which is controller-only; the unit tests check
that both agree.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import urlsplit

SCHEMES = ("https", "http")

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_PORT = re.compile(
    rf"(?P<host>\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RegistryUrlError(ValueError):
    """Bad input: the message starts with the field it is about."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field


def _require_str(value, field):
    if not isinstance(value, str):
        raise RegistryUrlError(field, f"must be a string, got {type(value).__name__}")
    return value


def _check_host_port(value, field):
    if value == "":
        raise RegistryUrlError(field, "must not be empty")
    match = _HOST_PORT.fullmatch(value)
    if not match:
        raise RegistryUrlError(
            field, f"{value!r} is not a valid registry host[:port] (for example docker.io or 10.0.0.1:5000)"
        )
    if match.group("ipv6") is not None:
        try:
            ipaddress.IPv6Address(match.group("ipv6"))
        except ValueError:
            raise RegistryUrlError(field, f"{value!r} holds an invalid IPv6 address") from None
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise RegistryUrlError(field, f"port {port} is out of range 1-65535")
    return value


def normalize_url(url, field="url", path_hint="put the repository path in repo_path"):
    """Return (scheme://host[:port], host[:port]) for a registry URL.

    No scheme means https; a trailing slash is dropped; a path, query,
    fragment or credentials are refused.
    """
    _require_str(url, field)
    if url == "":
        raise RegistryUrlError(field, "must not be empty")
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        raise RegistryUrlError(field, "must not contain whitespace or control characters")
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise RegistryUrlError(field, f"{url!r} is not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RegistryUrlError(field, f"scheme {parts.scheme!r} is not supported; use https or http")
    if "@" in parts.netloc:
        raise RegistryUrlError(field, "must not contain credentials; use username and password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise RegistryUrlError(field, "must not contain a query or fragment")
    if parts.path not in ("", "/"):
        raise RegistryUrlError(
            field, f"must not contain a path ({parts.path!r}); {path_hint}"
        )
    host_port = _check_host_port(parts.netloc, field)
    return f"{scheme}://{host_port}", host_port


def basic_auth(username, password):
    """Return the HTTP Basic authorization header value for username and password (UTF-8)."""
    for field, value in (("username", username), ("password", password)):
        _require_str(value, field)
        if value == "":
            raise RegistryUrlError(field, "must not be empty")
        if _CONTROL.search(value):
            raise RegistryUrlError(field, "must not contain control characters")
    if ":" in username:
        raise RegistryUrlError("username", "must not contain ':' (HTTP Basic auth separates it from the password)")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def fetch_url_scheme(url, field="url"):
    """Return url when it is an http(s) URL with a host (a CA to download); raise otherwise."""
    _require_str(url, field)
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        raise RegistryUrlError(field, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise RegistryUrlError(field, f"{url!r} is not a valid URL ({error})") from None
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        raise RegistryUrlError(field, f"{url!r} must be an http:// or https:// URL")
    return url
