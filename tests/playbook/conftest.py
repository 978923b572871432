"""Run real playbooks against localhost with the collection under test."""

from __future__ import annotations

import json
import sys

import playbook_runner  # bench/playbook_runner.py, shared with the benchmark (tests/conftest.py)
import pytest
import yaml


@pytest.fixture
def run_playbook(tmp_path):
    """Write tasks (or whole plays) to a playbook and run it on localhost.

    tasks: a list of task dicts (wrapped into one play) or a list of plays;
    or playbook: the path of an existing playbook.
    Returns a playbook_runner.PlaybookRun; json_output=False keeps the default callback (for -vvv checks).
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
        arguments = [
            "-i", "localhost,",
            "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}",
            str(playbook),
            *args,
        ]
        if extra_vars:
            arguments += ["-e", json.dumps(extra_vars)]
        if check:
            arguments.append("--check")
        if diff:
            arguments.append("--diff")
        if verbosity:
            arguments.append("-" + "v" * verbosity)
        environment = playbook_runner.ansible_environment(home, json_output, **(env or {}))
        return playbook_runner.run_playbook(arguments, environment, tmp_path, json_output)

    return run
