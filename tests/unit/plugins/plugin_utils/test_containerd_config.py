"""Setting containerd's CRI registry config_path in config.toml, checked by parsing, line diffs and containerd.

Expectations come from the test's own table of where each config version keeps
the registry settings, from tomllib, and (for containerd 1.x files, when the
binary is installed) from `containerd --config FILE config dump`, which loads
the file the way the daemon does without starting anything.
"""

from __future__ import annotations

import copy
import difflib
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    ensure_config_path,
    remove_config_path,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "containerd_config"
WANTED = "/etc/containerd/certs.d"
CRI = "io.containerd.grpc.v1.cri"

# Where containerd reads the registry settings, by config version (containerd docs).
SECTIONS = {
    1: ("plugins", "cri", "registry"),
    2: ("plugins", CRI, "registry"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry"),
    4: ("plugins", "io.containerd.cri.v1.images", "registry"),  # containerd 2.3's default, same table as 3
}
SECTION_NAMES = {
    1: "plugins.cri.registry",
    2: 'plugins."io.containerd.grpc.v1.cri".registry',
    3: 'plugins."io.containerd.cri.v1.images".registry',
    4: 'plugins."io.containerd.cri.v1.images".registry',
}
MAJOR = {1: 1, 2: 1, 3: 2, 4: 2}
# Today's behaviour: legacy entries refused, configs.<host>.auth left alone. The layout tests below run in
# this mode, as several of their files keep an auth table that the default mode (migrate) would move out.
REFUSE = "refuse"

CONTAINERD = shutil.which("containerd")
needs_containerd = pytest.mark.skipif(CONTAINERD is None, reason="containerd 1.x binary not installed")


def fixture(name):
    return (FIXTURES / name).read_text()


IMAGES = "io.containerd.cri.v1.images"
# The part of containerd 2.2's `containerd config default` around the registry section (containerd/containerd#12636),
# with its single-quoted strings and the transfer service's own config_path, which is not the CRI's.
CONTAINERD_2_2_DEFAULT = f"""version = 3
root = '/var/lib/containerd'
state = '/run/containerd'

[plugins]
  [plugins.'{IMAGES}']
    snapshotter = 'overlayfs'
    use_local_image_pull = false

    [plugins.'{IMAGES}'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10.1'

    [plugins.'{IMAGES}'.registry]
      config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'

    [plugins.'{IMAGES}'.image_decryption]
      key_model = 'node'

  [plugins.'io.containerd.transfer.v1.local']
    config_path = ''
    max_concurrent_downloads = 3
"""


def with_list(version, value):
    """A file of the given config version whose registry section sets config_path to value."""
    header = ".".join(f'"{part}"' if "." in part else part for part in SECTIONS[version])
    top = "" if version == 1 else f"version = {version}\n"
    return f'{top}[{header}]\n  config_path = "{value}"  # kept\n'


# (text, config version containerd reads it as, inline: the edit rewrites an inline table's line)
FILES = {
    "containerd-1.6-default": (fixture("containerd-1.6-default.toml"), 2, False),
    "debian-1.6-package": (fixture("debian-1.6-package.toml"), 2, False),
    "1.x-v2-comments-other-config-path": (fixture("v2-comments.toml"), 2, False),
    "1.x-v1-comments": (fixture("v1-comments.toml"), 1, False),
    "2.x-v3-comments": (fixture("v3-comments.toml"), 3, False),
    # hand-written (containerd 2.3 is not in Debian): its default layout, version 4 with a colon list
    "2.3-v4-default": (fixture("v4-containerd-2.3-default.toml"), 4, False),
    "2.3-v4-minimal": (
        "version = 4\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = 'p'\n", 4, False
    ),
    "explicit-version-1": ('version = 1\n[plugins.cri]\n  sandbox_image = "p"  # keep\n', 1, False),
    "version-0-reads-as-1": ("version = 0\n[grpc]\n  uid = 0\n", 1, False),
    "empty-section-then-comment": (
        f'version = 2\n\n[plugins."{CRI}".registry]\n\n# the runtime\n[plugins."{CRI}".containerd]\n'
        '  snapshotter = "overlayfs"\n',
        2,
        False,
    ),
    "section-with-subtables-only-headers": (
        f'version = 2\n[plugins."{CRI}".registry]\n  [plugins."{CRI}".registry.mirrors]\n'
        f'  [plugins."{CRI}".registry.configs]\n',
        2,
        False,
    ),
    "implicit-section-through-subtable": (
        f'version = 2\n[plugins."{CRI}".registry.configs."r.example".auth]\n  username = "u"  # user\n\n'
        "[metrics]\n  address = ''\n",
        2,
        False,
    ),
    "dotted-key-set": (
        f'version = 2\n[plugins."{CRI}"]\n  sandbox_image = "p"\n  registry.config_path = "" # dotted\n'
        '  containerd.snapshotter = "overlayfs"\n',
        2,
        False,
    ),
    "dotted-keys-without-it": (
        f'version = 2\n[plugins."{CRI}"]\n  registry.configs."r.example".auth.username = "u"\n  other = 1\n',
        2,
        False,
    ),
    "parent-through-dotted-keys": (
        f'version = 2\n[plugins]\n  "{CRI}".sandbox_image = "p"  # pause\n',
        2,
        False,
    ),
    "inline-table": (f'version = 2\n[plugins."{CRI}"]\n  registry = {{ config_path = "" }}\n', 2, True),
    "inline-parent": (f'version = 2\n[plugins]\n  "{CRI}" = {{ sandbox_image = "p" }}\n', 2, True),
    "out-of-order-tables": (
        f'version = 2\n[plugins."{CRI}".registry]\n  # registry first\n[grpc]\n  uid = 0\n'
        f'[plugins."{CRI}".registry.configs."r.example".auth]\n  username = "u"\n',
        2,
        False,
    ),
    "implicit-section-through-subtables-apart": (
        f'version = 2\n[plugins."{CRI}".registry.configs."a".auth]\n  username = "u"\n[grpc]\n  uid = 0\n'
        f'[plugins."{CRI}".registry.headers]\n  X-Origin = ["node"]\n',
        2,
        False,
    ),
    "no-plugins-table": ('version = 2\nroot = "/var/lib/containerd"  # root\n\n[grpc]\n  uid = 0\n', 2, False),
    "header-at-eof-without-newline": (f'version = 2\n[plugins."{CRI}".registry]', 2, False),
    "crlf-line-endings": ("version = 2\r\n# windows editor\r\n[grpc]\r\n  uid = 0\r\n", 2, False),
    "containerd-2.2-default-colon-list": (CONTAINERD_2_2_DEFAULT, 3, False),
    "v2-colon-list": (with_list(2, "/etc/docker/certs.d:/etc/containerd/certs.d"), 2, False),
    "empty-file": ("", 2, False),
    "comments-only-no-final-newline": ("# nothing here yet\n# really", 2, False),
}


def lookup(settings, path):
    node = settings
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def with_config_path(settings, version, value):
    expected = copy.deepcopy(settings)
    node = expected
    for part in SECTIONS[version]:
        node = node.setdefault(part, {})
    node["config_path"] = value
    return expected


def changed_lines(old, new):
    """Return (removed, added) lines between two texts, line endings aside."""
    removed, added = [], []
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += old.splitlines()[i1:i2]
            added += new.splitlines()[j1:j2]
    return removed, added


def is_header_of(line, version):
    stripped = line.strip()
    if not stripped.startswith("[") or stripped.startswith("[["):
        return False
    table = tomllib.loads(stripped)
    return lookup(table, SECTIONS[version]) == {}


def containerd_dump(tmp_path, text, name):
    """Load text the way containerd 1.x does and return its effective settings."""
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    done = subprocess.run(
        [CONTAINERD, "--config", str(path), "config", "dump"], capture_output=True, text=True, check=True, timeout=60
    )
    settings = tomllib.loads(done.stdout)
    assert settings.pop("imports") == [str(path)]  # containerd lists the files it loaded there
    return settings


@pytest.mark.parametrize("case", FILES)
def test_sets_config_path_where_containerd_reads_it_and_nothing_else(case):
    text, version = FILES[case][:2]
    before = tomllib.loads(text)
    fresh = not before
    new_text, info = ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)

    expected = with_config_path(before, version, WANTED)
    if fresh:
        expected["version"] = version
    assert tomllib.loads(new_text) == expected
    assert info["section"] == SECTION_NAMES[version]
    assert info["containerd_major"] == MAJOR[version]
    assert info["version"] == version
    assert info["previous_config_path"] == lookup(before, (*SECTIONS[version], "config_path"))
    assert info["config_path"] == WANTED
    assert info["created"] is False


