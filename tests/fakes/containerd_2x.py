"""A containerd 2.x stand-in for this host, whose own containerd is Debian's 1.6 (2.x is not in Debian).

    Containerd2x(directory, version)   an executable directory/containerd: `--version` says version;
                                       `--config FILE config dump` prints FILE itself (a 2.x dump of a version 3
                                       or 4 file has the same tables, in another layout), or the default imports
                                       only when FILE is missing, as 2.x does; a dump queued with queue_dump() is
                                       printed instead, once, in the order queued
    .environment                       the PATH that puts it first, for a task's environment or run_playbook(env=)

Used only where the real binary cannot give the case: a node running containerd 2.x or 2.3.
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
with open(here.parent / "containerd.calls", "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args == ["--version"]:
    print("containerd github.com/containerd/containerd/v2 v{version} 0123abcd")
    sys.exit(0)
if len(args) == 4 and args[0] == "--config" and args[2:] == ["config", "dump"]:
    queued = sorted((here.parent / "containerd.dumps").glob("*.toml"))
    if queued:
        sys.stdout.write(queued[0].read_text())
        queued[0].unlink()
        sys.exit(0)
    config = Path(args[1])
    sys.stdout.write(config.read_text() if config.exists() else "version = 3\\nimports = []\\n")
    sys.exit(0)
sys.stderr.write("fake containerd: not answered: %r\\n" % args)
sys.exit(2)
"""


class Containerd2x:
    def __init__(self, directory, version="2.2.0"):
        self.directory = Path(directory)
        (self.directory / "containerd.dumps").mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "containerd"
        self.path.write_text(_SCRIPT.format(python=sys.executable, version=version))
        self.path.chmod(0o755)
        self._queued = 0

    @property
    def environment(self):
        return {"PATH": f"{self.directory}{os.pathsep}{os.environ['PATH']}"}

    def queue_dump(self, text):
        """Print text at the next `config dump` instead of the file."""
        self._queued += 1
        (self.directory / "containerd.dumps" / f"{self._queued:04d}.toml").write_text(text)

    @property
    def calls(self):
        calls = self.directory / "containerd.calls"
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
