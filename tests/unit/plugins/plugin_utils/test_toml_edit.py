"""_toml_edit: one key set in one table of a TOML file, every other byte kept, on tomlkit's public API (issue 11)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils import _toml_edit
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import MissingDependencyError

PLUGIN_UTILS = Path(_toml_edit.__file__).parent
PATH = ("a", "b.c", "d")
HEADER = '[a."b.c".d]'
LINE = 'k = "v"'


def with_key(data):
    """The parsed settings with PATH.k = "v" added: what the edited text must read as."""
    node = data
    for part in PATH:
        node = node.setdefault(part, {})
    node["k"] = "v"
    return data


# (text before, text after _toml_edit.set_key(PATH, "k", "v")): where the line goes in each layout.
PLACEMENTS = {
    "after-the-last-key": (f"{HEADER}\n  x = 1\n  y = 2\n", f"{HEADER}\n  x = 1\n  y = 2\n  {LINE}\n"),
    "before-a-comment-that-introduces-the-next-table": (
        f"{HEADER}\n  x = 1\n# next\n[z]\n",
        f"{HEADER}\n  x = 1\n  {LINE}\n# next\n[z]\n",
    ),
    "before-blank-lines-and-a-comment": (
        f"{HEADER}\n  x = 1\n\n  # mirrors\n\n[z]\n",
        f"{HEADER}\n  x = 1\n  {LINE}\n\n  # mirrors\n\n[z]\n",
    ),
    "before-sub-tables": (
        f"{HEADER}\n  x = 1\n  [a.\"b.c\".d.e]\n    f = 1\n",
        f"{HEADER}\n  x = 1\n  {LINE}\n  [a.\"b.c\".d.e]\n    f = 1\n",
    ),
    "after-a-comment-and-a-multi-line-array": (
        f"{HEADER}  # header\n  x = [\n    1,\n  ]  # x\n\n",
        f"{HEADER}  # header\n  x = [\n    1,\n  ]  # x\n  {LINE}\n\n",
    ),
    "right-under-an-empty-header": (f"{HEADER}\n\n[z]\n", f"{HEADER}\n  {LINE}\n\n[z]\n"),
    "under-a-header-with-only-sub-tables": (
        f"{HEADER}\n  [a.\"b.c\".d.e]\n",
        f"{HEADER}\n  {LINE}\n  [a.\"b.c\".d.e]\n",
    ),
    "header-at-the-end-without-a-newline": (HEADER, f"{HEADER}\n  {LINE}\n"),
    "last-key-without-a-newline": (f"{HEADER}\n  x = 1", f"{HEADER}\n  x = 1\n  {LINE}\n"),
    "indent-of-the-other-keys": (f"{HEADER}\n\tx = 1\n", f"{HEADER}\n\tx = 1\n\t{LINE}\n"),
    "indented-header-one-step-deeper": (f"  {HEADER}\n", f"  {HEADER}\n    {LINE}\n"),
    "indented-header-as-its-keys": (f"  {HEADER}\n    x = 1\n", f"  {HEADER}\n    x = 1\n    {LINE}\n"),
    "crlf": (f"{HEADER}\r\n  x = 1\r\n# c\r\n", f"{HEADER}\r\n  x = 1\r\n  {LINE}\r\n# c\r\n"),
    "crlf-without-a-final-newline": (f"{HEADER}\r\n  x = 1", f"{HEADER}\r\n  x = 1\r\n  {LINE}\r\n"),
    "replaced-in-place-comment-kept": (f'{HEADER}\n  k = "old"  # mine\n', f"{HEADER}\n  {LINE}  # mine\n"),
    # containerd 2.x's default config writes config_path = '' (a literal string); our value is
    # written in one style whatever tomlkit release would keep of the old one (0.15.3 keeps it).
    "replaced-literal-string": (f"{HEADER}\n  k = ''  # mine\n", f"{HEADER}\n  {LINE}  # mine\n"),
    "replaced-multiline-literal": (f"{HEADER}\n  k = '''old'''\n", f"{HEADER}\n  {LINE}\n"),
    "replaced-in-an-inline-table": (f"{HEADER.rsplit('.', 1)[0]}]\n  d = {{ k = 'old' }}\n",
                                    f"{HEADER.rsplit('.', 1)[0]}]\n  d = {{ {LINE} }}\n"),
    "next-to-dotted-keys": ('[a."b.c"]\n  d.x = 1\n', f'[a."b.c"]\n  d.x = 1\n  d.{LINE}\n'),
    "out-of-order-fragment-with-the-header": (
        f"{HEADER}\n  x = 1\n[z]\n[a.\"b.c\".d.e]\n",
        f"{HEADER}\n  x = 1\n  {LINE}\n[z]\n[a.\"b.c\".d.e]\n",
    ),
}


@pytest.mark.parametrize("layout", list(PLACEMENTS))
def test_the_key_goes_where_its_table_is_and_nothing_else_moves(layout):
    text, wanted = PLACEMENTS[layout]
    data, document = _toml_edit.parse(text, "f.toml")
    assert _toml_edit.set_key(document, PATH, "k", "v", _toml_edit.newline_of(text)) is True
    assert document.as_string() == wanted
    assert tomllib.loads(wanted) == with_key(data)


# Inline tables: tomlkit writes the table's line again in its own spacing; every other line stays.
INLINE = {
    "in-an-inline-table": '# c\n[a."b.c"]\n  d = { x = 1 }  # d\n[z]\n',
    "in-an-inline-ancestor": '# c\n[a]\n  "b.c" = { y = 1 }  # d\n[z]\n',
}


@pytest.mark.parametrize("layout", list(INLINE))
def test_an_inline_table_gets_the_key_on_its_own_line(layout):
    text = INLINE[layout]
    data, document = _toml_edit.parse(text, "f.toml")
    assert _toml_edit.set_key(document, PATH, "k", "v") is True
    edited = document.as_string().splitlines(keepends=True)
    original = text.splitlines(keepends=True)
    assert [line for line in edited if "{" not in line] == [line for line in original if "{" not in line]
    assert edited[2].endswith("}  # d\n")
    assert tomllib.loads(document.as_string()) == with_key(data)


# Tables that have no place of their own in the file: only sub-tables spread over it, or nothing.
@pytest.mark.parametrize(
    "text",
    ["", "[z]\n", '[a."b.c".d.e]\n[z]\n[a."b.c".d.f]\n', 'a."b.c".x = 1\n'],
)
def test_a_table_without_a_place_of_its_own_asks_for_a_section(text):
    document = _toml_edit.parse(text, "f.toml")[1]
    assert _toml_edit.set_key(document, PATH, "k", "v") is False
    assert document.as_string() == text


@pytest.mark.parametrize(
    ("text", "top", "wanted"),
    [
        ("", None, f"{HEADER}\n  {LINE}\n"),
        ("", {"version": 2}, f"version = 2\n\n{HEADER}\n  {LINE}\n"),
        ("# only\n# comments", {"version": 3}, f"# only\n# comments\n\nversion = 3\n\n{HEADER}\n  {LINE}\n"),
        ("[z]\r\n  y = 1", None, f"[z]\r\n  y = 1\r\n\r\n{HEADER}\r\n  {LINE}\r\n"),
        ("[z]\n\n", None, f"[z]\n\n{HEADER}\n  {LINE}\n"),
    ],
)
def test_a_new_section_goes_at_the_end_set_apart_by_one_blank_line(text, top, wanted):
    assert _toml_edit.append_section(text, PATH, "k", "v", top) == wanted


@pytest.mark.parametrize(
    ("path", "spelt"),
    [
        (("plugins", "cri", "registry"), "plugins.cri.registry"),
        (("plugins", "io.containerd.grpc.v1.cri", "registry"), 'plugins."io.containerd.grpc.v1.cri".registry'),
        (("a b",), '"a b"'),
    ],
)
def test_dotted_key_spells_a_path_as_a_header_does(path, spelt):
    assert _toml_edit.dotted_key(path) == spelt


@pytest.mark.parametrize(
    ("value", "kind"),
    [([1], "an array"), ({}, "a dict"), ("x", "a str"), (1, "a int"), (True, "a bool")],
)
def test_value_kind_names_what_a_setting_is(value, kind):
    assert _toml_edit.value_kind(value) == kind


@pytest.mark.parametrize(("text", "newline"), [("a\nb\n", "\n"), ("a\r\nb", "\r\n"), ("", "\n"), ("a", "\n")])
def test_newline_of(text, newline):
    assert _toml_edit.newline_of(text) == newline


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = \n", r"^f\.toml: is not valid TOML \(.*\); nothing was written, fix the file first$"),
        ("x = 1\nx = 2\n", r"^f\.toml: is not valid TOML"),
    ],
)
def test_text_either_parser_rejects_is_refused_naming_the_file(text, message):
    with pytest.raises(RegistrySettingError, match=message):
        _toml_edit.parse(text, "f.toml")


def test_without_tomlkit_parse_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_toml_edit, "tomlkit", None)
    with pytest.raises(MissingDependencyError, match="pip install tomlkit"):
        _toml_edit.parse("x = 1\n", "f.toml")


def test_the_added_key_is_in_the_rendered_text_once_even_when_rendered_twice():
    text = f"{HEADER}\n  x = 1\n"
    document = _toml_edit.parse(text, "f.toml")[1]
    _toml_edit.set_key(document, PATH, "k", "v")
    assert document.as_string() == document.as_string() == f"{HEADER}\n  x = 1\n  {LINE}\n"


@pytest.mark.parametrize(
    "module", ["_toml_edit.py", "_containerd_config.py", "_legacy_registry.py", "_toml_mask.py"]
)
def test_no_private_name_of_tomlkit_is_used(module):
    """Only tomlkit's public API: no attribute starting with _ on anything, no import of a private module."""
    tree = ast.parse((PLUGIN_UTILS / module).read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__")
    ]
    imported = [
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module.startswith("tomlkit")
    ]
    assert private == []
    assert all(not part.startswith("_") for name in imported for part in name.split("."))


