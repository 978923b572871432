# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's reader of `containerd config dump`: its imports line, and the files an entry names as containerd does."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import (
    DumpFormatError,
    effective_report,
    files_of_import,
    go_glob,
    imports_of_dump,
    resolve_import,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "containerd_config"


@pytest.mark.parametrize(
    "dump",
    sorted(path.name for path in FIXTURES.glob("dump-*.toml")),
)
def test_the_imports_line_of_every_dump_reads_as_tomllib_reads_it(dump):
    text = (FIXTURES / dump).read_text()
    assert imports_of_dump(text) == tomllib.loads(text)["imports"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("imports = []", []),
        ('imports = ["/etc/containerd/config.toml"]', ["/etc/containerd/config.toml"]),  # go-toml v1 (1.x)
        ("imports = ['/etc/containerd/conf.d/*.toml']", ["/etc/containerd/conf.d/*.toml"]),  # go-toml v2 (2.x)
        ('imports = ["/a b.toml", "/c.toml"]', ["/a b.toml", "/c.toml"]),
        ("imports = ['/a.toml','/b.toml', ]", ["/a.toml", "/b.toml"]),
        ('imports = ["/it\'s.toml"]', ["/it's.toml"]),
        ('imports = ["/q\\"uote\\\\d.toml"]', ['/q"uote\\d.toml']),
        ('imports = ["/\\u00e9t\\u00e9.toml", "/\\U0001F600.toml"]', ["/été.toml", "/\U0001f600.toml"]),
        ("imports = ['C:\\dir\\x.toml']", ["C:\\dir\\x.toml"]),  # literal strings keep backslashes
    ],
)
def test_imports_lines_of_both_go_toml_releases(line, expected):
    dump = f"disabled_plugins = []\n{line}\noom_score = 0\n\n[plugins]\n  x = 1\n"
    assert imports_of_dump(dump) == expected
    assert expected == tomllib.loads(dump)["imports"]


def test_no_imports_line_is_none_and_a_table_ends_the_search():
    assert imports_of_dump("version = 2\n") == []
    assert imports_of_dump("version = 2\n[plugins.x]\nimports = ['/not/top/level.toml']\n") == []


@pytest.mark.parametrize(
    "line",
    [
        "imports = [",  # a multi-line array: not what go-toml writes
        "imports = ['/a.toml' '/b.toml']",
        'imports = ["/a.toml]',
        "imports = ['/a.toml]",
        'imports = ["/bad\\q.toml"]',
        'imports = ["/short\\u12.toml"]',
        "imports = [1]",
    ],
)
def test_an_imports_line_it_cannot_read_is_an_error_quoting_it(line):
    with pytest.raises(DumpFormatError, match="imports line"):
        imports_of_dump(f"{line}\n")


@pytest.mark.parametrize(
    ("entry", "base", "expected"),
    [
        ("/etc/containerd/conf.d/*.toml", "/etc/containerd", "/etc/containerd/conf.d/*.toml"),
        ("conf.d/a.toml", "/etc/containerd", "/etc/containerd/conf.d/a.toml"),
        ("./conf.d/../b.toml", "/etc/containerd", "/etc/containerd/b.toml"),
        ("//etc//containerd/x.toml", "/", "/etc/containerd/x.toml"),  # Go's Clean: one leading /
        ("x.toml", "/", "/x.toml"),
    ],
)
def test_an_entry_is_cleaned_and_a_relative_one_joined_to_its_files_directory(entry, base, expected):
    assert resolve_import(entry, base) == expected


def test_globs_match_as_go_does_sorted_with_dotfiles(tmp_path):
    for name in ("b.toml", "a.toml", ".hidden.toml", "c.conf", "[x].toml"):
        (tmp_path / name).write_text("")
    (tmp_path / "d1").mkdir()
    (tmp_path / "d1" / "z.toml").write_text("")
    (tmp_path / "d2").mkdir()
    (tmp_path / "d2" / "y.toml").write_text("")
    names = (".hidden.toml", "[x].toml", "a.toml", "b.toml")
    assert go_glob(f"{tmp_path}/*.toml") == [f"{tmp_path}/{name}" for name in names]
    assert go_glob(f"{tmp_path}/[ab].toml") == [f"{tmp_path}/a.toml", f"{tmp_path}/b.toml"]
    assert go_glob(f"{tmp_path}/[^c].conf") == []
    assert go_glob(f"{tmp_path}/[^ab].conf") == [f"{tmp_path}/c.conf"]
    assert go_glob(f"{tmp_path}/?.conf") == [f"{tmp_path}/c.conf"]
    assert go_glob(f"{tmp_path}/\\[x].toml") == [f"{tmp_path}/[x].toml"]
    assert go_glob(f"{tmp_path}/d*/*.toml") == [f"{tmp_path}/d1/z.toml", f"{tmp_path}/d2/y.toml"]
    assert go_glob(f"{tmp_path}/missing/*.toml") == []
    assert go_glob(f"{tmp_path}/a.toml") == [f"{tmp_path}/a.toml"]


def test_only_an_entry_with_a_star_is_a_glob_as_in_containerd(tmp_path):
    (tmp_path / "a.toml").write_text("")
    assert files_of_import("?.toml", str(tmp_path)) == [f"{tmp_path}/?.toml"]  # opened as named: it fails to load
    assert files_of_import("*.toml", str(tmp_path)) == [f"{tmp_path}/a.toml"]
    assert files_of_import("missing.toml", str(tmp_path)) == [f"{tmp_path}/missing.toml"]


def read(path):
    try:
        return {"content": base64.b64encode(Path(path).read_bytes()).decode()}
    except FileNotFoundError:
        return {"error": "does not exist"}


def test_the_report_reads_every_file_but_config_toml_itself(tmp_path):
    main = tmp_path / "config.toml"
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-a.toml").write_text("[debug]\n")
    # 1.x: the files it loaded, config.toml among them
    dump = f'imports = ["{main}", "{tmp_path}/conf.d/10-a.toml"]\n'
    report = effective_report("cmd", str(main), dump, 1, read)
    assert report["imports"] == [str(main), f"{tmp_path}/conf.d/10-a.toml"]
    assert list(report["files"]) == [f"{tmp_path}/conf.d/10-a.toml"]
    assert base64.b64decode(report["dump"]).decode() == dump
    # 2.x: the entries as written, config.toml's relative ones from its directory
    report = effective_report("cmd", str(main), "imports = ['conf.d/*.toml', 'gone.toml']\n", 2, read)
    assert report["expanded"] == {"conf.d/*.toml": [f"{tmp_path}/conf.d/10-a.toml"], "gone.toml": [
        f"{tmp_path}/gone.toml"]}
    assert report["files"][f"{tmp_path}/gone.toml"] == {"error": "does not exist"}