@pytest.mark.parametrize("case", FILES)
def test_keeps_every_other_line_and_comment_byte_for_byte(case):
    text, version, inline = FILES[case]
    new_text = ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)[0]
    removed, added = changed_lines(text, new_text)

    assert len(removed) <= 1
    if removed and not inline:
        # the one line replaced is the old setting; its comment stays on it
        (old_line,) = removed
        assert "config_path" in old_line
        assert [line for line in added if line.strip()] == [
            old_line.replace(old_line.split("=", 1)[1].split("#")[0].strip(), f'"{WANTED}"', 1)
        ]
    elif not inline:
        for line in added:
            assert (
                not line.strip()
                or line.strip() == f'config_path = "{WANTED}"'
                or line.strip() == f'registry.config_path = "{WANTED}"'
                or is_header_of(line, version)
                or (not tomllib.loads(text) and line == f"version = {version}")
            ), line
    assert sum("config_path" in line for line in new_text.splitlines()) == max(
        1, sum("config_path" in line for line in text.splitlines())
    )
    if "\r\n" in text:
        assert new_text.count("\n") == new_text.count("\r\n")
        assert new_text.startswith(text)


@pytest.mark.parametrize("case", FILES)
def test_applying_twice_gives_identical_text(case):
    once = ensure_config_path(FILES[case][0], WANTED, legacy_mirrors=REFUSE)[0]
    twice, info = ensure_config_path(once, WANTED, legacy_mirrors=REFUSE)
    assert twice == once
    assert info["previous_config_path"] == WANTED


