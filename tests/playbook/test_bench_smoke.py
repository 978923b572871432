"""The benchmark (bench/): a smoke run end to end at N=3, once, without touching docs/; its module-run
counter, its checks, the rollout model and the report on made-up numbers.

The smoke run checks that the benchmark works (both sides ran, wrote byte-identical files, our re-run
changed nothing, the report has its rows), not how fast anything is. The test bed part (--testbed) needs
root and podman and takes minutes: it is not run here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import check
import pytest
import report

ROOT = Path(__file__).resolve().parents[2]


def docs_state():
    return {path.name: path.stat().st_mtime_ns for path in (ROOT / "docs").iterdir()}


def test_benchmark_smoke_run(tmp_path):
    before = docs_state()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "both sides wrote identical files on all 3 hosts" in done.stdout
    assert "estimated" in done.stdout.splitlines()[0]

    text = (tmp_path / "benchmarks.md").read_text()
    section = text.split("## Local hosts: ours against the baseline\n\n", 1)[1]
    table = [line for line in section.split("\n\n") if line.startswith("| N | ")][0].splitlines()
    assert table[0].startswith("| N | module runs per node, ours")
    assert len(table) == 3 and table[2].startswith("| 3 | ")  # header, rule, one row for N=3
    assert len(table[2].split("|")) == len(table[0].split("|"))
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "benchmarks-rollout.png").exists()  # no rollout without --testbed

    (raw,) = tmp_path.glob("bench-*.json")
    results = json.loads(raw.read_text())
    assert results["files_identical"] is True
    runs = {(run["side"], run["phase"]) for run in results["runs"]}
    assert runs == {("ours", "first"), ("ours", "rerun"), ("baseline", "first"), ("baseline", "rerun")}
    for run in results["runs"]:
        if run["side"] == "baseline":  # a file and a template task, each looped over six registries
            assert run["module_runs"] == {"per_node": 12, "min": 12, "max": 12,
                                          "by_action": {"ansible.builtin.file": 6, "ansible.builtin.template": 6}}
        else:
            assert run["module_runs"]["per_node"] >= 1

    assert docs_state() == before  # the smoke run writes nothing into docs/


def test_module_runs_counts_what_ran_on_the_node(run_playbook, tmp_path):
    counts = tmp_path / "module-runs.json"
    tasks = [
        {"name": "Controller only", "ansible.builtin.set_fact": {"fact": 1}},
        {"name": "Controller only too", "ansible.builtin.debug": {"msg": "x"}},
        {"name": "Skipped", "ansible.builtin.command": "true", "when": False},
        {"name": "Two of three items", "ansible.builtin.command": "echo {{ item }}", "loop": [1, 2, 3],
         "when": "item != 2"},
        {"name": "Once", "ansible.builtin.stat": {"path": "/"}},
        {"name": "Two attempts", "ansible.builtin.command": "true", "register": "attempt",
         "until": "attempt.attempts >= 2", "retries": 3, "delay": 0},
        {"name": "Failed, ignored", "ansible.builtin.command": "false", "ignore_errors": True},
    ]
    run = run_playbook(tasks, env={
        "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "bench" / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "module_runs",
        "KUBENODE_BENCH_MODULE_RUNS": str(counts),
    })
    assert run.rc == 0, run.stdout + run.stderr
    assert json.loads(counts.read_text()) == {
        "localhost": {"ansible.builtin.command": 5, "ansible.builtin.stat": 1},  # 2 items + 2 attempts + 1 failed
    }


@pytest.mark.parametrize(
    ("masters", "workers", "batch", "expected"),
    [
        (["m1"], ["w1", "w2", "w3", "w4"], 2,
         [("masters", ["m1"]), ("workers", ["w1", "w2"]), ("workers", ["w3", "w4"])]),
        (["m1"], ["w1", "w2", "w3"], 2, [("masters", ["m1"]), ("workers", ["w1", "w2"]), ("workers", ["w3"])]),
        (["m1", "m2"], ["w1"], 1, [("masters", ["m1"]), ("masters", ["m2"]), ("workers", ["w1"])]),
    ],
)
def test_expected_batches(masters, workers, batch, expected):
    assert check.expected_batches(masters, workers, batch) == expected


RESTARTED = list(check.RESTART_EVENTS)


@pytest.mark.parametrize(
    ("batches", "events", "problem"),
    [
        ([("masters", ["m1"])], {"m1": RESTARTED}, None),
        ([("masters", ["m1"])], {"m1": [("containerd", "start"), *RESTARTED, ("pf9-kubelet", "start")]}, None),
        ([("workers", ["m1"])], {"m1": RESTARTED}, "the batches ran as"),
        ([("masters", ["m1"])], {"m1": RESTARTED[:-1]}, "not one restart that came back healthy"),
        ([("masters", ["m1"])], {"m1": RESTARTED + RESTARTED}, "not one restart that came back healthy"),
    ],
)
def test_check_rollout(batches, events, problem):
    if problem is None:
        check.check_rollout("run", batches, [("masters", ["m1"])], events)
    else:
        with pytest.raises(check.BenchError, match=problem):
            check.check_rollout("run", batches, [("masters", ["m1"])], events)


@pytest.mark.parametrize(
    ("batch", "workers", "size", "batches"),
    [(1, 200, 1, 203), (10, 200, 10, 23), ("20%", 200, 40, 8), ("1%", 50, 1, 53), (2, 4, 2, 5)],
)
def test_batches(batch, workers, size, batches):
    assert report.batch_size(batch, workers) == size
    assert report.batches(3, workers, batch) == batches


NUMBERS = {"window": 10.0, "overhead": 2.0, "fixed": 5.0, "masters": 1, "workers": 4, "slow_start": 10,
           "repeats": 1}


@pytest.mark.parametrize(
    ("masters", "workers", "batch", "forks", "seconds"),
    [
        (1, 4, 1, 10, 5 + 12 + 4 * 12),
        (1, 4, 2, 10, 5 + 12 + 2 * 12),
        (3, 200, "20%", 10, 5 + 3 * 12 + 5 * (10 + 2 * 4)),  # 40 nodes a batch: 4 rounds of 10 forks
        (3, 200, 10, 5, 5 + 3 * 12 + 20 * (10 + 2 * 2)),
    ],
)
def test_model_seconds(masters, workers, batch, forks, seconds):
    assert report.model_seconds(NUMBERS, masters, workers, batch, forks) == pytest.approx(seconds)


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42 s"), (725, "12 min 5 s"), (12000, "3 h 20 min")])
def test_duration_text(seconds, text):
    assert report.duration_text(seconds) == text


def made_up_results():
    """Results as bench.py saves them, with local, test bed and rollout runs: numbers chosen by hand."""
    def module_runs(per_node):
        return {"per_node": per_node, "min": per_node, "max": per_node, "by_action": {"some.module": per_node}}

    def run(where, n, side, phase, wall, per_node):
        return {"where": where, "n": n, "repeat": 0, "side": side, "phase": phase, "wall": wall, "span": wall - 1,
                "tasks": [{"name": "role : Task", "seconds": wall - 2, "skipped": False}],
                "module_runs": module_runs(per_node)}

    runs = [
        run("local", 50, "ours", "first", 10.0, 1), run("local", 50, "baseline", "first", 100.0, 12),
        run("local", 50, "ours", "rerun", 20.0, 1), run("local", 50, "baseline", "rerun", 100.0, 12),
        run("testbed", 5, "ours", "first", 60.0, 6), run("testbed", 5, "baseline", "first", 80.0, 12),
        run("testbed", 5, "ours", "rerun", 30.0, 5), run("testbed", 5, "baseline", "rerun", 100.0, 12),
    ]
    for batch, walls in ((1, [12.0] * 5), (2, [12.0, 13.0, 14.0])):
        tiers = ["masters"] + ["workers"] * (len(walls) - 1)
        runs.append({
            **run("rollout", 5, "ours", "first", 5.0 + sum(walls), 6), "batch": batch, "masters": 1, "workers": 4,
            "slow_start": 10,
            "batches": [{"tier": tier, "hosts": [], "seconds": wall, "before": 1.0, "window": 10.0,
                         "after": wall - 11.0} for tier, wall in zip(tiers, walls, strict=True)],
            "windows": {f"node{i}": 10.0 for i in range(5)},
        })
    machine = {"date": "today", "nproc": 2, "memory": "1 GiB", "cpu": "CPU", "python": "3", "ansible_core": "2",
               "load_start": "0 0 0", "load_end": "1 1 1", "load_runs": "1.0 (max 2.0)"}
    return {"command": "python bench/bench.py --testbed", "estimate": "40 min", "duration": "39 min", "forks": 10,
            "health_interval": 1, "machine": machine, "files_identical": True, "runs": runs}


def test_report_from_made_up_numbers(tmp_path):
    written = report.publish(made_up_results(), tmp_path)
    text = written.read_text()
    targets = text.split("## Targets (issue 14)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert targets == [
        "| N=50 local hosts, first apply: ours / baseline | <= 0.15x | 0.10x | met |",
        "| N=50 local hosts, re-run: ours / baseline | <= 0.15x | 0.20x | **NOT met** |",
        "| 5 real nodes over SSH, re-run: ours / baseline | <= 0.35x | 0.30x | met |",
        "| rollout of 1 master + 4 workers with batch 2: wall / (1 + ceil(4/2)) restart windows"
        " | within 15% (0.85-1.15) | 1.47 (44.0 s / 30.0 s) | **NOT met** |",
    ]
    assert "**W = 10.0 s**" in text
    model = text.split("| worker batch | nodes per batch | batches | batches x W | model |\n", 1)[1]
    # 3 masters + 200 workers, o1 = 2 s, F = 5 s
    assert model.splitlines()[1:4] == [
        "| 1 | 1 | 203 | 33 min 50 s | 40 min 41 s |",
        "| 10 | 10 | 23 | 3 min 50 s | 4 min 41 s |",
        "| 20% | 40 | 8 | 1 min 20 s | 2 min 11 s |",
    ]
    for plot in ("benchmarks.png", "benchmarks-rollout.png"):
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")

    # Hand-written notes after the marker are kept when the report is written again.
    written.write_text(text + report.NOTES_MARK + "\nmy notes\n")
    report.publish(made_up_results(), tmp_path, plot=False)
    assert written.read_text().endswith(report.NOTES_MARK + "\nmy notes\n")
