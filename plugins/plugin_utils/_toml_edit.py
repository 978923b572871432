# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set one key of one table in a TOML file, keeping every other byte of the file as it is.

Controller-side, pure Python with no Ansible imports, on tomlkit's public API
(the releases requirements.txt allows). The one file of the collection that imports tomlkit:
the others reach it through parse, rewrite, EDIT_ERRORS, is_table, is_array_of_tables and
whitespace. The key goes where the table is: replaced in place,
added to an inline table, added to an explicit [table] after its last key, or
added next to the dotted keys that define the table. A table that has none of
these gets a [header] of its own at the end of the file (append_section).

tomlkit has no public way to put a key at a position inside a table: add()
and append() place a plain key after the comments that end the table (which
usually introduce the next one) and adjust the whitespace around it. So a key
added to an explicit [table] is written as a line of its own into the trail
of the line it follows (Item.trivia, public): nothing else moves. Such a key
is in the rendered text (document.as_string()), not in tomlkit's mapping, so
render the document right after the edit; callers check the result by
parsing it again.
"""

from __future__ import annotations

import tomllib

try:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import AoT, InlineTable, Table

    # What editing a tomlkit document may raise when the layout does not allow the edit
    EDIT_ERRORS = (TOMLKitError, KeyError, IndexError, ValueError)
except ImportError:  # reported by parse(), so that documentation tools work without it
    tomlkit = None
    TOMLKitError = AoT = InlineTable = Table = None
    EDIT_ERRORS = (KeyError, IndexError, ValueError)

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import MissingDependencyError

# containerd's own indent of the keys in a table
DEFAULT_INDENT = "  "


def have_tomlkit():
    """True when tomlkit is installed on the controller."""
    return tomlkit is not None


def rewrite(text):
    """Return the tomlkit document of TOML text, to edit and render again (tomlkit must be installed)."""
    return tomlkit.parse(text)


def is_table(item):
    """True when item of a tomlkit container is a table ([header], dotted or super table; not inline)."""
    return Table is not None and isinstance(item, Table)


def is_array_of_tables(item):
    """True when item of a tomlkit container is an array of tables ([[header]])."""
    return AoT is not None and isinstance(item, AoT)


def whitespace(text):
    """A tomlkit item of whitespace and comments that renders as text."""
    return tomlkit.ws(text)


def newline_of(text):
    """Return the line ending the text uses: CRLF when any line ends so, LF otherwise."""
    return "\r\n" if "\r\n" in text else "\n"


def dotted_key(path):
    """Return a key path as a table header spells it, e.g. plugins."io.containerd.grpc.v1.cri".registry."""
    return tomlkit.key(list(path)).as_string()


def value_kind(value):
    """Name the kind of a parsed TOML value for a message: "an array", "a dict", "a str"..."""
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def lookup_table(data, path):
    """Return the table at path in parsed settings, None when missing; refuse a non-table on the way."""
    node = data
    for depth, part in enumerate(path):
        if part not in node:
            return None
        node = node[part]
        if not isinstance(node, dict):
            raise RegistrySettingError(
                dotted_key(path[: depth + 1]),
                f"is {value_kind(node)}, not a table, so containerd cannot read this file",
            )
    return node


def parse(text, name):
    """Return (settings, tomlkit document) of TOML text; refuse text that either parser rejects.

    tomllib gives the settings as a TOML reader sees them, tomlkit the layout to edit. name labels
    the errors (the file's path, say).
    """
    if tomlkit is None:
        raise MissingDependencyError("tomlkit is required on the controller: pip install tomlkit")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RegistrySettingError(
            name, f"is not valid TOML ({error}); nothing was written, fix the file first"
        ) from None
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as error:
        raise RegistrySettingError(
            name, f"cannot be edited without losing its layout ({error}); nothing was written"
        ) from None
    return data, document


def table_at(document, path):
    """Return the table at path in a tomlkit document (KeyError when a part is missing)."""
    node = document
    for part in path:
        node = node[part]
    return node


def _assignment(key, value):
    return f"{tomlkit.key(key).as_string()} = {tomlkit.item(value).as_string()}"


def _line_indent(item):
    return item.trivia.indent.rsplit("\n", 1)[-1]


def _header_table(container, path):
    """Return the table whose [header] spells path, in whichever fragment of an out-of-order file it is."""
    for key, item in container.body:
        if key is None or key.is_dotted() or key.key != path[0] or not isinstance(item, Table):
            continue
        if len(path) == 1:
            if not item.is_super_table():
                return item
        else:
            found = _header_table(item.value, path[1:])
            if found is not None:
                return found
    return None


def _first_indent(table):
    """Return the indent of the first key under table, sub-tables included ('' when none)."""
    for key, item in table.value.body:
        if isinstance(item, Table):
            indent = _first_indent(item)
            if indent:
                return indent
        elif key is not None and not isinstance(item, AoT):
            return _line_indent(item)
    return ""


def _add_line(table, key, value, newline):
    """Write key = value into an explicit [table]: after its last key, before trailing comments and sub-tables.

    The indent follows the table's other keys (or the header's plus two spaces), the line ends as
    the file's lines do.
    """
    last, indent = table, None  # no key yet: the line goes right after the header
    for item_key, item in table.value.body:
        if item_key is None or isinstance(item, (Table, AoT)):
            continue  # whitespace, comments, sub-tables
        last = item
        if indent is None:
            indent = _line_indent(item)
    if indent is None:
        indent = _line_indent(table) + DEFAULT_INDENT
    if "\n" not in last.trivia.trail:  # the last line of a file without a final newline
        last.trivia.trail += newline
    last.trivia.trail += f"{indent}{_assignment(key, value)}{newline}"


def set_key(document, path, key, value, newline="\n"):
    """Set key = value in the table at path of a tomlkit document, in place; False when that needs a new [header].

    newline: the file's line ending (newline_of), for a line added to an explicit [table].
    The value is written in tomlkit's default style (a basic, double-quoted string), whatever
    style the value it replaces had: tomlkit 0.15.3 keeps a replaced plain value's style
    (`config_path = ''` stays literal) where 0.15.1 and 0.15.2 do not, and an explicit item is
    written as given by all three.
    """
    value = tomlkit.item(value)
    node = document
    for depth, part in enumerate(path):
        if part not in node:
            if isinstance(node, InlineTable):
                nested = {key: value}
                for inner in reversed(path[depth + 1 :]):
                    nested = {inner: nested}
                node[part] = nested
                return True
            return False
        node = node[part]
    if key in node or isinstance(node, InlineTable):
        node[key] = value  # replaces in place, comment kept
        return True
    table = _header_table(document, path)
    if table is not None:
        _add_line(table, key, value, newline)
    elif isinstance(node, Table):  # defined by dotted keys, or only through sub-tables
        node[key] = value
        item = node.value.item(key)
        if not item.trivia.indent:
            item.trivia.indent = _first_indent(node) or DEFAULT_INDENT
        if item.trivia.trail == "\n":
            item.trivia.trail = newline
    else:
        # spread over dotted keys of a [header] table above it (tomlkit gives a proxy): one more dotted key there;
        # otherwise only through sub-tables spread over the file: a header of its own at the end will do
        return _set_dotted(document, path, key, value, newline)
    return True


def _set_dotted(document, path, key, value, newline):
    """Write path[i:].key = value as a dotted key into the nearest [header] table at path[:i] that holds path[i]
    as dotted keys; False when there is none."""
    for depth in range(len(path) - 1, 0, -1):
        table = _header_table(document, path[:depth])
        if table is None:
            continue
        if any(item_key is not None and item_key.is_dotted() and item_key.key == path[depth]
               for item_key, _item in table.value.body):
            _add_line(table, [*path[depth:], key], value, newline)
            return True
        return False
    return False


def append_section(text, path, key, value, top=None):
    """Return text with a new [path] section holding key = value appended at its end.

    top: {key: value} written at the top level first, for a file with no settings yet (a version
    key, say). tomlkit would nest a new table inside its parent, between sections it does not own;
    the end of the file is the one place that moves nothing.
    """
    text, newline = _at_end(text)
    for name, setting in (top or {}).items():
        text += f"{_assignment(name, setting)}{newline}{newline}"
    return f"{text}[{dotted_key(path)}]{newline}{DEFAULT_INDENT}{_assignment(key, value)}{newline}"


def _at_end(text):
    """(text ending in a blank line when it holds anything, its line ending): where a new [header] goes."""
    newline = newline_of(text)
    if text and not text.endswith(newline):
        text += newline
    if text.strip() and not text.endswith(newline * 2):
        text += newline
    return text, newline


def append_table(text, path, values, comment):
    """Return text with a new [path] table of values ({key: value}) appended at its end, comment (a "# ..." text)
    after its header on the same line, which header_comment() reads back."""
    text, newline = _at_end(text)
    lines = [f"[{dotted_key(path)}]  {comment}", *(f"{DEFAULT_INDENT}{_assignment(k, v)}" for k, v in values.items())]
    return text + newline.join(lines) + newline


def header_comment(document, path):
    """The comment on the [header] line of the table at path in a tomlkit document; None without such a header."""
    table = _header_table(document, path)
    return None if table is None else table.trivia.comment


def remove_header_table(document, path):
    """Remove the [header] table at path from a tomlkit document; False when there is no such header.

    It goes from the (super) table that holds it, where its key is unique; the tables above it that only
    it made are super tables, which render nothing once empty.
    """
    if len(path) == 1:
        parent = document
    else:
        holder = _header_table(document, path[:-1])
        parent = holder.value if holder is not None else _super_table(document, path[:-1])
    if parent is None or not is_table(parent.get(path[-1])) or parent[path[-1]].is_super_table():
        return False
    parent.remove(path[-1])
    return True


def _super_table(container, path):
    """The container of the super table ([a.b.c] made a and b) at path that holds path's next part."""
    for key, item in container.body:
        if key is None or key.is_dotted() or key.key != path[0] or not isinstance(item, Table):
            continue
        if len(path) == 1:
            return item.value
        found = _super_table(item.value, path[1:])
        if found is not None:
            return found
    return None
