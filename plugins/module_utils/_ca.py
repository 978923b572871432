# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry mirror's CA certificate on a node: got from text, a URL or its file, and checked.

One definition of every check, for the modules that use a CA: ca_certificate,
containerd_hosts (the CA its hosts.toml files name) and registry_preflight. Each
names the options in its own words (CaFields). Nothing here writes: the callers
write only once every check has passed. No Ansible imports.
"""

from __future__ import annotations

import datetime
import os
from collections import namedtuple

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca_pin import (
    check_sha256,
    fingerprints,
    http_warning,
    pin_mismatch,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import (
    FileOperationError,
    enterable_by,
    load_file_if_exists,
    readable_by,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import (
    MAX_BYTES,
    UTC,
    PemError,
    check_validity,
    days_left,
    format_time,
    read_certificates,
    soonest_expiring,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    fetch_url_scheme,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    CA_OPTIONS,
    CA_SETTINGS,
    HOSTS_CA_SETTINGS,
    argument_spec,
)

USER_AGENT = "kubenode.registry_mirror"
DEFAULT_TIMEOUT = 10
DEFAULT_WARN_DAYS = 30
CA_FILE_MODE = 0o644  # a CA is public, and PMK's pf9 user must read it

CaFields = namedtuple("CaFields", ["path", "content", "url", "readable_by", "sha256"])
"""The names a module gives its CA options, for the messages."""

# The options of containerd_hosts and registry_preflight that get the CA and check it (ca_file is their own).
ARGUMENT_SPEC = argument_spec(CA_SETTINGS)
# containerd_hosts's own: check the CA at ca_file without writing it.
HOSTS_ARGUMENT_SPEC = argument_spec(HOSTS_CA_SETTINGS)
CA_FIELDS = CaFields(*CA_OPTIONS)

Ca = namedtuple("Ca", ["text", "source", "certificates", "warnings", "before"])
"""A CA that passed every check: its PEM text, where it came from (for messages), its certificates,
the warnings to show, and the bytes of its file (None when there is none, or no file was named)."""


class CaError(Exception):
    """A CA that must not be used. str() names the option and says what is wrong; status is an HTTP status."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _decode(data, source):
    if b"\x00" in data:
        raise CaError(f"{source}: not PEM: binary data (a DER certificate? convert it with openssl x509 -inform der)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CaError(f"{source}: not PEM: the text is not UTF-8") from None


def fetch(url, validate_certs=True, timeout=DEFAULT_TIMEOUT, field="url"):
    """The bytes url answers with HTTP 200: at most MAX_BYTES, all within timeout seconds."""
    try:
        url = fetch_url_scheme(url, field)
    except RegistrySettingError as error:
        raise CaError(str(error)) from None
    context = _http.tls_context(verify=validate_certs) if url.lower().startswith("https") else None
    try:
        response = _http.request("GET", url, timeout=timeout, max_bytes=MAX_BYTES, headers={"User-Agent": USER_AGENT},
                                 context=context, redirects=_http.ANY_ORIGIN)
    except _http.HttpTooLarge:
        raise CaError(f"{field}: {url} sent more than {MAX_BYTES} bytes; that is not a CA certificate") from None
    except _http.HttpTimeout as error:
        raise CaError(
            f"{field}: fetching {url} failed: no complete answer within {timeout} seconds ({error.reason})"
        ) from None
    except _http.HttpRedirectError as error:
        raise CaError(f"{field}: fetching {url} failed: {error.reason}", status=error.status) from None
    except _http.HttpError as error:
        raise CaError(f"{field}: fetching {url} failed: {error.reason}") from None
    if response.status != 200:
        raise CaError(
            f"{field}: fetching {url} failed: HTTP {response.status} ({response.reason})".replace(" ()", ""),
            status=response.status,
        )
    return response.body


def read_file(path, field="path"):
    """The bytes of the CA file at path (None when there is none); refuse what is not a regular file."""
    if os.path.lexists(path) and not os.path.isfile(path):
        raise CaError(f"{field}: {path} exists and is not a regular file")
    try:
        return load_file_if_exists(path, MAX_BYTES)
    except FileOperationError as error:
        raise CaError(f"{field}: {error}") from None


def _text(path, content, url, validate_certs, timeout, fields, before):
    """(source, text): where the CA came from (for messages) and its text, from content, url or the file's bytes."""
    if content is not None:
        return fields.content, content
    if url is not None:
        source = f"{fields.url}: {url}"
        return source, _decode(fetch(url, validate_certs, timeout, fields.url), source)
    source = f"{fields.path}: {path}"
    if before is None:
        raise CaError(f"{source} does not exist; give {fields.content} or {fields.url} to get the CA certificate")
    if len(before) > MAX_BYTES:
        raise CaError(f"{source} is larger than {MAX_BYTES} bytes; that is not a CA certificate")
    return source, _decode(before, source)


def get_ca(path=None, content=None, url=None, validate_certs=True, timeout=DEFAULT_TIMEOUT,
           warn_days=DEFAULT_WARN_DAYS, fields=CA_FIELDS, now=None, sha256=None):
    """Get the CA's PEM text from content, from url, or else from the file at path, and check it.

    Return a Ca; raise CaError, naming the option, for a CA that cannot be read, is not a PEM bundle
    of X.509 certificates, holds an expired one or, with sha256 (the pin: _ca_pin.check_sha256's fingerprints),
    is not exactly the pinned certificates. A CA from an http:// url without a pin gets a warning. A final
    newline is added to text that lacks one. Nothing is written.
    """
    before = None if path is None else read_file(path, fields.path)
    source, text = _text(path, content, url, validate_certs, timeout, fields, before)
    if text.strip() and not text.endswith("\n"):
        text += "\n"
    try:
        certificates = read_certificates(text)
    except PemError as error:
        raise CaError(f"{source}: {error}") from None
    errors, warnings = check_validity(certificates, now or datetime.datetime.now(UTC), warn_days)
    if errors:
        raise CaError(f"{source}: " + "; ".join(errors))
    mismatch = pin_mismatch(text, sha256, source)
    if mismatch:
        raise CaError(f"{fields.sha256}: {mismatch}")
    warnings = [f"{source}: {warning}" for warning in warnings]
    unpinned = None if url is None or sha256 else http_warning(url, fields.url, fields.sha256, validate_certs)
    return Ca(text, source, certificates, warnings + ([unpinned] if unpinned else []), before)


def check_pin_option(value, checked, field, ways):
    """A module's pin option: its fingerprints (_ca_pin.check_sha256), or None when not set. Raise
    RegistrySettingError, naming field, for a bad fingerprint, or for a pin when no CA is checked (checked false):
    ways are the module's options that give one."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # Ansible makes a list of one fingerprint given alone: name it without an index
    pins = check_sha256(value, field) if value is not None else []
    if pins and not checked:
        raise RegistrySettingError(field, f"pins a CA, and none is checked: give {', '.join(ways[:-1])} or {ways[-1]}")
    return pins or None


def check_readable(path, user, field):
    """Raise CaError unless user can read the file at path."""
    ok, reason = readable_by(path, user)
    if not ok:
        raise CaError(f"{field}: {reason}")


def checked_ca(path=None, content=None, url=None, validate_certs=True, readable_by=None, timeout=DEFAULT_TIMEOUT,
               warn_days=DEFAULT_WARN_DAYS, fields=CA_FIELDS, warn=None, sha256=None):
    """The CA of every module: got from content, url or the file at path and checked (get_ca()), then readable_by
    checked; raise CaError, naming the option, at the first check that fails. Nothing is written.

    readable_by, a user name: with content or url (a CA to write at path, mode 0644), whoever can enter the
    directories to path can read it, so they are what is checked; otherwise the file at path is.
    warn, when given, is called with each warning as soon as the CA passed its own checks. sha256: the pin.
    """
    ca = get_ca(path, content, url, validate_certs, timeout, warn_days, fields, sha256=sha256)
    for warning in ca.warnings if warn is not None else ():
        warn(warning)
    if readable_by is None:
        return ca
    if content is not None or url is not None:
        ok, reason = enterable_by(path, readable_by)
        if not ok:
            raise CaError(f"{fields.readable_by}: {reason}")
    else:
        check_readable(path, readable_by, fields.readable_by)
    return ca


def summary(ca, now=None):
    """What a module returns about a CA: the soonest-expiring certificate's validity and how many there are."""
    soonest = soonest_expiring(ca.certificates)
    return dict(
        not_before=format_time(soonest.not_before),
        not_after=format_time(soonest.not_after),
        days_left=days_left(soonest, now or datetime.datetime.now(UTC)),
        certificates=len(ca.certificates),
        sha256=fingerprints(ca.text),
    )
