# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user-facing options of the containerd_config action and module (one definition for both)."""

from __future__ import annotations

# Node paths are "str", not "path": "path" would expand ~ and $VARS, on the controller in the action
# plugin. They are taken literally and must be absolute.
ARGUMENT_SPEC = dict(
    path=dict(type="str", default="/etc/containerd/config.toml"),
    config_path=dict(type="str", default="/etc/containerd/certs.d"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    version=dict(type="int", default=2, choices=[2, 3]),
    backup=dict(type="bool", default=False),
    legacy_mirrors=dict(type="str", default="migrate", choices=["migrate", "refuse"]),
)
