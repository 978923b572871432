"""Fleet-scale cost of playbooks/configure-mirror.yml against the template-loop way, and its rollout time.

The full run (about 43 minutes on 2 cores: 39 for the local hosts, N=200's baseline alone about 24; then
the test bed, as root with podman), from the repository root::

    source scripts/venv.sh && python bench/bench.py --testbed

It writes docs/benchmarks.md, docs/benchmarks.png and docs/benchmarks-rollout.png, and every run's
numbers as JSON into bench/results/ (git-ignored).

What it measures
----------------
1. Local hosts (``--sizes``, default 10, 50, 200): N hosts that all run on this machine
   (``ansible_connection=local``, this Python), each with its own certs.d and CA file, all workers in one
   batch of N. OURS is configure-mirror.yml against a mirror that is never contacted
   (``self_signed_certs=true`` with the CA as a node path, ``restart_strategy=none``, ``preflight=false``,
   ``manage_config=false``); the BASELINE is bench/baseline/playbook.yml, the common way (Kubespray's): one
   ``file`` and one ``template`` task, each looped over the six registries. Each side: a first apply on
   empty directories, then an unchanged re-run; the sides alternate run by run.
2. With ``--testbed``, real nodes: 1 master + 4 workers of the test bed (testbed/README.md), podman
   containers started fresh from its image, reached over SSH as ``ops`` with sudo. Ours is the real job
   (``-e @examples/cluster.json``: CA from a URL, preflight, config.toml migrated, PMK restart, health
   gate), the baseline writes the same hosts.toml files; both one node at a time, first apply and re-run.
3. With ``--testbed``, the rollout: ours' first apply on fresh nodes whose restart takes ``--slow-start``
   seconds more (the stand-ins' fault switch, so every node restarts in about the same window), with
   ``-e containerd_mirror_worker_batch=1`` and ``=2``; each node's restart window from its event log; and
   from those, a model of the rollout of 3 masters + 200 workers with worker batches of 1, 10 and 20 %.

Every run counts the module runs per node (bench/callback_plugins/module_runs.py) and is checked
(bench/check.py); the benchmark stops at the first check that fails: both sides wrote byte-identical
hosts.toml files on every host; a re-run changed nothing; ours' report says what changed and was
restarted; the rollout's batches ran in order and every node restarted once and came back healthy.

The report (docs/benchmarks.md, rendered by bench/report.py from bench/benchmarks.md.j2) has the machine
and its load, issue 14's targets met or not with the measured ratios, the tables, the plots and the
model. Hand-written text after its marker line is kept when it is rewritten.

Options
-------
``--sizes 10,50,200``; ``--repeats 1`` runs per cell for N < 50 and ``--large-repeats 1`` for N >= 50
(N=200's baseline takes about 12 min a run on 2 cores); ``--forks 10`` for every run; ``--testbed``,
``--testbed-repeats 1``, ``--slow-start 30`` (seconds), ``--health-interval 1`` (how often ours polls a
restarted node: the test bed's nodes come back in seconds, not minutes); ``--out docs``; ``--results
bench/results``; ``--no-plot``; ``--report-from bench/results/bench-<date>.json`` rewrites the report
and plots from a saved run without running anything; ``--smoke``: N=3, 1 repeat, into a temporary
directory unless ``--out`` (what tests/playbook/test_bench_smoke.py runs). It prints an estimate of its
duration at the start. Run it on a quiet machine: the report records the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import report
from check import BenchError
from nodes import MASTERS, WORKERS, Nodes, bench_rollout, bench_testbed
from playbook_runner import ANSIBLE_PLAYBOOK
from run import ROOT, Runner, ansible_core_version, bench_fleet, log

ROLLOUT_BATCHES = (1, 2)
LARGE_N = 50  # from this size on, --large-repeats runs per cell
# For the estimate printed at the start: seconds measured on the 2-core machine of docs/benchmarks.md.
# A run of one side over the local fleet costs START + N x PER_HOST (N=50 and 200, 2026-11-28).
LOCAL_START = 3.0
LOCAL_PER_HOST = {"ours": 0.85, "baseline": 3.55}
# The test bed (5 nodes, 2026-11-29, load about 3): the nodes started fresh; each side's first apply +
# re-run; a rollout batch's time beyond --slow-start (the agents' own restart and ours' work on the node).
NODE_START = 8.0
TESTBED_RUNS = {"ours": 38.0 + 12.0, "baseline": 26.0 + 24.0}
ROLLOUT_BATCH_OVERHEAD = 7.5


def estimate_seconds(sizes, repeats_for, testbed, testbed_repeats, slow_start):
    """How long a run takes, from the costs above."""
    per_host = sum(LOCAL_PER_HOST.values())
    local = sum(repeats_for(n) * 2 * (2 * LOCAL_START + n * per_host) for n in sizes)
    if not testbed:
        return local
    comparison = len(TESTBED_RUNS) * NODE_START + sum(TESTBED_RUNS.values())
    rollout = sum(NODE_START + (len(MASTERS) + math.ceil(len(WORKERS) / batch)) * (slow_start + ROLLOUT_BATCH_OVERHEAD)
                  for batch in ROLLOUT_BATCHES)
    return local + testbed_repeats * (comparison + rollout)


def positive_list(text):
    return [int(n) for n in text.split(",") if n]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_list,
                        help="local fleet sizes N, comma separated (default 10,50,200; with --smoke 3)")
    parser.add_argument("--repeats", type=int, default=1, help=f"runs per cell for N < {LARGE_N} (default 1)")
    parser.add_argument("--large-repeats", type=int, default=1, help=f"runs per cell for N >= {LARGE_N} (default 1)")
    parser.add_argument("--forks", type=int, default=10, help="ansible forks, the same for every run (default 10)")
    parser.add_argument("--testbed", action="store_true",
                        help="also real nodes and the rollout on the test bed (root, podman)")
    parser.add_argument("--testbed-repeats", type=int, default=1, help="test bed runs per cell (default 1)")
    # A real PMK node takes minutes to come back; 30 s keeps the run short and still lets the restart
    # window, not the playbook's own work, set the pace, as on a real cluster.
    parser.add_argument("--slow-start", type=int, default=30,
                        help="seconds the test bed's nodes take longer to come back in the rollout (default 30)")
    parser.add_argument("--health-interval", type=int, default=1,
                        help="ours' containerd_mirror_health_interval on the test bed (default 1)")
    parser.add_argument("--out", type=Path, help="where benchmarks.md and the plots go (default docs/)")
    parser.add_argument("--results", type=Path, help="raw results and failed runs' output (default bench/results/)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the plots")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check that everything works: N=3, 1 repeat, output into --out "
                             "(default: a new temporary directory, never docs/)")
    parser.add_argument("--report-from", type=Path, metavar="RESULTS_JSON",
                        help="run nothing: write the report and plots into --out from a saved raw results file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = args.sizes or [3]
        args.repeats = args.large_repeats = args.testbed_repeats = 1
        args.out = args.out or Path(tempfile.mkdtemp(prefix="kubenode-bench-smoke-"))
    args.sizes = args.sizes if args.sizes is not None else [10, 50, 200]
    args.out = args.out or ROOT / "docs"
    args.results = args.results or (args.out if args.smoke else ROOT / "bench" / "results")
    counts = (args.repeats, args.large_repeats, args.forks, args.testbed_repeats, args.slow_start,
              args.health_interval)
    if not args.sizes or min(args.sizes) < 1 or min(counts) < 1:
        parser.error("sizes, repeats, forks, --slow-start and --health-interval must be positive")
    return args


def command_line(args):
    """The command that reproduces this run, for the report."""
    command = (f"python bench/bench.py --sizes {','.join(map(str, args.sizes))} --repeats {args.repeats}"
               f" --large-repeats {args.large_repeats} --forks {args.forks}")
    if args.testbed:
        command += (f" --testbed --testbed-repeats {args.testbed_repeats} --slow-start {args.slow_start}"
                    f" --health-interval {args.health_interval}")
    return command


def measure(args, scratch, runner):
    """Every run the arguments ask for; return the run records."""
    records = bench_fleet(runner, args.sizes, lambda n: args.repeats if n < LARGE_N else args.large_repeats,
                          scratch, log, warm_up=not args.smoke)
    if args.testbed:
        nodes = Nodes(scratch, log)
        try:
            records += bench_testbed(runner, nodes, args.testbed_repeats, args.health_interval, log)
            records += bench_rollout(runner, nodes, ROLLOUT_BATCHES, args.slow_start, args.testbed_repeats,
                                     args.health_interval, log)
        finally:
            nodes.remove()
    return records


def main(argv=None):
    args = parse_args(argv)
    if args.report_from:
        written = report.publish(json.loads(args.report_from.read_text()), args.out, not args.no_plot)
        print(f"wrote {written} from {args.report_from}")
        return
    if not ANSIBLE_PLAYBOOK.exists():
        sys.exit(f"{ANSIBLE_PLAYBOOK} not found: run with the virtual environment's Python (source scripts/venv.sh)")
    if not (ROOT / ".cache/collections/ansible_collections/kubenode/registry_mirror").exists() \
            and "ANSIBLE_COLLECTIONS_PATH" not in os.environ:
        sys.exit("the collection is not linked into .cache/collections: source scripts/venv.sh first")

    estimate = report.duration_text(estimate_seconds(
        args.sizes, lambda n: args.repeats if n < LARGE_N else args.large_repeats, args.testbed,
        args.testbed_repeats, args.slow_start))
    info = report.machine(ansible_core_version())
    log(f"{command_line(args)}: estimated {estimate}; load average {info['load_start']} on {info['nproc']} CPUs")
    started = time.monotonic()
    runner = Runner(args.forks, args.results)
    scratch = Path(tempfile.mkdtemp(prefix="kubenode-bench-"))
    try:
        records = measure(args, scratch, runner)
    except BenchError as error:
        sys.exit(f"BENCHMARK FAILED: {error}")
    finally:
        runner.close()
        shutil.rmtree(scratch, ignore_errors=True)
    info["load_end"] = report.load_average()
    info["load_runs"] = f"{statistics.median(runner.loads):.1f} (max {max(runner.loads):.1f})"

    # Every check passed if we got here: files identical, re-runs unchanged, restarts as expected.
    results = {"command": command_line(args), "estimate": estimate,
               "duration": report.duration_text(time.monotonic() - started), "forks": args.forks,
               "health_interval": args.health_interval, "machine": info, "files_identical": True, "runs": records}
    args.results.mkdir(parents=True, exist_ok=True)
    raw = args.results / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.write_text(json.dumps(results, indent=1))
    written = report.publish(results, args.out, not args.no_plot)
    print(written.read_text().split("## Targets (issue 14)\n\n", 1)[1].split("\n## ", 1)[0])
    log(f"took {results['duration']} (estimated {estimate}); wrote {written}; raw results in {raw}")


if __name__ == "__main__":
    main()
