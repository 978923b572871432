"""_ca_pin: a CA's SHA-256 fingerprints as operators copy them, and the one check of a pin, where every CA is got."""

from __future__ import annotations

import pytest
from fakes import tls_registry as fake

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _ca, _ca_pin
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _settings as settings
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError

HEX = "5d1e8f440b7c19e2a36f90c4d8217b55e03a9c16b24f88d1076ec35a92f01ba0"
COLONS = ":".join(HEX[index:index + 2] for index in range(0, 64, 2)).upper()


def openssl_fingerprint(path):
    """What an operator copies: openssl's own line for the certificate at path, and the part after the =."""
    line = fake.openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", path, cwd=path.parent).strip()
    return line, line.partition("=")[2]


@pytest.fixture(scope="module")
def pins(pki):
    return {name: openssl_fingerprint(getattr(pki, name))[1] for name in ("ca", "other_ca", "long_ca", "server")}


@pytest.fixture(scope="module")
def files(pki):
    with fake.FileServer({"ca.pem": pki.ca.read_bytes()}) as server:
        yield server


# --- the forms a fingerprint is given in ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ca", "other_ca", "long_ca", "server"])
def test_the_fingerprint_is_the_one_openssl_prints(pki, name):
    line, printed = openssl_fingerprint(getattr(pki, name))
    assert _ca_pin.fingerprints(getattr(pki, name).read_text()) == [printed]
    assert _ca_pin.parse_fingerprint(line, "f") == printed  # openssl's whole line, as copied


