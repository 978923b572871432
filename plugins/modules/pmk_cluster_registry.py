#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pmk_cluster_registry
short_description: Set the registry mirror (customRegistry* fields) of an existing Platform9 PMK cluster
version_added: 1.0.0
description:
  - Reads an existing Platform9 Managed Kubernetes (PMK) cluster through the Qbert API
    (C(GET {api_url}/qbert/v4/{project_id}/clusters/{cluster_uuid})) and, when its C(customRegistry*)
    fields differ from the ones the task sets, writes them with a cluster update
    (C(PUT .../clusters/{cluster_uuid})) or a cluster upgrade
    (C(POST .../clusters/{cluster_uuid}/upgrade?type={upgrade_type}&force={force})).
  - The request body holds the seed's field names and JSON types, C(customRegistryUrl),
    C(customRegistryRepoPath), C(customRegistryUsername), C(customRegistryPassword) (strings),
    C(customRegistrySkipTls), C(customRegistrySelfSignedCerts) (booleans) and C(customRegistryCertPath) (string),
    and only the fields the task sets.
  - Nothing is sent when the cluster already holds the wanted values; URLs and repository paths are compared
    after the normalisation M(kubenode.registry_mirror.containerd_hosts) applies (default C(https) scheme, no
    trailing slash, no surrounding slashes). An unset boolean on the cluster counts as V(false), the API's default.
  - With no registry option set, the module only reads the cluster and returns it.
  - It talks to the API from wherever it runs; use it with C(delegate_to=localhost) and C(run_once=true).
  - "Redirects: the auth token only ever goes to the scheme, host and port of O(api_url). The C(GET) follows a
    redirect (up to 10) to that same scheme, host and port, and fails, naming the status and the C(Location),
    on a redirect anywhere else (another host, another port, or C(http) to C(https)). A C(PUT) or C(POST) is
    never redirected: a 3xx answer to it fails the task, naming the status and the C(Location); nothing was
    written, and the task does not report a change."
  - The option names of the Platform9 (PMK) cluster API are accepted as aliases of the registry options, as in
    M(kubenode.registry_mirror.containerd_hosts).
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - kubenode.registry_mirror.attributes.no_files
attributes:
  check_mode:
    details: Reads the cluster and reports what would be sent; never writes.
  diff_mode:
    support: full
    details: Before and after of the fields that change; the password is masked on both sides.
  action_group:
    support: none
