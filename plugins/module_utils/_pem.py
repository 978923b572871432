# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the certificates of a PEM bundle with the standard library's ssl module.

Pure Python with no Ansible imports: the node-side modules run it, so it is standard
library only and Python 3.8+.

The checks on the PEM text are ours: only CERTIFICATE blocks (never a private key or a
request), no PEM headers, valid base64, a size limit. OpenSSL, through
ssl.SSLContext.load_verify_locations, parses each certificate, and get_ca_certs() gives its
subject and validity. get_ca_certs() lists only what OpenSSL counts as a CA (basicConstraints
CA:TRUE, keyCertSign, or a self-signed v1 certificate), while a CA file may also hold a server
certificate trusted as itself, as containerd accepts it: OpenSSL has parsed such a certificate,
but the standard library does not say its validity or subject, so its expiry is not checked
(its dates are None, and check_validity says so in a warning).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import re
import ssl
import tempfile
from collections import namedtuple

UTC = datetime.timezone.utc  # noqa: UP017 (datetime.UTC needs Python 3.11; nodes run 3.8+)

MAX_BYTES = 1024 * 1024  # a CA bundle is a few kilobytes; refuse anything absurd
CERTIFICATE_LABEL = "CERTIFICATE"
# The private key blocks containerd reads (Go's tls.X509KeyPair): PKCS #8, PKCS #1 (RSA) and SEC 1 (EC), unencrypted.
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")

# RFC 7468: "-----BEGIN LABEL-----" ... "-----END LABEL-----".
_BLOCK = re.compile(r"-----BEGIN ([^\r\n-]*)-----(.*?)-----END ([^\r\n-]*)-----", re.DOTALL)
_BEGIN = re.compile(r"-----BEGIN ")
_END = re.compile(r"-----END ")
_PRIVATE_KEY = re.compile(r"PRIVATE\s*KEY", re.IGNORECASE)
# A line of base64 data outside the blocks: a key or certificate whose armour is broken. Long words (no digit, + or /)
# and openssl's text (spaces, colons) are not.
_BASE64_LINE = re.compile(r"(?=[^\r\n]*[0-9+/])[A-Za-z0-9+/]{16,}={0,2}")
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")

Certificate = namedtuple("Certificate", ["not_before", "not_after", "common_name"])
"""What this module reads from one certificate: two aware UTC datetimes and the subject CN (or None).

All three are None for a certificate OpenSSL does not count as a CA (its expiry is not checked)."""
UNCHECKED = Certificate(None, None, None)


class PemError(ValueError):
    """The text is not a PEM bundle of X.509 certificates; the message says why."""


def _ssl_time(text):
    return datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)


