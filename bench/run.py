"""Running the benchmark: ansible-playbook runs timed and summarised, and the local fleet (N hosts on this machine).

The test bed's nodes (real nodes over SSH) are in nodes.py.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from check import BenchError, check_run, compare_trees, failures, local_tree
from playbook_runner import ANSIBLE_PLAYBOOK, ansible_environment, run_playbook, write_config_reading

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = {
    "ours": ROOT / "playbooks" / "configure-mirror.yml",
    "baseline": ROOT / "bench" / "baseline" / "playbook.yml",
}
SIDES = ("ours", "baseline")
PHASES = ("first", "rerun")
# A mirror that is never contacted (preflight off, CA given as a node path).
FAKE_MIRROR = {
    "containerd_mirror_url": "https://10.101.101.100:443",
    "containerd_mirror_repo_path": "infra/k8s",
    "containerd_mirror_username": "mirror-user",
    "containerd_mirror_password": "bench-password",
    "containerd_mirror_self_signed_certs": True,
    "containerd_mirror_restart_strategy": "none",
    "containerd_mirror_preflight": False,
    "containerd_mirror_manage_config": False,
    "containerd_mirror_verify_image": "",  # local hosts: no containerd runs there to pull through
}


class Runner:
    """Runs ansible-playbook the same way for both sides: json callback, module runs counted, same forks."""

    def __init__(self, forks, results_dir):
        self.forks = forks
        self.results_dir = results_dir
        self.home = Path(tempfile.mkdtemp(prefix="kubenode-bench-home-"))
        self.env = ansible_environment(
            self.home,
            ANSIBLE_CALLBACK_PLUGINS=str(ROOT / "bench" / "callback_plugins"),
            # Only ours (e.g. not profile_tasks from the caller's shell): the same callbacks for both sides.
            ANSIBLE_CALLBACKS_ENABLED="module_runs",
        )
        self.loads = []  # the 1-minute load average when each run started

    def run(self, label, playbook, inventory, *extra):
        """Run a playbook; return the json callback's document with the module runs per host added
        (document["module_runs"]: {host: {action: runs}}) and its wall time. Raise BenchError on failure."""
        counts = self.home / "module-runs.json"
        counts.unlink(missing_ok=True)
        self.loads.append(os.getloadavg()[0])
        done = run_playbook(["-i", inventory, "--forks", self.forks, *extra, playbook],
                            dict(self.env, KUBENODE_BENCH_MODULE_RUNS=str(counts)), ROOT)
        if done.rc != 0 or done.results is None:
            log = self.save_log(label, done)
            problems = failures(done.results) if done.results else [done.stderr.strip()[-2000:]]
            raise BenchError(f"{label}: ansible-playbook exited {done.rc}; output in {log}\n"
                             + "\n".join(problems[:10]))
        if not counts.exists():
            raise BenchError(f"{label}: the callback module_runs (bench/callback_plugins) did not write {counts}")
        document = dict(done.results, module_runs=json.loads(counts.read_text()))
        return document, done.wall

    def save_log(self, label, done):
        self.results_dir.mkdir(parents=True, exist_ok=True)
        log = self.results_dir / f"failed-{label}.log"
        log.write_text(f"$ {' '.join(done.command)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
        return log

    def close(self):
        shutil.rmtree(self.home, ignore_errors=True)


def duration_seconds(duration):
    """Seconds of a json callback duration ({start, end} in ISO format)."""
    start = datetime.datetime.fromisoformat(duration["start"])
    return (datetime.datetime.fromisoformat(duration["end"]) - start).total_seconds()


def module_runs(document, hosts):
    """Module runs per node: {"per_node": the most common count, "min", "max", "by_action": of a node with it}."""
    counts = {host: document["module_runs"].get(host, {}) for host in hosts}
    totals = {host: sum(actions.values()) for host, actions in counts.items()}
    per_node = collections.Counter(totals.values()).most_common(1)[0][0]
    typical = next(host for host in hosts if totals[host] == per_node)
    return {"per_node": per_node, "min": min(totals.values()), "max": max(totals.values()),
            "by_action": dict(sorted(counts[typical].items()))}


def summarise(document, wall, hosts):
    """The numbers kept from one run: wall time, playbook span, per-task durations, module runs per node."""
    plays = document["plays"]
    first = datetime.datetime.fromisoformat(plays[0]["play"]["duration"]["start"])
    last = datetime.datetime.fromisoformat(plays[-1]["play"]["duration"]["end"])
    tasks = [{
        "name": task["task"]["name"],
        "seconds": duration_seconds(task["task"]["duration"]),
        "skipped": all(result.get("skipped") for result in task["hosts"].values()),
    } for play in plays for task in play["tasks"]]
    return {
        "wall": wall,
        "span": (last - first).total_seconds(),
        "tasks": tasks,
        "module_runs": module_runs(document, hosts),
    }


# ---------------------------------------------------------------- the local fleet


def make_ca(directory):
    """One self-signed CA certificate (the file each host's cert_path points at)."""
    key, cert = directory / "ca.key", directory / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "365", "-subj", "/CN=kubenode bench CA"],
                   check=True, capture_output=True)
    return cert


