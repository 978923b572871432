"""Only plugin_utils/_toml_edit.py imports tomlkit: every other plugin reaches it through that file (issue 22)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[3].parent / "plugins"
THE_ONE = PLUGINS / "plugin_utils" / "_toml_edit.py"


def imported_modules(path):
    """The top-level names of the modules path imports, wherever in the file (try blocks included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PLUGINS.rglob("*.py")), ids=lambda path: str(path.relative_to(PLUGINS)))
def test_no_other_plugin_imports_tomlkit(path):
    assert ("tomlkit" in imported_modules(path)) is (path == THE_ONE)


@pytest.mark.parametrize(
    "source, found",
    [
        ("import tomlkit\n", {"tomlkit"}),
        ("try:\n    from tomlkit.items import AoT\nexcept ImportError:\n    pass\n", {"tomlkit"}),
        ("import os, tomllib\n", {"os", "tomllib"}),
        ("from . import tomlkit\n", set()),
    ],
)
def test_imported_modules(tmp_path, source, found):
    path = tmp_path / "plugin.py"
    path.write_text(source, encoding="utf-8")
    assert imported_modules(path) == found
