"""README's examples are the files the test bed runs: the yaml blocks of its "Several mirrors, per registry"
section are, byte for byte, examples/registry-mirrors-harbor.yml and examples/registry-mirrors-airgapped.yml,
which molecule's mirrors scenario applies to containerd 1.7 and 2.1 nodes as they are written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Several mirrors, per registry"
# In the order README shows them.
EXAMPLES = ("examples/registry-mirrors-harbor.yml", "examples/registry-mirrors-airgapped.yml")


def section_text(readme, heading):
    """The text of a section, from its heading to the next heading of the same or a higher level
    (a line in a fenced block, such as a YAML comment, is no heading)."""
    higher_or_same = re.compile(rf"#{{1,{len(heading.split(' ', 1)[0])}}} ")
    lines = readme.splitlines(keepends=True)
    starts = [index for index, line in enumerate(lines) if line.rstrip("\n") == heading]
    assert len(starts) == 1, f"README.md has {len(starts)} {heading!r} headings"
    fenced = False
    for end in range(starts[0] + 1, len(lines)):
        fenced ^= lines[end].startswith("```")
        if not fenced and higher_or_same.match(lines[end]):
            return "".join(lines[starts[0]:end])
    return "".join(lines[starts[0]:])


def yaml_blocks(markdown):
    """The contents of the ```yaml fenced blocks, each with its last newline."""
    return re.findall(r"^```yaml\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("after, section_end", [
    ("### D\nnot\n", ""),
    ("## D\nnot\n", ""),
    ("```yaml\n# a comment\n```\n### D\n", "```yaml\n# a comment\n```\n"),
    ("", ""),
])
def test_section_text_stops_at_the_next_heading_of_its_level(after, section_end):
    readme = f"# A\n## B\n{SECTION}\ntext\n#### C\nmore\n{after}"
    assert section_text(readme, SECTION) == f"{SECTION}\ntext\n#### C\nmore\n{section_end}"


def test_yaml_blocks_are_read_whole():
    markdown = "```yaml\na: 1\n\nb: |\n  ```x\n```\n```shell\nno\n```\n```yaml\nc: 2\n```\n"
    assert yaml_blocks(markdown) == ["a: 1\n\nb: |\n  ```x\n", "c: 2\n"]


@pytest.fixture(scope="module")
def readme_blocks():
    return yaml_blocks(section_text((ROOT / "README.md").read_text(encoding="utf-8"), SECTION))


def test_readme_shows_each_example_once(readme_blocks):
    assert len(readme_blocks) == len(EXAMPLES)


@pytest.mark.parametrize("index, example", list(enumerate(EXAMPLES)))
def test_readme_block_is_the_example_file(readme_blocks, index, example):
    text = (ROOT / example).read_text(encoding="utf-8")
    shown = readme_blocks[index] if index < len(readme_blocks) else None
    assert shown == text, f"README.md's yaml block {index + 1} of {SECTION!r} must be {example}, byte for byte"
