# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils import _toml_dump
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import (
    MissingDependencyError,
    dump_checked,
)


@pytest.mark.parametrize(
    ("document", "marker", "text"),
    [
        ({"server": "https://quay.io"}, "# ours", '# ours\nserver = "https://quay.io"\n'),
        (
            {"host": {"https://m.example": {"capabilities": ["pull", "resolve"]}}},
            "# m",
            '# m\n[host."https://m.example"]\ncapabilities = [\n    "pull",\n    "resolve",\n]\n',
        ),
    ],
)
def test_dump_checked_writes_the_marker_then_the_document(document, marker, text):
    assert dump_checked(document, marker) == text


@pytest.mark.parametrize(("field", "named"), [(None, "hosts.toml"), ("quay.io/hosts.toml", "quay.io/hosts.toml")])
def test_dump_checked_refuses_text_that_does_not_parse_back(monkeypatch, field, named):
    class Lossy:
        @staticmethod
        def dumps(document):
            return 'server = "elsewhere"\n'

    monkeypatch.setattr(_toml_dump, "tomli_w", Lossy)
    args = () if field is None else (field,)
    with pytest.raises(RegistrySettingError, match=f"^{named}: rendered text does not parse back"):
        dump_checked({"server": "https://quay.io"}, "# ours", *args)


def test_dump_checked_without_tomli_w_names_the_package(monkeypatch):
    monkeypatch.setattr(_toml_dump, "tomli_w", None)
    with pytest.raises(MissingDependencyError, match="pip install tomli-w"):
        dump_checked({}, "# ours")
