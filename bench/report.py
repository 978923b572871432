"""The benchmark's report: numbers from the run records, the rollout model, the plots, and benchmarks.md
rendered from benchmarks.md.j2 (the prose is in the template; here only numbers and table rows)."""

from __future__ import annotations

import collections
import datetime
import math
import os
import platform
import statistics
from pathlib import Path

import jinja2

HERE = Path(__file__).resolve().parent
SIDES = ("ours", "baseline")
PHASES = ("first", "rerun")
PHASE_TITLES = {"first": "first apply", "rerun": "re-run"}
NOTES_MARK = "<!-- Everything below this line is kept when bench/bench.py rewrites this file. -->"
PLOTS = {"local": "benchmarks.png", "rollout": "benchmarks-rollout.png"}
# Issue 14's targets.
LOCAL_TARGET = (50, 0.15)  # at N=50, ours at most 0.15x the baseline, first apply and re-run
TESTBED_RERUN_TARGET = 0.35  # on real nodes, ours' re-run at most 0.35x the baseline's
ROLLOUT_TOLERANCE = 0.15  # the rollout with batch 2 within 15 % of (masters + ceil(workers / 2)) restart windows
ROLLOUT_BATCH = 2
# The fleet the model is for: 3 masters and 200 workers, worker batches of 1, 10 and 20 %.
MODEL_FLEET = (3, 200)
MODEL_BATCHES = (1, 10, "20%")
SKIPPED_ROW = "tasks skipped on every host (when: false), together"
OVERHEAD_ROWS = (
    "between tasks (strategy, includes, play starts)",
    "process start, inventory, exit (wall - playbook span)",
    "**total (wall)**",
)


def machine(ansible_core):
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "ansible_core": ansible_core,
        "load_start": load_average(),
    }


def load_average():
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


# ---------------------------------------------------------------- ours against the baseline


def medians(records, where):
    """{(n, side, phase): (median, min, max, runs)} of wall times."""
    walls = collections.defaultdict(list)
    for record in records:
        if record["where"] == where:
            walls[record["n"], record["side"], record["phase"]].append(record["wall"])
    return {key: (statistics.median(values), min(values), max(values), len(values)) for key, values in walls.items()}


def _records(records, where, n, side, phase):
    return [r for r in records if r["where"] == where and (r["n"], r["side"], r["phase"]) == (n, side, phase)]


def module_runs_text(records, where, n, side):
    """Module runs per node, 'first / re-run' ('6 / 6'); a range where nodes differ ('6-7')."""
    texts = []
    for phase in PHASES:
        runs = _records(records, where, n, side, phase)[0]["module_runs"]
        texts.append(str(runs["per_node"]) if runs["min"] == runs["max"] else f"{runs['min']}-{runs['max']}")
    return " / ".join(texts)


def comparison_rows(records, where):
    """Rows of the ours-against-baseline table: N, module runs per node of each side, wall times and ratios."""
    times = medians(records, where)
    rows = []
    for n in sorted({key[0] for key in times}):
        row = [str(n), module_runs_text(records, where, n, "ours"), module_runs_text(records, where, n, "baseline")]
        for phase in PHASES:
            ours, baseline = times[n, "ours", phase][0], times[n, "baseline", phase][0]
            row += [f"{ours:.2f}", f"{baseline:.2f}", f"{ours / baseline:.2f}"]
        rows.append(row)
    return rows


def runs_per_cell(records, where):
    counts = sorted({(key[0], value[3]) for key, value in medians(records, where).items()})
    return ", ".join(f"N={n}: {count}" for n, count in counts)


def ratio(records, where, n, phase):
    times = medians(records, where)
    if (n, "ours", phase) not in times:
        return None
    return times[n, "ours", phase][0] / times[n, "baseline", phase][0]


def action_rows(records, where, n):
    """[side, action, runs per node on the first apply, on the re-run] of a node with the common count."""
    rows = []
    for side in SIDES:
        by_phase = {phase: _records(records, where, n, side, phase)[0]["module_runs"]["by_action"] for phase in PHASES}
        for action in sorted(set(by_phase["first"]) | set(by_phase["rerun"])):
            rows.append([side, action, *(str(by_phase[phase].get(action, 0)) for phase in PHASES)])
    return rows


