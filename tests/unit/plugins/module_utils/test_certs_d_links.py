"""_certs_d: the directories containerd really reads, planned on real files (symbolic links, <host>_<port>_)."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d import plan
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d_apply import NodeDisk
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import ADOPT, MARKER, REMOVE, WRITE

OURS = f"{MARKER}\nserver = 'https://mirror'\n"
FOREIGN = "server = 'https://registry-1.docker.io'\n"


def declared(*registries):
    return [{"directory": registry, "content": OURS} for registry in registries]


def make(root, layout):
    """layout: name -> None (a directory), text (a directory holding that hosts.toml), or "->target" (a link)."""
    root.mkdir(exist_ok=True)
    for name, what in layout.items():
        if what is not None and what.startswith("->"):
            (root / name).symlink_to(what[2:])
            continue
        (root / name).mkdir()
        if what is not None:
            (root / name / "hosts.toml").write_text(what)


@pytest.mark.parametrize(
    ("layout", "registries"),
    [
        ({"docker.io": OURS, "index.docker.io": "->docker.io"}, ("docker.io", "index.docker.io")),
        ({"docker.io": None, "index.docker.io": "->docker.io"}, ("index.docker.io", "docker.io")),
        ({"b.example": None, "a.example": "->b.example", "c.example": "->b.example"}, ("a.example", "c.example")),
    ],
)
def test_two_declared_directories_that_are_one_fail_naming_both(tmp_path, layout, registries):
    root = tmp_path / "certs.d"
    make(root, layout)
    result = plan(NodeDisk(), str(root), declared(*registries), "present")
    first, second = (str(root / registry) for registry in registries)
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"{first} and {second} are one directory")


def test_a_declared_link_keeps_the_directory_it_points_to(tmp_path):
    root = tmp_path / "certs.d"
    make(root, {"b.example": OURS, "a.example": "->b.example", "gone.example": OURS})
    result = plan(NodeDisk(), str(root), declared("a.example"), "present")
    assert [(step.action, step.registry) for step in result.steps] == [(WRITE, "a.example"), (REMOVE, "gone.example")]
    assert result.problems == []


def test_distinct_directories_are_planned_as_before(tmp_path):
    root = tmp_path / "certs.d"
    make(root, {"docker.io": FOREIGN, "quay.io": OURS})
    result = plan(NodeDisk(), str(root), declared("docker.io", "quay.io"), "present")
    assert [step.action for step in result.steps] == [ADOPT, WRITE]
    assert result.problems == []


@pytest.mark.parametrize(
    ("layout", "refused"),
    [
        ({"quay.io": "->../elsewhere"}, "quay.io"),  # a directory outside certs.d: never sealed
        ({"docker.io": None, "quay.io": "->docker.io"}, "quay.io"),  # a declared one: not the mirrors of *
        ({"ghcr.io": None, "quay.io": "->ghcr.io"}, None),  # a directory that gets the seal itself
        ({"quay.io": "->_default"}, None),  # the mirrors of * themselves
        ({"quay.io": "->missing"}, None),  # a dangling link: containerd goes on to _default
        ({"quay.io": "->../file"}, None),  # not a directory: containerd fails the pull, never goes upstream
    ],
)
def test_the_seal_covers_symbolic_links_or_fails_naming_them(tmp_path, layout, refused):
    root = tmp_path / "certs.d"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "file").write_text("")
    make(root, layout)
    result = plan(NodeDisk(), str(root), declared("_default", "docker.io"), "present", sealed=OURS)
    if refused is None:
        assert result.problems == []
    else:
        assert len(result.problems) == 1
        assert result.problems[0].startswith(f"{root / refused} is a symbolic link to ")
        assert "mirrors of * without upstream fallback" in result.problems[0]
    unsealed = plan(NodeDisk(), str(root), declared("_default", "docker.io"), "present")
    assert unsealed.problems == []  # without the seal, a link is none of our business


@pytest.mark.parametrize(
    ("registry", "layout", "refused"),
    [
        ("reg.local:5000", {"reg.local_5000_": None}, "reg.local_5000_"),
        ("reg.local:5000", {"reg.local_5000_": FOREIGN, "reg.local:5000": FOREIGN}, "reg.local_5000_"),
        ("reg.local:5000", {"reg.local_5000_": "->../elsewhere"}, "reg.local_5000_"),
        ("[::1]:5000", {"[::1]_5000_": None}, "[::1]_5000_"),
        ("reg.local:5000", {"reg.local_5000_": "->missing"}, None),  # containerd goes on to reg.local:5000
        ("reg.local:5000", {"reg.local_5000": None, "reg.local_5000__": None}, None),  # not containerd's name
        ("reg.local", {"reg.local_": None}, None),  # no port: containerd looks for reg.local only
    ],
)
def test_a_host_port_directory_containerd_reads_first_fails_naming_it(tmp_path, registry, layout, refused):
    root = tmp_path / "certs.d"
    (tmp_path / "elsewhere").mkdir()
    make(root, layout)
    result = plan(NodeDisk(), str(root), declared(registry), "present")
    if refused is None:
        assert result.problems == []
    else:
        assert len(result.problems) == 1
        assert result.problems[0].startswith(f"{root / refused} is where containerd looks for {registry} first")
        assert str(root / registry) in result.problems[0]
    assert plan(NodeDisk(), str(root), declared(registry), "absent").problems == []
