"""containerd_config: a backup of config.toml that holds a secret the diff masks is 0600 (issue 23, defect 3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.modules import containerd_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "containerd_config"
LEGACY = (FIXTURES / "v2-legacy-configs.toml").read_text()
PLAIN = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ""\n'


class FakeModule:
    """What containerd_config's write uses of AnsibleModule; SELinux off."""

    def __init__(self, **params):
        self.params = dict({"backup": True, "unsafe_writes": False, "_backup_private": False, "_private": False},
                           **params)
        self.check_mode = False

    def selinux_enabled(self):
        return False

    def preserved_copy(self, source, target):
        shutil.copy2(source, target)

    def fail_json(self, **result):
        raise AssertionError(result["msg"])


def written_backup(tmp_path, before, mode, **params):
    path = tmp_path / "config.toml"
    path.write_text(before)
    path.chmod(mode)
    result = {"legacy_removed": True}
    containerd_config._write(FakeModule(**params), str(path), before.encode(), b"version = 2\n", [], result)
    assert path.read_bytes() == b"version = 2\n"
    assert path.stat().st_mode & 0o777 == mode  # config.toml itself keeps its mode
    return Path(result["backup_file"])


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o755], ids=oct)
@pytest.mark.parametrize(("private", "expected"), [(True, 0o600), (False, None)], ids=["secrets", "none"])
def test_a_backup_holding_secrets_is_0600(tmp_path, mode, private, expected):
    backup = written_backup(tmp_path, LEGACY, mode, _backup_private=private)
    assert backup.read_text() == LEGACY
    assert backup.stat().st_mode & 0o777 == (mode if expected is None else expected)
    # nothing else is left beside it: no temporary file or directory
    assert sorted(entry.name for entry in tmp_path.iterdir()) == sorted(["config.toml", backup.name])


def test_a_private_backup_that_cannot_be_made_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(LEGACY)
    module = FakeModule(_backup_private=True)

    def refused(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(module, "preserved_copy", refused)
    with pytest.raises(AssertionError, match=f"cannot back up {path}: permission denied"):
        containerd_config._write(module, str(path), LEGACY.encode(), b"version = 2\n", [], {"legacy_removed": True})
    assert path.read_text() == LEGACY  # nothing changed on the node
    assert [entry.name for entry in tmp_path.iterdir()] == ["config.toml"]


@pytest.mark.parametrize(
    ("text", "private"),
    [
        (LEGACY, True),  # password and auth under configs."<host>".auth
        (PLAIN, False),
        (None, False),  # no file, no backup
        ("", False),
        ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r".auth]\nidentitytoken = "t"\n', True),
        ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.headers]\nX-Token = ["abc"]\n', True),
        ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r".auth]\nusername = "u"\n', False),
        ('x = { Password = "p" }\n', True),  # any spelling the diff masks
        ("not = [toml\n", True),  # the diff cannot show it: it may hold anything
    ],
)
def test_the_action_asks_for_a_private_backup_when_the_diff_masks_a_secret(text, private):
    from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import holds_secrets

    assert holds_secrets(text) is private


def test_the_module_accepts_the_internal_option():
    assert containerd_config._INTERNAL_SPEC["_backup_private"] == {"type": "bool", "default": False}