def test_table_at_walks_a_document_and_names_a_missing_part():
    document = _toml_edit.parse(f"{HEADER}\n  x = 1\n", "f.toml")[1]
    assert _toml_edit.table_at(document, PATH)["x"] == 1
    with pytest.raises(KeyError, match="nope"):
        _toml_edit.table_at(document, ("a", "nope"))


# --- what the other plugins use instead of importing tomlkit (issue 22) ---------------------------

KINDS_TEXT = 'a = 1\ninline = { x = 1 }\n[t]\nb = 2\n[[aot]]\nc = 3\n[super.sub]\nd = 4\n'


@pytest.mark.parametrize(
    ("key", "table", "array_of_tables"),
    [("a", False, False), ("inline", False, False), ("t", True, False), ("aot", False, True), ("super", True, False)],
)
def test_is_table_and_is_array_of_tables(key, table, array_of_tables):
    document = _toml_edit.rewrite(KINDS_TEXT)
    item = dict(document.body)[key] if key != "super" else document.item("super")
    assert (_toml_edit.is_table(item), _toml_edit.is_array_of_tables(item)) == (table, array_of_tables)


@pytest.mark.parametrize("text", ["\n", "# a comment\n", "\n# kept\n\n"])
def test_whitespace_renders_as_given(text):
    document = _toml_edit.rewrite("a = 1\n")
    document.add(_toml_edit.whitespace(text))
    assert document.as_string() == "a = 1\n" + text


def test_rewrite_keeps_the_text_and_edit_errors_cover_tomlkit():
    assert _toml_edit.rewrite(KINDS_TEXT).as_string() == KINDS_TEXT
    assert _toml_edit.have_tomlkit() is True
    assert {KeyError, IndexError, ValueError} <= set(_toml_edit.EDIT_ERRORS)
    assert any(error.__module__.startswith("tomlkit") for error in _toml_edit.EDIT_ERRORS)
