# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the controller and the node agree on about the hosts.toml files we own.

Pure Python with no Ansible imports: the controller-side renderer and the
node-side module both import it.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    require_str,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    HOSTS_SETTINGS,
    argument_spec,
    required_if,
    required_together,
)

HOSTS_FILE_NAME = "hosts.toml"

# The hosts each registry PMK routes through the custom registry falls back to after the mirror (seed document).
_PLATFORM9_MIRROR = "https://dockermirror.platform9.io"
DEFAULT_FALLBACKS = {
    "platform9.io": (_PLATFORM9_MIRROR,),
    "docker.io": (_PLATFORM9_MIRROR, "https://registry-1.docker.io"),
    "gcr.io": (_PLATFORM9_MIRROR,),
    "quay.io": (_PLATFORM9_MIRROR,),
    "registry.k8s.io": (_PLATFORM9_MIRROR,),
}

# The user-facing options of the containerd_hosts action and module (one definition for both), but the CA's.
ARGUMENT_SPEC = argument_spec(HOSTS_SETTINGS)
REQUIRED_TOGETHER = required_together(ARGUMENT_SPEC)
REQUIRED_IF = required_if(ARGUMENT_SPEC)

# Files are created with this mode unless the task sets one: they hold credentials.
DEFAULT_MODE = "0600"

# First line of every file this collection writes. state=absent removes a
# hosts.toml only when it starts with this line, so foreign files survive.
MARKER = "# Managed by kubenode.registry_mirror; local changes are overwritten."


# First line of a hosts.toml that containerd_config wrote when it moved a registry's legacy
# CRI registry.mirrors / registry.configs entries out of config.toml. Such a file is not ours:
# state=absent keeps it (the node then pulls as it did before the mirror), and containerd_hosts
# moves it aside (see KEPT_ASIDE_SUFFIX) before writing its own file for that registry.
MIGRATED_MARKER_PREFIX = "# Migrated by kubenode.registry_mirror from the legacy CRI registry settings of "

# A hosts.toml we did not write is never lost: before containerd_hosts writes its own file in its
# place, the existing one is renamed to hosts.toml + this suffix, and state=absent renames it back.
# containerd reads only hosts.toml in a registry directory, so the kept-aside file has no effect.
KEPT_ASIDE_SUFFIX = ".before-kubenode"


# The PEM files containerd_hosts writes beside a registry's hosts.toml from a mirror's ca_content,
# client_cert_content and client_key_content: <mirror host[:port]><suffix>, with their modes. The names follow the
# Docker certs.d convention that containerd also knows (CA .crt, client .cert and .key), and hosts.toml names them.
# A PEM file holds no TOML comment: our MARKER line is written before the first -----BEGIN line, where PEM readers
# (OpenSSL, Go's encoding/pem in containerd) skip text, and it is how state=absent and stale removal know them.
TLS_FILES = {
    "ca_content": (".ca.crt", "0644"),
    "client_cert_content": (".client.cert", "0644"),
    "client_key_content": (".client.key", "0600"),  # a private key: root's only
}
TLS_FILE_SUFFIXES = tuple(suffix for suffix, _mode in TLS_FILES.values())


def tls_file_name(mirror_directory, setting):
    """The name, in a registry's directory, of the file of a mirror's setting (a key of TLS_FILES)."""
    return mirror_directory + TLS_FILES[setting][0]


def tls_file_mode(name):
    """The mode of one of our PEM files by its name; None when the name is not one of ours."""
    return next((mode for suffix, mode in TLS_FILES.values() if name.endswith(suffix) and name != suffix), None)


def tls_file_text(pem):
    """The text of one of our PEM files: the marker line, then the PEM text."""
    return f"{MARKER}\n{pem}"


def is_migrated(text):
    """Return True when a hosts.toml text was written by containerd_config's legacy migration."""
    return text.split("\n", 1)[0].startswith(MIGRATED_MARKER_PREFIX)


def is_managed(text):
    """Return True when a hosts.toml text was written by this collection."""
    return text.split("\n", 1)[0].rstrip("\r") == MARKER


# Who wrote a hosts.toml (see owner()).
OURS = "ours"
MIGRATED = "migrated"
FOREIGN = "foreign"


def owner(text):
    """Return who wrote a hosts.toml text: OURS, MIGRATED or FOREIGN; None when there is no file (text None)."""
    if text is None:
        return None
    if is_managed(text):
        return OURS
    if is_migrated(text):
        return MIGRATED
    return FOREIGN


# The line after MARKER in our hosts.toml when it replaced a file it kept aside, with that file's sha256: state=absent
# puts back only a kept-aside file that our hosts.toml records, never a stray one it did not keep aside.
KEPT_ASIDE_RECORD = f"# Kept aside as {HOSTS_FILE_NAME}{KEPT_ASIDE_SUFFIX}, sha256 "


