#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_certificate
short_description: Check, and optionally place, the registry mirror's CA certificate on a node
version_added: 1.0.0
description:
  - Makes sure the CA certificate that containerd trusts for the registry mirror (the C(ca) of its
    C(hosts.toml), PMK's C(customRegistryCertPath)) is at O(path) on the node, is a valid PEM bundle of
    X.509 certificates, has not expired (a certificate that is not a CA, such as a server certificate trusted as
    itself, has its expiry not checked, with a warning), and, with O(readable_by), can be read by the given user (PMK
    needs the C(pf9) user to read it).
  - The text comes from O(content), from O(url) (fetched by the node, as PMK's nodelet does), or, with
    neither, from the file already at O(path), which must then exist.
  - Everything is checked before anything is written; when a check fails, the node is left as it was.
  - With O(content) or O(url), the file is written, atomically, only when its text differs, and
    O(mode), O(owner) and O(group) are applied. With neither, the file is only checked, never changed.
  - The certificates are read with the Python standard library (C(ssl)) only; nothing needs to be installed
    on the node.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
  - action_common_attributes.files
  - kubenode.registry_mirror.attributes.node_files
attributes:
  check_mode:
    details: The text is fetched and checked in check mode too; nothing is written.
  diff_mode:
    details: The certificate text is shown; a CA certificate is public.
options:
  path:
    description:
      - Where the CA certificate lives on the node, for example C(/usr/local/share/reg-ca.crt).
      - Missing parent directories are created with mode C(0755), so that other users can reach the file.
    type: path
    required: true
  content:
    description:
      - PEM text of the CA certificate (or a bundle of several) to place at O(path).
      - A final newline is added when missing.
      - Mutually exclusive with O(url).
    type: str
  url:
    description:
      - C(http://) or C(https://) URL the node downloads the PEM text from, to place at O(path).
      - A final newline is added when missing.
      - A URL with credentials (C(user:password@host)) is refused; a CA certificate is public. It is never
        shown in messages or results.
      - Redirects are followed, up to 10, to C(http://) and C(https://) URLs on any host, but never from
        C(https://) to C(http://) and never to a URL with credentials.
      - The answer must be HTTP 200 and at most 1 MiB.
      - Mutually exclusive with O(content).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of O(url) against the node's trust store.
    type: bool
    default: true
  timeout:
    description:
      - Seconds the whole download of O(url) may take, from connecting to the last byte of the answer,
        redirects included. A server that sends slowly is given up on when the time is over.
    type: int
    default: 10
  readable_by:
    description:
      - Name of a user that must be able to read O(path), for example C(pf9).
      - Checked with the permission bits and owners of every directory leading to the file, before anything is
        written, then of the file itself as it is once written, with its O(mode), O(owner) and O(group); POSIX
        ACLs and SELinux are not taken into account.
      - When the user cannot read it, the module fails, naming the file or directory in the way; a file it
        wrote is put back as it was (or removed, with the directories it created).
      - In check mode, the file is checked as it is now; when the module would change it and the user cannot
        read it now, a warning says so instead of a failure.
    type: str
  warn_days:
    description:
      - Warn when a certificate expires within this many days. An expired certificate is an error.
    type: int
    default: 30
  mode:
    description:
      - Permissions of the file, as for M(ansible.builtin.file), for example V('0644') or V(u=rw,go=r).
      - A CA certificate is public; it must stay readable by the user containerd's clients run as.
    type: raw
    default: '0644'
  sha256:
    description:
      - The pin of the CA - the SHA-256 fingerprint of its certificate, or a list with one for each certificate of a
        bundle - checked on the text wherever it comes from (O(content), O(url), or the file at O(path)), before
        anything is written.
      - A fingerprint is that of the DER certificate, as C(openssl x509 -noout -fingerprint -sha256 -in ca.crt)
        prints it - 64 hex digits, with or without a colon between each pair, in any case; openssl's whole line
        C(sha256 Fingerprint=AB:CD:...) is accepted too. Anything else is refused, naming the option.
      - The CA must hold a certificate for each fingerprint and no other certificate (a bundle's order does not
        matter). Otherwise the module fails, naming this option, where the CA came from, and the expected and the
        actual fingerprints, and the file is left as it was.
      - A CA fetched from an C(http://) O(url) without a pin gets a warning, since anyone on the path can hand the
        node a CA of their choosing, and so does one fetched with O(validate_certs=false); with a pin, none.
    type: list
    elements: str
notes:
  - The certificate text is not secret and is returned in RV(content).
seealso:
  - module: kubenode.registry_mirror.registry_preflight
    description: Calls the mirror from the node with this CA before anything changes.
  - module: kubenode.registry_mirror.containerd_hosts
    description: Points containerd at the mirror, with this CA as C(ca).
"""

EXAMPLES = r"""
- name: Place the mirror's CA where PMK expects it, readable by pf9
  kubenode.registry_mirror.ca_certificate:
    path: /usr/local/share/reg-ca.crt
    content: "{{ lookup('ansible.builtin.file', 'files/reg-ca.crt') }}"
    readable_by: pf9
  register: mirror_ca

- name: Fetch it from a web server, as PMK's customRegistryCertPath can say; plain http, so pin it
  kubenode.registry_mirror.ca_certificate:
    path: /usr/local/share/reg-ca.crt
    url: http://10.101.101.100:8080/domain.crt
    # as `openssl x509 -noout -fingerprint -sha256 -in domain.crt` prints it
    sha256: "5D:1E:8F:44:0B:7C:19:E2:A3:6F:90:C4:D8:21:7B:55:E0:3A:9C:16:B2:4F:88:D1:07:6E:C3:5A:92:F0:1B:A0"

- name: Only check a CA someone else placed
  kubenode.registry_mirror.ca_certificate:
    path: /usr/local/share/reg-ca.crt
    readable_by: pf9
    warn_days: 60

- name: Try the mirror with that CA
  kubenode.registry_mirror.registry_preflight:
    url: https://10.101.101.100:443
    ca_content: "{{ mirror_ca.content }}"
"""

RETURN = r"""
path:
  description: The CA file.
  returned: success, and failures past the argument checks
  type: str
  sample: /usr/local/share/reg-ca.crt
not_before:
  description:
    - Start of validity of the soonest-expiring certificate, ISO 8601 in UTC.
    - V(null) when no certificate's expiry is checked (none is a CA certificate); so are RV(not_after) and
      RV(days_left).
  returned: success
  type: str
  sample: "2026-11-28T10:00:00Z"
not_after:
  description: End of validity of the soonest-expiring certificate, ISO 8601 in UTC.
  type: str
  returned: success
  sample: "2027-11-28T10:00:00Z"
days_left:
  description: Whole days until the soonest-expiring certificate expires.
  returned: success
  type: int
  sample: 364
certificates:
  description: How many certificates the file holds.
  returned: success
  type: int
  sample: 1
sha256:
  description:
    - The SHA-256 fingerprint of each certificate, in the file's order, as C(openssl x509 -noout -fingerprint
      -sha256) prints it; what O(sha256) pins.
  returned: success
  type: list
  elements: str
  sample: ["5D:1E:8F:...:A0"]
content:
  description:
    - The PEM text now valid for the node (in check mode, the text the file would hold), to hand to
      M(kubenode.registry_mirror.registry_preflight) as its
      O(kubenode.registry_mirror.registry_preflight#module:ca_content).
  returned: success
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    CaError,
    CaFields,
    check_pin_option,
    check_readable,
    checked_ca,
    summary,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d_apply import apply_ca, text_diff
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import (
    FileOperationError,
    file_arguments,
    readable_by,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    CA_CERTIFICATE_CA_OPTIONS,
    check_node_paths,
    module_argument_spec,
    module_rules,
)

FIELDS = CaFields(*CA_CERTIFICATE_CA_OPTIONS)


def _place(module, ca, file_args, attributes_diff):
    """Write the CA when its text differs and give it its attributes; return whether anything changed.

    With readable_by (whose directories checked_ca checked), the file is checked once written: when the user
    cannot read it, it is put back as it was and the module fails.
    """
    path, user = module.params["path"], module.params["readable_by"]
    verify = None if user is None else lambda: check_readable(path, user, "readable_by")
    changed = apply_ca(module, path, ca.text, ca.before, file_args, attributes_diff, verify)
    if module.check_mode and ca.before is not None and user is not None:
        ok, reason = readable_by(path, user)
        if not ok and not changed:
            raise CaError(f"readable_by: {reason}")
        if not ok:
            module.warn(f"readable_by: {reason} now; check mode changes nothing, so the file is checked "
                        "as it is, and a real run checks it once written")
    return changed


def main():
    module = AnsibleModule(
        argument_spec=module_argument_spec("ca_certificate"),
        **module_rules("ca_certificate"),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    _http.refuse_url_credentials(module, ["url"], hint="; a CA certificate is public", path=path)
    try:
        check_node_paths("ca_certificate", params)
        params["sha256"] = check_pin_option(params["sha256"], True, "sha256", ("content", "url", "path"))
    except RegistrySettingError as error:
        module.fail_json(msg=str(error), path=path)
    if params["warn_days"] < 0:
        module.fail_json(msg="warn_days: must not be negative", path=path)
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout: must be positive", path=path)

    # Without content or url the file is the user's own: check it, never change it.
    placing = params["content"] is not None or params["url"] is not None
    attributes_diff = {"before": {}, "after": {}}
    try:
        ca = checked_ca(path, params["content"], params["url"], params["validate_certs"], params["readable_by"],
                        params["timeout"], params["warn_days"], fields=FIELDS, warn=module.warn,
                        sha256=params["sha256"])
        changed = _place(module, ca, file_arguments(module, path), attributes_diff) if placing else False
    except CaError as error:
        status = {} if error.status is None else {"status": error.status}
        module.fail_json(msg=str(error), path=path, **status)
    except FileOperationError as error:
        module.fail_json(msg=f"path: {error}", path=path)

    result = dict(changed=changed, path=path, content=ca.text, **summary(ca))
    if module._diff:
        diffs = []
        ca_diff = text_diff(path, ca.before, ca.text) if placing else None
        if ca_diff is not None:
            diffs.append(ca_diff)
        if ca.before is not None and (attributes_diff["before"] or attributes_diff["after"]):
            diffs.append(attributes_diff)
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