def _profile_rows(run):
    """{row name: (seconds, task count or None)} of one run: each task that ran (summed over serial batches),
    the skipped ones together, the overheads."""
    tasks = {}  # name -> [seconds, skipped on every host of every batch]
    for task in run["tasks"]:
        entry = tasks.setdefault(task["name"].rpartition(" : ")[2], [0.0, True])
        entry[0] += task["seconds"]
        entry[1] = entry[1] and task["skipped"]
    rows = {name: (seconds, None) for name, (seconds, skipped) in tasks.items() if not skipped}
    skipped = [seconds for seconds, skipped in tasks.values() if skipped]
    rows[SKIPPED_ROW] = (sum(skipped), len(skipped))
    between, outside, total = OVERHEAD_ROWS
    rows[between] = (run["span"] - sum(t["seconds"] for t in run["tasks"]), None)
    rows[outside] = (run["wall"] - run["span"], None)
    rows[total] = (run["wall"], None)
    return rows


def profile_rows(records, where, n):
    """[side, task, first apply, re-run]: per-task median durations (seconds, whole fleet) of both sides."""
    lines = []
    for side in SIDES:
        rows = {}  # row name -> {phase: [(seconds, count) per run]}
        for phase in PHASES:  # tasks in the order they run; those of the first apply first
            for record in _records(records, where, n, side, phase):
                for name, value in _profile_rows(record).items():
                    rows.setdefault(name, {p: [] for p in PHASES})[phase].append(value)
        order = [name for name in rows if name not in (SKIPPED_ROW, *OVERHEAD_ROWS)] + [SKIPPED_ROW, *OVERHEAD_ROWS]
        for name in order:
            cells = []
            for phase in PHASES:
                values = rows[name][phase]
                if not values or (name == SKIPPED_ROW and not values[0][1]):
                    cells.append("-")
                    continue
                count = values[0][1]
                cells.append(f"{statistics.median(v[0] for v in values):.2f}"
                             + (f" ({count} tasks)" if count is not None else ""))
            lines.append([side, name, *cells])
    return lines


# ---------------------------------------------------------------- the rollout and its model


def rollout_numbers(records):
    """The measured rollout: restart window W (median over every node), the per-batch overhead o1 (median of
    batch time - the batch's restart window, with batches of 1), the fixed cost F (wall - the batches), the
    fleet, forks and slow-start; None when the rollout was not measured."""
    runs = [r for r in records if r["where"] == "rollout"]
    if not runs:
        return None
    single = [b for r in runs if r["batch"] == 1 for b in r["batches"]] or [b for r in runs for b in r["batches"]]
    return {
        "window": statistics.median(w for r in runs for w in r["windows"].values()),
        "overhead": statistics.median(b["seconds"] - b["window"] for b in single),
        "fixed": statistics.median(r["wall"] - sum(b["seconds"] for b in r["batches"]) for r in runs),
        "masters": runs[0]["masters"],
        "workers": runs[0]["workers"],
        "slow_start": runs[0]["slow_start"],
        "repeats": len({r["repeat"] for r in runs}),
    }


def batch_size(batch, hosts):
    """A worker batch as Ansible's serial takes it: a number, or a percentage of the tier's hosts (at least 1)."""
    if isinstance(batch, str) and batch.endswith("%"):
        return max(1, int(hosts * float(batch[:-1]) / 100))
    return int(batch)


def batches(masters, workers, batch):
    """How many batches configure-mirror.yml makes: masters one at a time, then the workers in batches."""
    return masters + math.ceil(workers / batch_size(batch, workers))


def model_seconds(numbers, masters, workers, batch, forks):
    """Modelled rollout time: F + per batch (W + o1 * ceil(size / forks)), the masters in batches of 1.

    A batch takes its nodes' restart window (they restart in parallel) plus the work before and after it, which
    Ansible does for at most `forks` nodes at a time."""
    size = batch_size(batch, workers)
    worker_batch = numbers["window"] + numbers["overhead"] * math.ceil(size / forks)
    return (numbers["fixed"] + masters * (numbers["window"] + numbers["overhead"])
            + math.ceil(workers / size) * worker_batch)


