"""Mirror credentials in config.toml's configs."<host>".auth where containerd 1.x reads them (issue 24, item 2)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._config_credentials import MARKER, holds_ours
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    ensure_config_path,
    remove_config_path,
)

CERTS = "/etc/containerd/certs.d"
HOST = "mirror.example:5000"
SECTIONS = {
    1: ("", "plugins.cri.registry"),
    2: ("version = 2\n", 'plugins."io.containerd.grpc.v1.cri".registry'),
    3: ("version = 3\n", 'plugins."io.containerd.cri.v1.images".registry'),
}
CREDS = [{"host": HOST, "username": "robot", "password": "s3cret-pw"}]


def _file(version, extra=""):
    top, section = SECTIONS[version]
    return f'{top}\n[{section}]\n  config_path = "{CERTS}"\n{extra}'


def _auth(text, version):
    node = tomllib.loads(text)
    for part in ("plugins", *SECTIONS[version][1].split(".", 1)[1].rsplit(".", 1)):
        node = node.get(part.strip('"'), {})
    return node.get("configs", {}).get(HOST, {}).get("auth")


def _ensure(text, credentials=None):
    return ensure_config_path(text, CERTS, credentials=CREDS if credentials is None else credentials)[0]


@pytest.mark.parametrize("version", [1, 2])
def test_credentials_are_added_marked_and_kept_on_a_second_run(version):
    text = _ensure(_file(version))
    assert _auth(text, version) == {"username": "robot", "password": "s3cret-pw"}
    header = next(line for line in text.splitlines() if line.startswith("[") and "auth" in line)
    assert header.endswith(MARKER) and f'configs."{HOST}".auth]' in header
    assert holds_ours(text)
    assert _ensure(text) == text  # unchanged


@pytest.mark.parametrize("version", [1, 2])
def test_a_changed_password_is_replaced_in_place(version):
    text = _ensure(_file(version))
    changed = _ensure(text, [dict(CREDS[0], password="new-pw")])
    assert _auth(changed, version) == {"username": "robot", "password": "new-pw"}
    assert changed == text.replace("s3cret-pw", "new-pw")


@pytest.mark.parametrize("version", [1, 2, 3])
def test_ours_are_removed_when_the_mirror_is_dropped_and_on_absent(version):
    base = _file(1 if version == 3 else version)
    written = _ensure(base)
    if version == 3:  # an earlier run on containerd 1.x, then the file says version 3 (node upgraded)
        written = "version = 3\n" + written.replace("plugins.cri.registry", SECTIONS[3][1])
    dropped = _ensure(written, CREDS if version == 3 else [])  # 3: containerd 2.x keeps none of ours
    assert MARKER in written and not holds_ours(dropped) and _auth(dropped, version) is None
    assert "s3cret-pw" not in dropped and f'config_path = "{CERTS}"' in dropped
    removed = remove_config_path(written, CERTS)[0]
    assert not holds_ours(removed) and "s3cret-pw" not in removed


def test_version_3_gets_no_credentials():
    text = _file(3)
    assert _ensure(text) == text


def test_a_new_file_gets_the_credentials_in_its_version_2_section():
    text = ensure_config_path(None, CERTS, 2, credentials=CREDS)[0]
    assert _auth(text, 2) == {"username": "robot", "password": "s3cret-pw"}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    "layout",
    [
        '[{section}.configs."{host}".auth]\n  username = "robot"\n  password = "s3cret-pw"\n',
        '[{section}.configs."{host}"]\n  auth = {{ username = "robot", password = "s3cret-pw" }}\n',
        '[{section}.configs."{host}"]\n  auth.username = "robot"\n  auth.password = "s3cret-pw"\n',
        '[{section}.configs."{host}".auth]\n  auth = "cm9ib3Q6czNjcmV0LXB3"\n',
    ],
    ids=["table", "inline", "dotted", "auth-token"],
)
def test_an_operators_equal_credentials_are_left_alone(version, layout):
    text = _file(version, "\n" + layout.format(section=SECTIONS[version][1], host=HOST))
    assert _ensure(text) == text
    assert _ensure(text, []) == text  # and never removed


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    "layout",
    [
        '[{section}.configs."{host}".auth]\n  username = "robot"\n  password = "other"\n',
        '[{section}.configs."{host}"]\n  auth = {{ username = "someone", password = "s3cret-pw" }}\n',
        '[{section}.configs."{host}".auth]\n  identitytoken = "tok"\n',
    ],
    ids=["password", "username", "identitytoken"],
)
def test_an_operators_different_credentials_are_refused_naming_the_key(version, layout):
    text = _file(version, "\n" + layout.format(section=SECTIONS[version][1], host=HOST))
    with pytest.raises(RegistrySettingError) as error:
        _ensure(text)
    message = str(error.value)
    assert message.startswith(f'{SECTIONS[version][1]}.configs."{HOST}".auth')
    assert "nothing was written" in message and "Delete this table" in message
    assert "s3cret-pw" not in message and "other" not in message.split(":", 1)[0]


@pytest.mark.parametrize(
    "text",
    [
        'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry.config_path = "/etc/containerd/certs.d"\n',
        'version = 2\nplugins."io.containerd.grpc.v1.cri".registry.config_path = "/etc/containerd/certs.d"\n',
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
        '  configs."other.example".auth.username = "x"\n  configs."other.example".auth.password = "y"\n'
        '[grpc]\n  uid = 0\n',
    ],
    ids=["dotted-registry", "dotted-top", "dotted-configs"],
)
def test_dotted_key_layouts_get_a_table_of_their_own_and_lose_it_again(text):
    written = _ensure(text)
    assert _auth(written, 2) == {"username": "robot", "password": "s3cret-pw"}
    assert _ensure(written) == written
    assert _ensure(written, []).rstrip("\n") == text.rstrip("\n")  # the blank line before ours may stay


def test_an_inline_registry_table_is_refused_with_nothing_written():
    text = f'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry = {{ config_path = "{CERTS}" }}\n'
    with pytest.raises(RegistrySettingError, match="inline; write it as a \\[table\\].*nothing was written"):
        _ensure(text)


def test_only_ours_go_when_a_host_is_dropped():
    two = [*CREDS, {"host": "other.example", "username": "a", "password": "b-secret"}]
    text = _ensure(_file(2), two)
    one = _ensure(text, CREDS)
    assert _auth(one, 2) == {"username": "robot", "password": "s3cret-pw"} and "b-secret" not in one
    assert one.rstrip("\n") == _ensure(_file(2)).rstrip("\n")


@pytest.mark.parametrize(
    ("credentials", "field", "what"),
    [
        ([{"host": "https://m.example", "username": "u", "password": "p"}], "credentials[0].host", "host[:port]"),
        ([{"host": "m.example", "username": "", "password": "p"}], "credentials[0].username", "must not be empty"),
        ([{"host": "m.example", "username": "u:x", "password": "p"}], "credentials[0].username", "':'"),
        ([*CREDS, *CREDS], "credentials[1].host", "listed twice"),
        ("x", "credentials", "must be a list"),
    ],
)
def test_bad_credentials_name_the_setting(credentials, field, what):
    with pytest.raises(RegistrySettingError) as error:
        _ensure(_file(2), credentials)
    assert str(error.value).startswith(field) and what in str(error.value)


@pytest.mark.parametrize(
    ("containerd_version", "kept"),
    [("1.6.20~ds1", True), ("1.7.24", True), ("2.1.9", False), ("2.0.0-rc.1", False), (None, True), ("", True)],
)
def test_the_nodes_release_decides_over_the_files_version(containerd_version, kept):
    """A version 2 file on a node upgraded to containerd 2.x: 2.x migrates the file and sends the hosts.toml header
    to the token service itself, so none are written there, and those an earlier run wrote go (unknown: the file)."""
    ours = ensure_config_path(_file(2), CERTS, credentials=CREDS)[0]
    for text in (_file(2), ours):
        new_text = ensure_config_path(text, CERTS, credentials=CREDS, containerd_version=containerd_version)[0]
        assert (_auth(new_text, 2) is not None) is kept
        assert holds_ours(new_text) is kept


def test_state_absent_on_a_stock_pmk_file_removes_config_path_and_the_credentials():
    """Migrated, the stock file's registry section holds config_path and our tables only: removing both empties
    it, and the parse-back check must expect no section at all."""
    stock = (Path(__file__).parents[2] / "fixtures" / "containerd_config" / "pmk-stock.toml").read_text()
    applied = ensure_config_path(stock, CERTS, credentials=CREDS, containerd_version="1.6.20~ds1")[0]
    assert _auth(applied, 2) == {"username": "robot", "password": "s3cret-pw"}
    removed = remove_config_path(applied, CERTS)[0]
    assert not holds_ours(removed) and "s3cret-pw" not in removed
    assert "registry" not in tomllib.loads(removed)["plugins"]["io.containerd.grpc.v1.cri"]
