"""The shape the code keeps: no function in plugins/ longer than a screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
LONGEST = 60  # lines, docstring included


def long_functions(source, name):
    """Return 'file:line name (N lines)' for each function of source longer than LONGEST lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > LONGEST:
                found.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_plugins_is_longer_than_a_screen():
    found = []
    paths = sorted(PLUGINS.rglob("*.py"))
    assert len(paths) > 30  # the modules, module_utils, plugin_utils, actions and filters
    for path in paths:
        found += long_functions(path.read_text(encoding="utf-8"), path.relative_to(PLUGINS.parent))
    assert found == []


@pytest.mark.parametrize(("body_lines", "found"), [(LONGEST - 1, 0), (LONGEST, 1)])
def test_the_check_counts_a_function_from_its_def_line(body_lines, found):
    source = "def f():\n" + "    x = 1\n" * body_lines
    assert len(long_functions(source, "f.py")) == found