@needs_containerd
@pytest.mark.parametrize("case", [name for name, case in FILES.items() if MAJOR[case[1]] == 1])
def test_containerd_1x_reads_the_new_value_and_the_same_everything_else(case, tmp_path):
    text = FILES[case][0]
    new_text = ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)[0]
    before = containerd_dump(tmp_path, text, "before")
    after = containerd_dump(tmp_path, new_text, "after")
    assert after["plugins"][CRI]["registry"]["config_path"] == WANTED
    before["plugins"][CRI]["registry"]["config_path"] = WANTED
    assert after == before


@pytest.mark.parametrize("version", [2, 3, 4])
def test_missing_file_becomes_a_minimal_one(version):
    text, info = ensure_config_path(None, WANTED, version)
    assert tomllib.loads(text) == with_config_path({"version": version}, version, WANTED)
    assert info["created"] is True
    assert info["previous_config_path"] is None
    assert info["containerd_major"] == MAJOR[version]
    assert info["section"] == SECTION_NAMES[version]
    assert ensure_config_path(text, WANTED, version)[0] == text


def test_missing_file_defaults_to_version_2():
    text, info = ensure_config_path(None)
    assert tomllib.loads(text) == with_config_path({"version": 2}, 2, WANTED)
    assert info["containerd_major"] == 1


@needs_containerd
def test_containerd_1x_reads_a_new_file(tmp_path):
    text = ensure_config_path(None, "/srv/certs.d")[0]
    assert containerd_dump(tmp_path, text, "new")["plugins"][CRI]["registry"]["config_path"] == "/srv/certs.d"


def test_an_existing_file_keeps_its_own_version():
    text = fixture("v1-comments.toml")
    new_text, info = ensure_config_path(text, WANTED, 3)
    assert info["version"] == 1
    assert "version" not in tomllib.loads(new_text)