options:
  api_url:
    description:
      - Base URL of the Platform9 account, for example C(https://example.platform9.net). A path prefix is kept;
        a trailing slash is dropped.
      - Credentials in the URL (C(user:password@host)) are refused, and never shown; the token goes in
        O(auth_token).
    type: str
    required: true
  project_id:
    description:
      - Keystone project (tenant) id of the cluster, the C({projectId}) in the Qbert API paths.
    type: str
    required: true
  cluster_uuid:
    description:
      - UUID of the existing cluster.
    type: str
    required: true
  auth_token:
    description:
      - Keystone token sent as the C(X-Auth-Token) header.
      - When not set, the E(OS_TOKEN) environment variable of the host the module runs on is used.
      - Never shown in results, messages or diffs.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the API's TLS certificate. Only turn this off for test installations.
    type: bool
    default: true
  timeout:
    description:
      - Seconds each API request may take as a whole, from connecting to the last byte of the answer,
        redirects included. An API that answers slowly is given up on when the time is over.
    type: int
    default: 30
  operation:
    description:
      - How the fields are written when they differ.
      - V(update) is the cluster update (C(PUT)); Platform9 documents that the PMK agents must then be restarted
        on every node for the nodes to follow (the C(containerd_mirror) role does that).
      - V(upgrade) is a Kubernetes version upgrade of the cluster (C(POST .../upgrade)), which reconfigures the
        nodes as they are upgraded. It is only started when some field differs.
    type: str
    choices: [update, upgrade]
    default: update
  upgrade_type:
    description:
      - The C(type) query parameter of the upgrade, as the Qbert API knows it (for example V(minor) or V(patch)).
      - Required when O(operation=upgrade); ignored otherwise.
    type: str
  force:
    description:
      - The C(force) query parameter of the upgrade (sent as V(true) or V(false)).
      - Only used when O(operation=upgrade).
    type: bool
    default: false
  url:
    description:
      - URL of the registry mirror, C(https://host[:port]) or C(http://host[:port]), sent as C(customRegistryUrl).
        Without a scheme, C(https) is used. A path is refused; put it in O(repo_path).
      - An empty string clears the field on the cluster. Credentials in the URL are refused.
    type: str
    aliases: [customRegistryUrl]
  repo_path:
    description:
      - Path under the mirror where the images are cached, for example C(infra/k8s), sent as
        C(customRegistryRepoPath). Surrounding slashes are dropped.
      - An empty string clears the field on the cluster.
    type: str
    aliases: [customRegistryRepoPath, customRegistryPath]
  username:
    description:
      - User name for the mirror, sent as C(customRegistryUsername).
    type: str
    aliases: [customRegistryUsername]
  password:
    description:
      - Password for the mirror, sent as C(customRegistryPassword) as O(update_password) says.
      - The API never returns it, so it cannot be compared. Never shown in results, messages or diffs.
    type: str
    aliases: [customRegistryPassword]
  update_password:
    description:
      - V(on_change_of_other_fields) sends O(password) only along with a change of some other field, so a
        password changed alone is not applied.
      - V(always) sends O(password) whenever it is given, so the task reports a change and writes on every run.
    type: str
    choices: [always, on_change_of_other_fields]
    default: on_change_of_other_fields
  skip_tls:
    description:
      - Nodes do not verify the mirror's TLS certificate (C(customRegistrySkipTls)).
    type: bool
    aliases: [customRegistrySkipTls]
  self_signed_certs:
    description:
      - The mirror's certificate is self-signed or signed by a private CA (C(customRegistrySelfSignedCerts)).
    type: bool
    aliases: [customRegistrySelfSignedCerts]
  cert_path:
    description:
      - Where the nodes find the mirror's CA certificate (C(customRegistryCertPath)), either an absolute path
        on the nodes, readable by the C(pf9) user, or an C(https://) or C(http://) URL the nodes fetch it from.
      - An empty string clears the field on the cluster. Credentials in a URL are refused.
    type: str
    aliases: [customRegistryCertPath]
notes:
  - Only the registry fields are changed; the cluster must exist.
  - The module needs no Python library beyond ansible-core and the standard library. Proxies come from the
    environment (C(https_proxy), C(http_proxy), C(no_proxy)).
  - An error message of the API is shown shortened to 500 characters, after the token and the password are
    masked in it.
seealso:
  - module: kubenode.registry_mirror.containerd_hosts
    description: Writes the same settings as containerd hosts.toml files on the nodes.
  - name: Platform9 Qbert API reference
    description: The cluster update, upgrade and read calls.
    link: https://platform9.com/docs/qbert/ref
"""

EXAMPLES = r"""
- name: Point the PMK cluster at the mirror (cluster update)
  kubenode.registry_mirror.pmk_cluster_registry:
    api_url: https://example.platform9.net
    project_id: "{{ pmk_project_id }}"
    cluster_uuid: "{{ pmk_cluster_uuid }}"
    auth_token: "{{ pmk_auth_token }}"
    url: https://10.101.101.100:443
    repo_path: infra/k8s
    username: "{{ mirror_username }}"
    password: "{{ mirror_password }}"
    self_signed_certs: true
    cert_path: /usr/local/share/reg-ca.crt
  delegate_to: localhost
  run_once: true

- name: The same from a cluster.json in the API's own form, applied with the next upgrade
  kubenode.registry_mirror.pmk_cluster_registry:
    api_url: https://example.platform9.net
    project_id: "{{ pmk_project_id }}"
    cluster_uuid: "{{ pmk_cluster_uuid }}"
    operation: upgrade
    upgrade_type: minor
    customRegistryUrl: "{{ cluster.customRegistryUrl }}"
    customRegistryRepoPath: "{{ cluster.customRegistryRepoPath }}"
    customRegistrySkipTls: "{{ cluster.customRegistrySkipTls }}"
  vars:
    cluster: "{{ lookup('ansible.builtin.file', 'cluster.json') | from_json }}"
  environment:
    OS_TOKEN: "{{ pmk_auth_token }}"
  delegate_to: localhost
  run_once: true

- name: Rotate the mirror password (sent, and reported as changed, on every run)
  kubenode.registry_mirror.pmk_cluster_registry:
    api_url: https://example.platform9.net
    project_id: "{{ pmk_project_id }}"
    cluster_uuid: "{{ pmk_cluster_uuid }}"
    auth_token: "{{ pmk_auth_token }}"
    username: "{{ mirror_username }}"
    password: "{{ mirror_password }}"
    update_password: always
  delegate_to: localhost
  run_once: true

- name: Only read the cluster
  kubenode.registry_mirror.pmk_cluster_registry:
    api_url: https://example.platform9.net
    project_id: "{{ pmk_project_id }}"
    cluster_uuid: "{{ pmk_cluster_uuid }}"
    auth_token: "{{ pmk_auth_token }}"
  register: pmk
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
cluster:
  description:
    - The cluster object as the API returned it before any change, without C(customRegistryPassword).
  returned: success
  type: dict
  sample:
    uuid: 6c1a3e2e-8f0c-4b7e-9d3a-0b1f2c3d4e5f
    name: prod
    customRegistryUrl: https://10.101.101.100:443
    customRegistryRepoPath: infra/k8s
registry:
  description:
    - The readable C(customRegistry*) fields as the cluster holds them after the task (with check mode, would
      hold). The password is never included.
  returned: success
  type: dict
  sample:
    customRegistryUrl: https://10.101.101.100:443
    customRegistryRepoPath: infra/k8s
    customRegistryUsername: mirror
    customRegistrySkipTls: false
    customRegistrySelfSignedCerts: true
    customRegistryCertPath: /usr/local/share/reg-ca.crt
changed_fields:
  description:
    - The API fields that were (with check mode, would be) written because they differ. C(customRegistryPassword)
      is listed when the password is sent.
  returned: success
  type: list
  elements: str
  sample: [customRegistryUrl, customRegistryPassword]
request:
  description: The write request made (with check mode, that would be made), without the token or the body.
  returned: when changed
  type: dict
  contains:
    method:
      description: V(PUT) for an update, V(POST) for an upgrade.
      type: str
      sample: PUT
    url:
      description: The request URL.
      type: str
      sample: https://example.platform9.net/qbert/v4/2f1b.../clusters/6c1a...
"""

import json

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pmk_cluster import (
    RegistrySettingError,
    cluster_url,
    connection_error_message,
    http_error_message,
    plan_update,
    redirect_error_message,
    sanitize_cluster,
    upgrade_url,
    wanted_fields,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    PMK_URL_OPTIONS,
    module_argument_spec,
    module_rules,
)

ARGUMENT_SPEC = module_argument_spec("pmk_cluster_registry", env_fallback=env_fallback)
USER_AGENT = "kubenode.registry_mirror-pmk_cluster_registry"
# A cluster object is a few kilobytes; an error body is only read for its message.
MAX_ANSWER = 4 * 1024 * 1024


class QbertClient:
    """The three Qbert calls, failing the module with a message that holds no secret."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.token = params["auth_token"]
        self.secrets = [value for value in (self.token, params["password"]) if value]
        self.project_id = params["project_id"]
        self.cluster_uuid = params["cluster_uuid"]
        self.timeout = params["timeout"]
        https = params["api_url"].lower().startswith("https://")
        self.context = _http.tls_context(verify=params["validate_certs"]) if https else None

    def fail(self, msg):
        self.module.fail_json(msg=msg)

    def request(self, method, url, body=None):
        """Send one request; return the decoded JSON answer of a GET (None for a write).

        A GET follows a redirect to the same scheme, host and port only; a write follows none.
        """
        headers = {"X-Auth-Token": self.token, "Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        try:
            response = _http.request(
                method,
                url,
                timeout=self.timeout,
                max_bytes=MAX_ANSWER,
                headers=headers,
                body=data,
                context=self.context,
                redirects=_http.SAME_ORIGIN,
            )
        except _http.HttpRedirectError as error:
            self.fail(redirect_error_message(method, url, error.status, error.location, error.why, self.secrets))
        except _http.HttpTooLarge:
            self.fail(f"{method} {url} returned more than {MAX_ANSWER} bytes; that is not a cluster object")
        except _http.HttpError as error:
            self.fail(connection_error_message(method, url, error.reason, self.timeout, self.secrets))
        status = response.status
        if status >= 400:
            self.fail(
                http_error_message(method, url, status, response.body, self.project_id, self.cluster_uuid, self.secrets)
            )
        if not 200 <= status < 300:
            self.fail(f"{method} {url} returned HTTP {status}; the Qbert API answers 2xx")
        if method != "GET":
            return None  # what a write answers is not needed, and Qbert's answer differs by call
        raw = response.body
        if not raw.strip():
            self.fail(f"{method} {url} returned HTTP {status} with an empty body instead of the cluster")
        try:
            return json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            self.fail(f"{method} {url} returned HTTP {status} with a body that is not JSON")
        return None  # not reached: fail() exits


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        **module_rules("pmk_cluster_registry"),
        supports_check_mode=True,
    )
    params = module.params
    _http.refuse_url_credentials(module, PMK_URL_OPTIONS)
    try:
        if any(c < " " or c == "\x7f" for c in params["auth_token"]):
            raise RegistrySettingError("auth_token", "must not contain control characters")
        if params["timeout"] <= 0:
            raise RegistrySettingError("timeout", "must be a positive number of seconds")
        wanted = wanted_fields(params)
        read_url = cluster_url(params["api_url"], params["project_id"], params["cluster_uuid"])
        if params["operation"] == "upgrade":
            write_method = "POST"
            write_url = upgrade_url(
                params["api_url"], params["project_id"], params["cluster_uuid"], params["upgrade_type"], params["force"]
            )
        else:
            write_method, write_url = "PUT", read_url
    except RegistrySettingError as error:
        module.fail_json(msg=str(error))

    client = QbertClient(module)
    cluster = client.request("GET", read_url)
    try:
        plan = plan_update(cluster, wanted, params["update_password"])
    except RegistrySettingError as error:
        module.fail_json(msg=f"GET {read_url}: {error}")

    result = dict(
        changed=bool(plan.body),
        cluster=sanitize_cluster(cluster),
        registry=plan.registry_after(),
        changed_fields=plan.changed,
    )
    if plan.body:
        result["request"] = dict(method=write_method, url=write_url)
        if module._diff:
            result["diff"] = dict(plan.diff(), before_header=read_url, after_header=read_url)
        if not module.check_mode:
            client.request(write_method, write_url, plan.body)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
