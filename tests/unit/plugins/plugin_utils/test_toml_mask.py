"""_toml_mask: diffs of hosts.toml and config.toml mask every secret on the parsed TOML (issue 10, points 4, 5)."""

from __future__ import annotations

import tomllib

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils import _toml_edit
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import render_hosts_files
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import (
    CHANGED_MASK,
    SECRET_MASK,
    mask_diff,
    mask_toml,
    secret_strings,
    secret_values,
)

TOKEN = "Basic b2xkOmgxZGRlbi1wYXNzd29yZA=="
HOST = '"https://old.example"'

# hosts.toml: the header values of every host table and of the top level, in every TOML spelling.
HOSTS_SPELLINGS = {
    "table": f"[host.{HOST}.header]\n  authorization = \"{TOKEN}\"\n",
    "inline-table": f"[host.{HOST}]\n  header = {{ authorization = \"{TOKEN}\" }}\n",
    "inline-nested": f"[host.{HOST}]\n  header = {{ x = {{ y = \"{TOKEN}\" }} }}\n",
    "dotted-key": f"[host.{HOST}]\n  capabilities = [\"pull\"]\n  header.authorization = \"{TOKEN}\"  # note\n",
    "dotted-key-top": f"host.{HOST}.header.authorization = \"{TOKEN}\"\n",
    "comment-after-table": f"[host.{HOST}.header]  # creds\n  authorization = \"{TOKEN}\"\n",
    "spaces-in-header": f"[ host . {HOST} . header ]\n  authorization = \"{TOKEN}\"\n",
    "quoted-header-key": f"[host.{HOST}.\"header\"]\n  \"authorization\" = \"{TOKEN}\"\n",
    "multi-line-basic": f"[host.{HOST}.header]\n  authorization = \"\"\"\n{TOKEN}\"\"\"\n",
    "multi-line-split": f"[host.{HOST}.header]\n  authorization = \"\"\"Basic \\\n    {TOKEN[6:]}\"\"\"\n",
    "multi-line-literal": f"[host.{HOST}.header]\n  authorization = '''\n{TOKEN}'''\n",
    "literal": f"[host.{HOST}.header]\n  authorization = '{TOKEN}'\n",
    "escaped": f"[host.{HOST}.header]\n  authorization = \"Basic \\u0062{TOKEN[7:]}\"\n",
    "array": f"[host.{HOST}.header]\n  authorization = [\"{TOKEN}\", \"second-value\"]\n",
    "top-level-table": f"server = \"https://r.example\"\n[header]\n  authorization = \"{TOKEN}\"\n",
    "top-level-inline": f"server = \"https://r.example\"\nheader = {{ authorization = \"{TOKEN}\" }}\n",
    "top-level-dotted": f"server = \"https://r.example\"\nheader.authorization = \"{TOKEN}\"\n",
    "capitalised": f"[host.{HOST}.Header]\n  Authorization = \"{TOKEN}\"\n",
    "crlf": f"[host.{HOST}.header]\r\n  authorization = \"{TOKEN}\"\r\n",
    "two-hosts": f"[host.{HOST}.header]\n  a = \"{TOKEN}\"\n[host.\"https://b\".header]\n  b = \"other-secret\"\n",
}
SECRETS = (TOKEN, TOKEN[6:], TOKEN[6:20], "second-value", "other-secret")


@pytest.mark.parametrize("spelling", list(HOSTS_SPELLINGS))
def test_every_header_value_is_masked_however_it_is_spelt(spelling):
    text = HOSTS_SPELLINGS[spelling]
    masked = mask_toml(text)
    for secret in SECRETS:
        assert secret not in masked
    assert SECRET_MASK in masked
    assert "(not shown" not in masked  # masked in place, the rest shown
    assert "https://" in masked
    values = secret_values(masked)
    assert values and set(values.values()) == {SECRET_MASK}
    assert secret_values(text).keys() == values.keys()  # the same keys, only their values hidden
    assert mask_toml(masked) == masked


@pytest.mark.parametrize("spelling", list(HOSTS_SPELLINGS))
def test_a_diff_of_any_spelling_shows_the_change_but_no_secret(spelling):
    ours = dict(render_hosts_files("https://m.example:5000", username="u", password="p4ss", registries=["docker.io"]))
    before, after = mask_diff(HOSTS_SPELLINGS[spelling], ours["docker.io"])
    for secret in (*SECRETS, "p4ss", ours["docker.io"].split("Basic ")[1][:12]):
        assert secret not in before + after
    assert CHANGED_MASK in after
    assert before != after


def test_layout_and_comments_stay():
    text = "# a comment\n" + HOSTS_SPELLINGS["dotted-key"]
    masked = mask_toml(text)
    assert masked == text.replace(TOKEN, SECRET_MASK)


def test_a_change_of_the_header_alone_is_shown_and_none_is_not_invented():
    old = HOSTS_SPELLINGS["table"]
    new = old.replace(TOKEN, "Basic bmV3Om5ldy1wYXNzd29yZA==")
    before, after = mask_diff(old, new)
    assert before == old.replace(TOKEN, SECRET_MASK)
    assert after == old.replace(TOKEN, CHANGED_MASK)
    before, after = mask_diff(old, old + "[host.\"https://c\"]\n")
    assert CHANGED_MASK not in after
    assert after.endswith('[host."https://c"]\n')


