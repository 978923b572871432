"""The documentation as users read it: README stays short and keeps the two set-up commands, the guides'
YAML examples parse, and the two examples of the "Several mirrors, per registry" guide are, byte for byte,
examples/registry-mirrors-harbor.yml and examples/registry-mirrors-airgapped.yml, which molecule's mirrors
scenario applies to containerd 1.7 and 2.1 nodes as they are written.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ROOT / "docs" / "docsite" / "rst"
SEVERAL_MIRRORS = GUIDES / "several_mirrors.rst"
# In the order the guide shows them.
EXAMPLES = ("examples/registry-mirrors-harbor.yml", "examples/registry-mirrors-airgapped.yml")
README_MAX_LINES = 200
# The set-up commands README gives, each on a line of its own.
README_COMMANDS = ("# bash scripts/demo.sh\n", "# bash scripts/test.sh\n")
CODE_BLOCK = re.compile(r"^(?P<indent> *)\.\. code-block:: *(?P<language>\S+) *$")


def code_blocks(rst, language):
    """The contents of the rst `.. code-block:: <language>` directives, dedented, each with its last newline
    (a directive's options, lines of `:name: value` before the first blank line, are not content)."""
    lines = rst.splitlines(keepends=True)
    blocks = []
    for index, line in enumerate(lines):
        match = CODE_BLOCK.match(line.rstrip("\n"))
        if not match or match["language"] != language:
            continue
        indent = len(match["indent"])
        body = []
        for following in lines[index + 1:]:
            if following.strip() and len(following) - len(following.lstrip(" ")) <= indent:
                break
            body.append(following)
        while body and re.match(r"^ +:[\w-]+:", body[0]):
            body.pop(0)
        text = textwrap.dedent("".join(body)).strip("\n")
        blocks.append(text + "\n")
    return blocks


@pytest.mark.parametrize("rst, blocks", [
    (".. code-block:: yaml\n\n   a: 1\n\n   b:\n     - 2\n\nafter\n", ["a: 1\n\nb:\n  - 2\n"]),
    ("1. item\n\n   .. code-block:: yaml\n\n      a: 1\n\n2. next\n", ["a: 1\n"]),
    (".. code-block:: yaml\n   :caption: x\n\n   a: 1\n", ["a: 1\n"]),
    (".. code-block:: console\n\n   $ no\n\n.. code-block:: yaml\n\n   c: 2\n", ["c: 2\n"]),
    (".. code-block:: yaml\n\n   a: 1\n", ["a: 1\n"]),
    ("text\n", []),
])
def test_code_blocks_are_read_whole(rst, blocks):
    assert code_blocks(rst, "yaml") == blocks


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move details into a guide"


@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_keeps_the_set_up_commands(command):
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines(keepends=True)
    assert command in readme


@pytest.mark.parametrize("guide", sorted(GUIDES.glob("*.rst")), ids=lambda path: path.name)
def test_guide_yaml_examples_parse(guide):
    for index, block in enumerate(code_blocks(guide.read_text(encoding="utf-8"), "yaml")):
        try:
            yaml.safe_load(block)
        except yaml.YAMLError as error:
            pytest.fail(f"{guide.name}'s yaml block {index + 1} does not parse: {error}")


def test_every_guide_is_in_the_docsite_index():
    index = yaml.safe_load((ROOT / "docs" / "docsite" / "extra-docs.yml").read_text(encoding="utf-8"))
    listed = {entry for section in index["sections"] for entry in section["toctree"]}
    assert listed == {path.stem for path in GUIDES.glob("*.rst")}


@pytest.fixture(scope="module")
def several_mirrors_blocks():
    return code_blocks(SEVERAL_MIRRORS.read_text(encoding="utf-8"), "yaml")


def test_guide_shows_each_example_once(several_mirrors_blocks):
    assert len(several_mirrors_blocks) == len(EXAMPLES)


@pytest.mark.parametrize("index, example", list(enumerate(EXAMPLES)))
def test_guide_block_is_the_example_file(several_mirrors_blocks, index, example):
    text = (ROOT / example).read_text(encoding="utf-8")
    shown = several_mirrors_blocks[index] if index < len(several_mirrors_blocks) else None
    assert shown == text, f"{SEVERAL_MIRRORS.name}'s yaml block {index + 1} must be {example}, byte for byte"