def parse_der_certificate(der):
    """Return the Certificate read from one DER X.509 certificate (UNCHECKED when OpenSSL does not count it as a
    CA); raise PemError when it is not one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=bytes(der))
    except ssl.SSLError as error:
        reason = _SSL_SOURCE.sub("", str(error.args[-1]))
        raise PemError(f"not an X.509 certificate (OpenSSL: {reason})") from None
    listed = context.get_ca_certs()
    if not listed:
        return UNCHECKED
    subject = [value for rdn in listed[0]["subject"] for name, value in rdn if name == "commonName"]
    return Certificate(_ssl_time(listed[0]["notBefore"]), _ssl_time(listed[0]["notAfter"]),
                       subject[0] if subject else None)


def _check_armour(text, blocks):
    """Refuse unmatched armour lines, and what would put a private key with broken armour into a certificate
    file: the words PRIVATE KEY or base64 outside the blocks. Never quotes the text."""
    if len(_BEGIN.findall(text)) != len(blocks):
        raise PemError("not PEM: a -----BEGIN line has no matching -----END line (truncated?)")
    if len(_END.findall(text)) != len(blocks):
        raise PemError("not PEM: an -----END line has no matching -----BEGIN line")
    outside = _BLOCK.sub("\n", text)
    if _PRIVATE_KEY.search(outside):
        raise PemError("holds the words PRIVATE KEY outside the PEM blocks: never put a private key in certificate"
                       " text")
    if any(_BASE64_LINE.fullmatch(line.strip()) for line in outside.splitlines()):
        raise PemError("holds base64 outside the PEM blocks (a key or certificate with broken armour?)")


def _certificate_blocks(text):
    """Return [(where, DER bytes)] of the CERTIFICATE blocks of text; raise PemError as read_certificates does."""
    if not isinstance(text, str):
        raise PemError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_BYTES:
        raise PemError(f"larger than {MAX_BYTES} bytes; that is not a CA certificate")
    blocks = list(_BLOCK.finditer(text))
    if not blocks and not _BEGIN.search(text) and not _END.search(text) and not _PRIVATE_KEY.search(text):
        raise PemError("not PEM: no -----BEGIN CERTIFICATE----- block found")
    _check_armour(text, blocks)
    ders = []
    for number, block in enumerate(blocks, 1):
        where = f"PEM block {number}" if len(blocks) > 1 else "the PEM block"
        label, body, end_label = block.group(1), block.group(2), block.group(3)
        if label != end_label:
            raise PemError(f"{where}: BEGIN {label} does not match END {end_label}")
        if label != CERTIFICATE_LABEL:
            hint = " (never put a private key in a CA file)" if "PRIVATE KEY" in label else ""
            raise PemError(f"{where} is a {label}, not a CERTIFICATE{hint}")
        if ":" in body:
            raise PemError(f"{where}: PEM headers are not supported in a certificate")
        try:
            ders.append((where, base64.b64decode("".join(body.split()), validate=True)))
        except (binascii.Error, ValueError) as error:
            raise PemError(f"{where}: invalid base64 ({error})") from None
    return ders


def read_certificates(text):
    """Return [Certificate] for every PEM block of text, in order.

    Text outside the blocks (comments, openssl's subject= lines) is ignored,
    as containerd and OpenSSL do, but not base64 there, an END line without its
    BEGIN line or the words PRIVATE KEY: a key with broken armour. Every block
    must be a CERTIFICATE: a private key or any other block in a CA file is refused.
    """
    certificates = []
    for where, der in _certificate_blocks(text):
        try:
            certificates.append(parse_der_certificate(der))
        except PemError as error:
            raise PemError(f"{where}: {error}") from None
    return certificates


def der_certificates(text):
    """Return the DER bytes of every certificate of a PEM text, in order (what a fingerprint is taken of); raise
    PemError as read_certificates does, without parsing the certificates."""
    return [der for _where, der in _certificate_blocks(text)]


def parse_pem_certificates(text):
    """Return [(not_before, not_after)] (aware UTC datetimes) for every certificate of a PEM text."""
    return [(certificate.not_before, certificate.not_after) for certificate in read_certificates(text)]


def format_time(moment):
    """ISO 8601 in UTC, with a Z: 2026-11-28T10:00:00Z; None for None (a date not read)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(certificates, index):
    """Name one certificate of a bundle for a message."""
    name = certificates[index].common_name
    label = "the certificate" if len(certificates) == 1 else f"certificate {index + 1} of {len(certificates)}"
    return f"{label} (CN={name})" if name else label


def check_validity(certificates, now, warn_days):
    """Return (errors, warnings): expired certificates are errors; ones expiring within warn_days,
    not valid yet, or whose expiry cannot be read (not a CA) are warnings."""
    errors, warnings = [], []
    for index, certificate in enumerate(certificates):
        name = describe(certificates, index)
        if certificate.not_after is None:
            warnings.append(f"{name} is not a CA certificate: expiry not checked")
        elif certificate.not_after <= now:
            errors.append(f"{name} expired on {format_time(certificate.not_after)}")
        elif certificate.not_after - now <= datetime.timedelta(days=warn_days):
            days = (certificate.not_after - now).days
            warnings.append(
                f"{name} expires on {format_time(certificate.not_after)}, in {days} day{'s' if days != 1 else ''}"
            )
        if certificate.not_before is not None and certificate.not_before > now:
            warnings.append(f"{name} is not valid before {format_time(certificate.not_before)} (check the clock)")
    return errors, warnings


def soonest_expiring(certificates):
    """The certificate that expires first, of those whose expiry is checked; UNCHECKED when there is none."""
    checked = [certificate for certificate in certificates if certificate.not_after is not None]
    return min(checked, key=lambda certificate: certificate.not_after) if checked else UNCHECKED


def days_left(certificate, now):
    """Whole days until the certificate expires (negative once expired); None when its expiry is not checked."""
    return None if certificate.not_after is None else (certificate.not_after - now).days


def check_private_key(text):
    """Raise PemError unless text holds exactly one unencrypted PEM private key block containerd reads.

    Only its shape is checked here (load_key_pair parses it); no message quotes the text: it is a secret.
    """
    if not isinstance(text, str):
        raise PemError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_BYTES:
        raise PemError(f"larger than {MAX_BYTES} bytes; that is not a private key")
    blocks = list(_BLOCK.finditer(text))
    if len(_BEGIN.findall(text)) != len(blocks):
        raise PemError("not PEM: a -----BEGIN line has no matching -----END line (truncated?)")
    if len(blocks) != 1:
        found = f"{len(blocks)} PEM blocks" if blocks else "no PEM block"
        raise PemError(f"must hold one -----BEGIN PRIVATE KEY----- block, found {found}")
    label, body, end_label = blocks[0].group(1), blocks[0].group(2), blocks[0].group(3)
    if label != end_label:
        raise PemError(f"BEGIN {label} does not match END {end_label}")
    if "ENCRYPTED" in label or "ENCRYPTED" in body:
        raise PemError("the key is encrypted, and containerd reads only unencrypted keys (decrypt it: openssl pkey)")
    if label not in PRIVATE_KEY_LABELS:
        raise PemError(f"is a {label} block, not a private key ({', '.join(PRIVATE_KEY_LABELS)})")
    try:
        base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PemError("the key is not valid base64") from None


def _no_passphrase():
    # never OpenSSL's own prompt on a terminal; check_private_key refuses encrypted keys before this is needed
    raise ValueError("encrypted keys are not supported")


def load_key_files(context, certificate_path, key_path):
    """Load a client certificate and its private key from PEM files into context (ssl.SSLContext).

    Raise PemError when they cannot be read or the key does not belong to the certificate; never quotes the key.
    """
    try:
        context.load_cert_chain(certificate_path, key_path, password=_no_passphrase)
    except ssl.SSLError as error:
        reason = _SSL_SOURCE.sub("", str(error.args[-1] if error.args else error))
        # KEY_VALUES_MISMATCH: another key of the same type; NO_CERTIFICATE_ASSIGNED: a key of another type
        if error.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
            raise PemError(f"the key does not belong to the certificate (OpenSSL: {reason})") from None
        raise PemError(f"OpenSSL cannot load the certificate and key ({reason})") from None
    except ValueError:
        raise PemError("the key is encrypted, and containerd reads only unencrypted keys") from None
    except OSError as error:
        raise PemError(f"cannot read {error.filename or 'the certificate or key'}: {error.strerror}") from None


def load_key_pair(context, certificate, key):
    """Load a client certificate (PEM text, the chain after it) and its private key (PEM text) into context.

    ssl reads them from files only: they are written to a private directory (0700, the files 0600) that is
    removed before this returns. Raise PemError as load_key_files does.
    """
    check_private_key(key)
    with tempfile.TemporaryDirectory(prefix="kubenode-tls-") as directory:
        paths = []
        for name, text in (("client.crt", certificate), ("client.key", key)):
            path = os.path.join(directory, name)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            paths.append(path)
        load_key_files(context, *paths)


def check_key_pair(certificate, key):
    """Raise PemError unless the key (PEM text) belongs to the client certificate (PEM text), as OpenSSL decides."""
    load_key_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), certificate, key)
