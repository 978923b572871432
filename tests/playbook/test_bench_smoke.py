"""The benchmark (bench/bench.py) runs end to end at N=3, once, without touching docs/.

It checks that the benchmark works (both sides ran, wrote byte-identical files,
our re-run changed nothing, the report has its rows), not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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

    report = (tmp_path / "benchmarks.md").read_text()
    table = report.split("## Results\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[0].startswith("| N | tasks/host ours")
    assert len(table) == 3 and table[2].startswith("| 3 | ")  # header, rule, one row for N=3
    assert len(table[2].split("|")) == len(table[0].split("|"))
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG")

    (raw,) = tmp_path.glob("bench-*.json")
    results = json.loads(raw.read_text())
    assert results["files_identical"] is True
    runs = {(run["side"], run["phase"]) for run in results["runs"]}
    assert runs == {("ours", "first"), ("ours", "rerun"), ("baseline", "first"), ("baseline", "rerun")}

    assert docs_state() == before  # the smoke run writes nothing into docs/
