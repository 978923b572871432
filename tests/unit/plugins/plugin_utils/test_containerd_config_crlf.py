"""CRLF config.toml files keep CRLF on every line containerd_config adds (issue 10, point 11)."""

from __future__ import annotations

import tomllib

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import (
    ensure_config_path,
    remove_config_path,
)

CRI = "io.containerd.grpc.v1.cri"
CERTS = "/etc/containerd/certs.d"
# Every place the setting can land: under an existing header (empty or not), in an inline table, as a
# dotted key, in a new section at the end (with or without a final newline), in a file of comments
# only, replacing another value, and after the legacy mirrors moved out.
LAYOUTS = {
    "empty-section": f'version = 2\n[plugins."{CRI}".registry]\n',
    "section-with-keys": f'version = 2\n[plugins."{CRI}".registry]\n  x = 1\n# next\n[grpc]\n  uid = 0\n',
    "no-section": "version = 2\n[grpc]\n  uid = 0\n",
    "no-final-newline": "version = 2\n[grpc]\n  uid = 0",
    "parent-only": f'version = 2\n[plugins."{CRI}"]\n  sandbox_image = "x"\n',
    "inline-table": f'version = 2\n[plugins."{CRI}"]\n  registry = {{ x = 1 }}\n',
    "dotted-key": f'version = 2\n[plugins."{CRI}"]\n  registry.x = 1\n',
    "dotted-key-top": f'version = 2\nplugins."{CRI}".registry.x = 1\n',
    "sub-tables-only": f'version = 2\n[plugins."{CRI}".registry.configs."a".tls]\n  insecure_skip_verify = true\n',
    "legacy-mirrors": f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m"]\n',
    "legacy-with-section": (
        f'version = 2\n[plugins."{CRI}".registry]\n[plugins."{CRI}".registry.mirrors."docker.io"]\n'
        '  endpoint = ["https://m"]\n[grpc]\n  uid = 0\n'
    ),
    "comments-only": "# nothing\n# here\n",
    "other-value": f'version = 2\n[plugins."{CRI}".registry]\n  config_path = "/x"\n',
    "version-1": '[plugins.cri]\n  sandbox_image = "x"\n',
    "version-3": 'version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "x"\n',
}


def crlf(text):
    return text.replace("\n", "\r\n")


def bare_line_feeds(text):
    return text.count("\n") - text.count("\r\n")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_lines_added_to_a_crlf_file_end_in_crlf(layout):
    text = crlf(LAYOUTS[layout])
    new_text, _info = ensure_config_path(text, CERTS)
    assert new_text != text
    assert bare_line_feeds(new_text) == 0, repr(new_text)
    if layout != "inline-table":  # there the setting joins the table's line
        assert f'config_path = "{CERTS}"\r\n' in new_text
    assert tomllib.loads(new_text)  # still TOML

    back, _info = remove_config_path(new_text, CERTS)
    assert bare_line_feeds(back) == 0, repr(back)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_lf_files_stay_lf(layout):
    new_text, _info = ensure_config_path(LAYOUTS[layout], CERTS)
    assert "\r" not in new_text
