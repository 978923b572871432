"""_pem: broken PEM armour around a private key, or stray armour, in certificate text is refused (issue 23, defect 12).

Text outside the blocks is ignored as containerd and OpenSSL ignore it, but a private key whose armour is broken
(so that it is no block) would be written into a 0644 CA or client certificate file: certificate text holding the
words PRIVATE KEY, an END line without its BEGIN line, or base64 outside the blocks is refused.
"""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _pem
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _settings as settings
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError


def _key_lines(pki):
    return pki.client_key.read_text().splitlines()


ARMOUR_REFUSALS = {
    # name: (text after a valid certificate, a fragment of the message)
    "BEGIN line with four dashes": (
        lambda pki: "\n".join(["----BEGIN PRIVATE KEY-----", *_key_lines(pki)[1:]]) + "\n",
        "-----END line has no matching -----BEGIN line"),
    "key cut before its END line, BEGIN broken": (
        lambda pki: "\n".join(["----BEGIN PRIVATE KEY-----", *_key_lines(pki)[1:-1]]) + "\n", "PRIVATE KEY"),
    "lower-case armour": (
        lambda pki: "\n".join(line.lower() if line.startswith("-----") else line for line in _key_lines(pki)) + "\n",
        "PRIVATE KEY"),
    "key without armour": (lambda pki: "\n".join(_key_lines(pki)[1:-1]) + "\n", "base64 outside the PEM blocks"),
    "key without BEGIN line": (
        lambda pki: "\n".join(_key_lines(pki)[1:]) + "\n", "-----END line has no matching -----BEGIN line"),
    "stray END line": (lambda pki: "-----END CERTIFICATE-----\n", "-----END line has no matching -----BEGIN line"),
    "base64 line after the certificate": (lambda pki: "MIIBszCCAVmgAwIBAgIUQ2hd\n", "base64 outside the PEM blocks"),
    "words PRIVATE KEY in a comment": (lambda pki: "# my PRIVATE KEY follows\n", "PRIVATE KEY"),
}


@pytest.mark.parametrize("case", list(ARMOUR_REFUSALS))
def test_broken_armour_in_certificate_text_is_refused(pki, case):
    make_tail, message = ARMOUR_REFUSALS[case]
    text = pki.ca.read_text() + make_tail(pki)
    with pytest.raises(_pem.PemError) as raised:
        _pem.read_certificates(text)
    assert message in str(raised.value)
    for line in pki.client_key.read_text().splitlines()[1:-1]:
        assert line not in str(raised.value)  # never quotes a key


@pytest.mark.parametrize("option", ["ca_content", "client_cert_content"])
@pytest.mark.parametrize("case", ["BEGIN line with four dashes", "key without armour", "stray END line"])
def test_a_mirror_refuses_broken_armour_naming_the_field(pki, option, case):
    make_tail, message = ARMOUR_REFUSALS[case]
    base = pki.ca if option == "ca_content" else pki.client
    mirror = {"url": "https://m", option: base.read_text() + make_tail(pki)}
    if option == "client_cert_content":
        mirror["client_key_content"] = pki.client_key.read_text()
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_mirror(mirror, "m")
    assert raised.value.field == f"m.{option}"
    assert message in str(raised.value)


@pytest.mark.parametrize("tail", [
    "",
    "# the site's CA\n",
    "subject=CN = kubenode test CA\nissuer=CN = kubenode test CA\n\n",
    "Certificate:\n    Signature Algorithm: sha256WithRSAEncryption\n        00:c3:1f:2a:88\n",
    "KubernetesClusterAuthority\n",  # a long word, not base64 data: no digit, + or /
])
def test_text_outside_the_blocks_is_still_ignored(pki, tail):
    assert len(_pem.read_certificates(tail + pki.ca.read_text() + tail)) == 1