def duration_text(seconds):
    """'42 s', '12 min 5 s' or '3 h 20 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def rollout_rows(records, numbers, forks):
    """[batch, batches, wall, restart windows alone (batches x W), wall / that, model, batch times]."""
    rows = []
    for batch in sorted({r["batch"] for r in records if r["where"] == "rollout"}):
        runs = [r for r in records if r["where"] == "rollout" and r["batch"] == batch]
        count = batches(numbers["masters"], numbers["workers"], batch)
        wall = statistics.median(r["wall"] for r in runs)
        windows = count * numbers["window"]
        model = model_seconds(numbers, numbers["masters"], numbers["workers"], batch, forks)
        batch_times = ", ".join(f"{statistics.median(r['batches'][i]['seconds'] for r in runs):.1f}"
                                for i in range(count))
        rows.append([str(batch), str(count), f"{wall:.1f}", f"{windows:.1f}", f"{wall / windows:.2f}",
                     f"{model:.1f}", batch_times])
    return rows


def batch_rows(records):
    """[batch, tier, before the restart, restart window, after healthy, batch time]: medians per batch size."""
    rows = []
    for batch in sorted({r["batch"] for r in records if r["where"] == "rollout"}):
        for tier in ("masters", "workers"):
            found = [b for r in records if r["where"] == "rollout" and r["batch"] == batch
                     for b in r["batches"] if b["tier"] == tier]
            if found:
                parts = ("before", "window", "after", "seconds")
                rows.append([str(batch), tier, *(f"{statistics.median(b[part] for b in found):.1f}" for part in parts)])
    return rows


def model_rows(numbers, forks):
    """[worker batch, nodes per batch, batches, restart windows alone, modelled time] for MODEL_FLEET."""
    masters, workers = MODEL_FLEET
    rows = []
    for batch in MODEL_BATCHES:
        count = batches(masters, workers, batch)
        rows.append([str(batch), str(batch_size(batch, workers)), str(count),
                     duration_text(count * numbers["window"]),
                     duration_text(model_seconds(numbers, masters, workers, batch, forks))])
    return rows


def rollout_target(records, numbers):
    """(measured wall with batch 2, (masters + ceil(workers / 2)) x W, ratio) or None."""
    runs = [r["wall"] for r in records if r["where"] == "rollout" and r["batch"] == ROLLOUT_BATCH]
    if not runs or numbers is None:
        return None
    expected = batches(numbers["masters"], numbers["workers"], ROLLOUT_BATCH) * numbers["window"]
    return statistics.median(runs), expected, statistics.median(runs) / expected


def targets(records, numbers):
    """[what, target, measured, met] for each of issue 14's targets that this run measured."""
    rows = []
    n, most = LOCAL_TARGET
    for phase in PHASES:
        measured = ratio(records, "local", n, phase)
        if measured is not None:
            rows.append([f"N={n} local hosts, {PHASE_TITLES[phase]}: ours / baseline", f"<= {most:.2f}x",
                         f"{measured:.2f}x", measured <= most])
    testbed_n = next((r["n"] for r in records if r["where"] == "testbed"), None)
    if testbed_n:
        measured = ratio(records, "testbed", testbed_n, "rerun")
        rows.append([f"{testbed_n} real nodes over SSH, re-run: ours / baseline",
                     f"<= {TESTBED_RERUN_TARGET:.2f}x", f"{measured:.2f}x", measured <= TESTBED_RERUN_TARGET])
    rollout = rollout_target(records, numbers)
    if rollout:
        wall, expected, measured = rollout
        rows.append([
            f"rollout of {numbers['masters']} master + {numbers['workers']} workers with batch {ROLLOUT_BATCH}: "
            f"wall / ({numbers['masters']} + ceil({numbers['workers']}/{ROLLOUT_BATCH})) restart windows",
            f"within {ROLLOUT_TOLERANCE:.0%} (0.85-1.15)", f"{measured:.2f} ({wall:.1f} s / {expected:.1f} s)",
            abs(measured - 1) <= ROLLOUT_TOLERANCE])
    return [[*row[:3], "met" if row[3] else "**NOT met**"] for row in rows]


# ---------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_local(records, path):
    """Wall time against N, ours and the baseline, first apply and re-run (medians, min-max bars)."""
    plt = _pyplot()
    times = medians(records, "local")
    sizes = sorted({key[0] for key in times})
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    styles = {("ours", "first"): ("tab:blue", "o", "-"), ("ours", "rerun"): ("tab:blue", "s", "--"),
              ("baseline", "first"): ("tab:red", "o", "-"), ("baseline", "rerun"): ("tab:red", "s", "--")}
    for (side, phase), (color, marker, line) in styles.items():
        values = [times[n, side, phase] for n in sizes]
        errors = [[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]]
        name = "ours (configure-mirror.yml)" if side == "ours" else "baseline (template loop)"
        axes.errorbar(sizes, [v[0] for v in values], yerr=errors, color=color, marker=marker, linestyle=line,
                      capsize=3, label=f"{name}, {PHASE_TITLES[phase]}")
    axes.set_xticks(sizes)
    axes.set_xlim(0, max(sizes) * 1.05)
    _finish(plt, figure, axes, path, "hosts (N)", "wall time, median (s)",
            "Fleet-scale cost: configure-mirror.yml vs template loop")


