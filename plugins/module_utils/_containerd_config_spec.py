# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What containerd_config's options may hold, and the config version a new file is written in.

The options themselves are in _settings.CONTAINERD_CONFIG_SETTINGS (one definition for the action and the module).
"""

from __future__ import annotations

import re

DEFAULT_PATH = "/etc/containerd/config.toml"
DEFAULT_CONFIG_PATH = "/etc/containerd/certs.d"
# config versions a new file may be written in: 2 for containerd 1.x (2.x migrates it), 3 for 2.x only,
# 4 for 2.3 and later (its default; containerd before 2.3 refuses it)
NEW_FILE_VERSIONS = (2, 3, 4)
DEFAULT_VERSION = 2
# what is done with legacy registry.mirrors / registry.configs.<host>.tls|auth entries
LEGACY_MIRRORS = ("migrate", "refuse")
DEFAULT_LEGACY_MIRRORS = "migrate"
STATES = ("present", "absent", "check")


def containerd_release(containerd_version):
    """(major, minor) of a containerd version such as 2.3.0 or 2.3.0-rc.1; None when it is not one."""
    match = re.match(r"(\d+)(?:\.(\d+))?", containerd_version or "")
    return None if match is None else (int(match.group(1)), int(match.group(2) or 0))


def new_file_version(version, containerd_version):
    """The config version of a new file: the one asked for, else the node's containerd's own default (4 on 2.3 and
    later, 3 on 2.0 to 2.2), else DEFAULT_VERSION (containerd 1.x, or unknown: 2.x reads and migrates it too)."""
    if version is not None:
        return version
    release = containerd_release(containerd_version)
    if release is None or release[0] < 2:
        return DEFAULT_VERSION
    return 4 if release >= (2, 3) else 3
