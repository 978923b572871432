"""Run ansible-playbook as a whole process, with the json callback: one runner for tests/playbook and bench/.

tests/playbook/conftest.py builds its ``run_playbook`` fixture on it (tests/conftest.py puts bench/ on
sys.path); bench/ times its runs with it. Only the Python standard library, so both can import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The ansible-playbook of the Python running this (the virtual environment's).
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: dict | None  # the json callback's document, or None for the default callback
    wall: float = 0.0  # seconds the whole process took
    command: tuple = ()

    def task_results(self, name, host="localhost"):
        """Return the result of the task called name (in a role: "role : name") on host, the last one."""
        found = [
            task["hosts"][host]
            for play in self.results["plays"]
            for task in play["tasks"]
            if task["task"]["name"].rpartition(" : ")[2] == name and host in task["hosts"]
        ]
        if not found:
            raise AssertionError(f"no result for task {name!r} on {host}")
        return found[-1]

    @property
    def stats(self):
        return self.results["stats"]


def ansible_environment(home, json_output=True, **overrides):
    """os.environ with Ansible's state in home (not the user's ~/.ansible), no colours, no retry files."""
    home = Path(home)
    return dict(
        os.environ,
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json" if json_output else "default",
        **overrides,
    )


def run_playbook(arguments, env, cwd, json_output=True):
    """Run ansible-playbook with these arguments; return a PlaybookRun (never raises on a failed run)."""
    command = (str(ANSIBLE_PLAYBOOK), *map(str, arguments))
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    wall = time.perf_counter() - start
    results = None
    if json_output and done.stdout.strip().startswith("{"):
        try:
            results = json.loads(done.stdout)
        except json.JSONDecodeError:  # cut short: the caller sees rc, stdout and stderr
            results = None
    return PlaybookRun(done.returncode, done.stdout, done.stderr, results, wall, command)


def write_config_reading(path, certs_d):
    """Write a containerd 1.x config.toml whose CRI reads certs_d: what a node the role does not edit
    (containerd_mirror_manage_config=false) must have, as the role checks with `containerd config dump`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{certs_d}"\n')
    return path
