# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node half of reading containerd's effective configuration: which files `imports` names.

Pure Python with no Ansible imports, and no tomllib: it runs on the node, whose Python may be
3.8. containerd_config runs `containerd --config <config.toml> config dump` and hands its
output here; the controller parses the whole dump with tomllib and checks that its `imports`
is exactly what was read here (_effective_config.py), so this small reader of one line never
decides alone.

What the dump's `imports` holds differs by release (containerd's own source):

* 1.x (services/server/config/config.go, LoadConfig): the files it loaded, config.toml among
  them, resolved; only glob matches of a relative pattern stay relative, to the working
  directory (resolveImports globs before joining), which is / for the daemon.
* 2.x (cmd/containerd/server/config/config.go, LoadConfigWithPlugins): every loaded file's own
  `imports` entries as written (merged, not resolved), plus the default's
  /etc/containerd/conf.d/*.toml on 2.2 and later; each entry is resolved against the directory
  of the file that lists it, then globbed. A relative entry is resolved here against
  config.toml's directory; the controller refuses one it cannot follow from another directory.
"""

from __future__ import annotations

import base64
import os
import re

# Why a drop-in cannot be read, as the controller reports it.
MISSING = "does not exist"


class DumpFormatError(ValueError):
    """The dump's imports line is not one this reader understands."""


def dump_argv(containerd, config):
    """The command that prints containerd's effective configuration: config.toml with its imports merged."""
    return [containerd, "--config", config, "config", "dump"]


_IMPORTS_LINE = re.compile(r"^imports\s*=\s*\[(?P<items>.*)\]\s*$")
# A TOML basic string's one-character escapes (go-toml writes these; \uXXXX and \UXXXXXXXX besides).
BASIC_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}


def _basic_string(text, start):
    """Return (value, index after the closing quote) of the TOML basic string opening at text[start]."""
    chars = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(chars), index + 1
        if char != "\\":
            chars.append(char)
            index += 1
            continue
        code = text[index + 1:index + 2]
        if code in BASIC_ESCAPES:
            chars.append(BASIC_ESCAPES[code])
            index += 2
        elif code in ("u", "U"):
            width = 4 if code == "u" else 8
            digits = text[index + 2:index + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise DumpFormatError(f"a \\{code} escape without {width} hex digits")
            chars.append(chr(int(digits, 16)))
            index += 2 + width
        else:
            raise DumpFormatError(f"an unknown escape \\{code}")
    raise DumpFormatError("a string without its closing quote")


def _strings(items):
    """Return the strings of a one-line TOML array's inside: basic ("...") or literal ('...')."""
    values = []
    index = 0
    expect_value = True
    while index < len(items):
        char = items[index]
        if char in " \t":
            index += 1
        elif char == "," and not expect_value:
            expect_value = True
            index += 1
        elif char == "'" and expect_value:
            end = items.find("'", index + 1)
            if end < 0:
                raise DumpFormatError("a string without its closing quote")
            values.append(items[index + 1:end])
            index = end + 1
            expect_value = False
        elif char == '"' and expect_value:
            value, index = _basic_string(items, index)
            values.append(value)
            expect_value = False
        else:
            raise DumpFormatError(f"{char!r} where a string or a comma was expected")
    return values


def imports_of_dump(dump):
    """Return the `imports` list of `containerd config dump` output ([] when the key is absent).

    Both go-toml releases containerd uses write it as one top-level line before the first
    table: v1 (containerd 1.x) with "..." strings, v2 (2.x) with '...' ones.
    """
    for line in dump.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            break  # the top-level keys are over
        if not stripped.startswith("imports"):
            continue
        match = _IMPORTS_LINE.match(stripped)
        if match is None:
            raise DumpFormatError(f"its imports line is not a one-line array: {stripped!r}")
        try:
            return _strings(match.group("items"))
        except DumpFormatError as error:
            raise DumpFormatError(f"its imports line {stripped!r} has {error}") from None
    return []


def go_clean(path):
    """Go's filepath.Clean on a Unix path: os.path.normpath, but a leading // is one /."""
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def go_dir(path):
    """Go's filepath.Dir: everything before the last /, cleaned."""
    return go_clean(os.path.dirname(path) or ".")


def resolve_import(entry, base):
    """Resolve one imports entry as containerd 2.x's resolveImports does: clean, join a relative one to base."""
    path = go_clean(entry)
    return path if os.path.isabs(path) else go_clean(os.path.join(base, path))


def _has_magic(text):
    return any(char in text for char in "*?[\\")


def _pattern_regex(pattern):
    """Return a regex for Go's filepath.Match pattern (*, ?, [class] with ^ and ranges, \\ escapes)."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            index += 1
            if index >= len(pattern):
                raise DumpFormatError(f"bad pattern {pattern!r}")
            out.append(re.escape(pattern[index]))
        elif char == "[":
            end = pattern.find("]", index + 2 if pattern[index + 1:index + 2] in ("^", "]") else index + 1)
            if end < 0:
                raise DumpFormatError(f"bad pattern {pattern!r}")
            body = pattern[index + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            escaped = "".join("\\" + c if c in "\\^[]" else c for c in body)
            out.append(f"[{'^/' if negate else ''}{escaped}]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _glob_in(directory, pattern):
    if not os.path.isdir(directory):
        return []
    regex = _pattern_regex(pattern)
    try:
        names = sorted(os.listdir(directory))  # Go reads every name, dotfiles too, sorted
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names if regex.match(name)]


def go_glob(pattern):
    """Go's filepath.Glob on a Unix path: the sorted matches, dotfiles included; [] when none."""
    if not _has_magic(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    directory, name = os.path.split(pattern)
    directory = directory.rstrip("/") or ("/" if directory else ".")
    if not _has_magic(directory):
        return _glob_in(directory, name)
    matches = []
    for parent in go_glob(directory):
        matches.extend(_glob_in(parent, name))
    return matches


def files_of_import(entry, base):
    """Return the files one imports entry names, as containerd opens them (a glob only when it has a *)."""
    path = resolve_import(entry, base)
    return go_glob(path) if "*" in path else [path]


def effective_report(command, path, dump, containerd_major, read_file):
    """The report of containerd's effective configuration that the controller checks (_effective_config.py).

    command: the dump's command line, for messages; path: config.toml; dump: its output (text);
    containerd_major: the node's containerd major release (None when unknown); read_file(path): the
    {content: base64} or {error: why} of one imported file. Raises DumpFormatError.
    """
    entries = imports_of_dump(dump)
    # 1.x lists the files it loaded (a relative glob match relative to its working directory, /); 2.x the
    # entries as written, config.toml's relative to its directory
    base = "/" if containerd_major == 1 else go_dir(path)
    expanded, files = {}, {}
    for entry in entries:
        expanded[entry] = files_of_import(entry, base)
        for imported in expanded[entry]:
            if imported != path and imported not in files:
                files[imported] = read_file(imported)
    # the dump in base64, as the files: Ansible masks any no_log value (such as _content) found in a result's text
    return {
        "command": command,
        "found": True,
        "error": None,
        "dump": base64.b64encode(dump.encode("utf-8")).decode("ascii"),
        "imports": entries,
        "expanded": expanded,
        "files": files,
    }
