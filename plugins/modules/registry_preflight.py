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
  - A mirror with token authentication (Harbor, a Docker distribution registry in C(auth=token) mode) answers
    HTTP 401 with a C(WWW-Authenticate) C(Bearer realm=...,service=...) challenge. Then, as containerd's resolver
    does, a token is asked from the realm for the request's scope (C(repository:<repo_path>/<repository>:pull),
    or the challenge's own scope for C(/v2/)) and the request is sent again with it (a C(Bearer) header);
    that answer is judged. Without credentials the token is asked anonymously (C(GET <realm>?service=&scope=)),
    so a public Harbor proxy-cache project passes and a private one fails saying credentials are needed. With
    credentials, the OAuth2 password grant is sent first (C(POST <realm>), form C(grant_type=password),
    C(username), C(password), C(service), C(scope), C(client_id=containerd-client)), and C(GET) with the HTTP
    Basic header only when that POST is answered 400, 401, 404 or 405, as containerd does; a token service that
    refuses the credentials fails the task naming the settings that hold them. The token is read from the
    answer's C(token) or C(access_token), within the same O(timeout) and size bounds as every other request,
    and is never shown. A 401 with a Basic challenge fails as before.
  - The realm is checked before any request goes there, even an anonymous one. It must be on the mirror's own
    host (its host name, on any port; see O(token_realms)) or on a host of O(token_realms) (a
    C(token_realms) of the mirror in O(registry_mirrors)), and https unless the mirror itself is http.
    Otherwise the task fails naming the realm and the setting, so that no credentials for that mirror are
    written to the node, where containerd would send them to any realm the mirror names.
  - With a CA (O(ca_content), O(ca_url) or O(ca_file)), first gets it and checks it as
    M(kubenode.registry_mirror.ca_certificate) does (a PEM bundle of X.509 certificates, none expired
    (or, not a CA certificate, not checked),
    readable by O(ca_readable_by), and, with O(ca_sha256), exactly the pinned certificates), then verifies the
    mirror with it, and returns its text in RV(ca_content),
    so that the CA is downloaded once per run and handed on to
    M(kubenode.registry_mirror.containerd_hosts). Without O(url) and O(registry_mirrors), only the CA is checked.
  - With O(registry_mirrors), also calls every distinct mirror (its URL, CA, client certificate and key,
    credentials, C(skip_tls) and C(repo_path); mirrors alike in all of these are called once) from the node as
    containerd will. C(GET <url>/v2/) must answer HTTP 200, verified with the mirror's CA (its C(ca_file) or
    C(ca_content), which must match its C(ca_sha256) when it has one) and with its client certificate
    (C(client_cert)/C(client_key) on the node, or
    C(client_cert_content)/C(client_key_content), loaded from a private temporary directory that is removed
    afterwards). With a C(repo_path), C(GET <url>/v2/<repo_path>/kubenode-preflight-probe/tags/list) must answer
    HTTP 200 or 404 - a registry answers 404 for a repository it does not hold, Harbor under a project that
    exists - and fails on 401 or 403 (Harbor's answer for a project that does not exist, or that the credentials
    may not pull from) and anything else. Every mirror is checked; the task fails when one of them failed, naming
    each by its setting (for example C(registry_mirrors["docker.io"][0])) and saying what to fix.
  - With mirrors to check (O(url) or O(registry_mirrors)), also checks the node's sandbox ("pause") image, which
    every new pod sandbox pulls with the node's credentials only - O(sandbox_image), or, when it is empty, the one
    containerd's effective configuration names (C(containerd --config <containerd_config> config dump);
    C(sandbox_image) on containerd 1.x, C(pinned_images.sandbox) on 2.x). When its registry is served by mirrors -
    its own entry of O(registry_mirrors), the C(*) entry, or one of O(registries) of the mirror of O(url) - each of
    those mirrors is asked, in the order of its C(hosts.toml) and only if its capabilities let containerd use it,
    C(HEAD <mirror>/v2/[<repo_path>/]<repository>/manifests/<tag or digest>?ns=<registry>) as containerd's resolver
    asks it (its C(Accept) header for manifests, manifest lists and OCI indexes; the mirror's CA, client certificate
    and credentials; the same deadline). The first HTTP 200 passes. When none answers 200 and the registry serves
    only from its mirrors (O(upstream_fallback=false), or its own C(upstream_fallback)), the task fails naming the
    image and every mirror URL tried with its answer, before anything changes, since no new pod could start on the
    node; when containerd may go on to the registry itself, a warning says so instead.
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
  repo_path:
    description:
      - The repository path under O(url) that the mirror of O(url) serves its registries from, as
        M(kubenode.registry_mirror.containerd_hosts) writes it (C(override_path)). With O(url), it is checked as a
        C(repo_path) of O(registry_mirrors) is (C(GET <url>/v2/<repo_path>/kubenode-preflight-probe/tags/list) must
        answer HTTP 200 or 404), and the sandbox image's manifest is asked for under it.
    type: str
    default: ""
    aliases: [customRegistryRepoPath, customRegistryPath]
  token_realms:
    description:
      - The hosts, besides the mirror's own, whose token service (the realm of a C(Bearer) challenge) may be asked
        for a token for the mirror of O(url), with its credentials, as C(host) (any port) or C(host:port) (that
        port only; 443 for an https realm without a port, 80 for http). IPv6 addresses in brackets.
      - A realm on the mirror's own host name needs no entry, whatever its port, since a registry's token service
        is very often the same machine on another port (Harbor, distribution) and an https realm's certificate
        is verified for the host name, not the port. Any other realm fails the preflight, before any request is
        sent to it.
      - A mirror of O(registry_mirrors) has its own C(token_realms).
    type: list
    elements: str
    default: []
  registries:
    description:
      - The registries the mirror of O(url) serves, as M(kubenode.registry_mirror.containerd_hosts) takes them; they
        say which mirrors the sandbox image is asked for on.
    type: list
    elements: str
    default: [platform9.io, docker.io, gcr.io, quay.io, registry.k8s.io]
  sandbox_image:
    description:
      - The node's sandbox image, for example C(registry.k8s.io/pause:3.6); a valid image reference. When empty, it
        is read on the node from C(containerd config dump), when there are mirrors to check it on.
      - When it cannot be read (containerd not installed, the command failing, no sandbox image in its output), the
        task fails if a registry serves only from mirrors, and warns otherwise.
    type: str
  containerd_config:
    description:
      - containerd's config.toml on the node, which C(containerd config dump) reads with what it imports.
    type: str
    default: /etc/containerd/config.toml
  _routes:
    description:
      - Internal, set by the action plugin; which mirrors serve each registry. Do not set.
    type: list
    elements: dict
    default: []
  _mirrors:
    description:
      - Internal, set by the action plugin; the distinct mirrors of O(registry_mirrors). Do not set.
    type: list
    elements: dict
    default: []
  _secrets:
    type: list
    elements: str
    description:
      - Internal, set by the action plugin; the header values and client keys to mask. Do not set.
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

