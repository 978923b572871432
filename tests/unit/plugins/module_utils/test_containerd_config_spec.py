# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import new_file_version


@pytest.mark.parametrize(
    ("version", "containerd_version", "expected"),
    [
        (None, "1.6.20", 2),
        (None, "1.7.24", 2),
        (None, "2.1.4", 3),
        (None, "2.2.0", 3),
        (None, "2.2.9", 3),
        (None, "2.3.0", 4),  # containerd 2.3's own default is version 4
        (None, "2.3.0-rc.1", 4),
        (None, "2.10.1", 4),
        (None, "3.0.0", 4),
        (None, "10.0.0", 4),
        (None, "2", 3),
        (None, None, 2),  # containerd not found: 2, which 2.x reads too
        (None, "", 2),
        (None, "unknown", 2),
        (2, "2.1.4", 2),  # asked for: kept
        (3, "1.6.20", 3),
        (4, "2.2.0", 4),
        (3, "2.3.1", 3),
    ],
)
def test_a_new_files_version_is_the_nodes_containerd_own_unless_asked(version, containerd_version, expected):
    assert new_file_version(version, containerd_version) == expected