def test_other_config_path_is_replaced_and_reported():
    text = fixture("v2-comments.toml")
    new_text, info = ensure_config_path(text, WANTED)
    assert info["previous_config_path"] == "/etc/docker/certs.d"
    assert "/etc/docker/certs.d" not in new_text
    assert f'config_path = "{WANTED}"   # set by the image build' in new_text
    assert info["warnings"] == []  # configs.<host>.auth may stay next to config_path


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(fixture("v2-legacy-mirrors.toml"), id="1.4-era-config"),
        pytest.param(
            f'version = 2\n[plugins."{CRI}".registry]\n  config_path = "{WANTED}"\n'
            f'[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n',
            id="already-set-but-broken",
        ),
        pytest.param(
            f'version = 2\n[plugins."{CRI}"]\n  registry.mirrors."docker.io".endpoint = ["https://m.example"]\n',
            id="dotted",
        ),
    ],
)
def test_legacy_mirrors_are_refused_with_the_reason_and_the_way_out(text):
    with pytest.raises(RegistrySettingError) as raised:
        ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)
    message = str(raised.value)
    assert raised.value.field == f'plugins."{CRI}".registry.mirrors'
    assert message.startswith(f'plugins."{CRI}".registry.mirrors: ')
    for words in (
        "docker.io",
        "`mirrors` cannot be set when `config_path` is provided",
        "fatal",
        "nothing was written",
    ):
        assert words in message
    assert f"{WANTED}/<registry>/hosts.toml" in message
    assert "containerd_hosts" in message


def test_legacy_mirrors_in_a_version_1_file_are_refused_too():
    text = '[plugins.cri.registry.mirrors."quay.io"]\n  endpoint = ["https://m.example"]\n'
    with pytest.raises(RegistrySettingError, match=r"^plugins\.cri\.registry\.mirrors: sets mirrors for quay\.io"):
        ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)


def test_configs_tls_is_refused_for_containerd_1x():
    text = f'version = 2\n[plugins."{CRI}".registry.configs."r.example".tls]\n  insecure_skip_verify = true\n'
    with pytest.raises(RegistrySettingError) as raised:
        ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)
    assert raised.value.field == f'plugins."{CRI}".registry.configs'
    assert "r.example" in str(raised.value)
    assert "`configs.tls` cannot be set when `config_path` is provided" in str(raised.value)


def test_configs_tls_is_a_warning_for_containerd_2x():
    text = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry.configs.'r.example'.tls]\n  ca_file = '/ca'\n"
    new_text, info = ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)
    assert lookup(tomllib.loads(new_text), (*SECTIONS[3], "config_path")) == WANTED
    assert any("r.example" in warning and "hosts.toml" in warning for warning in info["warnings"])


@pytest.mark.parametrize(
    "text, field",
    [
        pytest.param("version = 2\n[grpc\n", "/etc/containerd/config.toml", id="invalid-toml"),
        pytest.param("version = 2\nversion = 3\n", "/etc/containerd/config.toml", id="duplicate-key"),
        pytest.param("version = 5\n", "version", id="unknown-version"),
        pytest.param('version = "2"\n', "version", id="version-string"),
        pytest.param(
            f'version = 2\n[plugins."{CRI}"]\n  registry = "x"\n', f'plugins."{CRI}".registry', id="not-a-table"
        ),
        pytest.param("version = 2\nplugins = []\n", "plugins", id="plugins-array"),
        pytest.param(
            f'version = 2\n[plugins."{CRI}".registry]\n  config_path = 1\n',
            f'plugins."{CRI}".registry.config_path',
            id="config-path-not-a-string",
        ),
    ],
)
def test_files_containerd_cannot_use_are_refused(text, field):
    for edit in (
        lambda: ensure_config_path(text, WANTED, name="/etc/containerd/config.toml"),
        lambda: remove_config_path(text, WANTED, name="/etc/containerd/config.toml"),
    ):
        with pytest.raises(RegistrySettingError) as raised:
            edit()
        assert raised.value.field == field
        assert str(raised.value).startswith(f"{field}: ")


