# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the validity of PEM certificates, and check who can read a CA file.

Pure Python with no Ansible imports: the ca_certificate and registry_preflight
modules run it on the nodes, so it is standard library only and Python 3.8+.
The DER walk reads only what is needed (the validity and the subject's common
name) and refuses anything that is not shaped like an X.509 certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import grp
import os
import pwd
import re
import stat
from collections import namedtuple

UTC = datetime.timezone.utc  # noqa: UP017 (datetime.UTC needs Python 3.11; nodes run 3.8+)

# RFC 7468: "-----BEGIN LABEL-----" ... "-----END LABEL-----".
_BLOCK = re.compile(r"-----BEGIN ([^\r\n-]*)-----(.*?)-----END ([^\r\n-]*)-----", re.DOTALL)
_BEGIN = re.compile(r"-----BEGIN ")
_UTC_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z")
_GENERALIZED_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z")

# DER tags
_INTEGER, _BIT_STRING, _OID, _SEQUENCE, _SET = 0x02, 0x03, 0x06, 0x30, 0x31
_UTC_TIME_TAG, _GENERALIZED_TIME_TAG, _VERSION_TAG = 0x17, 0x18, 0xA0
_COMMON_NAME = bytes((0x55, 0x04, 0x03))  # 2.5.4.3
_STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}

CERTIFICATE_LABEL = "CERTIFICATE"

Certificate = namedtuple("Certificate", ["not_before", "not_after", "common_name"])
"""What this module reads from one certificate: two aware UTC datetimes and the subject CN (or None)."""


class PemError(ValueError):
    """The text is not a PEM bundle of X.509 certificates; the message says why."""


class _DerError(ValueError):
    pass


def _read_tlv(data, offset, end):
    """Return (tag, content start, content end) of the DER element at offset."""
    if offset + 2 > end:
        raise _DerError("the data ends inside an element header")
    tag, length = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise _DerError("unexpected high-number tag")
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise _DerError("unsupported length encoding")
        if offset + count > end:
            raise _DerError("the data ends inside an element length")
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    if offset + length > end:
        raise _DerError("an element is longer than the data (truncated?)")
    return tag, offset, offset + length


def _children(data, start, end):
    """Return [(tag, start, end)] of the elements between start and end."""
    children = []
    while start < end:
        tag, content_start, content_end = _read_tlv(data, start, end)
        children.append((tag, content_start, content_end))
        start = content_end
    return children


def _expect(element, tag, what):
    if element[0] != tag:
        raise _DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{element[0]:02x}")
    return element


def _parse_time(data, element, what):
    tag, start, end = element
    try:
        text = bytes(data[start:end]).decode("ascii")
    except UnicodeDecodeError:
        raise _DerError(f"{what} is not ASCII") from None
    if tag not in (_UTC_TIME_TAG, _GENERALIZED_TIME_TAG):
        raise _DerError(f"{what}: expected UTCTime or GeneralizedTime, found tag 0x{tag:02x}")
    match = (_UTC_TIME if tag == _UTC_TIME_TAG else _GENERALIZED_TIME).fullmatch(text)
    if not match:
        raise _DerError(f"{what}: {text!r} is not a DER time (YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ)")
    year, rest = int(match.group(1)), match.groups()[1:]
    if tag == _UTC_TIME_TAG:
        year += 1900 if year >= 50 else 2000  # RFC 5280 4.1.2.5.1
    try:
        return datetime.datetime(year, *(int(part) for part in rest), tzinfo=UTC)
    except ValueError as error:
        raise _DerError(f"{what}: {text!r} is not a valid date ({error})") from None


def _common_name(data, subject):
    """Return the first commonName of a Name, or None."""
    for rdn in _children(data, subject[1], subject[2]):
        if rdn[0] != _SET:
            continue
        for attribute in _children(data, rdn[1], rdn[2]):
            parts = _children(data, attribute[1], attribute[2]) if attribute[0] == _SEQUENCE else []
            if len(parts) == 2 and parts[0][0] == _OID and data[parts[0][1]:parts[0][2]] == _COMMON_NAME:
                codec = _STRING_CODECS.get(parts[1][0])
                if codec is None:
                    return None
                return bytes(data[parts[1][1]:parts[1][2]]).decode(codec, errors="replace")
    return None


