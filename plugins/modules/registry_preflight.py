#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_preflight
short_description: Call the registry mirror's /v2/ from a node, as containerd will, before anything changes
version_added: 1.0.0
description:
  - Sends C(GET <url>/v2/) from the node with the TLS settings and the HTTP Basic C(Authorization) header
    containerd will use once M(kubenode.registry_mirror.containerd_hosts) has written its C(hosts.toml), and
    fails with a message that says what to fix when the mirror cannot be reached, its certificate does not
    verify, or it refuses the credentials.
  - Only an HTTP 200 answer passes. Redirects are not followed, so the credentials go to O(url) only; a redirect
    fails the task, naming its status and its C(Location).
  - With a CA (O(ca_content), O(ca_url) or O(ca_file)), first gets it and checks it as
    M(kubenode.registry_mirror.ca_certificate) does (a PEM bundle of X.509 certificates, none expired, and
    readable by O(ca_readable_by)), then verifies the mirror with it, and returns its text in RV(ca_content),
    so that the CA is downloaded once per run and handed on to
    M(kubenode.registry_mirror.containerd_hosts). Without O(url) and O(registry_mirrors), only the CA is checked.
  - With O(registry_mirrors), also calls every distinct mirror (its URL, CA, client certificate and key,
    credentials, C(skip_tls) and C(repo_path); mirrors alike in all of these are called once) from the node as
    containerd will. C(GET <url>/v2/) must answer HTTP 200, verified with the mirror's CA (its C(ca_file) or
    C(ca_content)) and with its client certificate (C(client_cert)/C(client_key) on the node, or
    C(client_cert_content)/C(client_key_content), loaded from a private temporary directory that is removed
    afterwards). With a C(repo_path), C(GET <url>/v2/<repo_path>/kubenode-preflight-probe/tags/list) must answer
    HTTP 200 or 404 - a registry answers 404 for a repository it does not hold, Harbor under a project that
    exists - and fails on 401 or 403 (Harbor's answer for a project that does not exist, or that the credentials
    may not pull from) and anything else. Every mirror is checked; the task fails when one of them failed, naming
    each by its setting (for example C(registry_mirrors["docker.io"][0])) and saying what to fix.
  - Read-only; it runs in check mode too.
  - The option names of the Platform9 (PMK) cluster API are accepted as aliases.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - kubenode.registry_mirror.ca
  - kubenode.registry_mirror.registry_mirrors
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kubenode.registry_mirror.attributes.no_files
  - kubenode.registry_mirror.attributes.action
attributes:
  check_mode:
    details: The request is sent in check mode too; it changes nothing.