def plot_rollout(numbers, forks, path):
    """Modelled rollout time of MODEL_FLEET against the worker batch size, and the restart windows alone."""
    plt = _pyplot()
    masters, workers = MODEL_FLEET
    sizes = range(1, batch_size(MODEL_BATCHES[-1], workers) + 1)
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    axes.plot(sizes, [model_seconds(numbers, masters, workers, b, forks) / 60 for b in sizes], color="tab:blue",
              label=f"model: F + batches x (W + o1 x ceil(batch / {forks} forks))")
    axes.plot(sizes, [batches(masters, workers, b) * numbers["window"] / 60 for b in sizes], color="tab:gray",
              linestyle="--", label="restart windows alone: batches x W")
    for batch in MODEL_BATCHES:
        size = batch_size(batch, workers)
        seconds = model_seconds(numbers, masters, workers, batch, forks)
        axes.plot([size], [seconds / 60], "o", color="tab:blue")
        axes.annotate(f"batch {batch}: {duration_text(seconds)}", (size, seconds / 60), textcoords="offset points",
                      xytext=(6, 6), fontsize=8)
    axes.set_xscale("log")
    ticks = sorted({1, 2, 5, 10, 20, *(batch_size(b, workers) for b in MODEL_BATCHES)})
    axes.set_xticks(ticks, [str(tick) for tick in ticks])
    _finish(plt, figure, axes, path, "worker batch size (nodes)", "rollout time (minutes)",
            f"Model: {masters} masters + {workers} workers, restart window W = {numbers['window']:.1f} s")


def _finish(plt, figure, axes, path, xlabel, ylabel, title):
    """Label the axes, draw the grid and the legend, save the figure as path."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# ---------------------------------------------------------------- benchmarks.md


def render(results, plots, notes=""):
    """benchmarks.md's text from a results document (what bench.py saves as raw JSON)."""
    records, forks = results["runs"], results["forks"]
    local_n = sorted({r["n"] for r in records if r["where"] == "local"})
    testbed_n = next((r["n"] for r in records if r["where"] == "testbed"), None)
    numbers = rollout_numbers(records)
    profile_n = max([n for n in local_n if n <= LOCAL_TARGET[0]] or local_n[:1])  # the target's N when measured
    context = {
        "results": results,
        "machine": results["machine"],
        "forks": forks,
        "plots": plots,
        "targets": targets(records, numbers),
        "local": {
            "rows": comparison_rows(records, "local"),
            "runs": runs_per_cell(records, "local"),
            "profile_n": profile_n,
            "actions": action_rows(records, "local", profile_n),
            "profile": profile_rows(records, "local", profile_n),
        },
        "testbed": testbed_n and {
            "n": testbed_n,
            "rows": comparison_rows(records, "testbed"),
            "runs": runs_per_cell(records, "testbed"),
            "actions": action_rows(records, "testbed", testbed_n),
            "profile": profile_rows(records, "testbed", testbed_n),
        },
        "rollout": numbers and {
            **numbers,
            "rows": rollout_rows(records, numbers, forks),
            "batches": batch_rows(records),
            "model": model_rows(numbers, forks),
            "model_fleet": MODEL_FLEET,
        },
        "notes_mark": NOTES_MARK,
        "notes": notes,
    }
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), keep_trailing_newline=True,
                                     trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                                     autoescape=False)  # noqa: S701 -- markdown, not HTML
    return environment.get_template("benchmarks.md.j2").render(context)


def publish(results, out, plot=True):
    """Write benchmarks.md (and its plots) into out, keeping the hand-written notes; return the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    plots = dict.fromkeys(PLOTS)  # name -> file, None when not drawn
    if plot:
        plots["local"] = PLOTS["local"]
        plot_local(results["runs"], out / PLOTS["local"])
        numbers = rollout_numbers(results["runs"])
        if numbers:
            plots["rollout"] = PLOTS["rollout"]
            plot_rollout(numbers, results["forks"], out / PLOTS["rollout"])
    report = out / "benchmarks.md"
    notes = report.read_text().partition(NOTES_MARK)[2] if report.exists() else ""
    report.write_text(render(results, plots, notes))
    return report