- name: Before an air-gapped rollout, make sure the mirror holds the sandbox image the nodes need
  kubenode.registry_mirror.registry_preflight:
    url: https://10.101.101.100:443
    repo_path: infra/k8s
    ca_file: /usr/local/share/reg-ca.crt
    upstream_fallback: false
    sandbox_image: registry.k8s.io/pause:3.6

- name: A Harbor with token authentication whose token service is on another host of the site
  kubenode.registry_mirror.registry_preflight:
    url: https://harbor.example
    repo_path: dockerhub-proxy
    username: robot$proxy
    password: "{{ harbor_robot_password }}"
    token_realms: [auth.harbor.example]

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
repo_path_status:
  description:
    - HTTP status of the O(repo_path) check of the mirror of O(url) (200 or 404 pass); absent without O(url) or
      O(repo_path).
  returned: when O(url) and O(repo_path) are given and the mirror answered its C(/v2/)
  type: int
  sample: 404
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
sandbox:
  description: The node's sandbox image and what its registry's mirrors answered for it.
  returned: when there are mirrors to check it on and it could be read
  type: dict
  contains:
    image:
      description: The sandbox image, as given or read.
      type: str
      sample: registry.k8s.io/pause:3.6
    source:
      description: Where it came from - V(sandbox_image), or the key of C(containerd config dump) it was read from.
      type: str
      sample: 'containerd config dump: plugins."io.containerd.grpc.v1.cri".sandbox_image'
    reference:
      description: The image's full reference, as containerd reads it.
      type: str
      sample: docker.io/library/pause:3.6
    served_by:
      description:
        - The setting whose mirrors serve its registry, for example V(url) or V(registry_mirrors["*"]); null when no
          mirror does (containerd pulls it as before), and nothing was asked.
      type: str
      sample: registry_mirrors["registry.k8s.io"]
    upstream_fallback:
      description: Whether containerd may go on to the registry itself after the mirrors; null when no mirror serves it.
      type: bool
      sample: false
    found:
      description: Whether a mirror answered 200 for its manifest; null when nothing was asked.
      type: bool
      sample: true
    tried:
      description: Each mirror asked, in order, up to the first that has it.
      type: list
      elements: dict
      contains:
        url:
          description: The URL of the C(HEAD) request.
          type: str
          sample: https://10.101.101.100:443/v2/infra/k8s/pause/manifests/3.6?ns=registry.k8s.io
        field:
          description: The setting of the mirror.
          type: str
          sample: url
        status:
          description: The HTTP status, or null when no HTTP answer came.
          type: int
          sample: 200
        why:
          description: What the mirror answered when it was not HTTP 200.
          type: str
          sample: https://10.101.101.100:443/v2/infra/k8s/pause/manifests/3.6?ns=registry.k8s.io answered HTTP 404