def with_kept_record(text, kept_bytes):
    """Our hosts.toml text (MARKER first) recording the file kept aside, whose bytes are kept_bytes."""
    first, _newline, rest = text.partition("\n")
    return f"{first}\n{KEPT_ASIDE_RECORD}{hashlib.sha256(kept_bytes).hexdigest()}\n{rest}"


def records_kept(text, kept_bytes):
    """Return True when our hosts.toml text records the file kept aside as the one whose bytes are kept_bytes."""
    lines = text.split("\n", 2)
    return len(lines) > 1 and lines[1].rstrip("\r") == KEPT_ASIDE_RECORD + hashlib.sha256(kept_bytes).hexdigest()


def kept_aside_path(path):
    """Return where the hosts.toml at path is kept while ours replaces it."""
    return path + KEPT_ASIDE_SUFFIX


# What containerd_hosts does with one registry's hosts.toml (present_action and absent_action).
WRITE = "write"  # state=present: no file, or ours: write ours (created, updated or unchanged)
ADOPT = "adopt"  # state=present: not ours: keep it aside, then write ours
REFUSE = "refuse"  # state=present: foreign and foreign_files=refuse: fail, nothing written
CONFLICT = "conflict"  # state=present: not ours and a kept-aside file exists already: fail, nothing written
REMOVE = "remove"  # state=absent: ours, nothing kept aside: remove it
RESTORE = "restore"  # state=absent: ours or no file, and a kept-aside file: rename that back
KEEP = "keep"  # state=absent: not ours: leave it (and any kept-aside file) alone
NOTHING = "nothing"  # state=absent: no file and nothing kept aside


def present_action(file_owner, kept_aside_exists, foreign_files="adopt"):
    """Return what state=present does with a hosts.toml written by file_owner (see owner())."""
    if file_owner in (None, OURS):
        return WRITE
    if kept_aside_exists:
        return CONFLICT  # never overwrite a kept-aside file
    if file_owner == FOREIGN and foreign_files == "refuse":
        return REFUSE
    return ADOPT  # migrated files are adopted whatever foreign_files says


def absent_action(file_owner, kept_aside_exists):
    """Return what state=absent does with a hosts.toml written by file_owner (see owner())."""
    if file_owner in (MIGRATED, FOREIGN):
        return KEEP
    if kept_aside_exists:
        return RESTORE
    return NOTHING if file_owner is None else REMOVE


# What a diff shows in place of a secret (the masking itself runs on the controller: plugin_utils/_toml_mask.py).
SECRET_MASK = "********"
# ... and in place of a secret that changed.
CHANGED_MASK = f"{SECRET_MASK} (changed)"


# --- what each containerd release reads ---------------------------------------------------------------
# The oldest containerd this collection writes for (PMK's nodes pin 1.6.6); hosts.toml came in 1.5.
OLDEST_CONTAINERD = (1, 6)
# hosts.toml keys that not every release from OLDEST_CONTAINERD on reads, with the first release that does.
# dial_timeout: 2.1.0 (containerd#11106) and its 2.0 backport in 2.0.7 (containerd#12136), as both release
# notes say; every 2.1 and later is newer than 2.0.7. An older containerd ignores the key without a word.
KEYS_SINCE = {"dial_timeout": (2, 0, 7)}
# A version as containerd --version or a package prints it: v2.1.4, 1.7.24~ds1-1 (Debian), 1.6.20-0ubuntu1.
_CONTAINERD_VERSION = re.compile(r"v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:[-+~][0-9A-Za-z.~+-]*)?")


def containerd_release(version, field="containerd_version"):
    """Return (major, minor, patch) of a containerd version text; None for None (unknown)."""
    if version is None:
        return None
    require_str(version, field)
    match = _CONTAINERD_VERSION.fullmatch(version.strip())
    if not match:
        raise RegistrySettingError(field, f"{version[:40]!r} is not a containerd version like 1.7.24 or 2.1.4")
    release = tuple(int(part or 0) for part in match.groups())
    if release[:2] < OLDEST_CONTAINERD:
        raise RegistrySettingError(
            field, f"containerd {version} is older than {'.'.join(map(str, OLDEST_CONTAINERD))}, the oldest supported"
        )
    return release


def unread_keys(containerd_version, field="containerd_version"):
    """Return {key: why} for the hosts.toml keys of KEYS_SINCE that containerd_version does not read.

    None (unknown) is answered for the oldest release supported, so what is written is read everywhere.
    """
    release = containerd_release(containerd_version, field)
    unread = {}
    for key, since in KEYS_SINCE.items():
        first = ".".join(map(str, since))
        if release is None:
            unread[key] = f"the containerd version is unknown, and releases before {first} do not read it"
        elif release < since:
            unread[key] = f"containerd {containerd_version} does not read it ({first} and later do)"
    return unread