@pytest.mark.parametrize(
    "given",
    [HEX, HEX.upper(), COLONS, COLONS.lower(), f"sha256 Fingerprint={COLONS}", f"SHA256 Fingerprint={COLONS}",
     f"SHA256 Fingerprint={HEX}", f"  {COLONS}\n", f"sha256 fingerprint = {HEX}"],
    ids=["hex", "HEX", "colons", "colons-lower", "openssl-3-line", "openssl-1.1-line", "line-hex", "spaces",
         "line-spaced"],
)
def test_accepted_forms_are_written_as_openssl_prints_them(given):
    assert _ca_pin.parse_fingerprint(given, "ca_sha256") == COLONS
    assert _ca_pin.check_sha256(given) == [COLONS]


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        (HEX[:-1], "is not a SHA-256 fingerprint: 64 hex digits"),
        (HEX + "0", "is not a SHA-256 fingerprint"),
        (HEX[:40], "looks like a SHA-1 fingerprint (40 hex digits); give the SHA-256 one"),
        (COLONS[:47], "looks like a MD5 fingerprint (32 hex digits)"),
        (HEX[:-2] + "zz", "is not a SHA-256 fingerprint"),
        (COLONS.replace(":", "", 1), "is not a SHA-256 fingerprint"),  # a pair of pairs: not openssl's form
        (COLONS.replace(":", "-"), "is not a SHA-256 fingerprint"),
        (f"sha1 Fingerprint={COLONS}", "is not a SHA-256 fingerprint"),
        (f"sha256:{HEX}", "is not a SHA-256 fingerprint"),
        ("x" * 300, "'xxxxxxxx"),  # quoted, cut short
    ],
    ids=["short", "long", "sha1", "md5", "not-hex", "missing-colon", "dashes", "sha1-line", "digest-prefix", "huge"],
)
def test_bad_forms_are_refused_naming_the_setting(given, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        _ca_pin.check_sha256(given, "containerd_mirror_ca_sha256")
    assert raised.value.field == "containerd_mirror_ca_sha256"
    assert fragment in raised.value.problem
    assert raised.value.problem.endswith(f"as `{_ca_pin.HOW_TO_GET}` prints it")
    assert len(str(raised.value)) < 400


@pytest.mark.parametrize(
    ("given", "field", "fragment"),
    [
        ([HEX, "nope"], "p[1]", "'nope' is not a SHA-256 fingerprint"),
        ([HEX, COLONS.lower()], "p[1]", f"{COLONS} is listed twice"),
        ([HEX, 7], "p[1]", "must be a SHA-256 fingerprint (a string), got int"),
        ({"a": HEX}, "p", "a list of them, one for each certificate of the CA, got dict"),
        (HEX.encode(), "p", "got bytes"),
        (42, "p", "got int"),
    ],
    ids=["bad-item", "twice", "int-item", "dict", "bytes", "int"],
)
def test_a_list_names_the_bad_item(given, field, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        _ca_pin.check_sha256(given, "p")
    assert raised.value.field == field
    assert fragment in raised.value.problem


@pytest.mark.parametrize(
    ("given", "pins"),
    [([], []), ("", []), ([HEX], [COLONS]), ([HEX, "00" * 32], [COLONS, ":".join(["00"] * 32)])],
)
def test_a_pin_is_a_list_and_empty_means_none(given, pins):
    assert _ca_pin.check_sha256(given) == pins


# --- the check: exactly the pinned certificates ------------------------------------------------------------------


def _bundle(pki, *names):
    return "".join(getattr(pki, name).read_text() for name in names)


@pytest.mark.parametrize(
    ("certificates", "pinned"),
    [
        (["ca"], ["ca"]),
        (["ca", "long_ca"], ["ca", "long_ca"]),
        (["ca", "long_ca"], ["long_ca", "ca"]),  # the bundle's order does not matter
        (["ca", "ca"], ["ca"]),  # a certificate given twice is still the pinned one
        (["ca"], []),  # nothing pinned: nothing checked
    ],
    ids=["single", "bundle", "bundle-other-order", "twice-in-bundle", "no-pin"],
)
def test_the_pinned_certificates_pass(pki, pins, certificates, pinned):
    assert _ca_pin.pin_mismatch(_bundle(pki, *certificates), [pins[name] for name in pinned], "src") is None


@pytest.mark.parametrize(
    ("certificates", "pinned", "expected"),
    [
        (["ca"], ["other_ca"], "src is not the pinned CA: expected the SHA-256 fingerprint {other_ca}, got {ca}"),
        (["ca", "long_ca"], ["ca"],
         "src is not the pinned CA: expected the SHA-256 fingerprint {ca}, got {ca}, {long_ca} (certificate 2 of 2 "
         "({long_ca}) is not pinned)"),
        (["ca"], ["ca", "long_ca"],
         "src is not the pinned CA: expected the SHA-256 fingerprints {ca}, {long_ca}, got {ca} (no certificate has "
         "the pinned {long_ca})"),
        (["ca", "server"], ["ca", "long_ca"],
         "src is not the pinned CA: expected the SHA-256 fingerprints {ca}, {long_ca}, got {ca}, {server} "
         "(certificate 2 of 2 ({server}) is not pinned; no certificate has the pinned {long_ca})"),
    ],
    ids=["mismatch", "extra-certificate", "missing-certificate", "both"],
)
def test_a_mismatch_names_the_expected_and_the_actual_fingerprints(pki, pins, certificates, pinned, expected):
    message = _ca_pin.pin_mismatch(_bundle(pki, *certificates), [pins[name] for name in pinned], "src")
    assert message == expected.format(**pins)


# --- where a CA is got: every source checks the pin the same way ---------------------------------------------------


@pytest.mark.parametrize("source", ["content", "url", "file"])
def test_get_ca_checks_the_pin_of_every_source(pki, pins, files, tmp_path, source):
    on_node = tmp_path / "ca.crt"
    on_node.write_bytes(pki.ca.read_bytes())
    given = {"content": {"content": pki.ca.read_text()}, "url": {"url": f"{files.url}/ca.pem"}, "file": {}}[source]
    ca = _ca.get_ca(str(on_node), sha256=[pins["ca"]], **given)
    assert not [warning for warning in ca.warnings if "plain http" in warning]  # pinned: no warning
    with pytest.raises(_ca.CaError) as raised:
        _ca.get_ca(str(on_node), sha256=[pins["other_ca"]], **given)
    where = {"content": "ca_content", "url": f"ca_url: {files.url}/ca.pem", "file": f"ca_file: {on_node}"}[source]
    assert str(raised.value) == (f"ca_sha256: {where} is not the pinned CA: expected the SHA-256 fingerprint "
                                 f"{pins['other_ca']}, got {pins['ca']}")


def test_an_http_ca_without_a_pin_warns_naming_the_risk_and_the_setting(files):
    ca = _ca.get_ca(url=f"{files.url}/ca.pem")
    warning = ca.warnings[-1]
    assert warning.startswith(f"ca_url: the CA is fetched over plain http from {files.url}/ca.pem: ")
    assert "anyone on the path" in warning and "a CA of their choosing" in warning
    assert "set ca_sha256 to the CA's SHA-256 fingerprint" in warning
    fields = _ca.CaFields("path", "content", "url", "readable_by", "sha256")
    assert "set sha256 to" in _ca.get_ca(url=f"{files.url}/ca.pem", fields=fields).warnings[-1]


@pytest.mark.parametrize("url", ["https://mirror.example/ca.pem", "HTTPS://mirror.example/ca.pem"])
def test_an_https_ca_is_not_warned_about(url):
    assert _ca_pin.http_warning(url, "ca_url", "ca_sha256") is None


def test_an_https_ca_fetched_without_verifying_the_server_warns_too():
    """ca_validate_certs=false opens the same path to a swapped CA as plain http."""
    warning = _ca_pin.http_warning("https://mirror.example/ca.pem", "ca_url", "ca_sha256", validate_certs=False)
    assert warning.startswith("ca_url: the CA is fetched over https without verifying the server's certificate "
                              "from https://mirror.example/ca.pem: anyone on the path")
    assert "set ca_sha256 to the CA's SHA-256 fingerprint" in warning and warning.endswith("verify that certificate")
    assert _ca_pin.http_warning("http://mirror.example/ca.pem", "ca_url", "ca_sha256", validate_certs=False) \
        .startswith("ca_url: the CA is fetched over plain http from")


@pytest.mark.parametrize(
    ("value", "checked", "result", "error"),
    [
        (None, False, None, None),
        ([], True, None, None),
        ([HEX], True, [COLONS], None),
        ([HEX], False, None, "ca_sha256: pins a CA, and none is checked: give ca_content, ca_url or ca_check"),
        (["bad"], True, None, "ca_sha256: 'bad' is not a SHA-256 fingerprint"),  # Ansible's list of one string
        ([HEX, "bad"], True, None, "ca_sha256[1]: 'bad' is not a SHA-256 fingerprint"),
    ],
    ids=["unset", "empty", "pinned", "nothing-to-check", "bad", "bad-item"],
)
def test_a_module_pin_option(value, checked, result, error):
    if error is None:
        assert _ca.check_pin_option(value, checked, "ca_sha256", ("ca_content", "ca_url", "ca_check")) == result
        return
    with pytest.raises(RegistrySettingError) as raised:
        _ca.check_pin_option(value, checked, "ca_sha256", ("ca_content", "ca_url", "ca_check"))
    assert str(raised.value).startswith(error)


# --- the settings: a mirror's pin, and the role's ---------------------------------------------------------------


def test_a_mirrors_ca_content_is_checked_against_its_pin_on_the_controller(pki, pins):
    mirror = {"url": "https://harbor.example", "ca_content": pki.ca.read_text()}
    assert settings.check_mirror(dict(mirror, ca_sha256=pins["ca"].lower()), "m")["ca_sha256"] == [pins["ca"]]
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_mirror(dict(mirror, ca_sha256=[pins["other_ca"]]), "m")
    assert str(raised.value) == (f"m.ca_sha256: m.ca_content is not the pinned CA: expected the SHA-256 fingerprint "
                                 f"{pins['other_ca']}, got {pins['ca']}")


@pytest.mark.parametrize(
    ("mirror", "error"),
    [
        ({"ca_sha256": HEX}, "m.ca_sha256: pins a CA: give m.ca_file or m.ca_content"),
        ({"ca_sha256": "abc", "ca_file": "/ca.crt"}, "m.ca_sha256: 'abc' is not a SHA-256 fingerprint"),
        ({"ca_sha256": [HEX, "abc"], "ca_file": "/ca.crt"}, "m.ca_sha256[1]: 'abc' is not a SHA-256 fingerprint"),
    ],
    ids=["no-ca", "bad", "bad-item"],
)
def test_a_mirrors_bad_pin_is_refused_naming_it(mirror, error):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_mirror(dict(mirror, url="https://harbor.example"), "m")
    assert str(raised.value).startswith(error)


def test_a_mirrors_pinned_ca_file_is_kept_for_the_node():
    checked = settings.check_mirror({"url": "https://harbor.example", "ca_file": "/ca.crt", "ca_sha256": HEX}, "m")
    assert checked["ca_sha256"] == [COLONS] and checked["ca_file"] == "/ca.crt"


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"url": "https://m", "ca_sha256": HEX},
         "containerd_mirror_ca_sha256: pins the CA of containerd_mirror_cert_path: it needs "
         "containerd_mirror_self_signed_certs"),
        ({"url": "https://m", "self_signed_certs": True, "cert_path": "/ca.crt", "ca_sha256": "x"},
         "containerd_mirror_ca_sha256: 'x' is not a SHA-256 fingerprint"),
    ],
    ids=["no-ca", "bad"],
)
def test_the_roles_pin_is_refused_naming_the_variable(given, error):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings(given, lambda option: f"containerd_mirror_{option}")
    assert str(raised.value).startswith(error)