options:
  url:
    description:
      - URL of the registry mirror, C(https://host[:port]) or C(http://host[:port]). Without a scheme,
        C(https) is used. IPv6 literals go in brackets.
      - A path is refused; the module calls C(<url>/v2/).
      - Credentials in the URL (C(user:password@host)) are refused, and never shown; use O(username) and
        O(password).
      - Without it, only the CA and O(registry_mirrors) are checked; then one of them is required.
    type: str
    aliases: [customRegistryUrl]
  username:
    description:
      - User name for the mirror, sent in an HTTP Basic C(Authorization) header (UTF-8). Requires O(password).
    type: str
    aliases: [customRegistryUsername]
  password:
    description:
      - Password for the mirror. Requires O(username). Never shown in results or messages.
    type: str
    aliases: [customRegistryPassword]
  skip_tls:
    description:
      - Do not verify the mirror's TLS certificate, as containerd's C(skip_verify = true).
    type: bool
    default: false
    aliases: [customRegistrySkipTls]
  ca_content:
    description:
      - PEM text of the CA certificate(s) to verify the mirror with, for example
        RV(kubenode.registry_mirror.ca_certificate#module:content).
      - Mutually exclusive with O(ca_file) and O(ca_url). With none of them, the node's system trust store is used.
    type: str
  ca_url:
    description:
      - C(http://) or C(https://) URL the node downloads the CA certificate(s) from, as PMK's C(customRegistryCertPath)
        can say; the same rules as O(kubenode.registry_mirror.ca_certificate#module:url) (at most 1 MiB, redirects
        followed but never from https to http, no credentials in the URL). It is fetched within O(timeout) seconds.
      - Mutually exclusive with O(ca_content) and O(ca_file).
    type: str
  ca_file:
    description:
      - Path on the node of the CA certificate file to verify the mirror with (the C(ca) of C(hosts.toml)).
      - Mutually exclusive with O(ca_content) and O(ca_url). With none of them, the node's system trust store is used.
    type: path
  ca_readable_by:
    description:
      - Name of a user that must be able to read O(ca_file), for example C(pf9), checked with the permission bits and
        owners of the file and of every directory leading to it.
    type: str
  timeout:
    description:
      - Seconds the whole call may take, from connecting to the last byte of the answer. A mirror that answers
        slowly is given up on when the time is over.
    type: int
    default: 10
  warn_days:
    description:
      - Warn when a certificate of the CA expires within this many days. An expired certificate is an error.
    type: int
    default: 30
  _mirrors:
    description:
      - Internal, set by the action plugin; the distinct mirrors of O(registry_mirrors). Do not set.
    type: list
    elements: dict
    default: []
  _secrets:
    description:
      - Internal, set by the action plugin; the header values and client keys to mask. Do not set.
    type: list
    elements: str
notes:
  - Proxy settings come from the node's environment (C(https_proxy), C(no_proxy)) of the module, which may
    differ from containerd's own environment.
seealso:
  - module: kubenode.registry_mirror.ca_certificate
    description: Places the CA first; its C(content) result feeds O(ca_content).
  - module: kubenode.registry_mirror.containerd_hosts
    description: Writes the settings this module tries.
  - name: Docker Registry HTTP API V2, API version check
    description: What C(GET /v2/) answers.
    link: https://distribution.github.io/distribution/spec/api/#api-version-check
"""

EXAMPLES = r"""
- name: Make sure the node can pull from the mirror before reconfiguring containerd
  kubenode.registry_mirror.registry_preflight:
    url: https://10.101.101.100:443
    username: "{{ mirror_username }}"
    password: "{{ mirror_password }}"
    ca_file: /usr/local/share/reg-ca.crt

- name: Check every Harbor proxy-cache project and an mTLS mirror before containerd is pointed at them
  kubenode.registry_mirror.registry_preflight:
    registry_mirrors:
      docker.io:
        - url: https://harbor.example
          repo_path: dockerhub-proxy
          username: robot$proxy
          password: "{{ harbor_robot_password }}"
      "*":
        mirrors:
          - url: https://registry.site.internal:5443
            repo_path: all-upstreams
            ca_content: "{{ lookup('ansible.builtin.file', 'files/site-ca.crt') }}"
            client_cert_content: "{{ lookup('ansible.builtin.file', 'files/node.crt') }}"
            client_key_content: "{{ node_client_key }}"
        repo_path_for_all: true

- name: The same with a CA not placed yet, and PMK's names
  kubenode.registry_mirror.registry_preflight:
    customRegistryUrl: "{{ cluster.customRegistryUrl }}"
    customRegistryUsername: "{{ cluster.customRegistryUsername }}"
    customRegistryPassword: "{{ mirror_password }}"
    ca_content: "{{ lookup('ansible.builtin.file', 'files/reg-ca.crt') }}"
"""

RETURN = r"""
status:
  description: HTTP status the mirror answered, or null when no HTTP answer came (TLS or connection failure).
  returned: always
  type: int
  sample: 200
url:
  description: The URL called.
  returned: when O(url) is valid
  type: str
  sample: https://10.101.101.100:443/v2/
mirrors:
  description: One entry per distinct mirror of O(registry_mirrors), in the order first given.
  returned: when O(registry_mirrors) is given; when the task fails too
  type: list
  elements: dict
  contains:
    fields:
      description: The settings of the mirrors this entry stands for.
      type: list
      elements: str
      sample: ['registry_mirrors["docker.io"][0]', 'registry_mirrors["*"].mirrors[0]']
    url:
      description: The mirror's C(/v2/) URL.
      type: str
      sample: https://harbor.example/v2/
    status:
      description: HTTP status of C(/v2/), or null when no HTTP answer came.
      type: int
      sample: 200
    repo_path_status:
      description:
        - HTTP status of the C(repo_path) check, or null when the mirror has no C(repo_path) or it was not reached.
      type: int
      sample: 404
    msg:
      description: Why the mirror failed, naming its settings.
      type: str
      returned: when it failed
ca_content:
  description:
    - The PEM text of the CA that was checked (a CA is public), with a final newline, to hand to
      M(kubenode.registry_mirror.containerd_hosts) as its
      O(kubenode.registry_mirror.containerd_hosts#module:ca_content).
  returned: when a CA option was given and the CA passed its checks
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    ARGUMENT_SPEC as CA_ARGUMENT_SPEC,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    CA_FIELDS,
    CaError,
    CaFields,
    check_readable,
    get_ca,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import REQUIRED_TOGETHER
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._preflight import (
    PreflightError,
    Target,
    check_repo_path,
    check_v2,
    tls_context,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    basic_auth,
    normalize_url,
)


def _checked_ca(module):
    """The CA the options give, got and checked (None without one); fail the module when it is unusable."""
    params = module.params
    if params["ca_content"] is None and params["ca_url"] is None and params["ca_file"] is None:
        return None
    try:
        ca = get_ca(params["ca_file"], params["ca_content"], params["ca_url"], params["ca_validate_certs"],
                    params["timeout"], params["warn_days"], fields=CA_FIELDS)
        if params["ca_readable_by"] is not None:
            check_readable(params["ca_file"], params["ca_readable_by"], "ca_readable_by")
    except CaError as error:
        module.fail_json(msg=str(error), status=None)
    for warning in ca.warnings:
        module.warn(warning)
    return ca


def _mirror_target(module, mirror):
    """The Target of one distinct mirror of registry_mirrors: its CA got and checked, its client pair loaded."""
    params, prefix = module.params, f"{mirror['fields'][0]}."
    ca = None
    if mirror["ca_file"] is not None or mirror["ca_content"] is not None:
        fields = CaFields(f"{prefix}ca_file", f"{prefix}ca_content", f"{prefix}ca_url", "ca_readable_by")
        try:
            ca = get_ca(mirror["ca_file"], mirror["ca_content"], timeout=params["timeout"],
                        warn_days=params["warn_days"], fields=fields)
        except CaError as error:
            raise PreflightError(str(error)) from None
        for warning in ca.warnings:
            module.warn(f"{', '.join(mirror['fields'])}: {warning}")
    client, client_field = None, None
    if mirror["client_cert_content"] is not None:
        client = ("content", mirror["client_cert_content"], mirror["client_key_content"])
        client_field = f"{prefix}client_cert_content"
    elif mirror["client_cert"] is not None:
        client, client_field = ("paths", mirror["client_cert"], mirror["client_key"]), f"{prefix}client_cert"
    context = None
    if mirror["url"].startswith("https://"):
        context = tls_context(mirror["skip_tls"], None if mirror["skip_tls"] else ca, client, prefix)
    return Target(f"{mirror['url']}/v2/", mirror["username"], mirror["authorization"], context,
                  None if mirror["skip_tls"] else ca, prefix, client_field)


def _check_mirror(module, mirror):
    """Check one distinct mirror of registry_mirrors; return its result entry (with msg when it failed)."""
    result = {"fields": mirror["fields"], "url": f"{mirror['url']}/v2/", "status": None, "repo_path_status": None}
    try:
        target = _mirror_target(module, mirror)
        result["status"] = check_v2(target, module.params["timeout"])
        if mirror["repo_path"]:
            result["repo_path_status"] = check_repo_path(target, mirror["repo_path"], module.params["timeout"])
    except PreflightError as error:
        result["msg"] = f"{' and '.join(mirror['fields'])}: {error}"
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            CA_ARGUMENT_SPEC,
            url=dict(type="str", aliases=["customRegistryUrl"]),
            username=dict(type="str", aliases=["customRegistryUsername"]),
            password=dict(type="str", no_log=True, aliases=["customRegistryPassword"]),
            skip_tls=dict(type="bool", default=False, aliases=["customRegistrySkipTls"]),
            ca_file=dict(type="path"),
            timeout=dict(type="int", default=10),
            warn_days=dict(type="int", default=30),
            registry_mirrors=dict(type="dict", default={}),
            upstream_fallback=dict(type="bool", default=True),
            # set by the action plugin: the distinct mirrors of registry_mirrors, and the secrets they hold
            _mirrors=dict(type="list", elements="dict", default=[]),
            _secrets=dict(type="list", elements="str", no_log=True),
        ),
        required_together=REQUIRED_TOGETHER,
        mutually_exclusive=[["ca_content", "ca_file", "ca_url"]],
        required_by={"ca_readable_by": "ca_file"},
        supports_check_mode=True,
    )
    params = module.params
    if params["registry_mirrors"] and not params["_mirrors"]:
        module.fail_json(msg="registry_preflight must run through its action plugin, which reads registry_mirrors",
                         status=None)
    _http.refuse_url_credentials(module, ["url"], hint="; use username and password", status=None)
    _http.refuse_url_credentials(module, ["ca_url"], hint="; a CA certificate is public", status=None)
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout: must be positive", status=None)
    if params["warn_days"] < 0:
        module.fail_json(msg="warn_days: must not be negative", status=None)
    if params["ca_file"] is not None and not os.path.isabs(params["ca_file"]):
        module.fail_json(msg=f"ca_file: {params['ca_file']!r} must be an absolute path", status=None)
    ca_given = params["ca_content"] is not None or params["ca_url"] is not None or params["ca_file"] is not None
    if params["url"] is None and not ca_given and not params["_mirrors"]:
        module.fail_json(msg="url: required, unless only a CA is checked (ca_content, ca_url or ca_file) or "
                         "registry_mirrors is given", status=None)
    result = dict(changed=False, status=None)
    ca = _checked_ca(module)
    if ca is not None:
        result["ca_content"] = ca.text
    if params["url"] is not None:
        try:
            server = normalize_url(params["url"])[0]
        except RegistrySettingError as error:
            module.fail_json(msg=str(error), status=None)
        result["url"] = url = f"{server}/v2/"
        username = params["username"]
        try:
            authorization = None if username is None else basic_auth(username, params["password"])
        except RegistrySettingError as error:
            module.fail_json(msg=str(error), status=None, url=url)
        try:
            target = Target(url, username, authorization, None, ca, "", None)
            if url.startswith("https://"):
                target = target._replace(context=tls_context(params["skip_tls"], ca))
            result["status"] = check_v2(target, params["timeout"])
        except PreflightError as error:
            module.fail_json(msg=str(error), status=error.status, url=url)
    if params["_mirrors"]:
        result["mirrors"] = [_check_mirror(module, mirror) for mirror in params["_mirrors"]]
        failed = [mirror["msg"] for mirror in result["mirrors"] if "msg" in mirror]
        if failed:
            count = len(result["mirrors"])
            module.fail_json(msg=f"{len(failed)} of {count} mirror{'s' if count > 1 else ''} of registry_mirrors "
                             f"failed the preflight. " + " ".join(f"{message}." for message in failed), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
