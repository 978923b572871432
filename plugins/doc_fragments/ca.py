# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that get the mirror's CA (containerd_hosts, registry_preflight), besides the CA itself:
how its URL is fetched (ca_validate_certs) and its pin (ca_sha256)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ca_validate_certs:
    description:
      - Verify the TLS certificate of O(ca_url) against the node's trust store.
    type: bool
    default: true
  ca_sha256:
    description:
      - The pin of the CA - the SHA-256 fingerprint of its certificate, or a list with one for each certificate of a
        bundle - checked on the CA wherever it comes from (O(ca_content), O(ca_url), or the file at O(ca_file)),
        with the CA's other checks, before anything is changed or any request is sent with it.
      - A fingerprint is that of the DER certificate, as C(openssl x509 -noout -fingerprint -sha256 -in ca.crt)
        prints it - 64 hex digits, with or without a colon between each pair, in any case; openssl's whole line
        C(sha256 Fingerprint=AB:CD:...) is accepted too. Anything else is refused, naming the option.
      - The CA must hold a certificate for each fingerprint and no other certificate (a bundle's order does not
        matter). Otherwise the task fails, naming this option, where the CA came from, and the expected and the
        actual fingerprints; nothing is changed.
      - A pin without a CA to check is refused.
      - A CA fetched from an C(http://) O(ca_url) without a pin gets a warning, since anyone on the path can hand the
        node a CA of their choosing, and so does one fetched with O(ca_validate_certs=false); with a pin, none.
    type: list
    elements: str
"""