@pytest.mark.parametrize(
    "text",
    [
        f"[host.{HOST}.header]\n  authorization = \"{TOKEN}\"\n[broken\n",
        f"authorization = \"{TOKEN}\"\nauthorization = \"{TOKEN}\"\n",  # a key defined twice
        f"[host.{HOST}.header]\n  authorization = \"{TOKEN}\n",  # unterminated string
        f"[host.{HOST}.header]\n  authorization = \"{TOKEN}\"  # was {TOKEN}\n",  # parses, but repeats it
    ],
)
def test_text_that_cannot_be_masked_with_certainty_is_not_shown(text):
    masked = mask_toml(text)
    assert TOKEN not in masked and TOKEN[6:] not in masked
    assert masked.startswith(f"{SECRET_MASK} (") and "not shown" in masked
    before, after = mask_diff(text, text + "\n# changed\n")
    assert before != after  # still shows that something changed
    assert TOKEN[6:] not in before + after


def test_without_tomlkit_nothing_with_a_secret_is_shown(monkeypatch):
    monkeypatch.setattr(_toml_edit, "tomlkit", None)  # the one file that imports it
    masked = mask_toml(HOSTS_SPELLINGS["table"])
    assert TOKEN not in masked
    assert "tomlkit" in masked
    assert mask_toml('server = "https://x"\n') == 'server = "https://x"\n'  # no secret: shown as it is


def test_no_file_and_empty_file():
    assert mask_diff(None, None) == ("", "")
    before, after = mask_diff(None, HOSTS_SPELLINGS["table"])
    assert before == ""
    assert CHANGED_MASK in after


# registry_mirrors (issue 12): with upstream_fallback false the first mirror is the server: a header at the root.
def _mirror_files(password, upstream_fallback=False):
    mirrors = {
        "docker.io": [{"url": "https://harbor.example", "repo_path": "dockerhub-proxy", "username": "robot",
                       "password": password, "client_cert": "/etc/pki/c.crt", "client_key": "/etc/pki/c.key"},
                      {"url": "https://second.example", "username": "robot2", "password": password + "-2"}],
    }
    return dict(render_hosts_files(registry_mirrors=mirrors, upstream_fallback=upstream_fallback))["docker.io"]


@pytest.mark.parametrize("upstream_fallback", [False, True])
def test_registry_mirrors_files_are_masked_at_the_root_and_in_every_host(upstream_fallback):
    text = _mirror_files("h4rb0r-secret", upstream_fallback)
    headers = secret_strings(text)
    assert len(headers) == 2 and all(value.startswith("Basic ") for value in headers)
    assert (("header", "authorization") in secret_values(text)) is not upstream_fallback
    before, after = mask_diff(None, text)
    masked = mask_toml(text)
    for output in (after, masked):
        for header in headers:
            assert header not in output and header[6:18] not in output
        assert "h4rb0r-secret" not in output
        assert "/etc/pki/c.key" in output  # a node path, not a secret
    root = tomllib.loads(masked)
    if upstream_fallback:
        assert "header" not in root and "server" not in root
    else:
        assert root["server"] == "https://harbor.example/v2/dockerhub-proxy"
        assert root["header"] == {"authorization": SECRET_MASK}
    assert {host["header"]["authorization"] for host in root["host"].values()} == {SECRET_MASK}
    assert CHANGED_MASK in after


def test_a_root_header_change_alone_is_shown_masked():
    before, after = mask_diff(_mirror_files("0ld-pass"), _mirror_files("n3w-pass"))
    assert tomllib.loads(before)["header"] == {"authorization": SECRET_MASK}
    assert tomllib.loads(after)["header"] == {"authorization": CHANGED_MASK}
    assert "0ld-pass" not in before + after and "n3w-pass" not in before + after


def test_secret_strings_of_text_without_secrets_or_that_does_not_parse():
    assert secret_strings('server = "https://x"\n') == set()
    assert secret_strings("[broken\n") == set()
    assert secret_strings(HOSTS_SPELLINGS["array"]) == {TOKEN, "second-value"}


# config.toml (issue 10, point 5): configs.*.auth and any password, auth or identitytoken key, and headers.
CRI = "io.containerd.grpc.v1.cri"
CONFIG_SPELLINGS = {
    "auth-table": f'[plugins."{CRI}".registry.configs."r".auth]\n  username = "alice"\n  password = "pw-table-1"\n',
    "auth-inline": f'[plugins."{CRI}".registry.configs."r"]\n  auth = {{ username = "alice", auth = "pw-inline-1" }}\n',
    "auth-dotted": f'[plugins."{CRI}".registry]\n  configs."r".auth.identitytoken = "pw-dotted-1"\n',
    "comment-after-table": f'[plugins."{CRI}".registry.configs."r".auth] # creds\n  password = "pw-comment-1"\n',
    "spaces-in-header": f'[ plugins . "{CRI}" . registry . configs . "r" . auth ]\n  password = "pw-spaces-1"\n',
    "multi-line": f'[plugins."{CRI}".registry.configs."r".auth]\n  password = """\npw-multi-1"""\n',
    "capitalised": f'[plugins."{CRI}".registry.configs."r".auth]\n  Password = "pw-capital-1"\n',
    "headers": f'[plugins."{CRI}".registry.headers]\n  X-Token = ["pw-header-1"]\n',
    "headers-nested": f'[plugins."{CRI}".registry]\n  headers = {{ a = {{ b = "pw-nested-1" }} }}\n',
}


@pytest.mark.parametrize("spelling", list(CONFIG_SPELLINGS))
def test_config_toml_secrets_are_masked_however_they_are_spelt(spelling):
    text = CONFIG_SPELLINGS[spelling]
    masked = mask_toml(text)
    assert "pw-" not in masked
    assert SECRET_MASK in masked
    assert "(not shown" not in masked
    assert tomllib.loads(masked)  # still TOML
    if "alice" in text:
        assert "alice" in masked  # a user name is no secret