ca_content:
  description:
    - The PEM text of the CA that was checked (a CA is public), with a final newline, to hand to
      M(kubenode.registry_mirror.containerd_hosts) as its
      O(kubenode.registry_mirror.containerd_hosts#module:ca_content).
  returned: when a CA option was given and the CA passed its checks
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _sandbox_image as sandbox
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    CA_FIELDS,
    CaError,
    CaFields,
    check_pin_option,
    checked_ca,
    get_ca,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import dump_argv
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import parse_image_reference
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._preflight import (
    PreflightError,
    Target,
    check_manifest,
    check_repo_path,
    check_v2,
    tls_context,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    basic_auth,
    normalize_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    check_node_paths,
    check_value,
    module_argument_spec,
    module_rules,
)

# Where a node's own binaries are when the module's PATH (a non-login shell's) misses them.
_EXTRA_DIRS = ["/usr/local/bin"]
# timeout(1)'s grace before SIGKILL, for a containerd that ignores SIGTERM.
_KILL_AFTER = "5"


# The pin named as the containerd_mirror role names it too, as the messages about the token realms are.
_CA_FIELDS = CA_FIELDS._replace(sha256="ca_sha256 (containerd_mirror_ca_sha256 in the containerd_mirror role)")


def _checked_ca(module):
    """The CA the options give, got and checked (None without one); fail the module when it is unusable."""
    params = module.params
    if params["ca_content"] is None and params["ca_url"] is None and params["ca_file"] is None:
        return None
    try:  # ca_readable_by needs ca_file, which excludes ca_content and ca_url: the file is checked
        ca = checked_ca(params["ca_file"], params["ca_content"], params["ca_url"], params["ca_validate_certs"],
                        params["ca_readable_by"], params["timeout"], params["warn_days"], fields=_CA_FIELDS,
                        sha256=params["ca_sha256"])
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
        fields = CaFields(f"{prefix}ca_file", f"{prefix}ca_content", f"{prefix}ca_url", "ca_readable_by",
                          f"{prefix}ca_sha256")
        try:
            ca = get_ca(mirror["ca_file"], mirror["ca_content"], timeout=params["timeout"],
                        warn_days=params["warn_days"], fields=fields, sha256=mirror.get("ca_sha256"))
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
                  None if mirror["skip_tls"] else ca, prefix, client_field, tuple(mirror.get("token_realms") or ()))