@pytest.mark.parametrize("pin", [[], "", HEX, [HEX]])
def test_the_roles_pin_is_normalised(pin):
    given = {"url": "https://m", "self_signed_certs": True, "cert_path": "/ca.crt", "ca_sha256": pin}
    assert settings.check_settings(given)["ca_sha256"] == ([COLONS] if pin else [])


def _role(**given):
    return dict({"url": "https://m", "self_signed_certs": True, "cert_path": "/ca.crt", "ca_file": "/ca.crt"}, **given)


def _role_name(option):
    return f"containerd_mirror_{option}"


@pytest.mark.parametrize("source", ["ca_content", "ca_src"])
def test_the_roles_ca_on_the_controller_is_checked_against_its_pin_before_any_node(pki, pins, tmp_path, source):
    from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import check_mirror_settings

    value = pki.ca.read_text() if source == "ca_content" else str(pki.ca)
    checked = check_mirror_settings(_role(**{source: value, "ca_sha256": [pins["ca"]]}), "containerd_mirror_")
    assert checked["ca_sha256"] == [pins["ca"]]
    with pytest.raises(RegistrySettingError) as raised:
        check_mirror_settings(_role(**{source: value, "ca_sha256": pins["other_ca"]}), "containerd_mirror_")
    where = "containerd_mirror_ca_content" if source == "ca_content" else f"containerd_mirror_ca_src ({pki.ca})"
    assert str(raised.value) == (f"containerd_mirror_ca_sha256: {where} is not the pinned CA: expected the SHA-256 "
                                 f"fingerprint {pins['other_ca']}, got {pins['ca']}")


def test_the_roles_ca_text_that_is_not_pem_is_named_with_a_pin(tmp_path):
    from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import check_mirror_settings

    with pytest.raises(RegistrySettingError) as raised:
        check_mirror_settings(_role(ca_content="not pem", ca_sha256=HEX), "containerd_mirror_")
    assert str(raised.value).startswith("containerd_mirror_ca_content: cannot be read as PEM certificates: not PEM")
