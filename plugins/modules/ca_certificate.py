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
    X.509 certificates, has not expired, and, with O(readable_by), can be read by the given user (PMK
    needs the C(pf9) user to read it).
  - The text comes from O(content), from O(url) (fetched by the node, as PMK's nodelet does), or, with
    neither, from the file already at O(path), which must then exist.
  - Everything is checked before anything is written; when a check fails, the node is left as it was.
  - With O(content) or O(url), the file is written, atomically, only when its text differs, and
    O(mode), O(owner) and O(group) are applied. With neither, the file is only checked, never changed.
  - The certificates are read with the Python standard library only; nothing needs to be installed on
    the node.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
  - action_common_attributes.files
attributes:
  check_mode:
    support: full
    details: The text is fetched and checked in check mode too; nothing is written.
  diff_mode:
    support: full
    details: The certificate text is shown; a CA certificate is public.
  safe_file_operations:
    support: full
  vault:
    support: none
  platform:
    platforms: posix
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
      - Checked with the permission bits and owners of the file (as they will be once written) and of every
        directory leading to it; POSIX ACLs and SELinux are not taken into account.
      - When the user cannot read it, the module fails, naming the file or directory in the way, and writes
        nothing.
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

- name: Fetch it from a web server, as PMK's customRegistryCertPath can say
  kubenode.registry_mirror.ca_certificate:
    path: /usr/local/share/reg-ca.crt
    url: http://10.101.101.100:8080/domain.crt

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
  description: Start of validity of the soonest-expiring certificate, ISO 8601 in UTC.
  returned: success
  type: str
  sample: "2026-11-28T10:00:00Z"
not_after:
  description: End of validity of the soonest-expiring certificate, ISO 8601 in UTC.
  returned: success
  type: str
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
content:
  description:
    - The PEM text now valid for the node (in check mode, the text the file would hold), to hand to
      M(kubenode.registry_mirror.registry_preflight) as its
      O(kubenode.registry_mirror.registry_preflight#module:ca_content).
  returned: success
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
"""

import datetime
import grp
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import make_context

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import (
    FileOperationError,
    describe,
    make_directories,
    write_file,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import (
    UTC,
    PemError,
    check_validity,
    days_left,
    format_time,
    read_certificates,
    readable_by,
    soonest_expiring,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    fetch_url_scheme,
)

MAX_BYTES = 1024 * 1024  # a CA bundle is a few kilobytes; refuse anything absurd
USER_AGENT = "kubenode.registry_mirror-ca_certificate"
_OCTAL_MODE = re.compile(r"0?[0-7]{3,4}")


def _decode(data, source):
    if b"\x00" in data:
        raise PemError(f"{source}: not PEM: binary data (a DER certificate? convert it with openssl x509 -inform der)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PemError(f"{source}: not PEM: the text is not UTF-8") from None


def _read_file(path):
    """Return the file's bytes (at most one byte past the cap), or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FileOperationError("read", path, describe(error, path)) from None


def _fetch(module, url):
    """The bytes url answers with HTTP 200: at most MAX_BYTES, all within timeout seconds."""
    path, timeout = module.params["path"], module.params["timeout"]
    context = make_context(validate_certs=module.params["validate_certs"]) if url.lower().startswith("https") else None
    try:
        response = _http.request(
            "GET",
            url,
            timeout=timeout,
            max_bytes=MAX_BYTES,
            headers={"User-Agent": USER_AGENT},
            context=context,
            redirects=_http.ANY_ORIGIN,
        )
    except _http.HttpTooLarge:
        module.fail_json(msg=f"url: {url} sent more than {MAX_BYTES} bytes; that is not a CA certificate", path=path)
    except _http.HttpTimeout as error:
        module.fail_json(
            msg=f"url: fetching {url} failed: no complete answer within {timeout} seconds ({error.reason})", path=path
        )
    except _http.HttpRedirectError as error:
        module.fail_json(msg=f"url: fetching {url} failed: {error.reason}", path=path, status=error.status)
    except _http.HttpError as error:
        module.fail_json(msg=f"url: fetching {url} failed: {error.reason}", path=path)
    if response.status != 200:
        module.fail_json(
            msg=f"url: fetching {url} failed: HTTP {response.status} ({response.reason})".replace(" ()", ""),
            path=path,
            status=response.status,
        )
    return response.body


def _planned_mode(module, current_stat):
    """Permission bits the file will have once the module is done."""
    mode = module.params["mode"]
    if isinstance(mode, int):
        return mode
    mode = str(mode)
    if _OCTAL_MODE.fullmatch(mode):
        return int(mode, 8)
    # a symbolic mode applies to the file as atomic_move leaves it: the old file's mode, or mkstemp's 0600
    base = current_stat if current_stat is not None else os.stat_result((stat.S_IFREG | 0o600,) + (0,) * 9)
    try:
        return module._symbolic_mode_to_octal(base, mode)
    except ValueError as error:
        module.fail_json(msg=f"mode: {error}", path=module.params["path"])


def _planned_id(module, option, current):
    """uid or gid the file will have once the module is done."""
    value = module.params[option]
    if value is None:
        return current
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return pwd.getpwnam(value).pw_uid if option == "owner" else grp.getgrnam(value).gr_gid
    except KeyError:
        module.fail_json(msg=f"{option}: there is no {'user' if option == 'owner' else 'group'} {value!r} on this node",
                         path=module.params["path"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str"),
            url=dict(type="str"),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=10),
            readable_by=dict(type="str"),
            warn_days=dict(type="int", default=30),
            mode=dict(type="raw", default="0644"),
        ),
        mutually_exclusive=[["content", "url"]],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    _http.refuse_url_credentials(module, ["url"], hint="; a CA certificate is public", path=path)
    if not os.path.isabs(path):
        module.fail_json(msg=f"path: {path!r} must be an absolute path", path=path)
    if params["warn_days"] < 0:
        module.fail_json(msg="warn_days: must not be negative", path=path)
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout: must be positive", path=path)

    if os.path.lexists(path) and not os.path.isfile(path):
        module.fail_json(msg=f"path: {path} exists and is not a regular file", path=path)
    try:
        before = _read_file(path)
    except FileOperationError as error:
        module.fail_json(msg=f"path: {error}", path=path)
    if before is not None and len(before) > MAX_BYTES and params["content"] is None and params["url"] is None:
        module.fail_json(msg=f"path: {path} is larger than {MAX_BYTES} bytes; that is not a CA certificate", path=path)

    try:
        if params["content"] is not None:
            source = "content"
            text = params["content"]
        elif params["url"] is not None:
            url = fetch_url_scheme(params["url"])
            source = f"url: {url}"
            text = _decode(_fetch(module, url), source)
        else:
            source = f"path: {path}"
            if before is None:
                module.fail_json(
                    msg=f"path: {path} does not exist; give content or url to place the CA certificate", path=path
                )
            text = _decode(before, source)
        if text.strip() and not text.endswith("\n"):
            text += "\n"
        try:
            certificates = read_certificates(text)
        except PemError as error:
            raise PemError(f"{source}: {error}") from None
    except (PemError, RegistrySettingError) as error:
        module.fail_json(msg=str(error), path=path)

    now = datetime.datetime.now(UTC)
    errors, warnings = check_validity(certificates, now, params["warn_days"])
    if errors:
        module.fail_json(msg=f"{source}: " + "; ".join(errors), path=path)
    for warning in warnings:
        module.warn(f"{source}: {warning}")

    # Without content or url the file is the user's own: check it, never change it.
    placing = params["content"] is not None or params["url"] is not None
    current_stat = os.stat(path) if before is not None else None
    if params["readable_by"] is not None:
        if placing:
            mode = _planned_mode(module, current_stat)
            uid = _planned_id(module, "owner", current_stat.st_uid if current_stat else os.geteuid())
            gid = _planned_id(module, "group", current_stat.st_gid if current_stat else os.getegid())
        else:
            mode, uid, gid = stat.S_IMODE(current_stat.st_mode), current_stat.st_uid, current_stat.st_gid
        ok, reason = readable_by(path, params["readable_by"], mode=mode, uid=uid, gid=gid)
        if not ok:
            module.fail_json(msg=f"readable_by: {reason}", path=path)

    new_bytes = text.encode("utf-8")
    content_changed = placing and before != new_bytes
    if content_changed and not module.check_mode:
        try:
            make_directories(os.path.dirname(path))  # 0755: pf9 must reach the CA
        except FileOperationError as error:
            module.fail_json(msg=f"path: {error}", path=path)
        write_file(module, path, new_bytes)
    changed = content_changed
    attributes_diff = {"before": {}, "after": {}}
    if placing and os.path.exists(path):  # in check mode, a file not written yet has no attributes to set
        file_args = module.load_file_common_arguments(params, path=path)
        changed = module.set_fs_attributes_if_different(file_args, changed, attributes_diff)

    soonest = soonest_expiring(certificates)
    result = dict(
        changed=changed,
        path=path,
        not_before=format_time(soonest.not_before),
        not_after=format_time(soonest.not_after),
        days_left=days_left(soonest, now),
        certificates=len(certificates),
        content=text,
    )
    if module._diff:
        diffs = []
        if content_changed:
            diffs.append(dict(
                before_header=path,
                after_header=path,
                before="" if before is None else before.decode("utf-8", errors="replace"),
                after=text,
            ))
        if before is not None and (attributes_diff["before"] or attributes_diff["after"]):
            diffs.append(attributes_diff)
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
