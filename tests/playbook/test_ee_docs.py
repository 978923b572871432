"""The docs ansible-doc shows (in a checkout, an installed collection or the execution environment): the
examples of every module and filter are tasks that ansible-playbook accepts, and the filters' examples run
and give the values their `# =>` comments show.

The docs site's own checks run in the lint step (antsibull-docs lint-collection-docs --plugin-docs).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if not path.stem.startswith("_"))
FILTERS = sorted(path.stem for path in (ROOT / "plugins" / "filter").glob("*.yml"))


@functools.cache
def ansible_doc(plugin_type):
    """ansible-doc --json for every plugin of plugin_type (module, filter, role), in one call: short name -> doc."""
    names = {"module": MODULES, "filter": FILTERS, "role": ["containerd_mirror"]}[plugin_type]
    done = subprocess.run([str(BIN / "ansible-doc"), "--json", "-t", plugin_type,
                           *(f"kubenode.registry_mirror.{name}" for name in names)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    docs = {key.rpartition(".")[2]: value for key, value in json.loads(done.stdout).items()}
    assert sorted(docs) == sorted(names)
    return docs


def expected_results(examples):
    """(task, value) for each example task followed by a `# => value` comment in its block."""
    blocks, current = [], []
    for line in examples.splitlines():
        if line.startswith("- ") and current:
            blocks.append(current)
            current = []
        current.append(line)
    blocks.append(current)
    found = []
    for block in blocks:
        comments = [line.strip()[len("# =>"):].strip() for line in block if line.strip().startswith("# =>")]
        if comments:
            (task,) = yaml.safe_load("\n".join(block))
            found.append((task, json.loads(comments[-1])))
    return found


def test_every_plugin_is_documented():
    assert MODULES and FILTERS
    for name, doc in ansible_doc("module").items():
        assert doc["doc"]["short_description"] and doc["doc"]["options"] and doc["examples"], name
        assert doc["return"], name
    for name, doc in ansible_doc("filter").items():
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
    assert ansible_doc("role")["containerd_mirror"]["entry_points"]["main"]["options"]


def test_module_examples_pass_syntax_check(tmp_path):
    plays = []
    for name, doc in ansible_doc("module").items():
        tasks = yaml.safe_load(doc["examples"])
        assert isinstance(tasks, list) and all(isinstance(task, dict) and task.get("name") for task in tasks), name
        plays.append({"name": f"EXAMPLES of {name}", "hosts": "localhost", "gather_facts": False, "tasks": tasks})
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check", str(playbook)],
                          capture_output=True, text=True, check=False, cwd=tmp_path,
                          env=dict(os.environ, ANSIBLE_HOME=str(tmp_path / "home")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_filter_examples_run(run_playbook):
    """Every filter example runs on localhost (in check mode: nothing is written) and gives its `# =>` value."""
    tasks, checks = [], []
    for name, doc in ansible_doc("filter").items():
        examples = yaml.safe_load(doc["examples"])
        assert isinstance(examples, list) and all(task.get("name") for task in examples), name
        tasks += examples
        for task, value in expected_results(doc["examples"]):
            module = next(key for key in task if key in ("ansible.builtin.debug", "ansible.builtin.set_fact"))
            expression = task[module]["msg"] if module == "ansible.builtin.debug" else next(iter(task[module].values()))
            checks.append({"task": {"name": f"result of {name}: {task['name']}",
                                    "ansible.builtin.debug": {"msg": expression}, "vars": task.get("vars", {})},
                           "expected": value})
    assert checks  # basic_auth and mirror_endpoint show their results
    run = run_playbook(tasks + [check["task"] for check in checks], check=True)
    assert run.rc == 0, run.stdout + run.stderr
    for check in checks:
        assert run.task_results(check["task"]["name"])["msg"] == check["expected"], check["task"]["name"]
