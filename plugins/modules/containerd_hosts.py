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
    written, so a bad CA fails the task with nothing changed. The CA is written before the C(hosts.toml) files
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
  - kubenode.registry_mirror.attributes.node_files
  - kubenode.registry_mirror.attributes.action
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
        certificates and none has expired (a warning when one expires within 30 days) - before anything is written.
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
      description: End of validity of the soonest-expiring certificate, ISO 8601 in UTC.
      type: str
      sample: "2027-11-28T10:00:00Z"
    days_left:
      description: Whole days until the soonest-expiring certificate expires.
      type: int
      sample: 364
    certificates:
      description: How many certificates the CA holds.
      type: int
      sample: 1
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
      description: The registry directory name.
      type: str
      sample: docker.io
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

import base64
import errno
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import (
    CA_FIELDS,
    CA_FILE_MODE,
    CaError,
    check_readable,
    get_ca,
    summary,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ADOPT,
    CHANGED_MASK,
    CONFLICT,
    DEFAULT_MODE,
    FOREIGN,
    HOSTS_FILE_NAME,
    KEEP,
    MARKER,
    NOTHING,
    REFUSE,
    REMOVE,
    RESTORE,
    SECRET_MASK,
    TLS_FILES,
    WRITE,
    absent_action,
    is_managed,
    kept_aside_path,
    owner,
    present_action,
    tls_file_mode,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import (
    FileOperationError,
    backup,
    check_owner_group,
    describe,
    ensure_directory,
    enterable_by,
    exists,
    file_arguments,
    load_file_if_exists,
    remove,
    rename,
    set_attributes,
    write_file,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    check_absolute,
    module_argument_spec,
    module_rules,
)

_NOT_OURS = "was not written by kubenode.registry_mirror"


def _text(data):
    return None if data is None else data.decode("utf-8", errors="replace")


def _encoded(data):
    return None if data is None else base64.b64encode(data).decode("ascii")


def _texts(path, before, after):
    """The file's old and new bytes, for the action plugin to mask and show as a diff.

    Never shown as they are: the action plugin parses them on the controller, which has a TOML
    parser, masks every header value and drops this entry. Base64, so that no text of a file is
    altered by Ansible's own hiding of the authorization value on its way back.
    """
    return {"path": path, "before": _encoded(before), "after": _encoded(after)}


def _plan(module, registry, content, state):
    """Look at one registry's files and decide what state does with them; nothing is written."""
    path = os.path.join(module.params["config_path"], registry, HOSTS_FILE_NAME)
    kept = kept_aside_path(path)
    try:
        before = load_file_if_exists(path)
        kept_exists = exists(kept)
    except FileOperationError as error:
        if state == "present" or error.errno != errno.ENOTDIR:
            raise
        before, kept_exists = None, False  # the registry's directory is a file: no hosts.toml to remove
    if state == "present":
        action = present_action(owner(_text(before)), kept_exists, module.params["foreign_files"])
    else:
        action = absent_action(owner(_text(before)), kept_exists)
    return {"registry": registry, "path": path, "before": before, "content": content, "kept": kept,
            "kept_exists": kept_exists, "action": action, "touched": False}


# What containerd_hosts does with one of our PEM files (_hosts_files.TLS_FILES) beside a hosts.toml.
WRITE_TLS = "write_tls"  # state=present: the file of a mirror's ca_content, client_cert_content or client_key_content
REMOVE_TLS = "remove_tls"  # ours, and no mirror of the settings gives it (any more), or state=absent
# The mode of a key file: what tells a secret from a public certificate.
_SECRET_MODE = TLS_FILES["client_key_content"][1]
_MAX_TLS_BYTES = 1024 * 1024


def _tls_plan(module, registry, name, content):
    """Look at one PEM file of ours (content None: to be removed) and plan it; nothing is written."""
    path = os.path.join(module.params["config_path"], registry, name)
    setting = next(setting for setting, (suffix, _mode) in TLS_FILES.items() if name.endswith(suffix))
    if os.path.islink(path) or os.path.lexists(path) and not os.path.isfile(path):
        raise FileOperationError("write", path, "it is not a regular file; move it away")
    before = load_file_if_exists(path, _MAX_TLS_BYTES)
    if content is not None and before is not None and not is_managed(_text(before)):
        raise FileOperationError("write", path, f"it {_NOT_OURS}; move it away (a mirror's {setting} goes there)")
    return {"kind": "tls", "registry": registry, "name": name, "path": path, "before": before, "content": content,
            "mode": tls_file_mode(name), "action": WRITE_TLS if content is not None else REMOVE_TLS, "touched": False}


def _our_tls_files(module, registry):
    """The names of our PEM files in a registry's directory (by their name and marker line), sorted."""
    directory = os.path.join(module.params["config_path"], registry)
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if tls_file_mode(e.name) and e.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        raise FileOperationError("list", directory, describe(error, directory, directory), error.errno) from None
    ours = []
    for name in sorted(names):
        # the marker line and its line end are all is_managed reads
        first = load_file_if_exists(os.path.join(directory, name), len(MARKER.encode("utf-8")) + 2)
        if first is not None and is_managed(_text(first)):
            ours.append(name)
    return ours


def _stale_tls_plans(module, registry, declared=()):
    """Plans removing our PEM files in a registry's directory that declared (names) does not hold."""
    stale = [name for name in _our_tls_files(module, registry) if name not in declared]
    return [_tls_plan(module, registry, name, None) for name in stale]


def _undeclared_directories(config_path, declared):
    """The directories under config_path (not symbolic links) that the settings do not declare, sorted."""
    try:
        with os.scandir(config_path) as entries:
            names = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []  # nothing of ours can be there; writing the declared files reports a file in the way
    except OSError as error:
        raise FileOperationError("list", config_path, describe(error, config_path, config_path), error.errno) from None
    return sorted(set(names) - set(declared))


def _stale_plans(module, declared, sealed=None):
    """Plans for the directories the settings do not declare: our file removed, a file kept aside put back (as
    state=absent does), our PEM files removed. Files we did not write are not touched, nor reported.

    sealed (state=present under a * entry without upstream fallback) is the text of _default/hosts.toml. containerd
    takes a registry's own directory over _default as soon as it exists, with a hosts.toml or without (it then
    pulls from the registry itself, with the directory's certificates), so no other directory may route around
    the mirrors of *: each gets that text as ours, a file we did not write there kept aside as for a declared one.
    """
    plans = []
    for registry in _undeclared_directories(module.params["config_path"], declared):
        try:
            if sealed is None:
                plan = _plan(module, registry, None, "absent")
                plans += [plan] if plan["action"] in (REMOVE, RESTORE) else []
            else:
                plans.append(dict(_plan(module, registry, sealed, "present"), sealed=True))
            plans += _stale_tls_plans(module, registry)
        except FileOperationError as error:  # not known to be ours: it does not stop the declared files
            module.warn(f"{error}; left as it is (a file of ours there would be stale).")
    return plans


def _problem(plan):
    """The sentence that explains why a planned file stops the task, or None."""
    path, kept = plan["path"], plan.get("kept")
    if plan["action"] == REFUSE and plan.get("sealed"):
        return (f"{path} {_NOT_OURS} and foreign_files=refuse, and it would route {plan['registry']} around the "
                "mirrors of * without upstream fallback: move it away, or set foreign_files=adopt to keep it as "
                f"{kept} while the mirror is applied.")
    if plan["action"] == REFUSE:
        return (f"{path} {_NOT_OURS} and foreign_files=refuse: move it away, or set foreign_files=adopt "
                f"to keep it as {kept} while the mirror is applied.")
    if plan["action"] == CONFLICT:
        return (f"{path} {_NOT_OURS}, and {kept} already holds the file kept aside when the mirror was "
                "applied: keep one of the two (move the other away) and run again.")
    return None


# Each _APPLY function carries out one plan and returns (files entry, texts for the diff or None,
# changed). It sets plan["touched"] as soon as it changed the node, so that a failure after that
# still reports the change.


def _write(module, plan):
    """Write ours where there was no file or ours."""
    entry = {"path": plan["path"]}
    if plan["kept_exists"]:
        entry["kept_aside"] = plan["kept"]
    file_args = file_arguments(module, plan["path"], DEFAULT_MODE)
    return _put(module, plan, entry, file_args, module.params["backup"],
                lambda content: _texts(plan["path"], plan["before"], content))


def _put(module, plan, entry, file_args, keep_backup, diff):
    """Write plan's content unless the file holds it already; give it file_args. diff(new bytes) is its diff."""
    path, before = plan["path"], plan["before"]
    content = plan["content"].encode("utf-8")
    if before == content:
        attributes_changed = set_attributes(module, file_args)
        entry["status"] = "updated" if attributes_changed else "unchanged"
        return entry, None, attributes_changed
    entry["status"] = "created" if before is None else "updated"
    if not module.check_mode:
        # 0755: a CA placed beside hosts.toml must stay readable by pf9
        if ensure_directory(os.path.dirname(path)):
            plan["touched"] = True
        if before is not None and keep_backup:
            entry["backup_file"] = backup(module, path)
        write_file(module, path, content, file_args)  # 0600 (umask 077) until file_args are applied
        plan["touched"] = True
    return entry, diff(content), True


def _keep_aside(module, plan, why):
    """Rename a file we did not write to its kept-aside path (the same file: its mode, owner and content stay),
    saying so when why (the end of the warning) is given."""
    path, kept = plan["path"], plan["kept"]
    if why:
        would = "would be" if module.check_mode else "is"
        module.warn(f"{path} {_NOT_OURS}: it {would} kept as {kept}{why}, and state=absent puts it back.")
    if not module.check_mode:
        rename(path, kept)
        plan["touched"] = True


def _adopt(module, plan):
    """Keep a file we did not write aside, then write ours."""
    path, kept, content = plan["path"], plan["kept"], plan["content"].encode("utf-8")
    # a migrated file is expected on stock PMK nodes: no warning
    _keep_aside(module, plan, " while the mirror is applied" if owner(_text(plan["before"])) == FOREIGN else "")
    if not module.check_mode:
        try:
            write_file(module, path, content, file_arguments(module, path, DEFAULT_MODE))
        except FileOperationError:
            try:  # put theirs back: the node pulls as it did before
                rename(kept, path)
                plan["touched"] = False
            except FileOperationError:
                pass
            raise
    entry = {"path": path, "status": "adopted", "kept_aside": kept}
    return entry, _texts(path, plan["before"], content), True


def _unlink(plan):
    """Remove plan's file, and its directory when nothing else is left there: containerd takes a registry's
    directory over _default whenever it exists, even empty."""
    remove(plan["path"])
    plan["touched"] = True
    try:
        os.rmdir(os.path.dirname(plan["path"]))  # only succeeds when nothing else lives there
    except OSError:
        pass


def _remove(module, plan):
    """Remove our file."""
    path = plan["path"]
    entry = {"path": path, "status": "removed"}
    if not module.check_mode:
        if module.params["backup"]:
            entry["backup_file"] = backup(module, path)
        _unlink(plan)
    return entry, _texts(path, plan["before"], None), True


def _restore(module, plan):
    """Put the kept-aside file back in place of ours (or of no file)."""
    path, kept, before = plan["path"], plan["kept"], plan["before"]
    entry = {"path": path, "status": "restored", "kept_aside": kept}
    restored = load_file_if_exists(kept)
    if not module.check_mode:
        if before is not None and module.params["backup"]:
            entry["backup_file"] = backup(module, path)
        rename(kept, path)  # replaces ours in one step
        plan["touched"] = True
    return entry, _texts(path, before, restored), True


def _keep(module, plan):
    """Leave a file we did not write alone on state=absent."""
    entry = {"path": plan["path"], "status": "foreign"}
    if plan["kept_exists"]:
        entry["kept_aside"] = plan["kept"]
        module.warn(f"{plan['path']} {_NOT_OURS}, and {plan['kept']} holds the file kept aside when the mirror "
                    "was applied: both are left as they are.")
    return entry, None, False


def _nothing(module, plan):
    """No file and nothing kept aside on state=absent."""
    return {"path": plan["path"], "status": "unchanged"}, None, False


def _tls_diff(plan, after):
    """The diff of one PEM file: certificates are public and shown; a key is masked as passwords are."""
    before, path = plan["before"], plan["path"]
    if plan["mode"] == _SECRET_MODE:
        shown_before = "" if before is None else f"{SECRET_MASK}\n"
        shown_after = "" if after is None else f"{SECRET_MASK if after == before else CHANGED_MASK}\n"
    else:
        shown_before, shown_after = _text(before) or "", _text(after) or ""
    return {"before_header": path, "after_header": path, "before": shown_before, "after": shown_after}


def _write_tls(module, plan):
    """Write one PEM file of ours: a key 0600, certificates 0644, owned by the user the module runs as (root).

    Not backed up: a copy of a key would be one more file holding it.
    """
    file_args = file_arguments(module, plan["path"], plan["mode"], from_task=False)
    entry = {"path": plan["path"], "name": plan["name"]}
    return _put(module, plan, entry, file_args, False, lambda content: _tls_diff(plan, content))


def _remove_tls(module, plan):
    """Remove one PEM file of ours, and its directory when nothing else is left there."""
    if not module.check_mode:
        _unlink(plan)
    return {"path": plan["path"], "name": plan["name"], "status": "removed"}, _tls_diff(plan, None), True


def _checked_ca(module):
    """The CA at ca_file (to write from ca_content or ca_url, or only to check), checked; None without one."""
    params = module.params
    placing = params["ca_content"] is not None or params["ca_url"] is not None
    if params["state"] != "present" or not (placing or params["ca_check"]):
        return None
    path, user = params["ca_file"], params["ca_readable_by"]
    if path is None:
        raise CaError("ca_file: required with ca_content, ca_url or ca_check (where the CA is, or is to be written)")
    ca = get_ca(path, params["ca_content"], params["ca_url"], params["ca_validate_certs"], fields=CA_FIELDS)
    if user is not None and placing:  # written 0644: whoever can enter the directories can read it
        ok, reason = enterable_by(path, user)
        if not ok:
            raise CaError(f"ca_readable_by: {reason}")
    elif user is not None:
        check_readable(path, user, "ca_readable_by")
    return ca


def _place_ca(module, ca):
    """Write the CA when it came from ca_content or ca_url; return (ca result, diff or None, changed)."""
    params, path = module.params, module.params["ca_file"]
    entry = dict(path=path, status="checked", **summary(ca))
    if params["ca_content"] is None and params["ca_url"] is None:
        return entry, None, False
    new_bytes = ca.text.encode("utf-8")
    content_changed = ca.before != new_bytes
    file_args = file_arguments(module, path, CA_FILE_MODE, from_task=False)
    if module.check_mode:
        changed = content_changed or (ca.before is not None and set_attributes(module, file_args))
    else:
        created = ensure_directory(os.path.dirname(path))
        if content_changed:
            write_file(module, path, new_bytes, file_args)
        changed = set_attributes(module, file_args, content_changed or bool(created))
    entry["status"] = "created" if ca.before is None else "updated" if changed else "unchanged"
    diff = None
    if content_changed:  # a CA is public: its text is shown
        before = "" if ca.before is None else ca.before.decode("utf-8", errors="replace")
        diff = {"before_header": path, "after_header": path, "before": before, "after": ca.text}
    return entry, diff, changed


_APPLY = {WRITE: _write, ADOPT: _adopt, REMOVE: _remove, RESTORE: _restore, KEEP: _keep, NOTHING: _nothing,
          WRITE_TLS: _write_tls, REMOVE_TLS: _remove_tls}


def _label(entry):
    return f"{entry['registry']}/{entry['name']}" if "name" in entry else entry["registry"]


def _failure(error, plan, files, changed):
    """The task's message when a file fails after others were handled: the error, then what was done."""
    done = [f"{_label(f)} {f['status']}" for f in files if f["status"] not in ("failed", "skipped")]
    skipped = [_label(f) for f in files if f["status"] == "skipped"]
    parts = [f"{error}."]
    if plan["touched"]:
        parts.append(f"{plan['path']} was partly changed before that.")
    parts.append(f"Done before the failure: {', '.join(done)}." if done else "Nothing else was done before it.")
    if skipped:
        parts.append(f"Not attempted: {', '.join(skipped)}.")
    parts.append("The node was changed." if changed else "Nothing on the node changed.")
    return " ".join(parts)


def _entry(plan, **more):
    """A files (or tls_files, with the file's name) entry for a plan that was not carried out."""
    entry = {"registry": plan["registry"], "path": plan["path"], **more}
    if plan.get("kind") == "tls":
        entry["name"] = plan["name"]
    return entry


def _listed(entries):
    """The results' files (the hosts.toml files) and tls_files (our PEM files, which have a name)."""
    return {"files": [e for e in entries if "name" not in e], "tls_files": [e for e in entries if "name" in e]}


def _declared_plans(module, hosts_file, state):
    """The plans of one declared directory: its PEM files written before the hosts.toml that names them, then
    the hosts.toml, then our PEM files it no longer names removed. Return (plans, problems)."""
    registry, tls_files = hosts_file["directory"], hosts_file.get("tls_files") or {}
    if not registry or registry in (".", "..") or "/" in registry:
        module.fail_json(msg=f"_hosts_files: {registry!r} is not a registry directory name")
    for name, text in tls_files.items():
        if "/" in name or not tls_file_mode(name) or not isinstance(text, str) or not is_managed(text):
            module.fail_json(msg=f"_hosts_files: {name!r} in {registry} is not one of our PEM files")
    plans, problems = [], []
    steps = [(_tls_plan, (module, registry, name, text)) for name, text in sorted(tls_files.items())]
    steps += [(_plan, (module, registry, hosts_file.get("content"), state)),
              (_stale_tls_plans, (module, registry, tls_files))]
    for make, args in steps:
        try:
            made = make(*args)
        except FileOperationError as error:
            problems.append(f"{error}.")
            continue
        plans += made if isinstance(made, list) else [made]
    return plans, problems


def main():
    argument_spec = dict(
        module_argument_spec("containerd_hosts"),
        _hosts_files=dict(type="list", elements="dict"),
        _sealed=dict(type="str"),
        # every secret the files hold (header values, client keys): masked in whatever the module returns or logs
        _secrets=dict(type="list", elements="str", no_log=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        **module_rules("containerd_hosts"),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    hosts_files = module.params["_hosts_files"]
    if hosts_files is None:
        module.fail_json(msg="containerd_hosts must run through its action plugin, which renders the files")
    config_path = module.params["config_path"]
    try:  # the rest of the node paths were checked by the action, with the settings
        check_absolute(config_path, "config_path")
    except RegistrySettingError as error:
        module.fail_json(msg=str(error))

    # Look at the CA and every file first: a problem stops the task before anything is written.
    plans, problems, ca = [], [], None
    try:
        ca = _checked_ca(module)
    except CaError as error:
        problems.append(f"{error}.")
    state = module.params["state"]
    for hosts_file in hosts_files:
        declared_plans, declared_problems = _declared_plans(module, hosts_file, state)
        plans += declared_plans
        problems += declared_problems
    try:  # state=absent too: ours anywhere under config_path goes, what was kept aside comes back
        plans += _stale_plans(module, [hosts_file["directory"] for hosts_file in hosts_files],
                              sealed=module.params["_sealed"] if state == "present" else None)
    except FileOperationError as error:
        problems.append(f"{error}.")
    problems += [problem for problem in map(_problem, plans) if problem]
    if state == "present" and not problems:
        try:
            check_owner_group(module.params["owner"], module.params["group"],
                              os.path.join(config_path, "*", HOSTS_FILE_NAME))
        except FileOperationError as error:
            problems.append(f"{error}.")
    if problems:
        module.fail_json(msg="Nothing was written. " + " ".join(problems), changed=False, files=[], tls_files=[])

    result, texts, safe_diffs, changed = {}, [], [], False
    if ca is not None:
        for warning in ca.warnings:
            module.warn(warning)
        try:
            result["ca"], ca_diff, changed = _place_ca(module, ca)
        except FileOperationError as error:
            module.fail_json(msg=f"ca_file: {error}. No hosts.toml was written.", changed=False, files=[],
                             tls_files=[])
        if ca_diff is not None:
            safe_diffs.append(ca_diff)

    entries = []
    for index, plan in enumerate(plans):
        try:
            entry, diff, file_changed = _APPLY[plan["action"]](module, plan)
        except FileOperationError as error:
            changed = changed or plan["touched"]
            entries.append(_entry(plan, status="failed", msg=str(error)))
            entries += [_entry(later, status="skipped") for later in plans[index + 1:]]
            result.update(msg=_failure(error, plan, entries, changed), changed=changed, **_listed(entries))
            if module._diff:
                result.update(_texts=texts, _shown_diffs=safe_diffs)
            module.fail_json(**result)
        entries.append(dict(entry, registry=plan["registry"]))
        if diff:
            (safe_diffs if plan.get("kind") == "tls" else texts).append(diff)
        changed = changed or file_changed

    result.update(changed=changed, **_listed(entries))
    if module._diff:
        # the action plugin turns _texts into masked diffs, and shows _shown_diffs (public, or masked here) first
        result.update(_texts=texts, _shown_diffs=safe_diffs)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
