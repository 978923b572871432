"""Stand-ins for a node's programs (crictl, ctr, containerd) and a PATH that holds only the ones a test chooses.

    FakeProgram(directory, name, answers)   an executable directory/name that records its arguments (one JSON
                                            list a line in calls) and answers from answers, a JSON file the test
                                            may rewrite between runs
    path_without(directory, hidden)         a directory of links to every program on PATH but the hidden ones

An answer is chosen by the first rule whose "when" strings all occur among the arguments:
{"rules": [{"when": ["pull", "tiny:1"], "exit": 1, "stderr": "..."}], "default": {"exit": 0, "stdout": "..."}}.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

_SCRIPT = """#!{python}
import json, sys
from pathlib import Path

here = Path(__file__).resolve()
args = sys.argv[1:]
with open(here.parent / (here.name + ".calls"), "a") as calls:
    calls.write(json.dumps(args) + "\\n")
answers = json.loads((here.parent / (here.name + ".json")).read_text())
answer = next((rule for rule in answers.get("rules", []) if all(word in args for word in rule["when"])),
              answers.get("default", {{}}))
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
"""


class FakeProgram:
    def __init__(self, directory, name, answers=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / name
        self.path.write_text(_SCRIPT.format(python=sys.executable))
        self.path.chmod(0o755)
        self._calls = self.directory / f"{name}.calls"
        self._answers = self.directory / f"{name}.json"
        self.answer(answers or {})

    def answer(self, answers):
        self._answers.write_text(json.dumps(answers))

    @property
    def calls(self):
        """The argument lists it was run with, in order."""
        if not self._calls.exists():
            return []
        return [json.loads(line) for line in self._calls.read_text().splitlines()]


def path_without(directory, hidden):
    """A directory of symlinks to every program on this PATH (first one wins) except the names in hidden."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or not os.path.isdir(entry):
            continue
        for name in os.listdir(entry):
            link = directory / name
            source = Path(entry) / name
            if name in hidden or link.exists() or link.is_symlink() or not os.access(source, os.X_OK):
                continue
            link.symlink_to(source)
    return directory
