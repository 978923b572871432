#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: containerd_config
short_description: Make containerd read registry settings from certs.d (CRI registry config_path)
version_added: 1.0.0
description:
  - Sets C(config_path) in the CRI registry section of containerd's C(config.toml), so that containerd reads
    the C(hosts.toml) files under O(config_path), and changes nothing else in the file but the legacy registry
    settings that containerd refuses next to C(config_path), which it moves to C(hosts.toml) files (see
    O(legacy_mirrors)).
  - The section comes from the file's C(version) key, as containerd reads it. Without the key (which containerd
    1.x reads as version 1) or with C(version = 1) it is C([plugins.cri.registry]); with C(version = 2)
    (containerd 1.x) it is C([plugins."io.containerd.grpc.v1.cri".registry]); with C(version = 3)
    (containerd 2.x) or C(version = 4) (containerd 2.3 and later, whose default it is) it is
    C([plugins."io.containerd.cri.v1.images".registry]).
  - The action plugin reads the node's file, edits it on the controller with C(tomlkit) so that comments,
    order, quoting and every other setting stay byte-for-byte, parses the result back with C(tomllib) to prove
    that only C(config_path) (and the legacy settings migrated) changed, and has this module write it on the
    node, atomically, only when it differs. An existing C(config_path) with another value is replaced; its old
    value is returned.
  - A C(config_path) that lists several directories separated by C(:), such as containerd 2.2's default
    C(/etc/containerd/certs.d:/etc/docker/certs.d), is replaced by O(config_path) too, even when its first
    directory is O(config_path), and a warning names the directories dropped. containerd 2.1 and later pull
    images through the transfer service, which reads C(config_path) as one directory and does not split the
    list, so with the list no C(hosts.toml) is read at all. The files in the dropped directories are no longer
    read either; move any C(<registry>/hosts.toml) there into O(config_path). The diff shows the old and new
    value.
  - When the file does not exist, a minimal one is created with C(version = <version>) and just that setting.
    A file with no settings at all (empty, or only comments) is treated the same way and keeps its comments.
  - containerd does not start its CRI plugin when the section holds legacy registry C(mirrors) entries, or
    C(configs.<host>.tls) tables in a containerd 1.x file (versions 1 and 2), next to C(config_path). Every
    stock Platform9 (PMK) node ships such C(mirrors). With O(legacy_mirrors=migrate), the default, the legacy
    C(mirrors) and C(configs.<host>.tls)/C(configs.<host>.auth) settings move to C(hosts.toml) files under
    O(config_path) and are deleted from the file, in the same task; with O(legacy_mirrors=refuse) the task
    fails instead, writing nothing, and the error says how to move them by hand.
  - "Migration, per registry: each C(mirrors.\"<registry>\".endpoint) list becomes
    C(<config_path>/<registry>/hosts.toml), the endpoints as C([host.\"<url>\"]) tables in their order, each
    with C(capabilities = [\"pull\", \"resolve\"]), and C(server) set to the host the legacy resolver tried
    last (C(https://registry-1.docker.io) for C(docker.io), C(https://<registry>) otherwise). Registry C(*)
    becomes the C(_default) directory, without C(server)."
  - Endpoints are read as containerd read them. One without a scheme gets C(https://), or C(http://) for
    C(localhost) and loopback addresses (127.0.0.0/8, ::1), as containerd's C(IsLocalhost) decides (C([::1])
    without a port is not one, so it gets C(https://)). One with a path, which the legacy resolver used
    as the registry API root, gets C(override_path = true).
  - "C(configs.\"<host>\".tls) applies to every C([host]) whose URL has that host[:port], and to the top level
    (the server) of C(<host>/hosts.toml): C(ca_file) becomes C(ca); C(cert_file) and C(key_file) become
    C(client = [[cert, key]]) (C(cert_file) alone C(client = cert)); C(insecure_skip_verify) becomes
    C(skip_verify). For C(docker.io), whose server is C(registry-1.docker.io), C(configs.\"registry-1.docker.io\")
    applies to the top level when there is no C(configs.\"docker.io\"). A configs host without a C(mirrors)
    entry of its own gets its own C(<host>/hosts.toml) with C(server = \"https://<host>\") and its settings,
    at the top level and as its one C([host]) (containerd 1.x reads no C(hosts.toml) without a C([host]) table),
    after the C(*) endpoints, if any (the legacy resolver tried those for it first)."
  - "B(Credentials stay.) C(configs.\"<host>\".auth) (C(username) and C(password), C(auth), C(identitytoken))
    is left in the file as it is: containerd reads it next to C(config_path) on every release, for every host
    it contacts, and it is the only form containerd 1.6 also sends to a registry's token service (a
    C(hosts.toml) header is not)."
  - The migration refuses, writing nothing and naming the TOML key, what it cannot carry over exactly, that is
    any C(mirrors) key other than C(endpoint) (such as C(rewrite)), unknown C(tls) keys, relative certificate
    paths, a registry name that is not a valid host[:port], and an endpoint that is not a valid http(s) URL or
    holds credentials, quotes or control characters.
  - Each migrated C(hosts.toml) starts with a comment saying it was migrated from this file (so
    M(kubenode.registry_mirror.containerd_hosts) with O(kubenode.registry_mirror.containerd_hosts#module:state=absent)
    keeps it), has mode C(0600) as it may hold credentials, and new directories get C(0755). They are written
    before the file. A registry whose C(hosts.toml) already exists with other content keeps that file
    untouched and a warning says the legacy endpoints for that registry were not copied, because that file
    takes over once C(config_path) is set; when the migrated file would also carry C(configs.\"<host>\".tls)
    settings, the task fails instead, naming the keys and the file, with nothing written (they would be lost).
    Whenever legacy entries are deleted, the file is backed up next to itself first, whatever O(backup) says
    (RV(backup_file)).
  - A backup of a file that holds a secret the diff masks (a C(password), C(auth), C(identitytoken) or header
    value), or that cannot be parsed, has mode C(0600); any other backup keeps the file's mode.
  - With C(--diff), the file's diff and one per C(hosts.toml) created are shown with every C(password),
    C(auth), C(identitytoken) and header value masked.
  - "What counts is containerd's B(effective) configuration, the one kubelet's pulls go by: C(config.toml) plus
    every file its C(imports) pull in. With O(state=present) or O(state=check), the module's read also runs
    C(containerd --config <path> config dump) on the node (the C(containerd) found on C(PATH)) and reads every
    imported file; a missing C(containerd), or a dump that fails, fails the task naming the command and its
    error, with nothing written."
  - "B(Drop-ins are refused, not migrated.) Only O(path) is ever edited. Before anything is written, the task
    fails, naming the imported file, the keys and what to do, when an imported file sets, in the CRI registry
    table containerd reads from it, legacy C(mirrors), C(configs.<host>.tls) or C(auths) (move them into
    C(hosts.toml) files under O(config_path) and delete them there), or a C(config_path) other than
    O(config_path) (set it to O(config_path), or on containerd 2.x remove it)."
  - "How an imported file combines with C(config.toml) depends on the release (containerd's C(mergeConfig)).
    containerd 1.x replaces a whole plugin section with an imported file's, so a drop-in with a
    C([plugins.\"io.containerd.grpc.v1.cri\"]) table but no C(config_path) in its registry table drops
    C(config.toml)'s C(config_path): refused, asking to add C(config_path = \"<config_path>\") to that table.
    containerd 2.x merges plugin settings key by key (containerd/containerd#9982), so such a table without
    C(config_path) is accepted there; each imported file is read in its own config version, as 2.x migrates it."
  - "After a write, the module runs the dump again: when C(config_path) is not O(config_path) there (a list
    of directories separated by C(:) is not), or legacy C(mirrors) or C(auths) (or, on containerd 1.x,
    C(configs.<host>.tls) with a value) are active, O(path) is put back exactly as it was (its bytes; removed
    when it was created), and the task fails naming the cause. Legacy C(configs.<host>.tls) on containerd 2.x
    is only a warning: 2.x does not use it next to C(config_path). An unchanged file is checked against the dump
    the read made. Nothing of this happens in check mode, where nothing is written."
  - "Before writing, a file in a config version the node's containerd does not read is refused: version 3 or
    4 on containerd 1.x (which ignores that CRI table), version 4 before containerd 2.3 (which refuses it).
    So is a C(config.toml) that would keep a deprecated C(auths) table, which is not migrated."
  - Refuses, writing nothing, a file that is not valid TOML or not UTF-8.
  - A file system error (permission denied, a path component that is a file, a name too long) fails the task with a
    message naming the path and the operation, never a temporary file, and listing what was written before it; the
    task then reports C(changed) when anything was.
  - A line added to a file whose lines end in CRLF ends in CRLF too.
  - An existing file keeps its mode and owner; a new one gets mode C(0644) and the user the module runs as.
    When O(path) is a symbolic link, the file it points to is updated and the link stays.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - kubenode.registry_mirror.attributes.action
  - ansible.builtin.action_common_attributes
  # Not ansible.builtin.action_common_attributes.files: ansible-core resolves that name to the
  # ansible.builtin.files fragment, whose file options (mode, owner, ...) this module does not take.
  - action_common_attributes.files
  - ansible.builtin.action_common_attributes.flow
  - kubenode.registry_mirror.attributes.node_files
requirements:
  - C(tomlkit) on the controller.
options:
  path:
    description:
      - Path of containerd's configuration file on the node.
      - Taken literally and must be absolute; C(~) and variables are not expanded (on the controller or the node).
    type: str
    default: /etc/containerd/config.toml
  config_path:
    description:
      - containerd's certs.d directory, the value to set. One absolute directory (containerd splits the
        setting at C(:)).
      - Taken literally; C(~) and variables are not expanded (on the controller or the node).
    type: str
    default: /etc/containerd/certs.d
  state:
    description:
      - V(present) points containerd at O(config_path), and checks that containerd's effective configuration
        then reads it (see the description).
      - V(absent) removes the C(config_path) key, but only when it holds exactly O(config_path); another value,
        the section and the rest of the file are left alone. A missing file stays missing. containerd's
        effective configuration is not read.
      - V(check) writes nothing, for nodes whose C(config.toml) must not be edited. One read of the node, and
        the task fails when containerd's effective configuration does not read O(config_path), saying that
        kubelet's pulls would not use the mirror, which C(config_path) is in effect, and the file or files to
        fix (C(config.toml), or the imported file that sets it). A missing O(path) fails too, as containerd's
        defaults do not set O(config_path). A failed check still returns RV(sandbox_image) and RV(effective).
        O(version), O(backup) and O(legacy_mirrors) are not used.
    type: str
    choices: [present, absent, check]
    default: present
  version:
    description:
      - The config version of a file this module creates (or of one that holds no settings yet); an existing
        file's own C(version) always decides.
      - V(2) is read by containerd 1.x and migrated by containerd 2.x; V(3) is for containerd 2.x only; V(4) for
        containerd 2.3 and later only.
      - Not set, the node's containerd decides (RV(containerd_version)), as its own default does; V(4) on
        containerd 2.3 and later, V(3) on 2.0 to 2.2, V(2) on 1.x or where the version is not known.
    type: int
    choices: [2, 3, 4]
  backup:
    description:
      - Keep a timestamped copy of the file before it is replaced.
      - A copy is always kept when legacy registry settings are deleted from the file.
    type: bool
    default: false
  legacy_mirrors:
    description:
      - What to do with legacy CRI registry C(mirrors), and C(configs.<host>.tls) and C(configs.<host>.auth),
        in the file's registry section, which containerd cannot combine with C(config_path).
      - V(migrate) moves them to C(hosts.toml) files under O(config_path) and deletes them from the file, as the
        description says.
      - V(refuse) fails, writing nothing, when the section holds C(mirrors) entries or (containerd 1.x)
        C(configs.<host>.tls) tables; C(configs.<host>.auth) stays, and C(configs.<host>.tls) in a version 3
        file only gets a warning.
      - Only used with O(state=present).
    type: str
    choices: [migrate, refuse]
    default: migrate
    version_added: 1.1.0
  credentials:
    description:
      - The mirror hosts whose credentials containerd 1.x needs for a registry's token service, each kept in
        C(configs."<host>".auth) (C(username), C(password)) of the CRI registry section, next to C(config_path).
        containerd 1.6 sends a C(hosts.toml) C([header]) C(authorization) to the registry but not on to the token
        service its Bearer challenge names, so without these a private repository of a token-auth registry
        (Docker distribution with token auth, say) fails to pull; with them, containerd asks the token
        service with the credentials (an OAuth2 password grant, then GET with Basic).
      - Written on containerd 1.x only. containerd 2.x sends the header to the token service as well (and calls
        C(configs) deprecated), so it gets none, even in a version 2 file, and the tables an earlier run wrote are
        removed (a node upgraded to containerd 2.x). The node's release (RV(containerd_version)) decides; where it
        is not known, the file's version does (1 and 2 are containerd 1.x's).
      - "Each table written carries a comment on its header line naming C(kubenode.registry_mirror); only those
        are ever changed: the one of a host no longer listed is removed, and all of them with O(state=absent)
        (whatever C(config_path) holds). An C(auth) table of the file's own for the same host (without that
        comment) is left alone when it holds the same credentials (C(username) and C(password), or C(auth) with
        their Base64 token), and the task fails naming its TOML key, writing nothing, when it holds others.
        A CRI registry section written as an inline table cannot take a table of its own: refused the same way."
      - A file that holds these credentials is written with mode C(0600) (made so before they are written), as
        containerd, which runs as root, is its only reader; it stays C(0600) once they are removed. Its backups
        are C(0600) too. The password is masked in every diff and never returned or logged.
      - Only used with O(state=present); O(state=absent) removes them all.
    type: list
    elements: dict
    default: []
    version_added: 2.0.0
    suboptions:
      host:
        description:
          - The mirror's host[:port], as containerd names it in a pull (the mirror's own C(certs.d) directory
            name), for example V(harbor.example) or V(10.0.0.5:5000).
        type: str
        required: true
      username:
        description: The user name.
        type: str
        required: true
      password:
        description: The password.
        type: str
        required: true
  pending_marker:
    description:
      - Path on the node of M(kubenode.registry_mirror.node_restart)'s
        O(kubenode.registry_mirror.node_restart#module:pending_marker). The module reports whether this file
        exists (RV(pending_restart)), so one call tells whether a restart is owed.
      - Taken literally and must be absolute.
    type: str
  _read:
    description:
      - Internal, set by the action plugin; return the file, RV(pending_restart) and RV(containerd_version). Do not set.
    type: bool
    default: false
  _dump:
    description:
      - Internal, set by the action plugin; with the read, and after a write, also return containerd's
        C(config dump) and the text of every file its C(imports) name, for the action to check. Do not set.
    type: bool
    default: false
  _rollback:
    description:
      - Internal, set by the action plugin; put O(path) back as O(_content) (remove it when O(_content) is not
        set), unless it changed since the write whose SHA-256 O(_read_sha256) is. Do not set.
    type: bool
    default: false
  _content:
    description:
      - Internal, set by the action plugin; the new text of the file. Do not set.
    type: str
  _read_sha256:
    description:
      - Internal, set by the action plugin; the SHA-256 of the file it read, empty when there was none.
        The module writes nothing when the file changed since. Do not set.
    type: str
  _hosts_files:
    description:
      - Internal, set by the action plugin; the migrated C(hosts.toml) files to write before the file. Do not set.
    type: list
    elements: dict
    default: []
    suboptions:
      registry:
        description: The directory under O(config_path).
        type: str
        required: true
      hosts:
        description: The C([host]) URLs of the file, in order.
        type: list
        elements: str
        default: []
      content:
        description: The file's text.
        type: str
        required: true
      tls_from:
        description: The C(configs."<host>".tls) keys whose settings the file carries; it may not be replaced then.
        type: list
        elements: str
        default: []
  _legacy_removed:
    description:
      - Internal, set by the action plugin; the new text no longer holds legacy registry entries, so the file is
        backed up before it is replaced. Do not set.
    type: bool
    default: false
  _backup_private:
    description:
      - Internal, set by the action plugin; the file holds secrets that the diff masks, so its backup is made
        readable by its owner alone (0600). Do not set.
    type: bool
    default: false
  _private:
    description:
      - Internal, set by the action plugin; the new text holds O(credentials), so the file is made readable by its
        owner alone (0600) before it is written. Do not set.
    type: bool
    default: false
notes:
  - O(credentials) are for containerd 1.x and token-auth registries; containerd 2.x and registries that take
    Basic auth (Harbor, say) work with the C(hosts.toml) header alone, which
    M(kubenode.registry_mirror.containerd_hosts) writes.
  - containerd reads C(config.toml) only when it starts; restart it for a change to take effect. The dump
    reads the files as they are, not the running daemon.
  - Files named in the C(imports) key are read and checked, never changed (see the description).
  - containerd 2.0 releases before the fix of containerd/containerd#11747 print a dump that does not show the
    migration of a version 2 file's CRI settings; there, give C(config.toml) version 3.
  - A relative C(imports) entry in an imported file outside O(path)'s directory is refused, as containerd 2.x
    prints the entries of every file merged in its dump, not resolved; write it as an absolute path.
  - A warning also flags a CRI plugin listed in C(disabled_plugins), and a CRI section that the file's version
    makes containerd ignore (for example C([plugins."io.containerd.grpc.v1.cri"]) in a file without C(version)).
seealso:
  - name: containerd registry host configuration
    description: The hosts.toml format and the config_path setting.
    link: https://github.com/containerd/containerd/blob/main/docs/hosts.md
  - name: containerd configuration versions
    description: How containerd 2.x reads and migrates version 1, 2 and 3 files.
    link: https://github.com/containerd/containerd/blob/main/docs/PLUGINS.md
  - module: kubenode.registry_mirror.containerd_hosts
    description: Writes the hosts.toml files under the certs.d directory.
"""

EXAMPLES = r"""
- name: Make containerd read /etc/containerd/certs.d
  kubenode.registry_mirror.containerd_config:
  register: containerd_config

- name: Restart containerd when its configuration changed
  ansible.builtin.systemd_service:
    name: containerd
    state: restarted
  when: containerd_config is changed

- name: A containerd 2.x node without a config.toml yet
  kubenode.registry_mirror.containerd_config:
    version: 3
    backup: true

- name: Stop pointing containerd at our certs.d directory
  kubenode.registry_mirror.containerd_config:
    state: absent

- name: A stock PMK node - its legacy mirrors move to certs.d (the default), config.toml is backed up
  kubenode.registry_mirror.containerd_config:
  register: containerd_config

- name: Show the registries that were migrated
  ansible.builtin.debug:
    msg: "{{ containerd_config.migrated | map(attribute='registry') | list }}"
  when: containerd_config.legacy_removed

- name: Leave a file with legacy mirrors alone and fail instead
  kubenode.registry_mirror.containerd_config:
    legacy_mirrors: refuse

- name: A node whose config.toml is not ours to edit - fail unless kubelet's pulls read certs.d
  kubenode.registry_mirror.containerd_config:
    state: check
  register: containerd_config

- name: The image every new pod needs, from containerd's effective configuration
  ansible.builtin.debug:
    msg: "{{ containerd_config.sandbox_image }} ({{ containerd_config.effective.imports | length }} drop-ins)"
"""

RETURN = r"""
section:
  description:
    - The section holding C(config_path), spelt as a TOML table header.
    - V(null) when O(state=absent) and the file does not exist.
  returned: with O(state=present) or O(state=absent)
  type: str
  sample: plugins."io.containerd.grpc.v1.cri".registry
containerd_major:
  description:
    - The containerd major release that reads the file, as deduced from its C(version) (1 for versions 1 and 2,
      2 for versions 3 and 4). V(null) when O(state=absent) and the file does not exist.
  returned: with O(state=present) or O(state=absent)
  type: int
  sample: 1
version:
  description: The file's config version (1 when it has no C(version) key). V(null) as for RV(section).
  returned: with O(state=present) or O(state=absent)
  type: int
  sample: 2
previous_config_path:
  description: The value of C(config_path) before the task; V(null) when the key or the file was missing.
  returned: with O(state=present) or O(state=absent)
  type: str
  sample: ""
config_path:
  description: The value of C(config_path) after the task; V(null) when the key is not set.
  returned: with O(state=present) or O(state=absent)
  type: str
  sample: /etc/containerd/certs.d
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/containerd/config.toml
backup_file:
  description: The backup made before the file was replaced.
  returned: when a backup was made (O(backup=true), or legacy registry entries deleted), not in check mode
  type: str
  sample: /etc/containerd/config.toml.12345.2026-11-28@10:00:00~
migrated:
  description:
    - The C(hosts.toml) files the legacy registry settings moved to (or, in check mode, would move to), in the
      order of the legacy entries. Empty when there were none. Holds no settings, so no credentials.
  returned: with O(state=present) or O(state=absent)
  type: list
  elements: dict
  contains:
    registry:
      description: The registry, as its directory under O(config_path) is named (C(_default) for C(*)).
      type: str
      sample: docker.io
    path:
      description: The file.
      type: str
      sample: /etc/containerd/certs.d/docker.io/hosts.toml
    status:
      description:
        - V(created) when it was written; V(unchanged) when it already held exactly the migrated text;
          V(kept_existing) when it already existed with other content and was left untouched (a warning says so).
        - V(kept_aside) when the registry's C(hosts.toml) is already the mirror's, written by
          M(kubenode.registry_mirror.containerd_hosts). The migrated text then goes to C(hosts.toml.before-kubenode)
          beside it (RV(migrated[].path)), where M(kubenode.registry_mirror.containerd_hosts) keeps what it
          replaced, so that its O(kubenode.registry_mirror.containerd_hosts#module:state=absent) brings it back.
      type: str
      sample: created
    hosts:
      description: The C([host]) URLs of the migrated file, in the order containerd tries them.
      type: list
      elements: str
      sample: [https://dockermirror.platform9.io, https://registry-1.docker.io]
  sample:
    - registry: platform9.io
      path: /etc/containerd/certs.d/platform9.io/hosts.toml
      status: created
      hosts: [https://dockermirror.platform9.io]
legacy_removed:
  description: Whether legacy registry entries were (in check mode, would be) deleted from the file.
  returned: with O(state=present) or O(state=absent)
  type: bool
  sample: true
pending_restart:
  description:
    - Whether O(pending_marker) exists, that is, a restart by M(kubenode.registry_mirror.node_restart) is not yet
      seen through. V(null) without O(pending_marker).
  returned: always
  type: bool
  sample: false
containerd_version:
  description: The node's containerd version, from C(containerd --version); V(null) when containerd is not found.
  returned: always
  type: str
  sample: 1.7.2
sandbox_image:
  description:
    - The sandbox (pause) image of containerd's effective configuration, pulled for every new pod;
      C(sandbox_image) of the C(io.containerd.grpc.v1.cri) plugin on containerd 1.x, C(pinned_images.sandbox)
      of the C(io.containerd.cri.v1.images) plugin on 2.x. Empty when it sets none, or when the configuration
      was not read (a file yet to be created, in check mode).
    - From the dump after the write when the task wrote O(path), else from the read.
  returned: with O(state=present) or O(state=check)
  type: str
  sample: registry.k8s.io/pause:3.6
effective:
  description:
    - What containerd's effective configuration (C(containerd config dump)) says, from the same dump as
      RV(sandbox_image). V(null) when it was not read. Never the dump itself, which may hold credentials.
  returned: with O(state=present) or O(state=check)
  type: dict
  contains:
    config_path:
      description: The C(config_path) in effect; V(null) when the table does not set it.
      type: str
      sample: /etc/containerd/certs.d
    section:
      description: The CRI registry table it is in, by the dump's config version.
      type: str
      sample: plugins."io.containerd.grpc.v1.cri".registry
    version:
      description: The dump's config version (2 on containerd 1.x, 3 on 2.x, 4 on 2.3 and later).
      type: int
      sample: 2
    imports:
      description: The files imported after O(path), in the order containerd loads them (1.x, unordered).
      type: list
      elements: str
      sample: [/etc/containerd/conf.d/10-runtime.toml]
"""

import base64
import errno
import hashlib
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import containerd_release
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import (
    MISSING,
    DumpFormatError,
    dump_argv,
    effective_report,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    HOSTS_FILE_NAME,
    KEPT_ASIDE_SUFFIX,
    is_managed,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import (
    PRIVATE_MODE,
    FileOperationError,
    backup,
    ensure_directory,
    exists,
    file_arguments,
    load_file_if_exists,
    remove,
    set_attributes,
    write_file,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._node_health import containerd_version
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    check_absolute,
    module_argument_spec,
)

NEW_FILE_MODE = 0o644
HOSTS_FILE_MODE = 0o600  # a migrated hosts.toml may carry credentials
# Set by the action plugin only.
_INTERNAL_SPEC = dict(
    _content=dict(type="str", no_log=True),
    _read_sha256=dict(type="str"),
    _hosts_files=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            registry=dict(type="str", required=True),
            hosts=dict(type="list", elements="str", default=[]),
            content=dict(type="str", required=True, no_log=True),
            tls_from=dict(type="list", elements="str", default=[]),
        ),
    ),
    _legacy_removed=dict(type="bool", default=False),
    _backup_private=dict(type="bool", default=False),  # the file holds secrets the diff masks: a 0600 backup
    _private=dict(type="bool", default=False),  # the new text holds the mirror credentials: the file is 0600
    _read=dict(type="bool", default=False),
    _dump=dict(type="bool", default=False),
    _rollback=dict(type="bool", default=False),
)


def _require_absolute(module, option):
    """Fail the module unless the node path option is absolute (it is taken literally)."""
    try:
        check_absolute(module.params[option], option)
    except RegistrySettingError as error:
        module.fail_json(msg=str(error))


# Why a config.toml cannot be read, in the words this module has always used.
_READ_REASONS = {
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.ENAMETOOLONG: "file name too long (at most 255 bytes a name, 4095 a path)",
}


def _unreadable(path, error):
    if error.errno in _READ_REASONS:
        return _READ_REASONS[error.errno]
    if os.path.isdir(path):
        return f"{path} is a directory"
    if error.errno == errno.EACCES:
        try:
            info = os.stat(path)
            return f"permission denied (owner {pwd.getpwuid(info.st_uid).pw_name}, mode {info.st_mode & 0o7777:04o})"
        except (OSError, KeyError):
            return "permission denied"
    return error.reason


def _containerd(module):
    """containerd's binary on PATH and its version (None, None when it is not there)."""
    binary = module.get_bin_path("containerd")
    if not binary:
        return None, None
    rc, out, _err = module.run_command([binary, "--version"])
    return binary, containerd_version(out) if rc == 0 else None


def _imported_file(path):
    """One imported file for the controller to check: {content: base64} or {error: why it cannot be read}."""
    try:
        data = load_file_if_exists(path)
    except FileOperationError as error:
        return {"error": f"cannot be read: {_unreadable(path, error)}"}
    if data is None:
        return {"error": MISSING}
    return {"content": base64.b64encode(data).decode("ascii")}


def _effective(module, path, binary, version):
    """containerd's effective configuration: `containerd config dump` and every file its imports name.

    Never fails the module: the action decides when a failure matters (after its own checks of the
    file, which say more), and says so naming the command.
    """
    command = f"containerd --config {path} config dump"
    if binary is None:
        return {"command": command, "found": False, "error": f"`{command}`: containerd is not on PATH "
                f"({os.environ.get('PATH', '')})"}
    # cwd /: as the daemon's, since containerd 1.x globs a relative import from its working directory
    rc, out, err = module.run_command(dump_argv(binary, path), cwd="/")
    if rc != 0:
        return {"command": command, "found": True,
                "error": f"`{command}` failed (exit {rc}): {(err or out).strip() or 'no output'}"}
    major = containerd_release(version)
    try:
        return effective_report(command, path, out, None if major is None else major[0], _imported_file)
    except DumpFormatError as error:
        return {"command": command, "found": True, "error": f"`{command}`: {error} (please report this)"}


def _read(module, path):
    """One call for what the action plugin needs from the node: the file, the restart marker, containerd's version
    and, with _dump, containerd's effective configuration."""
    marker = module.params["pending_marker"]
    if marker is not None:
        _require_absolute(module, "pending_marker")
    try:
        data = load_file_if_exists(path)
    except FileOperationError as error:
        module.fail_json(msg=f"cannot read {path}: {_unreadable(path, error)}; nothing was written")
    binary, version = _containerd(module)
    try:
        pending = None if marker is None else exists(marker)
    except FileOperationError as error:
        module.fail_json(msg=f"pending_marker: {error}")
    effective = _effective(module, path, binary, version) if module.params["_dump"] else None
    module.exit_json(changed=False, content=None if data is None else base64.b64encode(data).decode("ascii"),
                     pending_restart=pending, containerd_version=version, effective=effective)


def _rollback(module, path):
    """Put config.toml back as the action read it (_content; none: remove it), unless it changed since the write."""
    target = os.path.realpath(path)
    original = module.params["_content"]
    try:
        current = load_file_if_exists(target)
        if current is None or hashlib.sha256(current).hexdigest() != module.params["_read_sha256"]:
            module.fail_json(msg=f"{path}: changed on the node since it was written; it was not put back")
        if original is None:
            remove(target)  # there was no file
        else:
            write_file(module, target, original.encode("utf-8"))  # keeps the mode and owner it has kept
    except FileOperationError as error:
        module.fail_json(msg=f"{error}; it was not put back")
    module.exit_json(changed=True, path=path)


def _migrated(module, config_path, config_file):
    """Return [(entry, content bytes)] for the migrated hosts.toml files, warning about those kept as they are."""
    planned = []
    for hosts_file in module.params["_hosts_files"]:
        registry = hosts_file["registry"]
        if not registry or registry in (".", "..") or "/" in registry:
            module.fail_json(msg=f"_hosts_files: {registry!r} is not a registry directory name")
        path = os.path.join(config_path, registry, HOSTS_FILE_NAME)
        content = hosts_file["content"].encode("utf-8")
        existing = load_file_if_exists(path)
        if existing is None:
            status = "created"
        elif existing == content:
            status = "unchanged"
        elif (is_managed(existing.decode("utf-8", errors="replace"))
              and load_file_if_exists(path + KEPT_ASIDE_SUFFIX) is None):
            # The mirror's own file serves this registry already: keep the legacy settings where
            # containerd_hosts keeps what it replaced, so that state=absent brings them back.
            status = "kept_aside"
            path += KEPT_ASIDE_SUFFIX
        elif hosts_file["tls_from"]:
            keys = ", ".join(hosts_file["tls_from"])
            module.fail_json(msg=(
                f"{path}: already exists with other content, so the settings of {keys} in {config_file} cannot "
                "move there (containerd 1.x refuses them next to config_path, 2.x deprecates them): add them to "
                f"{path} yourself (ca_file becomes ca, cert_file and key_file client, insecure_skip_verify "
                "skip_verify) or move it away, and run this again; nothing was written"))
        else:
            status = "kept_existing"
            module.warn(
                f"{path}: already exists with other content and was left untouched, so the legacy endpoints for "
                f"{registry} in {config_file} were not copied to it; this file takes over for {registry} once "
                "config_path is set. Check that it still routes pulls the way the legacy settings did."
            )
        entry = {"registry": registry, "path": path, "status": status, "hosts": list(hosts_file["hosts"])}
        planned.append((entry, content))
    return planned


def _planned(module, path, config_path):
    """(config.toml's bytes before, the migrated hosts.toml files planned), unless it changed since the read."""
    try:
        before = load_file_if_exists(path)
        migrated = _migrated(module, config_path, path)
    except FileOperationError as error:
        module.fail_json(msg=f"{error}; nothing was written")
    expected = module.params["_read_sha256"]
    if expected is not None:
        current = "" if before is None else hashlib.sha256(before).hexdigest()
        if current != expected:
            module.fail_json(
                msg=f"{path}: changed on the node since it was read; nothing was written, run the task again"
            )
    return before, migrated


def _write(module, path, before, after, created, result):
    """Write the hosts.toml files created, then config.toml; fail the module, naming what was written, on an error."""
    # The hosts.toml files first: once config.toml loses its legacy entries, they are what containerd reads.
    written = []
    try:
        for entry, data in created:
            if ensure_directory(os.path.dirname(entry["path"])):
                written.append(os.path.dirname(entry["path"]))
            write_file(module, entry["path"], data, file_arguments(module, entry["path"], HOSTS_FILE_MODE, False))
            written.append(entry["path"])
        if before != after:
            target = os.path.realpath(path)  # a symlinked config.toml stays a symlink; its target is updated
            if ensure_directory(os.path.dirname(target)):
                written.append(os.path.dirname(target))
            if before is not None and (module.params["backup"] or result["legacy_removed"]):
                result["backup_file"] = backup(module, target, private=module.params["_backup_private"])
            # An existing file keeps its mode and owner (containerd's config is world-readable), but one that is to
            # hold the mirror credentials is made 0600 before they are in it.
            private = module.params["_private"]
            if before is not None and private:
                set_attributes(module, file_arguments(module, target, PRIVATE_MODE, False))
            new_mode = PRIVATE_MODE if private else NEW_FILE_MODE
            file_args = None if before is not None else file_arguments(module, target, new_mode, False)
            write_file(module, target, after, file_args)
            written.append(target)
    except FileOperationError as error:
        done = f"Written before the failure: {', '.join(written)}." if written else "Nothing was written."
        result.update(changed=bool(written), msg=f"{error}. {done}")
        module.fail_json(**result)


def main():
    module = AnsibleModule(argument_spec=dict(module_argument_spec("containerd_config"), **_INTERNAL_SPEC),
                           supports_check_mode=True)
    path = module.params["path"]
    _require_absolute(module, "path")
    if module.params["_read"]:
        _read(module, path)
    if module.params["_rollback"]:
        _rollback(module, path)
    content = module.params["_content"]
    if content is None:
        module.fail_json(msg="containerd_config must run through its action plugin, which edits the file")
    _require_absolute(module, "config_path")
    before, migrated = _planned(module, path, module.params["config_path"])
    after = content.encode("utf-8")
    created = [(entry, data) for entry, data in migrated if entry["status"] in ("created", "kept_aside")]
    result = dict(
        changed=before != after or bool(created),
        path=path,
        migrated=[entry for entry, _data in migrated],
        legacy_removed=module.params["_legacy_removed"],
    )
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    _write(module, path, before, after, created, result)
    if module.params["_dump"]:  # what containerd will run with now, for the action to check
        result["effective"] = _effective(module, path, *_containerd(module))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
