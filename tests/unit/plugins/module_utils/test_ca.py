"""_ca: one definition of how a CA is got (text, URL, file) and checked, in each module's own option names."""

from __future__ import annotations

import datetime

import pytest
from fakes import tls_registry as fake

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _ca
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import MAX_BYTES

UTC = datetime.timezone.utc  # noqa: UP017 (the module under test uses the same spelling)
MODULE_FIELDS = _ca.CaFields("path", "content", "url", "readable_by", "sha256")


@pytest.fixture(scope="module")
def files(pki):
    served = {
        "ca.pem": pki.ca.read_bytes().rstrip(b"\n"),
        "der.crt": b"0\x82\x01\x00\x00",
        "big.pem": b"x" * (MAX_BYTES + 1),
    }
    with fake.FileServer(served) as server:
        yield server


@pytest.mark.parametrize("fields", [_ca.CA_FIELDS, MODULE_FIELDS])
def test_from_content_url_and_file(pki, files, tmp_path, fields):
    on_node = tmp_path / "ca.crt"
    on_node.write_bytes(pki.other_ca.read_bytes())
    pem = pki.ca.read_text()
    from_content = _ca.get_ca(str(on_node), content=pem.rstrip("\n"), fields=fields)
    from_url = _ca.get_ca(str(on_node), url=f"{files.url}/ca.pem", fields=fields)
    from_file = _ca.get_ca(str(on_node), fields=fields)
    assert from_content.text == from_url.text == pem  # a final newline is added
    assert from_content.source == fields.content
    assert from_url.source == f"{fields.url}: {files.url}/ca.pem"
    assert from_file.text == pki.other_ca.read_text() and from_file.source == f"{fields.path}: {on_node}"
    for ca in (from_content, from_url, from_file):
        assert ca.before == pki.other_ca.read_bytes()
    assert [c.common_name for c in from_content.certificates] == [fake.CA_NAME]
    assert _ca.get_ca(content=pem).before is None  # no file named: none read
    summary = _ca.summary(from_content)
    assert summary["certificates"] == 1 and summary["days_left"] in (89, 90)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing file", "ca_file: {tmp}/missing.crt does not exist; give ca_content or ca_url to get the CA"),
        ("directory", "ca_file: {tmp} exists and is not a regular file"),
        ("expired", "ca_content: the certificate (CN=kubenode expired CA) expired on "),
        ("private key", "ca_content: the PEM block is a PRIVATE KEY, not a CERTIFICATE"),
        ("404", "ca_url: fetching {url}/missing.pem failed: HTTP 404"),
        ("DER", "ca_url: {url}/der.crt: not PEM: binary data"),
        ("too large", f"ca_url: {{url}}/big.pem sent more than {MAX_BYTES} bytes"),
        ("not http", "ca_url: 'file:///etc/passwd' must be an http:// or https:// URL"),
    ],
)
def test_what_is_refused_names_the_option(pki, files, tmp_path, case, message):
    arguments = {
        "missing file": {"path": str(tmp_path / "missing.crt")},
        "directory": {"path": str(tmp_path)},
        "expired": {"content": pki.expired_ca.read_text()},
        "private key": {"content": pki.ca_key.read_text()},
        "404": {"url": f"{files.url}/missing.pem"},
        "DER": {"url": f"{files.url}/der.crt"},
        "too large": {"url": f"{files.url}/big.pem"},
        "not http": {"url": "file:///etc/passwd"},
    }[case]
    with pytest.raises(_ca.CaError) as raised:
        _ca.get_ca(**arguments)
    assert str(raised.value).startswith(message.format(tmp=tmp_path, url=files.url)), str(raised.value)
    assert "BEGIN" not in str(raised.value)  # a key is never echoed
    assert raised.value.status == (404 if case == "404" else None)


def test_expiring_soon_is_a_warning_naming_the_source(pki):
    ca = _ca.get_ca(content=pki.expiring_ca.read_text())
    assert len(ca.warnings) == 1
    assert ca.warnings[0].startswith("ca_content: the certificate (CN=kubenode expiring CA) expires on ")
    assert _ca.get_ca(content=pki.expiring_ca.read_text(), warn_days=5).warnings == []
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=11)
    with pytest.raises(_ca.CaError, match="expired on"):
        _ca.get_ca(content=pki.expiring_ca.read_text(), now=later)


def test_check_readable(tmp_path, pki):
    on_node = tmp_path / "ca.crt"
    on_node.write_bytes(pki.ca.read_bytes())
    _ca.check_readable(str(on_node), "root", "ca_readable_by")
    with pytest.raises(_ca.CaError, match="^ca_readable_by: there is no user 'kubenode-no-such-user'"):
        _ca.check_readable(str(on_node), "kubenode-no-such-user", "ca_readable_by")


@pytest.mark.parametrize(
    ("given", "user", "message"),
    [
        ("file", None, None),
        ("file", "root", None),
        ("content", "root", None),
        # a file to write: the directories leading to it are what is checked, and they name the user too
        ("content", "kubenode-no-such-user", "^readable_by: there is no user 'kubenode-no-such-user'"),
        ("file", "kubenode-no-such-user", "^readable_by: there is no user 'kubenode-no-such-user'"),
        ("missing", "root", "^path: .* does not exist"),  # the CA's own checks come first
    ],
)
def test_checked_ca(tmp_path, pki, given, user, message):
    on_node = tmp_path / "ca.crt"
    if given == "file":
        on_node.write_bytes(pki.expiring_ca.read_bytes())
    content = pki.expiring_ca.read_text() if given == "content" else None
    warned = []
    if message is not None:
        with pytest.raises(_ca.CaError, match=message):
            _ca.checked_ca(str(on_node), content, readable_by=user, fields=MODULE_FIELDS, warn=warned.append)
        return
    ca = _ca.checked_ca(str(on_node), content, readable_by=user, fields=MODULE_FIELDS, warn=warned.append)
    assert ca.text == pki.expiring_ca.read_text()
    assert warned == ca.warnings and len(warned) == 1  # warned as soon as the CA passed its own checks
    assert _ca.checked_ca(str(on_node), content, readable_by=user, fields=MODULE_FIELDS).warnings == ca.warnings
