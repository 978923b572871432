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
    M(kubenode.registry_mirror.containerd_hosts). Without O(url), only the CA is checked.
  - Read-only; it runs in check mode too.
  - The option names of the Platform9 (PMK) cluster API are accepted as aliases.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - kubenode.registry_mirror.ca
  - ansible.builtin.action_common_attributes
  - kubenode.registry_mirror.attributes.no_files
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
      - Without it, only the CA is got and checked; then a CA option is required.
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
import ssl

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    ARGUMENT_SPEC as CA_ARGUMENT_SPEC,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    CA_FIELDS,
    CaError,
    check_readable,
    get_ca,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import REQUIRED_TOGETHER
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    basic_auth,
    normalize_url,
)

USER_AGENT = "kubenode.registry_mirror-registry_preflight"
MAX_BODY = 65536  # the body of /v2/ is not needed; at most this much is read
# OpenSSL verify codes that mean the certificate does not name the host we called
_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_EXPIRED = (10,)  # X509_V_ERR_CERT_HAS_EXPIRED


class PreflightError(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _tls_context(params, ca):
    if params["skip_tls"]:
        return _http.tls_context(verify=False)
    if ca is None:
        return _http.tls_context()
    try:
        return _http.tls_context(cadata=ca.text)
    except ssl.SSLError as error:
        raise PreflightError(f"{ca.source}: OpenSSL cannot load it ({error})") from None


def _tls_message(url, error, ca):
    reason = getattr(error, "verify_message", None) or getattr(error, "reason", None) or str(error)
    code = getattr(error, "verify_code", None)
    if code in _NAME_MISMATCH:
        return (
            f"TLS verification of {url} failed: the mirror's certificate is not valid for the host in url "
            f"({reason}); use a name or address its certificate holds"
        )
    if code in _EXPIRED:
        return f"TLS verification of {url} failed: the mirror's certificate or its CA has expired ({reason})"
    if ca is None:
        return (
            f"TLS verification of {url} failed: the CA does not match the mirror's certificate ({reason}); "
            "the system trust store was used: give the mirror's CA in ca_content or ca_file"
        )
    return (
        f"TLS verification of {url} failed: the CA does not match the mirror's certificate ({reason}); "
        "give the CA that signed the mirror's certificate"
    )


def _http_error_message(url, status, reason, headers, username, location=None):
    challenge = headers.get("WWW-Authenticate") if headers is not None else None
    challenge = f" (it asks for: {challenge.split(',')[0]})" if challenge else ""
    if status == 401:
        if username is not None:
            return f"the mirror rejected the credentials for user {username!r} at {url} (HTTP 401){challenge}"
        return f"the mirror requires credentials: {url} answered HTTP 401{challenge}; set username and password"
    if status == 403:
        who = f"user {username!r}" if username is not None else "anonymous access"
        return f"the mirror forbids {who} at {url} (HTTP 403 Forbidden)"
    if 300 <= status < 400:
        if location is None and headers is not None:
            location = headers.get("Location")
        to = f" to {_http.display_url(location)}" if location else ""
        return f"{url} redirects{to} (HTTP {status}); point url at the mirror itself"
    return f"{url} answered HTTP {status} {reason}".rstrip() + "; a registry answers 200"


def _unreachable(url, reason):
    return f"the mirror at {url} is unreachable ({reason})"


def preflight(params, url, username, authorization, ca=None):
    """Call url once; return the status on HTTP 200, raise PreflightError otherwise."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    timeout = params["timeout"]
    try:
        response = _http.request(
            "GET",
            url,
            timeout=timeout,
            max_bytes=MAX_BODY,
            truncate=True,  # only the status matters
            headers=headers,
            context=_tls_context(params, ca) if url.startswith("https://") else None,
            redirects=_http.NO_REDIRECTS,  # the credentials go to url only
        )
    except _http.HttpRedirectError as error:
        raise PreflightError(
            _http_error_message(url, error.status, "", None, username, location=error.location), status=error.status
        ) from None
    except _http.HttpTimeout as error:
        if error.phase in ("while connecting", "during the TLS handshake"):
            raise PreflightError(_unreachable(url, f"no answer within {timeout} seconds; {error.reason}")) from None
        raise PreflightError(
            f"the mirror at {url} is too slow: no complete answer within {timeout} seconds ({error.reason})"
        ) from None
    except _http.HttpTlsError as error:
        if error.verify:
            raise PreflightError(_tls_message(url, error.cause, ca)) from None
        raise PreflightError(f"TLS handshake with {url} failed ({error.cause}); is it an https endpoint?") from None
    except _http.HttpProtocolError as error:
        what = f"{type(error.cause).__name__}: {error.cause}"
        raise PreflightError(f"{url} did not answer HTTP ({what}); is it a registry?") from None
    except _http.HttpConnectError as error:
        if error.dns:
            raise PreflightError(_unreachable(url, f"the name does not resolve: {error.cause}")) from None
        raise PreflightError(_unreachable(url, error.cause)) from None
    except _http.HttpError as error:
        raise PreflightError(_unreachable(url, error.reason)) from None
    if response.status != 200:
        raise PreflightError(
            _http_error_message(url, response.status, response.reason, response.headers, username),
            status=response.status,
        )
    return response.status


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
        ),
        required_together=REQUIRED_TOGETHER,
        mutually_exclusive=[["ca_content", "ca_file", "ca_url"]],
        required_by={"ca_readable_by": "ca_file"},
        supports_check_mode=True,
    )
    params = module.params
    _http.refuse_url_credentials(module, ["url"], hint="; use username and password", status=None)
    _http.refuse_url_credentials(module, ["ca_url"], hint="; a CA certificate is public", status=None)
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout: must be positive", status=None)
    if params["warn_days"] < 0:
        module.fail_json(msg="warn_days: must not be negative", status=None)
    if params["ca_file"] is not None and not os.path.isabs(params["ca_file"]):
        module.fail_json(msg=f"ca_file: {params['ca_file']!r} must be an absolute path", status=None)
    if params["url"] is None:
        if params["ca_content"] is None and params["ca_url"] is None and params["ca_file"] is None:
            module.fail_json(msg="url: required, unless only a CA is checked (ca_content, ca_url or ca_file)",
                             status=None)
        ca = _checked_ca(module)
        module.exit_json(changed=False, status=None, ca_content=ca.text)
    try:
        server = normalize_url(params["url"])[0]
    except RegistrySettingError as error:
        module.fail_json(msg=str(error), status=None)
    url = f"{server}/v2/"
    username = params["username"]
    try:
        authorization = None if username is None else basic_auth(username, params["password"])
    except RegistrySettingError as error:
        module.fail_json(msg=str(error), status=None, url=url)
    ca = _checked_ca(module)
    try:
        status = preflight(params, url, username, authorization, ca)
    except PreflightError as error:
        module.fail_json(msg=str(error), status=error.status, url=url)
    result = dict(changed=False, status=status, url=url)
    if ca is not None:
        result["ca_content"] = ca.text
    module.exit_json(**result)


if __name__ == "__main__":
    main()