def make_cas(root, size, ca):
    """Each host's CA file (one CA, one copy per host), shared by both sides: hosts.toml names its path."""
    paths = {}
    for index in range(1, size + 1):
        name = f"node{index:03d}"
        (root / name).mkdir(parents=True)
        paths[name] = root / name / "ca.crt"
        shutil.copyfile(ca, paths[name])
    return paths


def make_fleet(root, cas):
    """Write an inventory of local hosts under root; return (inventory, {host: config_path})."""
    hosts, paths = {}, {}
    for name, ca in cas.items():
        paths[name] = root / name / "certs.d"
        # config.toml is not managed here: the role checks that the one given makes containerd read certs.d.
        config = write_config_reading(root / name / "config.toml", paths[name])
        hosts[name] = {"containerd_mirror_config_path": str(paths[name]), "containerd_mirror_cert_path": str(ca),
                       "containerd_mirror_containerd_config": str(config)}
    root.mkdir(parents=True, exist_ok=True)
    inventory = root / "inventory.yml"
    group_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **FAKE_MIRROR}
    # No masters: every host is a worker, so that ours runs them in one batch (-e containerd_mirror_worker_batch).
    groups = {"masters": {}, "workers": {"hosts": hosts}}
    inventory.write_text(yaml.safe_dump({"all": {"vars": group_vars, "children": groups}}, sort_keys=False))
    return inventory, paths


def bench_fleet(runner, sizes, repeats_for, scratch, log, warm_up=True):
    """Time both sides at every size, first apply and re-run; return the list of run records."""
    ca = make_ca(scratch)
    records = []
    if warm_up:  # untimed: the first ansible-playbook after a change compiles and caches Python files
        warm = scratch / "warm-up"
        cas = make_cas(warm / "ca", 1, ca)
        for side in SIDES:
            inventory = make_fleet(warm / side, cas)[0]
            runner.run(f"warm-up-{side}", PLAYBOOKS[side], inventory)
        shutil.rmtree(warm)
    for size in sizes:
        for repeat in range(repeats_for(size)):
            order = SIDES if repeat % 2 == 0 else SIDES[::-1]  # alternate which side goes first
            work = scratch / f"n{size}-r{repeat}"
            cas = make_cas(work / "ca", size, ca)
            fleets = {side: make_fleet(work / side, cas) for side in SIDES}
            for phase in PHASES:
                for side in order:
                    label = f"n{size}-r{repeat}-{side}-{phase}"
                    inventory, paths = fleets[side]
                    # One batch of N: every host at once, as far as the forks go.
                    document, wall = runner.run(label, PLAYBOOKS[side], inventory,
                                                "-e", f"containerd_mirror_worker_batch={size}")
                    check_run(label, side, phase, document, paths)
                    records.append({"where": "local", "n": size, "repeat": repeat, "side": side, "phase": phase,
                                    **summarise(document, wall, paths)})
                    log(f"{label}: {wall:.2f} s, {records[-1]['module_runs']['per_node']} module runs per node")
            for host, path in fleets["ours"][1].items():
                compare_trees(f"n{size}-r{repeat} {host}", local_tree(path), local_tree(fleets["baseline"][1][host]))
            log(f"n{size}-r{repeat}: both sides wrote identical files on all {size} hosts")
            shutil.rmtree(work)
    return records


def ansible_core_version():
    done = subprocess.run([str(ANSIBLE_PLAYBOOK), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.split("\n", 1)[0].split("core ", 1)[-1].strip(" ]")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