def test_invalid_toml_names_the_file_and_where():
    with pytest.raises(RegistrySettingError, match=r"^/etc/containerd/config\.toml: is not valid TOML \(.*line 2"):
        ensure_config_path("version = 2\n[grpc\n", WANTED, name="/etc/containerd/config.toml")


@pytest.mark.parametrize(
    "config_path, version",
    [
        ("certs.d", 2),
        ("/a:/b", 2),
        ("/etc/containerd/certs.d\n", 2),
        (None, 2),
        (WANTED, 1),
        (WANTED, 5),
        (WANTED, True),
        (WANTED, "3"),
    ],
)
def test_bad_arguments_are_refused(config_path, version):
    with pytest.raises(RegistrySettingError, match=r"^(config_path|version): "):
        ensure_config_path("", config_path, version)


@pytest.mark.parametrize(
    "text, words",
    [
        pytest.param(
            f'[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n',
            ["version = 2", "ignores"],
            id="full-plugin-id-in-a-version-1-file",
        ),
        pytest.param(
            'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n', ["CRI plugin is off"], id="cri-off"
        ),
        pytest.param('disabled_plugins = ["cri"]\n', ["CRI plugin is off"], id="docker-package-v1"),
    ],
)
def test_settings_that_defeat_config_path_are_warned_about(text, words):
    info = ensure_config_path(text, WANTED)[1]
    assert len(info["warnings"]) == 1
    for word in words:
        assert word in info["warnings"][0]


def test_imports_are_no_longer_a_warning_here():
    """The action reads and checks every imported file now (test_effective_config.py)."""
    assert ensure_config_path('version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n', WANTED)[1]["warnings"] == []


@pytest.mark.parametrize("case", FILES)
def test_absent_removes_only_our_line(case):
    text, version, inline = FILES[case]
    present = ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)[0]
    absent, info = remove_config_path(present, WANTED)

    expected = copy.deepcopy(tomllib.loads(present))
    registry = lookup(expected, SECTIONS[version])
    del registry["config_path"]
    result = tomllib.loads(absent)
    if lookup(result, SECTIONS[version]) is None:  # a dotted-key table goes with its only key
        del lookup(expected, SECTIONS[version][:-1])[SECTIONS[version][-1]]
    assert result == expected
    assert info["previous_config_path"] == WANTED
    assert info["config_path"] is None
    removed, added = changed_lines(present, absent)
    if not inline:
        assert len(removed) == 1
        assert removed[0].split("#")[0].strip() in (f'config_path = "{WANTED}"', f'registry.config_path = "{WANTED}"')
        assert added == []
    assert remove_config_path(absent, WANTED)[0] == absent


@needs_containerd
def test_absent_after_present_gives_containerd_1x_its_original_settings(tmp_path):
    text = fixture("containerd-1.6-default.toml")
    absent = remove_config_path(ensure_config_path(text, WANTED)[0], WANTED)[0]
    assert containerd_dump(tmp_path, absent, "absent") == containerd_dump(tmp_path, text, "original")


def test_absent_leaves_another_value_and_a_missing_file_alone():
    text = fixture("v2-comments.toml")
    same, info = remove_config_path(text, WANTED)
    assert same == text
    assert info["previous_config_path"] == "/etc/docker/certs.d"
    assert info["config_path"] == "/etc/docker/certs.d"
    assert remove_config_path(None, WANTED) == (None, remove_config_path(None, WANTED)[1])
    assert remove_config_path(None, WANTED)[1]["section"] is None


@pytest.mark.parametrize("case", [name for name, case in FILES.items() if not case[2]])
def test_the_setting_sits_right_under_its_header_indented_one_step(case):
    text, version = FILES[case][:2]
    lines = ensure_config_path(text, WANTED, legacy_mirrors=REFUSE)[0].splitlines()
    headers = [index for index, line in enumerate(lines) if is_header_of(line, version)]
    if not headers:  # set through a dotted key inside the parent table
        (line,) = [line for line in lines if "config_path" in line]
        assert line.startswith("  registry.config_path = ")
        return
    (header,) = headers
    indent = lines[header][: len(lines[header]) - len(lines[header].lstrip())]
    assert lines[header + 1].startswith(f'{indent}  config_path = "{WANTED}"')


