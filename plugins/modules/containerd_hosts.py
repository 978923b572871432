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
  - All files of a node are rendered on the controller (with C(tomli-w)), parsed back with C(tomllib) to
    prove containerd can read them, and written by one module call on the node, atomically.
  - The option names of the Platform9 (PMK) cluster API are accepted as aliases.
  - Files are created with mode C(0600) unless O(mode) is set, as they can hold credentials.
  - Every file starts with a comment line that marks it as managed by this collection; O(state=absent)
    removes only files carrying that mark.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
  - action_common_attributes.files
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Header values (credentials) are masked in the diff.
  safe_file_operations:
    support: full
  vault:
    support: none
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: posix
requirements:
  - C(tomli-w) on the controller.
options:
  url:
    description:
      - URL of the registry mirror, C(https://host[:port]) or C(http://host[:port]). Without a scheme,
        C(https) is used. IPv6 literals go in brackets, for example C(https://[fd00::1]:5000).
      - A path is refused; put it in O(repo_path).
      - Required when O(state=present). With O(state=absent), the mirror's own directory is removed too
        when it is given.
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
    type: path
  registries:
    description:
      - Registries to route through the mirror, one C(host[:port]) directory each. C(_default) is
        containerd's catch-all directory.
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
    type: path
    default: /etc/containerd/certs.d
  state:
    description:
      - V(present) writes the files; V(absent) removes the ones this collection wrote and leaves any
        other C(hosts.toml) in place.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description:
      - Keep a timestamped copy of each file before it is replaced or removed.
    type: bool
    default: false
  _hosts_files:
    description:
      - Internal, set by the action plugin; the rendered files. Do not set.
    type: list
    elements: dict
  _authorization:
    description:
      - Internal, set by the action plugin; the header value to mask. Do not set.
    type: str
notes:
  - containerd reads certs.d on every pull, so no restart is needed for these files to take effect, as
    long as its CRI registry C(config_path) points at O(config_path).
  - The C(ctr) client ignores certs.d unless given C(--hosts-dir).
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

- name: Remove the files this collection wrote
  kubenode.registry_mirror.containerd_hosts:
    url: https://10.101.101.100:443
    state: absent
"""

RETURN = r"""
files:
  description: One entry per hosts.toml considered.
  returned: always
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
        - V(created), V(updated) (content or attributes), V(unchanged) or V(removed).
        - V(foreign) for a file not written by this collection that O(state=absent) left in place.
        - With check mode, what would happen.
      type: str
      sample: created
    backup_file:
      description: The backup made before the file was replaced or removed.
      type: str
      returned: when O(backup=true) and a backup was made
      sample: /etc/containerd/certs.d/docker.io/hosts.toml.12345.2026-11-28@10:00:00~
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ARGUMENT_SPEC,
    DEFAULT_MODE,
    HOSTS_FILE_NAME,
    REQUIRED_TOGETHER,
    is_managed,
    mask_headers,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import write_file


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _diff(path, before, after):
    before, after = mask_headers(before or "", after or "")
    return {"before_header": path, "after_header": path, "before": before, "after": after}


def _apply_attributes(module, path):
    file_args = module.load_file_common_arguments(module.params, path=path)
    return module.set_fs_attributes_if_different(file_args, False)


def _present(module, path, content):
    """Write one file; return (entry, diff or None, changed)."""
    entry = {"path": path}
    before = _read(path)
    if before == content:
        attributes_changed = _apply_attributes(module, path)
        entry["status"] = "updated" if attributes_changed else "unchanged"
        return entry, None, attributes_changed
    entry["status"] = "created" if before is None else "updated"
    if not module.check_mode:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory)
            os.chmod(directory, 0o755)  # a CA placed beside hosts.toml must stay readable by pf9
        if before is not None and module.params["backup"]:
            entry["backup_file"] = module.backup_local(path)
        write_file(module, path, content.encode("utf-8"))
        _apply_attributes(module, path)
    return entry, _diff(path, before, content), True


def _absent(module, path):
    """Remove one file if we wrote it; return (entry, diff or None, changed)."""
    entry = {"path": path}
    before = _read(path)
    if before is None:
        entry["status"] = "unchanged"
        return entry, None, False
    if not is_managed(before):
        entry["status"] = "foreign"
        return entry, None, False
    entry["status"] = "removed"
    if not module.check_mode:
        if module.params["backup"]:
            entry["backup_file"] = module.backup_local(path)
        os.remove(path)
        try:
            os.rmdir(os.path.dirname(path))  # only succeeds when nothing else lives there
        except OSError:
            pass
    return entry, _diff(path, before, None), True


def main():
    argument_spec = dict(
        ARGUMENT_SPEC,
        _hosts_files=dict(type="list", elements="dict"),
        _authorization=dict(type="str", no_log=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_together=REQUIRED_TOGETHER,
        add_file_common_args=True,
        supports_check_mode=True,
    )
    hosts_files = module.params["_hosts_files"]
    if hosts_files is None:
        module.fail_json(msg="containerd_hosts must run through its action plugin, which renders the files")
    if module.params["mode"] is None:
        module.params["mode"] = DEFAULT_MODE
    config_path = module.params["config_path"]
    if not os.path.isabs(config_path):
        module.fail_json(msg=f"config_path: {config_path!r} must be an absolute path")

    files, diffs, changed = [], [], False
    for hosts_file in hosts_files:
        registry = hosts_file["directory"]
        if not registry or registry in (".", "..") or "/" in registry:
            module.fail_json(msg=f"_hosts_files: {registry!r} is not a registry directory name")
        path = os.path.join(config_path, registry, HOSTS_FILE_NAME)
        if module.params["state"] == "present":
            entry, diff, file_changed = _present(module, path, hosts_file["content"])
        else:
            entry, diff, file_changed = _absent(module, path)
        files.append(dict(entry, registry=registry))
        if diff:
            diffs.append(diff)
        changed = changed or file_changed

    result = dict(changed=changed, files=files)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