def _check_mirror(module, mirror):
    """Check one distinct mirror of registry_mirrors; return its result entry (with msg when it failed) and its
    Target (None when it could not be made)."""
    result = {"fields": mirror["fields"], "url": f"{mirror['url']}/v2/", "status": None, "repo_path_status": None}
    target = None
    try:
        target = _mirror_target(module, mirror)
        result["status"] = check_v2(target, module.params["timeout"])
        if mirror["repo_path"]:
            result["repo_path_status"] = check_repo_path(target, mirror["repo_path"], module.params["timeout"])
    except PreflightError as error:
        result["msg"] = f"{' and '.join(mirror['fields'])}: {error}"
    return result, target


def _read_sandbox_image(module):
    """(image, source, why): the sandbox image containerd's effective configuration names, or why it is not known."""
    containerd = module.get_bin_path("containerd", opt_dirs=_EXTRA_DIRS)
    if containerd is None:
        argv = dump_argv("containerd", module.params["containerd_config"])
        return None, None, f"`{' '.join(argv)}` cannot run: containerd is not installed (no containerd program on PATH)"
    argv = dump_argv(containerd, module.params["containerd_config"])
    rc, out, err = module.run_command(["timeout", "-k", _KILL_AFTER, str(module.params["timeout"]), *argv])
    if rc != 0:
        said = " ".join((err or out).split())[:500]
        return None, None, f"`{' '.join(argv)}` failed (exit {rc}{': ' + said if said else ''})"
    image, source = sandbox.sandbox_image_of(out)
    if image is None:
        return None, None, f"`{' '.join(argv)}` names no sandbox image (sandbox_image, pinned_images.sandbox)"
    return image, source, None


def _check_sandbox(module, routes, targets, result):
    """Ask the mirrors of the sandbox image's registry for its manifest; fail or warn when none has it."""
    params = module.params
    # the settings of registries served only from mirrors: for them the image must be known and found
    strict = list(dict.fromkeys(route["field"] for route in routes
                                if route["mirrors"] and not route["upstream_fallback"]))
    image, source, why = params["sandbox_image"], "sandbox_image", None
    if not image:
        image, source, why = _read_sandbox_image(module)
    reference = None
    if why is None:
        try:  # the option was checked first; what the node's configuration names is checked here
            reference = parse_image_reference(image, source)
        except RegistrySettingError as error:
            why = str(error)
    if reference is None:
        if strict:
            module.fail_json(msg=sandbox.unread_message(why, strict), **result)
        module.warn(sandbox.unread_message(why, strict))
        return
    route = sandbox.route_for(routes, reference)
    served = route is not None and bool(route["mirrors"])
    checked = result["sandbox"] = {
        "image": image, "source": source, "reference": str(reference),
        "served_by": route["field"] if served else None,
        "upstream_fallback": route["upstream_fallback"] if served else None,
        "found": None, "tried": [],
    }
    if not served:
        return  # no mirror serves its registry: containerd pulls it as it did before
    for mirror in sandbox.eligible_mirrors(route, reference):
        target = targets[mirror["target"]]
        url = sandbox.manifest_url(target.url, mirror["repo_path"], reference)
        try:
            status, why = check_manifest(target, url, sandbox.MANIFEST_ACCEPT, params["timeout"])
        except PreflightError as error:
            status, why = error.status, str(error)
        checked["tried"].append(dict({"url": url, "field": mirror["field"], "status": status},
                                     **({"why": why} if why else {})))
        if status == 200:
            checked["found"] = True
            return
    checked["found"] = False
    if route["upstream_fallback"]:
        module.warn(sandbox.fallback_warning(image, source, reference, route, checked["tried"]))
        return
    module.fail_json(msg=sandbox.failure_message(image, source, reference, route, checked["tried"]), **result)