# (file, config version, directories the warning names as dropped, in their order in the list)
COLON_LISTS = {
    "containerd-2.2-default-first-entry-ours": (CONTAINERD_2_2_DEFAULT, 3, ["/etc/docker/certs.d"]),
    "v3-ours-second": (with_list(3, f"/etc/docker/certs.d:{WANTED}"), 3, ["/etc/docker/certs.d"]),
    "v2-first-entry-ours": (with_list(2, f"{WANTED}:/etc/docker/certs.d"), 2, ["/etc/docker/certs.d"]),
    "v2-none-ours-repeated": (with_list(2, "/srv/a:/srv/b:/srv/a"), 2, ["/srv/a", "/srv/b"]),
    "v1-three-directories": (with_list(1, "/srv/a:/srv/b:/srv/c"), 1, ["/srv/a", "/srv/b", "/srv/c"]),
    "v3-only-ours-and-an-empty-entry": (with_list(3, f"{WANTED}:"), 3, []),
}


@pytest.mark.parametrize("case", COLON_LISTS)
def test_a_colon_list_becomes_our_one_directory_with_a_warning_naming_what_is_dropped(case):
    text, version, dropped = COLON_LISTS[case]
    before = tomllib.loads(text)
    listed = lookup(before, (*SECTIONS[version], "config_path"))
    new_text, info = ensure_config_path(text, WANTED)

    assert tomllib.loads(new_text) == with_config_path(before, version, WANTED)
    assert info["previous_config_path"] == listed
    assert info["config_path"] == WANTED
    (warning,) = info["warnings"]
    assert warning.startswith(f"{SECTION_NAMES[version]}.config_path: {listed!r} lists several directories")
    assert f"replaced by {WANTED!r}" in warning
    assert "transfer service, which reads config_path as one directory" in warning
    if dropped:
        assert f"Dropped from the list: {', '.join(dropped)}; containerd no longer reads" in warning
        assert f"move any <registry>/hosts.toml in them into {WANTED}." in warning
    else:
        assert warning.endswith("No other directory was listed.")
        assert "Dropped" not in warning


@pytest.mark.parametrize("case", COLON_LISTS)
def test_a_rewritten_colon_list_is_left_alone_and_unmentioned_the_second_time(case):
    once = ensure_config_path(COLON_LISTS[case][0], WANTED)[0]
    twice, info = ensure_config_path(once, WANTED)
    assert twice == once
    assert info["previous_config_path"] == WANTED
    assert info["warnings"] == []


def test_only_the_cri_config_path_changes_in_containerd_2_2s_default():
    new_text = ensure_config_path(CONTAINERD_2_2_DEFAULT, WANTED)[0]
    assert new_text == CONTAINERD_2_2_DEFAULT.replace(
        "config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'", f'config_path = "{WANTED}"'
    )
    assert tomllib.loads(new_text)["plugins"]["io.containerd.transfer.v1.local"]["config_path"] == ""


def test_a_colon_list_with_another_directory_wanted_drops_every_entry():
    new_text, info = ensure_config_path(CONTAINERD_2_2_DEFAULT, "/srv/certs.d")
    assert lookup(tomllib.loads(new_text), (*SECTIONS[3], "config_path")) == "/srv/certs.d"
    assert "Dropped from the list: /etc/containerd/certs.d, /etc/docker/certs.d;" in info["warnings"][0]


@pytest.mark.parametrize("case", COLON_LISTS)
def test_absent_leaves_a_colon_list_alone_even_when_it_names_our_directory(case):
    text = COLON_LISTS[case][0]
    same, info = remove_config_path(text, WANTED)
    assert same == text
    assert info["config_path"] == info["previous_config_path"] != WANTED
