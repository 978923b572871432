"""_hosts_files: who wrote a hosts.toml, and what containerd_hosts does with it."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ADOPT,
    ARGUMENT_SPEC,
    CONFLICT,
    FOREIGN,
    KEEP,
    KEPT_ASIDE_SUFFIX,
    KEYS_SINCE,
    MARKER,
    MIGRATED,
    MIGRATED_MARKER_PREFIX,
    NOTHING,
    OURS,
    REFUSE,
    REMOVE,
    RESTORE,
    WRITE,
    absent_action,
    containerd_release,
    kept_aside_path,
    owner,
    present_action,
    unread_keys,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        (MARKER + "\nserver = 'x'\n", OURS),
        (MARKER + "\r\n", OURS),
        (MARKER, OURS),
        (MIGRATED_MARKER_PREFIX + "docker.io\nserver = 'x'\n", MIGRATED),
        (MIGRATED_MARKER_PREFIX + "x", MIGRATED),
        ("", FOREIGN),
        ('server = "https://registry-1.docker.io"\n', FOREIGN),
        ("\n" + MARKER + "\n", FOREIGN),  # the mark counts on the first line only
        ("# " + MARKER + "\n", FOREIGN),
        (MIGRATED_MARKER_PREFIX.rstrip() + "\n", FOREIGN),  # the prefix is whole or nothing
    ],
)
def test_owner(text, expected):
    assert owner(text) == expected


def test_kept_aside_path_is_beside_the_file():
    path = "/etc/containerd/certs.d/docker.io/hosts.toml"
    assert kept_aside_path(path) == path + KEPT_ASIDE_SUFFIX == path + ".before-kubenode"


@pytest.mark.parametrize("foreign_files", ["adopt", "refuse"])
@pytest.mark.parametrize(
    ("file_owner", "kept_aside_exists", "adopt", "refuse"),
    [
        (None, False, WRITE, WRITE),
        (None, True, WRITE, WRITE),  # ours was removed by hand: write it again, keep theirs aside
        (OURS, False, WRITE, WRITE),
        (OURS, True, WRITE, WRITE),
        (MIGRATED, False, ADOPT, ADOPT),  # expected on stock PMK nodes, adopted either way
        (MIGRATED, True, CONFLICT, CONFLICT),
        (FOREIGN, False, ADOPT, REFUSE),
        (FOREIGN, True, CONFLICT, CONFLICT),  # never overwrite a kept-aside file
    ],
)
def test_present_action(file_owner, kept_aside_exists, adopt, refuse, foreign_files):
    expected = adopt if foreign_files == "adopt" else refuse
    assert present_action(file_owner, kept_aside_exists, foreign_files) == expected


@pytest.mark.parametrize(
    ("file_owner", "kept_aside_exists", "expected"),
    [
        (None, False, NOTHING),
        (None, True, RESTORE),
        (OURS, False, REMOVE),
        (OURS, True, RESTORE),
        (MIGRATED, False, KEEP),
        (MIGRATED, True, KEEP),
        (FOREIGN, False, KEEP),
        (FOREIGN, True, KEEP),  # someone replaced ours after we kept theirs aside: touch neither
    ],
)
def test_absent_action(file_owner, kept_aside_exists, expected):
    assert absent_action(file_owner, kept_aside_exists) == expected


def test_foreign_files_option():
    assert ARGUMENT_SPEC["foreign_files"] == dict(type="str", default="adopt", choices=["adopt", "refuse"])
    assert present_action(FOREIGN, False) == ADOPT  # the default


def test_node_paths_are_str_not_path():
    """type "path" expands ~ and $VARS where the options are validated, the controller for an action plugin.

    Node paths are taken literally (issue 10, point 12); controller paths (the role's CA source) stay "path".
    """
    from pathlib import Path

    import yaml

    from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import module_argument_spec

    CONFIG_SPEC = module_argument_spec("containerd_config")

    assert ARGUMENT_SPEC["ca_file"]["type"] == "str"
    assert ARGUMENT_SPEC["config_path"]["type"] == "str"
    assert CONFIG_SPEC["path"]["type"] == "str"
    assert CONFIG_SPEC["config_path"]["type"] == "str"
    specs = Path(__file__).parents[4] / "roles" / "containerd_mirror" / "meta" / "argument_specs.yml"
    options = yaml.safe_load(specs.read_text())["argument_specs"]["main"]["options"]
    for node_path in ("containerd_mirror_config_path", "containerd_mirror_containerd_config",
                      "containerd_mirror_nodeletd", "containerd_mirror_cert_path"):
        assert options[node_path]["type"] == "str", node_path
    assert options["containerd_mirror_ca_src"]["type"] == "path"  # on the controller


# --- what each containerd release reads -----------------------------------


@pytest.mark.parametrize(
    ("version", "release"),
    [(None, None), ("1.6.20", (1, 6, 20)), ("v2.1.4", (2, 1, 4)), ("1.7.24~ds1-1", (1, 7, 24)),
     ("1.6.20-0ubuntu1~22.04.1", (1, 6, 20)), ("2.2", (2, 2, 0)), (" 2.0.7\n", (2, 0, 7)), ("1.7.0-rc.1", (1, 7, 0))],
)
def test_containerd_release(version, release):
    assert containerd_release(version) == release


@pytest.mark.parametrize(
    ("version", "fragment"),
    [("latest", "is not a containerd version"), ("2", "is not a containerd version"), ("", "is not a containerd"),
     ("containerd 1.7.24", "is not a containerd version"), ("1.5.9", "older than 1.6"), ("0.2.1", "older than 1.6"),
     (1.7, "must be a string, got float")],
)
def test_a_bad_containerd_version_is_named(version, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        containerd_release(version)
    assert raised.value.field == "containerd_version"
    assert fragment in raised.value.problem


@pytest.mark.parametrize(
    ("version", "unread"),
    [("1.6.6", {"dial_timeout"}), ("1.7.24", {"dial_timeout"}), ("2.0.0", {"dial_timeout"}),
     ("2.0.6", {"dial_timeout"}), ("2.0.7", set()), ("2.1.0", set()), ("2.1.9", set()), ("3.0.0", set()),
     (None, {"dial_timeout"})],
)
def test_unread_keys(version, unread):
    assert set(unread_keys(version)) == unread
    assert set(KEYS_SINCE) >= unread
