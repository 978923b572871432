# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pinned CA: the SHA-256 fingerprints of its certificates, as operators copy them, and the one check of a pin.

Pure Python (3.8+, standard library) with no Ansible imports: the node-side modules run it. A fingerprint is the
SHA-256 of a certificate's DER bytes, as `openssl x509 -noout -fingerprint -sha256 -in ca.crt` prints it
(sha256 Fingerprint=AB:CD:...). A fingerprint is accepted as 64 hex digits, with or without a colon between
each pair of them, in any case, alone or as openssl's whole line; it is written back as openssl prints it
(upper case, colons). The check: every certificate of the CA text is pinned, and every pinned fingerprint is
one of its certificates, so the pin of a bundle lists each of its certificates, and nothing else.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import der_certificates
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    type_name,
)

HOW_TO_GET = "openssl x509 -noout -fingerprint -sha256 -in ca.crt"
# openssl's line: "sha256 Fingerprint=" (OpenSSL 3) or "SHA256 Fingerprint=" (1.1), then the colon form.
_OPENSSL_LINE = re.compile(r"sha-?256 fingerprint\s*=\s*", re.IGNORECASE)
_PLAIN = re.compile(r"[0-9a-fA-F]{64}")
_COLONS = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){31}")
# Other digests operators may copy by mistake, by their number of hex digits.
_OTHER_DIGESTS = {32: "MD5", 40: "SHA-1", 56: "SHA-224", 96: "SHA-384", 128: "SHA-512"}


def fingerprint(der):
    """The SHA-256 fingerprint of a DER certificate, as openssl prints it: AB:CD:... (upper case)."""
    digest = hashlib.sha256(bytes(der)).hexdigest().upper()
    return ":".join(digest[index:index + 2] for index in range(0, len(digest), 2))


def fingerprints(text):
    """The fingerprints of every certificate of a PEM text, in order (PemError as _pem.read_certificates)."""
    return [fingerprint(der) for der in der_certificates(text)]


def parse_fingerprint(value, field):
    """Return one SHA-256 fingerprint in openssl's form; raise RegistrySettingError, naming field, for anything else."""
    if not isinstance(value, str):
        raise RegistrySettingError(field, f"must be a SHA-256 fingerprint (a string), got {type_name(value)}")
    given = value.strip()
    digits = _OPENSSL_LINE.sub("", given, count=1) if _OPENSSL_LINE.match(given) else given
    if _PLAIN.fullmatch(digits):
        return ":".join(digits[index:index + 2] for index in range(0, 64, 2)).upper()
    if _COLONS.fullmatch(digits):
        return digits.upper()
    shown = repr(given) if len(given) <= 100 else repr(given[:100]) + "..."
    hex_digits = re.sub(r"[:\s]", "", digits)
    if re.fullmatch(r"[0-9a-fA-F]+", hex_digits) and len(hex_digits) in _OTHER_DIGESTS:
        problem = (f"{shown} looks like a {_OTHER_DIGESTS[len(hex_digits)]} fingerprint ({len(hex_digits)} hex "
                   "digits); give the SHA-256 one")
    else:
        problem = (f"{shown} is not a SHA-256 fingerprint: 64 hex digits, with or without a colon between each pair "
                   "(AB:CD:...), or openssl's line sha256 Fingerprint=AB:CD:...")
    raise RegistrySettingError(field, f"{problem}, as `{HOW_TO_GET}` prints it")


def check_sha256(value, field="ca_sha256"):
    """Return the pin: a list of fingerprints in openssl's form, from one fingerprint or a list of them (one for
    each certificate of a bundle); [] for "" or an empty list (nothing pinned). Raise RegistrySettingError, naming
    the setting (and the item: field[1]), for anything else, or a fingerprint listed twice."""
    if isinstance(value, str):
        return [parse_fingerprint(value, field)] if value else []
    if isinstance(value, bytes) or not isinstance(value, Sequence):
        raise RegistrySettingError(
            field, f"must be a SHA-256 fingerprint or a list of them, one for each certificate of the CA, got "
                   f"{type_name(value)}"
        )
    pins = []
    for index, item in enumerate(value):
        pin = parse_fingerprint(item, f"{field}[{index}]")
        if pin in pins:
            raise RegistrySettingError(f"{field}[{index}]", f"{pin} is listed twice")
        pins.append(pin)
    return pins


def pin_mismatch(text, pins, source):
    """Why the certificates of a PEM text (a CA that passed _pem.read_certificates) are not exactly the pinned
    ones; None when they are, or when nothing is pinned. The one check of a pin: every caller raises its own error
    with the name of the pin's setting before this message.

    The CA must hold a certificate for each pinned fingerprint and nothing else. The message names source (where
    the CA came from) and both the expected and the actual fingerprints.
    """
    if not pins:
        return None
    actual = fingerprints(text)
    if set(actual) == set(pins):  # a certificate given twice in a bundle is still the pinned one
        return None
    count = len(actual)
    problems = [f"certificate {index + 1} of {count} ({found}) is not pinned"
                for index, found in enumerate(actual) if found not in pins and count > 1]
    problems += [f"no certificate has the pinned {pin}" for pin in pins if pin not in actual and len(pins) > 1]
    detail = f" ({'; '.join(problems)})" if problems else ""
    return (f"{source} is not the pinned CA: expected the SHA-256 fingerprint{'s' if len(pins) > 1 else ''} "
            f"{', '.join(pins)}, got {', '.join(actual)}{detail}")


def http_warning(url, url_field, pin_field, validate_certs=True):
    """The warning for a CA fetched without a pin over plain http, or over https without verifying the server's
    certificate; None for an https URL whose server is verified."""
    if url.lower().startswith("http://"):
        how, fix = "over plain http", "or serve it over https"
    elif not validate_certs:
        how, fix = "over https without verifying the server's certificate", "or verify that certificate"
    else:
        return None
    return (f"{url_field}: the CA is fetched {how} from {url}: anyone on the path between the node and that "
            "server can hand the node a CA of their choosing, and containerd would then trust any mirror certificate "
            f"it signs; set {pin_field} to the CA's SHA-256 fingerprint (`{HOW_TO_GET}`) so that any other CA is "
            f"refused, {fix}")
