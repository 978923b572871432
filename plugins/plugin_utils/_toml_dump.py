# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Serialise a hosts.toml document, and refuse text that does not parse back to it.

Controller-side, pure Python with no Ansible imports: the hosts.toml renderer (_hosts_toml.py) and the legacy
migration (_legacy_registry.py) both write their files through dump_checked.
"""

from __future__ import annotations

import tomllib

try:
    import tomli_w
except ImportError:  # reported when dumping, so that documentation tools work without it
    tomli_w = None

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError


class MissingDependencyError(RuntimeError):
    """A controller-side Python package is not installed."""


def dump_checked(document, marker, field="hosts.toml"):
    """Return marker's line, then document as TOML; raise RegistrySettingError (naming field) when the text does not
    parse back equal to document.

    containerd silently ignores a hosts.toml it cannot parse and pulls from the internet instead, so a file that
    does not round-trip must never leave.
    """
    if tomli_w is None:
        raise MissingDependencyError("tomli-w is required on the controller: pip install tomli-w")
    text = f"{marker}\n{tomli_w.dumps(document)}"
    if tomllib.loads(text) != document:
        raise RegistrySettingError(field, "rendered text does not parse back to the intended settings")
    return text
