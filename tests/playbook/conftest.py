"""Run real playbooks against localhost with the collection under test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ANSIBLE_BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: dict | None  # the json callback's document, or None for the default callback

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


@pytest.fixture
def run_playbook(tmp_path):
    """Write tasks (or whole plays) to a playbook and run it on localhost.

    tasks: a list of task dicts (wrapped into one play) or a list of plays;
    or playbook: the path of an existing playbook.
    Returns a PlaybookRun; json_output=False keeps the default callback (for -vvv checks).
    """
    home = tmp_path / "ansible-home"
    home.mkdir(exist_ok=True)
    counter = iter(range(1000))

    def run(tasks=None, *args, playbook=None, extra_vars=None, json_output=True, check=False, diff=False,
            verbosity=0, env=None):
        if playbook is None:
            plays = tasks
            if not tasks or "hosts" not in tasks[0]:
                plays = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
            playbook = tmp_path / f"playbook-{next(counter)}.yml"
            playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
        command = [
            str(ANSIBLE_BIN / "ansible-playbook"),
            "-i", "localhost,",
            "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}",
            str(playbook),
            *args,
        ]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        environment = dict(
            os.environ,
            ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json" if json_output else "default",
            **(env or {}),
        )
        done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path, check=False)
        results = json.loads(done.stdout) if json_output and done.stdout.strip().startswith("{") else None
        return PlaybookRun(done.returncode, done.stdout, done.stderr, results)

    return run
