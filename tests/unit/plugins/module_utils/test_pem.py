"""_pem: PEM certificates read with the ssl module, checked against what the openssl CLI says about them."""

from __future__ import annotations

import base64
import datetime
import os
import ssl
import subprocess

import pytest
from fakes import tls_registry as fake

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _pem

UTC = datetime.timezone.utc  # noqa: UP017 (the module under test uses the same spelling)


def openssl_date(pem_path, which):
    """notBefore/notAfter as openssl x509 prints it, as an aware datetime."""
    out = fake.openssl("x509", "-in", pem_path, "-noout", f"-{which}date", cwd=pem_path.parent).strip()
    value = " ".join(out.split("=", 1)[1].split())  # "Dec  8 02:40:59 2026 GMT" -> single spaces
    return datetime.datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)


def openssl_time_types(pem_path):
    """The ASN.1 types of the validity times, as openssl asn1parse names them."""
    out = fake.openssl("asn1parse", "-in", pem_path, cwd=pem_path.parent)
    return [line.split(":")[2].strip() for line in out.splitlines() if "TIME" in line]


def der_of(pem_path, kind="x509", *extra):
    out = pem_path.parent / (pem_path.name + f".{kind}.der")
    fake.openssl(kind, "-in", pem_path, *extra, "-outform", "der", "-out", out, cwd=pem_path.parent)
    return out.read_bytes()


def pem_block(label, der):
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"


# --- valid certificates --------------------------------------------------


@pytest.mark.parametrize("name", ["ca", "other_ca", "expiring_ca", "expired_ca", "long_ca"])  # server: UNCHECKED
def test_validity_matches_openssl(pki, name):
    path = getattr(pki, name)
    (validity,) = _pem.parse_pem_certificates(path.read_text())
    assert validity == (openssl_date(path, "start"), openssl_date(path, "end"))
    assert validity[0].tzinfo is not None and validity[0].utcoffset() == datetime.timedelta(0)


def test_utctime_and_generalizedtime(pki):
    # openssl encodes dates up to 2049 as UTCTime and later ones as GeneralizedTime (RFC 5280)
    assert openssl_time_types(pki.ca) == ["UTCTIME", "UTCTIME"]
    assert openssl_time_types(pki.long_ca) == ["UTCTIME", "GENERALIZEDTIME"]
    ((not_before, not_after),) = _pem.parse_pem_certificates(pki.long_ca.read_text())
    assert not_after == openssl_date(pki.long_ca, "end")
    assert not_after.year >= 2100


@pytest.mark.parametrize("utc_time", ["990101000000Z", "500615120000Z", "491231235959Z", "000229000000Z"])
def test_utctime_century(pki, utc_time):
    """RFC 5280: UTCTime YY >= 50 is 19YY, below is 20YY; openssl reads the patched certificate the same way."""
    der = der_of(pki.ca)
    start = openssl_date(pki.ca, "start").strftime("%y%m%d%H%M%SZ").encode("ascii")
    patched = der.replace(b"\x17\x0d" + start, b"\x17\x0d" + utc_time.encode("ascii"), 1)
    assert patched != der
    path = pki.directory / f"patched-{utc_time}.pem"
    path.write_text(pem_block("CERTIFICATE", patched))  # the signature no longer matches; nobody checks it here
    ((not_before, _not_after),) = _pem.parse_pem_certificates(path.read_text())
    assert not_before == openssl_date(path, "start")


def test_bundle_of_two_in_order_with_text_around(pki):
    text = (
        f"# mirror CA bundle\nsubject=CN = {fake.CA_NAME}\n{pki.ca.read_text()}\n"
        f"subject=CN = {fake.OTHER_CA_NAME}\n{pki.other_ca.read_text()}trailing words\n"
    )
    assert _pem.parse_pem_certificates(text) == [
        (openssl_date(pki.ca, "start"), openssl_date(pki.ca, "end")),
        (openssl_date(pki.other_ca, "start"), openssl_date(pki.other_ca, "end")),
    ]
    names = [certificate.common_name for certificate in _pem.read_certificates(text)]
    assert names == [fake.CA_NAME, fake.OTHER_CA_NAME]