def parse_der_certificate(der):
    """Return the Certificate read from one DER X.509 certificate; raise PemError when it is not one."""
    try:
        tag, start, end = _read_tlv(der, 0, len(der))
        if tag != _SEQUENCE:
            raise _DerError("it does not start with a SEQUENCE")
        if end != len(der):
            raise _DerError("there is data after the certificate")
        certificate = _children(der, start, end)
        if len(certificate) != 3:
            raise _DerError(f"a Certificate has 3 parts, this has {len(certificate)}")
        tbs = _expect(certificate[0], _SEQUENCE, "tbsCertificate")
        _expect(certificate[1], _SEQUENCE, "signatureAlgorithm")
        _expect(certificate[2], _BIT_STRING, "signatureValue")
        fields = _children(der, tbs[1], tbs[2])
        if fields and fields[0][0] == _VERSION_TAG:
            fields = fields[1:]
        if len(fields) < 6:
            raise _DerError("tbsCertificate is too short")
        _expect(fields[0], _INTEGER, "serialNumber")
        _expect(fields[1], _SEQUENCE, "signature")
        _expect(fields[2], _SEQUENCE, "issuer")
        validity = _children(der, *_expect(fields[3], _SEQUENCE, "validity")[1:])
        subject = _expect(fields[4], _SEQUENCE, "subject")
        _expect(fields[5], _SEQUENCE, "subjectPublicKeyInfo")
        if len(validity) != 2:
            raise _DerError(f"validity has 2 times, this has {len(validity)}")
        not_before = _parse_time(der, validity[0], "notBefore")
        not_after = _parse_time(der, validity[1], "notAfter")
        common_name = _common_name(der, subject)
    except _DerError as error:
        raise PemError(f"not an X.509 certificate ({error})") from None
    return Certificate(not_before, not_after, common_name)


def read_certificates(text):
    """Return [Certificate] for every PEM block of text, in order.

    Text outside the blocks (comments, openssl's subject= lines) is ignored,
    as containerd and OpenSSL do. Every block must be a CERTIFICATE: a private
    key or any other block in a CA file is refused.
    """
    if not isinstance(text, str):
        raise PemError(f"expected text, got {type(text).__name__}")
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        if _BEGIN.search(text):
            raise PemError("not PEM: a -----BEGIN line has no matching -----END line (truncated?)")
        raise PemError("not PEM: no -----BEGIN CERTIFICATE----- block found")
    if len(_BEGIN.findall(text)) != len(blocks):
        raise PemError("not PEM: a -----BEGIN line has no matching -----END line (truncated?)")
    certificates = []
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
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError) as error:
            raise PemError(f"{where}: invalid base64 ({error})") from None
        try:
            certificates.append(parse_der_certificate(der))
        except PemError as error:
            raise PemError(f"{where}: {error}") from None
    return certificates


def parse_pem_certificates(text):
    """Return [(not_before, not_after)] (aware UTC datetimes) for every certificate of a PEM text."""
    return [(certificate.not_before, certificate.not_after) for certificate in read_certificates(text)]