def _check_params(module):
    """Fail the module, with status None, on options that cannot be used, before any request."""
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
    ca_given = params["ca_content"] is not None or params["ca_url"] is not None or params["ca_file"] is not None
    try:
        check_node_paths("registry_preflight", params)
        params["token_realms"] = check_value("token_realms", params["token_realms"])
        params["ca_sha256"] = check_pin_option(params["ca_sha256"], ca_given, "ca_sha256",
                                               ("ca_content", "ca_url", "ca_file"))
    except RegistrySettingError as error:
        module.fail_json(msg=str(error), status=None)
    if params["url"] is None and not ca_given and not params["_mirrors"]:
        module.fail_json(msg="url: required, unless only a CA is checked (ca_content, ca_url or ca_file) or "
                         "registry_mirrors is given", status=None)


def _check_url(module, ca, result):
    """Call the mirror of url (its /v2/ into result); return its Target, or fail the module."""
    params = module.params
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
        target = Target(url, username, authorization, None, ca, "", None, tuple(params["token_realms"]))
        if url.startswith("https://"):
            target = target._replace(context=tls_context(params["skip_tls"], ca))
        result["status"] = check_v2(target, params["timeout"])
        if params["repo_path"]:  # normalised by the action plugin, as containerd_hosts writes it
            result["repo_path_status"] = check_repo_path(target, params["repo_path"], params["timeout"])
    except PreflightError as error:
        module.fail_json(msg=str(error), status=error.status, url=url)
    return target


def _check_mirrors(module, result, targets):
    """Call every distinct mirror of registry_mirrors (into result and targets); fail the module when any failed."""
    checked = [_check_mirror(module, mirror) for mirror in module.params["_mirrors"]]
    result["mirrors"] = [mirror for mirror, _target in checked]
    targets.update((index, target) for index, (_mirror, target) in enumerate(checked))
    failed = [mirror["msg"] for mirror in result["mirrors"] if "msg" in mirror]
    if failed:
        count = len(result["mirrors"])
        module.fail_json(msg=f"{len(failed)} of {count} mirror{'s' if count > 1 else ''} of registry_mirrors "
                         f"failed the preflight. " + " ".join(f"{message}." for message in failed), **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            module_argument_spec("registry_preflight"),
            # set by the action plugin: the distinct mirrors of registry_mirrors, the secrets they hold, and which
            # mirrors serve each registry
            _mirrors=dict(type="list", elements="dict", default=[]),
            _secrets=dict(type="list", elements="str", no_log=True),
            _routes=dict(type="list", elements="dict", default=[]),
        ),
        **module_rules("registry_preflight"),
        supports_check_mode=True,
    )
    params = module.params
    _check_params(module)
    result = dict(changed=False, status=None)
    if params["sandbox_image"]:
        try:  # before any request: a bad reference is refused first
            parse_image_reference(params["sandbox_image"], "sandbox_image")
        except RegistrySettingError as error:
            module.fail_json(msg=str(error), **result)
    targets = {}  # the Target of each mirror the routes name: an index of _mirrors, or None for url's
    ca = _checked_ca(module)
    if ca is not None:
        result["ca_content"] = ca.text
    if params["url"] is not None:
        targets[None] = _check_url(module, ca, result)
    if params["_mirrors"]:
        _check_mirrors(module, result, targets)
    # The routes name the mirror of url only when it was given, and every mirror passed /v2/ by now.
    routes = [route for route in params["_routes"] if all(m["target"] in targets for m in route["mirrors"])]
    if routes:
        _check_sandbox(module, routes, targets, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