def test_crlf_line_endings(pki):
    text = pki.ca.read_text().replace("\n", "\r\n")
    assert _pem.parse_pem_certificates(text) == [(openssl_date(pki.ca, "start"), openssl_date(pki.ca, "end"))]


def test_a_server_certificate_is_read_with_its_expiry_not_checked(pki):
    """A CA file may hold a server certificate trusted as itself: OpenSSL parses it, its dates are not read."""
    (certificate,) = _pem.read_certificates(pki.server.read_text())
    assert certificate == _pem.UNCHECKED == (None, None, None)


# --- what is not a certificate -------------------------------------------


def _truncated_base64(pki):
    """The CA's PEM with its base64 cut mid-quantum: invalid padding."""
    lines = pki.ca.read_text().splitlines()
    body = "".join(lines[1:-1])
    cut = len(body) // 2 // 4 * 4 + 1  # one character past a 4-character quantum
    return f"{lines[0]}\n{body[:cut]}\n{lines[-1]}\n"


def _truncated_der(pki):
    """The CA's PEM with its DER cut short on a base64 boundary: valid base64, truncated DER."""
    der = der_of(pki.ca)
    return pem_block("CERTIFICATE", der[: len(der) // 2 // 3 * 3])


CASES = {
    "garbage": (lambda pki: "this is not a certificate\n", "not PEM: no -----BEGIN CERTIFICATE----- block found"),
    "empty": (lambda pki: "", "not PEM: no -----BEGIN CERTIFICATE----- block found"),
    "private key": (lambda pki: pki.ca_key.read_text(), "is a PRIVATE KEY, not a CERTIFICATE"),
    "certificate request": (lambda pki: pki.ca_csr.read_text(), "is a CERTIFICATE REQUEST, not a CERTIFICATE"),
    "certificate then key": (
        lambda pki: pki.ca.read_text() + pki.ca_key.read_text(),
        "PEM block 2 is a PRIVATE KEY, not a CERTIFICATE (never put a private key in a CA file)",
    ),
    "truncated base64": (_truncated_base64, "invalid base64"),
    "truncated DER": (_truncated_der, "not an X.509 certificate (OpenSSL: "),
    "missing END line": (
        lambda pki: "\n".join(pki.ca.read_text().splitlines()[:-1]) + "\n",
        "-----BEGIN line has no matching -----END line",
    ),
    "second certificate cut": (
        lambda pki: pki.ca.read_text() + "\n".join(pki.other_ca.read_text().splitlines()[:3]) + "\n",
        "-----BEGIN line has no matching -----END line",
    ),
    "mismatched END": (
        lambda pki: pki.ca.read_text().replace("END CERTIFICATE", "END X509 CRL"),
        "BEGIN CERTIFICATE does not match END X509 CRL",
    ),
    "base64 of text": (
        lambda pki: pem_block("CERTIFICATE", b"hello, this is not DER at all"),
        "not an X.509 certificate",
    ),
    "public key DER labelled CERTIFICATE": (
        lambda pki: pem_block("CERTIFICATE", der_of(pki.ca_key, "pkey", "-pubout")),
        "not an X.509 certificate",
    ),
    "trailing data after the DER": (
        lambda pki: pem_block("CERTIFICATE", der_of(pki.ca) + b"\x00\x00"),
        "not an X.509 certificate (OpenSSL: ",
    ),
    "PEM headers": (
        lambda pki: pki.ca.read_text().replace("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1),
        "PEM headers are not supported",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_not_a_certificate_is_refused(pki, case):
    make_text, message = CASES[case]
    with pytest.raises(_pem.PemError) as raised:
        _pem.parse_pem_certificates(make_text(pki))
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_bytes_are_refused(pki):
    with pytest.raises(_pem.PemError, match="expected text"):
        _pem.read_certificates(pki.ca.read_bytes())


def test_der_parser_reads_what_openssl_wrote(pki):
    certificate = _pem.parse_der_certificate(der_of(pki.expiring_ca))
    assert certificate.not_after == openssl_date(pki.expiring_ca, "end")
    assert certificate.common_name == "kubenode expiring CA"


def _v1_certificate(pki, name, signer=None):
    """A version 1 certificate (no extensions), self-signed or signed by pki.ca."""
    if not (pki.directory / f"{name}.pem").exists():
        fake.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=pki.directory)
        signing = ("-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "7") if signer else ("-signkey", f"{name}.key")
        fake.openssl("x509", "-req", "-in", f"{name}.csr", *signing, "-days", "5", "-out", f"{name}.pem",
                     cwd=pki.directory)
    return pki.directory / f"{name}.pem"


def _listed_by_get_ca_certs(path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=path.read_text())
    return len(context.get_ca_certs())


@pytest.mark.parametrize(("name", "signer", "listed"), [
    ("ca", None, 1),  # CA:TRUE
    ("server", None, 0),  # CA:FALSE: a server certificate trusted as itself
    ("v1-self-signed", None, 1),  # OpenSSL counts a self-signed v1 certificate as a CA
    ("v1-signed", "ca", 0),  # a v1 certificate signed by another is not one
])
def test_what_get_ca_certs_lists_is_read_and_the_rest_is_unchecked(pki, name, signer, listed):
    """get_ca_certs() leaves out the certificates OpenSSL does not count as CAs: they are accepted, unchecked."""
    path = getattr(pki, name) if name in ("ca", "server") else _v1_certificate(pki, name, signer)
    assert _listed_by_get_ca_certs(path) == listed
    (certificate,) = _pem.read_certificates(path.read_text())
    if not listed:
        assert certificate == _pem.UNCHECKED
        return
    assert (certificate.not_before, certificate.not_after) == (openssl_date(path, "start"), openssl_date(path, "end"))
    assert certificate.common_name == (fake.CA_NAME if name == "ca" else name)


def test_a_bundle_larger_than_the_limit_is_refused(pki):
    text = pki.ca.read_text()
    with pytest.raises(_pem.PemError, match=f"larger than {_pem.MAX_BYTES} bytes"):
        _pem.read_certificates(text * (_pem.MAX_BYTES // len(text) + 1))


# --- expiry --------------------------------------------------------------


def test_check_validity(pki):
    now = datetime.datetime.now(UTC)
    good, expiring, expired = (
        _pem.read_certificates(path.read_text()) for path in (pki.ca, pki.expiring_ca, pki.expired_ca)
    )
    assert _pem.check_validity(good, now, 7) == ([], [])
    errors, warnings = _pem.check_validity(good + expiring, now, 30)
    assert errors == []
    assert len(warnings) == 1  # the 90-day CA is outside 30 days, the 10-day one inside
    assert warnings[0].startswith("certificate 2 of 2 (CN=kubenode expiring CA) expires on ")
    end = openssl_date(pki.expiring_ca, "end").strftime("%Y-%m-%dT%H:%M:%SZ")
    assert end in warnings[0]
    assert len(_pem.check_validity(good + expiring, now, 100)[1]) == 2
    errors, warnings = _pem.check_validity(expired, now, 30)
    assert errors == [
        f"the certificate (CN=kubenode expired CA) expired on {openssl_date(pki.expired_ca, 'end'):%Y-%m-%dT%H:%M:%SZ}"
    ]
    assert _pem.days_left(_pem.soonest_expiring(good + expiring), now) in (9, 10)
    assert _pem.days_left(expired[0], now) < 0


@pytest.mark.parametrize(
    ("names", "errors", "warnings", "soonest"),
    [
        (["server"], [], ["the certificate is not a CA certificate: expiry not checked"], None),
        (["ca", "server"], [], ["certificate 2 of 2 is not a CA certificate: expiry not checked"], "ca"),
        (["server", "expired_ca"], ["certificate 2 of 2 (CN=kubenode expired CA) expired on "],
         ["certificate 1 of 2 is not a CA certificate: expiry not checked"], "expired_ca"),
    ],
)
def test_expiry_not_checked_is_a_warning_with_null_dates(pki, names, errors, warnings, soonest):
    certificates = [_pem.read_certificates(getattr(pki, name).read_text())[0] for name in names]
    now = datetime.datetime.now(UTC)
    found_errors, found_warnings = _pem.check_validity(certificates, now, 7)
    assert len(found_errors) == len(errors)
    assert all(error.startswith(expected) for error, expected in zip(found_errors, errors, strict=True))
    assert found_warnings == warnings
    first = _pem.soonest_expiring(certificates)
    if soonest is None:
        assert first == _pem.UNCHECKED
        assert (_pem.days_left(first, now), _pem.format_time(first.not_after)) == (None, None)
    else:
        assert first.not_after == openssl_date(getattr(pki, soonest), "end")
        assert isinstance(_pem.days_left(first, now), int)


def test_not_yet_valid_is_a_warning(pki):
    certificates = _pem.read_certificates(pki.ca.read_text())
    before_start = openssl_date(pki.ca, "start") - datetime.timedelta(hours=1)
    errors, warnings = _pem.check_validity(certificates, before_start, 1)
    assert errors == [] and "is not valid before" in warnings[0]


def test_openssl_agrees_that_the_material_is_what_we_think(pki):
    # guards the fixtures themselves: the server cert verifies against ca and not against other_ca
    def verify(ca):
        command = ["openssl", "verify", "-CAfile", str(ca), str(pki.server)]
        return subprocess.run(command, capture_output=True, check=False).returncode

    assert verify(pki.ca) == 0 and verify(pki.other_ca) != 0


# --- a client certificate and its key -----------------------------------------------------------------------------

MARKER_LINE = "# Managed by kubenode.registry_mirror; local changes are overwritten.\n"


@pytest.mark.parametrize("marked", [False, True], ids=["as given", "after our marker line"])
def test_a_key_that_belongs_to_its_certificate_loads(pki, marked):
    prefix = MARKER_LINE if marked else ""
    _pem.check_key_pair(prefix + pki.client.read_text(), prefix + pki.client_key.read_text())


def test_a_marker_line_before_the_pem_block_is_read_by_openssl_too(pki, tmp_path):
    marked = tmp_path / "marked.crt"
    marked.write_text(MARKER_LINE + pki.ca.read_text())
    assert fake.openssl("x509", "-in", marked, "-noout", "-subject", cwd=tmp_path).strip().endswith(fake.CA_NAME)
    assert ssl.create_default_context(cafile=str(marked)).get_ca_certs()[0]["serialNumber"]


def _rsa_key(pki, *options):
    path = pki.directory / f"rsa{''.join(options)}.key"
    if not path.exists():
        fake.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "plain.key",
                     cwd=pki.directory)
        fake.openssl("pkey", "-in", "plain.key", *options, "-out", path.name, cwd=pki.directory)
    return path.read_text()


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        (lambda pki: pki.other_client_key.read_text(), "the key does not belong to the certificate (OpenSSL: "),
        (_rsa_key, "the key does not belong to the certificate"),  # another key type
        (lambda pki: _rsa_key(pki, "-aes128", "-passout", "pass:x"), "the key is encrypted"),
        (lambda pki: pki.client.read_text(), "is a CERTIFICATE block, not a private key"),
        (lambda pki: "no key here", "found no PEM block"),
        (lambda pki: pki.client_key.read_text().replace("-----END", "-----ENDX", 1), "no matching -----END"),
        (lambda pki: pki.client_key.read_text().replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\n!!", 1),
         "not valid base64"),
    ],
    ids=["another key", "another key type", "encrypted", "a certificate", "not PEM", "truncated", "bad base64"],
)
def test_a_key_that_does_not_load_is_refused_without_being_quoted(pki, key, fragment):
    text = key(pki)
    with pytest.raises(_pem.PemError) as raised:
        _pem.check_key_pair(pki.client.read_text(), text)
    assert fragment in str(raised.value)
    assert all(line not in str(raised.value) for line in text.splitlines()[1:-1] if len(line) > 8)


def test_the_key_files_live_in_a_private_directory_removed_afterwards(pki, monkeypatch, tmp_path):
    monkeypatch.setattr(_pem.tempfile, "tempdir", str(tmp_path))
    seen = {}
    original = ssl.SSLContext.load_cert_chain

    def load_cert_chain(context, certfile, keyfile=None, password=None):
        seen.update(directory=oct(os.stat(os.path.dirname(keyfile)).st_mode & 0o777),
                    key=oct(os.stat(keyfile).st_mode & 0o777), cert=oct(os.stat(certfile).st_mode & 0o777))
        return original(context, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", load_cert_chain)
    _pem.check_key_pair(pki.client.read_text(), pki.client_key.read_text())
    assert seen == {"directory": "0o700", "key": "0o600", "cert": "0o600"}
    assert list(tmp_path.iterdir()) == []