def format_time(moment):
    """ISO 8601 in UTC, with a Z: 2026-11-28T10:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(certificates, index):
    """Name one certificate of a bundle for a message."""
    name = certificates[index].common_name
    label = "the certificate" if len(certificates) == 1 else f"certificate {index + 1} of {len(certificates)}"
    return f"{label} (CN={name})" if name else label


def check_validity(certificates, now, warn_days):
    """Return (errors, warnings): expired certificates are errors; ones expiring within warn_days
    or not valid yet are warnings."""
    errors, warnings = [], []
    for index, certificate in enumerate(certificates):
        name = describe(certificates, index)
        if certificate.not_after <= now:
            errors.append(f"{name} expired on {format_time(certificate.not_after)}")
        elif certificate.not_after - now <= datetime.timedelta(days=warn_days):
            days = (certificate.not_after - now).days
            warnings.append(
                f"{name} expires on {format_time(certificate.not_after)}, in {days} day{'s' if days != 1 else ''}"
            )
        if certificate.not_before > now:
            warnings.append(f"{name} is not valid before {format_time(certificate.not_before)} (check the clock)")
    return errors, warnings


def soonest_expiring(certificates):
    return min(certificates, key=lambda certificate: certificate.not_after)


def days_left(certificate, now):
    """Whole days until the certificate expires (negative once expired)."""
    return (certificate.not_after - now).days


# --- who can read a file -------------------------------------------------


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _allowed(st_mode, st_uid, st_gid, uid, gids, bit):
    """Apply the owner/group/other classes as the kernel does: the first class that matches decides."""
    if uid == st_uid:
        return bool(st_mode & (bit << 6))
    if st_gid in gids:
        return bool(st_mode & (bit << 3))
    return bool(st_mode & bit)


def _describe_stat(st_mode, st_uid, st_gid):
    return f"mode {stat.S_IMODE(st_mode):04o}, owner {_user_name(st_uid)}:{_group_name(st_gid)}"


def _ancestors(path):
    """Directories from / down to path's parent."""
    directories = []
    directory = os.path.dirname(path)
    while True:
        directories.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return list(reversed(directories))


def readable_by(path, user, mode=None, uid=None, gid=None):
    """Return (True, reason) when user can read path, else (False, reason).

    Uses the permission bits and owners only (not POSIX ACLs or SELinux), as
    the kernel applies them to user and its groups, on the file and on every
    directory leading to it (through symlinks too). mode, uid and gid stand in
    for the file's own when given: the attributes it will have once written.
    Directories that do not exist yet count as searchable (they are created 0755).
    """
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return False, f"there is no user {user!r} on this node"
    if account.pw_uid == 0:
        return True, "root reads any file"
    user_id = account.pw_uid
    gids = set(os.getgrouplist(account.pw_name, account.pw_gid))

    path = os.path.abspath(path)
    directories = _ancestors(path)
    directories += [d for d in _ancestors(os.path.realpath(path)) if d not in directories]
    for directory in directories:
        try:
            info = os.stat(directory)
        except FileNotFoundError:
            continue
        except OSError as error:
            return False, f"cannot inspect {directory}: {error.strerror}"
        if not stat.S_ISDIR(info.st_mode):
            return False, f"{directory} is not a directory"
        if not _allowed(info.st_mode, info.st_uid, info.st_gid, user_id, gids, stat.S_IXOTH):
            return False, (
                f"{user!r} cannot enter directory {directory} "
                f"({_describe_stat(info.st_mode, info.st_uid, info.st_gid)}): it needs the x bit for that user"
            )

    try:
        info = os.stat(path)
        st_mode, st_uid, st_gid = info.st_mode, info.st_uid, info.st_gid
        if not stat.S_ISREG(st_mode):
            return False, f"{path} is not a regular file"
    except FileNotFoundError:
        if mode is None:
            return False, f"{path} does not exist"
        st_mode, st_uid, st_gid = stat.S_IFREG, os.geteuid(), os.getegid()
    if mode is not None:
        st_mode = stat.S_IFMT(st_mode) | stat.S_IMODE(mode)
    st_uid = st_uid if uid is None else uid
    st_gid = st_gid if gid is None else gid
    if not _allowed(st_mode, st_uid, st_gid, user_id, gids, stat.S_IROTH):
        return False, f"{user!r} cannot read {path} ({_describe_stat(st_mode, st_uid, st_gid)})"
    return True, f"{user!r} can read {path} ({_describe_stat(st_mode, st_uid, st_gid)})"
