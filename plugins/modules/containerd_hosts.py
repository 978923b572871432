#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: containerd_hosts
short_description: Point containerd registries at a registry mirror through certs.d hosts.toml files
version_added: 1.0.0
description:
  - Writes C(<config_path>/<registry>/hosts.toml) for every registry in O(registries), plus the mirror's
    own C(host:port) directory, so that containerd pulls their images through the mirror first and then
    through the O(fallbacks).
  - Registries of O(registry_mirrors) get their own mirrors instead, in order (a Harbor proxy-cache project per
    upstream, several mirrors, a wildcard, mTLS), and with O(upstream_fallback=false) never the upstream.
  - A mirror's CA, client certificate and key given as PEM text are written in the same run beside the
    C(hosts.toml) of its registry, which names them (see O(registry_mirrors) and RV(tls_files)).
  - Files of ours left in directories the settings no longer declare are removed (see O(state)).
  - All files of a node are rendered on the controller (with C(tomli-w)), parsed back with C(tomllib) to
    prove containerd can read them, and written by one module call on the node, atomically.
  - The option names of the Platform9 (PMK) cluster API are accepted as aliases.
  - Files are created with mode C(0600) unless O(mode) is set, as they can hold credentials.
  - Every file starts with a comment line that marks it as managed by this collection; O(state=absent)
    removes only files carrying that mark.
  - A C(hosts.toml) this collection did not write is never lost, see O(foreign_files).
  - The CA the files name (O(ca_file)) is checked in the same module run, with every check
    M(kubenode.registry_mirror.ca_certificate) makes, and written there from O(ca_content) or O(ca_url) (mode
    C(0644), missing directories C(0755)). Every check, of the CA and of the files, passes before anything is
    written, so a bad CA fails the task with nothing changed. So does a CA that does not match its pin
    (O(ca_sha256), or a mirror's C(ca_sha256) of O(registry_mirrors), whose C(ca_file) is then checked too).
    The CA is written before the C(hosts.toml) files
    that name it.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - kubenode.registry_mirror.ca
  - kubenode.registry_mirror.registry_mirrors
  - kubenode.registry_mirror.registry_mirrors.containerd_version
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
  - action_common_attributes.files
  - ansible.builtin.action_common_attributes.flow
  - kubenode.registry_mirror.attributes.action
  - kubenode.registry_mirror.attributes.node_files
attributes:
  diff_mode:
    details: Header values (credentials) are masked in the diff.
requirements:
  - C(tomli-w) on the controller.
options:
  url:
    description:
      - URL of the registry mirror, C(https://host[:port]) or C(http://host[:port]). Without a scheme,
        C(https) is used. IPv6 literals go in brackets, for example C(https://[fd00::1]:5000).
      - A path is refused; put it in O(repo_path).
      - The host is a DNS name of at most 253 characters (labels of at most 63), an IPv4 address of four decimal
        octets 0-255, or an IPv6 address in brackets. A host ending in a number must be an IPv4 address, so
        C(999.999.999.999), C(1.2.3.4.5) and C(010.0.0.1) are refused, as URL parsers would read them differently.
      - The port is 1-65535, written without leading zeros (C(:00443) is refused, not read as C(:443)), because
        containerd finds a registry's directory by its C(host:port) text, so one registry has one spelling.
      - Required when O(state=present), unless O(registry_mirrors) is given. With O(state=absent), the mirror's own
        directory is removed too when it is given.
    type: str
    aliases: [customRegistryUrl]
  repo_path:
    description:
      - Path under the mirror where the images are cached, for example C(infra/k8s). Surrounding slashes
        are dropped; empty means the mirror's root.
      - When set, the mirror host is C(<url>/v2/<repo_path>) with C(override_path = true).
    type: str
    default: ""
    aliases: [customRegistryRepoPath, customRegistryPath]
  username:
    description:
      - User name for the mirror. Written as an HTTP Basic C(authorization) header. Requires O(password).
    type: str
    aliases: [customRegistryUsername]
  password:
    description:
      - Password for the mirror. Requires O(username). Never shown in results, logs or diffs.
    type: str
    aliases: [customRegistryPassword]
  skip_tls:
    description:
      - Do not verify the mirror's TLS certificate (C(skip_verify = true)).
    type: bool
    default: false
    aliases: [customRegistrySkipTls]
  ca_file:
    description:
      - Path on the node of the CA certificate that signed the mirror's certificate (C(ca = ...)).
      - Taken literally and must be absolute; C(~) and variables are not expanded (on the controller or the node).
      - Required by O(ca_content), O(ca_url) and O(ca_check).
    type: str
  ca_content:
    description:
      - PEM text of the CA certificate (or a bundle) to write to O(ca_file), for example
        RV(kubenode.registry_mirror.registry_preflight#module:ca_content). A final newline is added when missing.
      - Mutually exclusive with O(ca_url).
    type: str
  ca_url:
    description:
      - C(http://) or C(https://) URL the node downloads the CA certificate from, to write to O(ca_file), as PMK's
        C(customRegistryCertPath) can say; the rules of O(kubenode.registry_mirror.ca_certificate#module:url)
        apply (HTTP 200, at most 1 MiB, within 10 seconds, no credentials in the URL).
      - Mutually exclusive with O(ca_content).
    type: str
  ca_check:
    description:
      - Check the CA already at O(ca_file), which is then never changed - it exists, is a PEM bundle of X.509
        certificates and none has expired (a warning when one expires within 30 days, or is not a CA certificate and
        so has its expiry not checked) - before anything is written.
      - Implied by O(ca_content) and O(ca_url), whose CA is checked the same way before it is written.
      - Without any of the three, O(ca_file) is only named in the files, so that the CA can be placed later.
    type: bool
    default: false
  ca_readable_by:
    description:
      - Name of a user that must be able to read O(ca_file), for example C(pf9), checked before anything is
        written with the permission bits and owners of the file and of every directory leading to it (the file
        this module writes is C(0644), so for it the directories are what is checked).
      - Only with O(ca_content), O(ca_url) or O(ca_check).
    type: str
  registries:
    description:
      - Registries to route through the mirror, one C(host[:port]) directory each. C(_default) is
        containerd's catch-all directory.
      - Each follows the host and port rules of O(url), and is at most 255 characters long (a directory name).
    type: list
    elements: str
    default: [platform9.io, docker.io, gcr.io, quay.io, registry.k8s.io]
  fallbacks:
    description:
      - Hosts tried after the mirror, per registry, as a mapping of registry to a list of URLs.
      - When not set, C(https://dockermirror.platform9.io) for the five default registries, then
        C(https://registry-1.docker.io) for C(docker.io), as Platform9 does. When set, it replaces that
        mapping whole; registries it does not name get no fallback.
    type: dict
  config_path:
    description:
      - containerd's certs.d directory.
      - Taken literally and must be absolute; C(~) and variables are not expanded (on the controller or the node).
    type: str
    default: /etc/containerd/certs.d
  state:
    description:
      - V(present) writes the files; V(absent) removes the ones this collection wrote and leaves any
        other C(hosts.toml) in place.
      - V(present) also removes the files this collection wrote in the other directories of O(config_path) (a
        registry dropped from the settings, the directory of a former O(url)), and puts back a file kept aside there
        (see O(foreign_files)), as V(absent) does; files it did not write are not touched there. So one
        O(config_path) is managed by one task.
      - Except under a C(*) entry of O(registry_mirrors) without upstream fallback, which must serve every registry
        without an entry of its own. containerd takes a registry's own directory over C(_default) as soon as it
        exists, even without a C(hosts.toml), so V(present) then writes C(_default)'s C(hosts.toml) into every other
        directory of O(config_path) too, a file it did not write there kept aside (see O(foreign_files)), so that
        no pull leaves the mirrors.
      - V(absent) removes ours in every directory of O(config_path), and puts back every file kept aside.
      - Where a file was kept aside by V(present) (see O(foreign_files)), V(absent) puts it back in place
        of ours.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description:
      - Keep a timestamped copy of each C(hosts.toml) before it is replaced or removed.
      - A file kept aside by O(foreign_files=adopt) is moved, not replaced, so it gets no copy.
      - The PEM files of O(registry_mirrors) get none, so that no copy of a client key is left behind.
    type: bool
    default: false
  foreign_files:
    description:
      - What O(state=present) does with a C(hosts.toml) this collection did not write (one without its
        marker first line) in a directory where it writes its own.
      - V(adopt) renames that file to C(hosts.toml.before-kubenode) in the same directory, which keeps its
        content, mode and owner, then writes ours, and warns naming both paths. O(state=absent) renames it
        back. containerd reads only C(hosts.toml), so the kept-aside file has no effect meanwhile.
      - Our C(hosts.toml) records the sha256 of the file it kept aside; a C(hosts.toml.before-kubenode) it does not
        record (not kept aside by this collection) is left as it is on both states, with a warning.
      - V(refuse) fails the task naming the file, and nothing is written for any registry.
      - A C(hosts.toml) that M(kubenode.registry_mirror.containerd_config) wrote when it moved a registry's
        legacy CRI C(registry.mirrors) out of C(config.toml) is adopted under both choices, without a
        warning.
    type: str
    choices: [adopt, refuse]
    default: adopt
  _hosts_files:
    description:
      - Internal, set by the action plugin; the rendered files. Do not set.
    type: list
    elements: dict
  _sealed:
    description:
      - Internal, set by the action plugin; the text of C(_default/hosts.toml) when a C(*) entry without upstream
        fallback must serve every registry that has no entry of its own. Do not set.
    type: str
  _secrets:
    description:
      - Internal, set by the action plugin; the header values and client keys to mask. Do not set.
    type: list
    elements: str
  _ca_pins:
    description:
      - Internal, set by the action plugin; the node CA files that mirrors of O(registry_mirrors) pin (C(ca_file)
        with C(ca_sha256)), each with C(path), C(sha256) and C(field), checked before anything is written. Do not
        set.
    type: list
    elements: dict
    default: []
notes:
  - containerd reads certs.d on every pull, so no restart is needed for these files to take effect, as
    long as its CRI registry C(config_path) points at O(config_path).
  - The C(ctr) client ignores certs.d unless given C(--hosts-dir).
  - "Files this collection did not write: O(state=present) never overwrites them in place. Each is kept
    aside as C(hosts.toml.before-kubenode) (status V(adopted)) unless O(foreign_files=refuse) stops the
    task; O(state=absent) puts it back (status V(restored)), so the node pulls as it did before the
    mirror. O(state=absent) leaves a C(hosts.toml) it did not write in place (status V(foreign))."
  - "If C(hosts.toml) is not ours while a kept-aside file already exists (someone replaced our file after
    we kept theirs aside), O(state=present) fails naming both files: a kept-aside file is never
    overwritten."
  - Every file is checked before any is written, so a task that fails for a file it may not replace, a file it
    cannot read (a registry directory that is a file, a C(hosts.toml) that is a directory, a path too long) or an
    O(owner) or O(group) the node does not know writes nothing, for any registry.
  - A file system error while writing (for example permission denied) fails the task with a message naming the
    path and the operation (create directory, write, rename, remove, chown, chmod), never a temporary file. Files
    handled before it stay as they are now; the task then reports C(changed) when any of them changed the node,
    and RV(files) lists what happened to each (V(failed) for the one that failed, V(skipped) for those not
    attempted). An adopted file whose replacement cannot be written is put back.
  - With C(--diff), the diff is made on the controller from the parsed TOML of each file, old and new, and every
    header value of every host table and of the top level is masked, however the file spells it (a table, an
    inline table, dotted keys, multi-line strings). When any of them changed, the new ones read
    V(******** (changed\)). A file that does not parse as TOML is not shown at all, only that it changed.
seealso:
  - name: containerd registry host configuration
    description: The hosts.toml format.
    link: https://github.com/containerd/containerd/blob/main/docs/hosts.md
"""

EXAMPLES = r"""
- name: Pull the five PMK registries through the mirror
  kubenode.registry_mirror.containerd_hosts:
    url: https://10.101.101.100:443
    repo_path: infra/k8s
    username: "{{ mirror_username }}"
    password: "{{ mirror_password }}"
    ca_file: /usr/local/share/reg-ca.crt

- name: The same, straight from a PMK cluster API body
  kubenode.registry_mirror.containerd_hosts:
    customRegistryUrl: "{{ cluster.customRegistryUrl }}"
    customRegistryRepoPath: "{{ cluster.customRegistryRepoPath }}"
    customRegistrySkipTls: "{{ cluster.customRegistrySkipTls }}"

- name: A Harbor proxy-cache project per upstream registry, with a second mirror for docker.io
  kubenode.registry_mirror.containerd_hosts:
    containerd_version: "{{ containerd_read.containerd_version }}"  # registered from containerd_config
    registry_mirrors:
      docker.io:
        - {url: "https://harbor.example", repo_path: dockerhub-proxy, dial_timeout: 3s}
        - {url: "https://cache.example:5000"}
      quay.io:
        - {url: "https://harbor.example", repo_path: quay-proxy}
      ghcr.io:
        - {url: "https://harbor.example", repo_path: ghcr-proxy}

- name: Air-gapped, mTLS to the site registry, no pull ever leaves it; * serves every other registry
  kubenode.registry_mirror.containerd_hosts:
    upstream_fallback: false
    registry_mirrors:
      "*":
        mirrors:
          - url: https://registry.site.internal:5443
            repo_path: all-upstreams
            ca_file: /etc/pki/site/ca.crt
            client_cert: /etc/pki/site/node.crt
            client_key: /etc/pki/site/node.key
        repo_path_for_all: true

- name: Remove the files this collection wrote, and put back the ones it kept aside
  kubenode.registry_mirror.containerd_hosts:
    url: https://10.101.101.100:443
    state: absent

- name: Fail rather than keep aside a hosts.toml this collection did not write
  kubenode.registry_mirror.containerd_hosts:
    url: https://10.101.101.100:443
    foreign_files: refuse
"""

RETURN = r"""
ca:
  description: The CA at O(ca_file), when it was checked (O(ca_content), O(ca_url) or O(ca_check)).
  returned: with O(state=present) and a CA checked
  type: dict
  contains:
    path:
      description: The CA file.
      type: str
      sample: /etc/containerd/certs.d/10.101.101.100:443/ca.crt
    status:
      description:
        - V(created), V(updated) (content or mode) or V(unchanged); V(checked) when only checked (O(ca_check)).
      type: str
      sample: created
    not_after:
      type: str
      sample: "2027-11-28T10:00:00Z"
      description:
        - End of validity of the soonest-expiring certificate, ISO 8601 in UTC.
        - V(null) when no certificate's expiry is checked (none is a CA certificate); so is RV(ca.days_left).
    days_left:
      description: Whole days until the soonest-expiring certificate expires.
      type: int
      sample: 364
    certificates:
      description: How many certificates the CA holds.
      type: int
      sample: 1
    sha256:
      description:
        - The SHA-256 fingerprint of each certificate of the CA, in its order, as C(openssl x509 -noout -fingerprint
          -sha256) prints it; what O(ca_sha256) pins.
      type: list
      elements: str
      sample: ["5D:1E:8F:...:A0"]
tls_files:
  description:
    - One entry per PEM file of O(registry_mirrors) (C(ca_content), C(client_cert_content), C(client_key_content))
      written, kept or removed, in the order handled. Removed are ours (by the marker line) that no mirror gives any
      more, in any directory of O(config_path), and all of ours with O(state=absent).
    - O(mode), O(owner) and O(group) do not apply to these files.
  returned: always; when the task fails, for the files handled before the failure and the rest
  type: list
  elements: dict
  contains:
    registry:
      description: The registry directory the file is in.
      sample: docker.io
      type: str
    name:
      description: The file's name in that directory.
      type: str
      sample: registry.site.internal:5443.client.key
    path:
      description: The file's path.
      type: str
      sample: /etc/containerd/certs.d/docker.io/registry.site.internal:5443.client.key
    status:
      description:
        - V(created), V(updated) (content or mode), V(unchanged) or V(removed); with check mode, what would happen.
        - When the task fails while writing, V(failed) for the file it failed on and V(skipped) for those after it.
      type: str
      sample: created
    msg:
      description: Why the file failed, naming the path and the operation.
      type: str
      returned: with V(failed)
files:
  description: One entry per hosts.toml considered.
  returned: always; when the task fails, for the files handled before the failure and the rest
  type: list
  elements: dict
  contains:
    registry:
      description: The registry directory name.
      type: str
      sample: docker.io
    path:
      description: The file's path.
      type: str
      sample: /etc/containerd/certs.d/docker.io/hosts.toml
    status:
      description:
        - V(created), V(updated) (content or attributes), V(unchanged) or V(removed) (by O(state=present), a file of
          ours in a directory the settings no longer declare).
        - V(adopted) for a file not written by this collection that O(state=present) kept aside (see
          RV(files[].kept_aside)) before writing ours.
        - V(restored) for a kept-aside file that O(state=absent) put back in place of ours (or where
          there was no file), or O(state=present) in a directory the settings no longer declare.
        - V(foreign) for a file not written by this collection that O(state=absent) left in place.
        - With check mode, what would happen.
        - When the task fails while writing, V(failed) for the file it failed on (see RV(files[].msg)) and
          V(skipped) for the files after it, which were not attempted.
      type: str
      sample: created
    kept_aside:
      description:
        - Where the file this collection did not write for this registry is kept while ours is in place.
        - With V(restored), the path it was moved back from.
      type: str
      returned: with V(adopted) and V(restored), and whenever a kept-aside file exists for this registry
      sample: /etc/containerd/certs.d/docker.io/hosts.toml.before-kubenode
    msg:
      description: Why the file failed, naming the path and the operation.
      type: str
      returned: with V(failed)
      sample: "cannot write /etc/containerd/certs.d/docker.io/hosts.toml: permission denied for 'pf9' (uid 1000) in
        /etc/containerd/certs.d/docker.io"
    backup_file:
      description: The backup made before the file was replaced or removed.
      type: str
      returned: when O(backup=true) and a backup was made
      sample: /etc/containerd/certs.d/docker.io/hosts.toml.12345.2026-11-28@10:00:00~
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    CA_FIELDS,
    CA_FILE_MODE,
    CaError,
    CaFields,
    check_pin_option,
    checked_ca,
    get_ca,
    summary,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d import PlanError, ca_step, plan
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d_apply import NodeDisk, apply_plan
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import HOSTS_FILE_NAME
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import FileOperationError, check_owner_group
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    check_absolute,
    module_argument_spec,
    module_rules,
)


def _checked_ca(module):
    """The CA at ca_file (to write from ca_content or ca_url, or only to check), checked; None without one."""
    params = module.params
    placing = params["ca_content"] is not None or params["ca_url"] is not None
    if params["state"] != "present" or not (placing or params["ca_check"]):
        return None
    if params["ca_file"] is None:
        raise CaError("ca_file: required with ca_content, ca_url or ca_check (where the CA is, or is to be written)")
    return checked_ca(params["ca_file"], params["ca_content"], params["ca_url"], params["ca_validate_certs"],
                      params["ca_readable_by"], fields=CA_FIELDS, sha256=params["ca_sha256"])


def _pinned_mirror_cas(module):
    """Check the CA files registry_mirrors' mirrors pin (ca_file with ca_sha256); return the problems."""
    problems = []
    for pinned in module.params["_ca_pins"] if module.params["state"] == "present" else ():
        prefix = f"{pinned['field']}."
        fields = CaFields(f"{prefix}ca_file", f"{prefix}ca_content", None, None, f"{prefix}ca_sha256")
        try:
            ca = get_ca(pinned["path"], fields=fields, sha256=pinned["sha256"])
        except CaError as error:
            problems.append(f"{error}.")
            continue
        for warning in ca.warnings:
            module.warn(warning)
    return problems


def _planned(module):
    """Look at the CA and every file first: (the Plan, the CA or None). A problem stops the task before anything is
    written."""
    params, ca, problems = module.params, None, []
    try:
        ca = _checked_ca(module)
    except CaError as error:
        problems.append(f"{error}.")
    problems += _pinned_mirror_cas(module)
    placing = params["ca_content"] is not None or params["ca_url"] is not None
    step = None if ca is None else ca_step(params["ca_file"], ca.text, ca.before, placing, CA_FILE_MODE)
    try:
        certs_d = plan(NodeDisk(), params["config_path"], params["_hosts_files"], params["state"],
                       params["foreign_files"], params["_sealed"], step)
    except PlanError as error:
        module.fail_json(msg=str(error))
    for warning in certs_d.warnings:
        module.warn(warning)
    problems += certs_d.problems
    if params["state"] == "present" and not problems:
        try:
            check_owner_group(params["owner"], params["group"],
                              os.path.join(params["config_path"], "*", HOSTS_FILE_NAME))
        except FileOperationError as error:
            problems.append(f"{error}.")
    if problems:
        module.fail_json(msg="Nothing was written. " + " ".join(problems), changed=False, files=[], tls_files=[])
    return certs_d, ca


def main():
    argument_spec = dict(
        module_argument_spec("containerd_hosts"),
        _hosts_files=dict(type="list", elements="dict"),
        _sealed=dict(type="str"),
        # the CA files of registry_mirrors' mirrors that a ca_sha256 pins: checked before anything is written
        _ca_pins=dict(type="list", elements="dict", default=[]),
        # every secret the files hold (header values, client keys): masked in whatever the module returns or logs
        _secrets=dict(type="list", elements="str", no_log=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        **module_rules("containerd_hosts"),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if module.params["_hosts_files"] is None:
        module.fail_json(msg="containerd_hosts must run through its action plugin, which renders the files")
    config_path = module.params["config_path"]
    params = module.params
    checked = params["state"] == "present" and (params["ca_content"] is not None or params["ca_url"] is not None
                                                or params["ca_check"])
    try:  # the rest of the node paths were checked by the action, with the settings
        check_absolute(config_path, "config_path")
        params["ca_sha256"] = check_pin_option(params["ca_sha256"], checked or params["state"] != "present",
                                               "ca_sha256", ("ca_content", "ca_url", "ca_check"))
    except RegistrySettingError as error:
        module.fail_json(msg=str(error))

    certs_d, ca = _planned(module)
    for warning in ca.warnings if ca is not None else ():
        module.warn(warning)
    # the action plugin turns _texts into masked diffs, and shows _shown_diffs (public, or masked here) first
    result, failed = apply_plan(module, certs_d)
    if "ca" in result:
        result["ca"].update(summary(ca))
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
