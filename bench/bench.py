"""Fleet-scale cost of playbooks/configure-mirror.yml against the template-loop way.

What it measures
----------------
For each fleet size N (default 10, 50, 200) it makes an inventory of N hosts that
all run on this machine (``ansible_connection=local``, this Python as
interpreter), each with its own ``containerd_mirror_config_path`` and CA file
(one CA made with openssl, copied per host) in a fresh temporary directory, and
times with ``ansible-playbook``, as whole processes (wall clock):

- OURS: ``playbooks/configure-mirror.yml`` (the role ``containerd_mirror``) with
  ``containerd_mirror_self_signed_certs=true``, ``restart_strategy=none``,
  ``preflight=false``, ``manage_config=false`` and ``-e containerd_mirror_serial=N``
  (one batch), against a fake mirror that is never contacted;
- BASELINE: ``bench/baseline/playbook.yml``, the common way (Kubespray's): one
  ``ansible.builtin.file`` task (directories) and one ``ansible.builtin.template``
  task (``bench/baseline/hosts.toml.j2``), each looped over the six registries;

each for a first apply (empty directories) and an unchanged re-run, alternating
the two sides run by run. Both use the same inventory, ansible.cfg, callback
(ansible.posix.json), ``--forks`` and ``serial``, and no fact gathering.

Every run is checked, and the benchmark fails loudly otherwise: both sides
produced byte-identical trees (paths, modes, contents) on every host; our
re-run reports changed=0 on every host; our per-node report says nothing was
restarted (``restarted: none``); the baseline's re-run changes nothing either.

It reports per N the tasks run per host, the median wall time of the repeats
and the ratio ours/baseline, for both phases, plus where the time goes (per-task
durations from the json callback, the same numbers profile_tasks prints) as a
markdown report (``benchmarks.md``) and a plot (``benchmarks.png``).

With ``--testbed`` it also times the real job on 2 to 4 test-bed nodes (podman
containers running systemd and containerd, see testbed/README.md; needs root):
``-e @examples/cluster.json`` (CA fetched from a URL, config.toml managed,
``restart_strategy=pmk``, ``serial`` 1: the playbook's defaults), against the
baseline writing the same hosts.toml files (checked identical too).

How to run
----------
From the repository root, with the virtual environment (``source scripts/venv.sh``)::

    python bench/bench.py                      # N=10,50,200; writes docs/benchmarks.{md,png}
    python bench/bench.py --testbed            # the same plus 3 test-bed nodes (root, podman)
    python bench/bench.py --smoke --out DIR    # N=3, 1 repeat, into DIR (what the tests run)

Options: ``--sizes 10,50,200``; ``--repeats 3`` runs per cell for N <= 50 and
``--large-repeats 1`` above (N=200 takes minutes per run on 2 cores); ``--forks 10``
for both sides; ``--testbed-nodes 3`` (2 to 4); ``--out docs`` for the report;
``--no-plot``; ``--report-from bench/results/bench-<date>.json`` rewrites the report and
plot from a saved run without running anything. Raw results (every run's numbers, as JSON) and the output of any
failed run go to ``--results`` (default ``bench/results/``, git-ignored). Text
after the marker line at the end of an existing benchmarks.md (hand-written
analysis) is kept when the report is rewritten.

The full run takes about an hour on 2 cores; run it on a quiet machine (the report
records the load average).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import difflib
import io
import json
import os
import platform
import shutil
import stat
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOKS = {
    "ours": ROOT / "playbooks" / "configure-mirror.yml",
    "baseline": ROOT / "bench" / "baseline" / "playbook.yml",
}
SIDES = ("ours", "baseline")
PHASES = ("first", "rerun")
PHASE_TITLES = {"first": "first apply", "rerun": "re-run"}
REPORT_TASK = "Record what happened on this node"  # the role's last task: sets containerd_mirror_report

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
}
# Every hosts.toml both sides must write, relative to containerd_mirror_config_path.
EXPECTED_FILES = {
    f"{registry}/hosts.toml"
    for registry in ("10.101.101.100:443", "platform9.io", "docker.io", "gcr.io", "quay.io", "registry.k8s.io")
}
# PMK cluster API fields -> the role's variables (what the first play of configure-mirror.yml does).
CLUSTER_FIELDS = {
    "customRegistryUrl": "containerd_mirror_url",
    "customRegistryRepoPath": "containerd_mirror_repo_path",
    "customRegistryUsername": "containerd_mirror_username",
    "customRegistryPassword": "containerd_mirror_password",
    "customRegistrySkipTls": "containerd_mirror_skip_tls",
    "customRegistrySelfSignedCerts": "containerd_mirror_self_signed_certs",
    "customRegistryCertPath": "containerd_mirror_cert_path",
}
NOTES_MARK = "<!-- Everything below this line is kept when bench/bench.py rewrites this file. -->"
TESTBED_PREFIX = "kubenode-bench-node"
TESTBED_SAVED = "/root/kubenode-bench"  # inside each node: the pristine /etc/containerd


class BenchError(RuntimeError):
    """A run failed or a check did not hold: the numbers cannot be trusted."""


# ---------------------------------------------------------------- running ansible


class Runner:
    """Runs ansible-playbook the same way for both sides, with the json callback."""

    def __init__(self, forks, results_dir):
        self.forks = forks
        self.results_dir = results_dir
        home = Path(tempfile.mkdtemp(prefix="kubenode-bench-home-"))
        self.home = home
        self.env = dict(
            os.environ,
            ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        self.loads = []  # the 1-minute load average when each run started
        self.env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # e.g. profile_tasks: the same callbacks for both sides

    def run(self, label, playbook, inventory, *extra):
        """Run a playbook; return (wall seconds, the json callback's document). Raise BenchError on failure."""
        command = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "--forks", str(self.forks), *extra, str(playbook)]
        self.loads.append(os.getloadavg()[0])
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        try:
            document = json.loads(done.stdout)
        except json.JSONDecodeError:
            document = None
        if done.returncode != 0 or document is None:
            log = self.save_log(label, done)
            problems = failures(document) if document else [done.stderr.strip()[-2000:]]
            raise BenchError(f"{label}: ansible-playbook exited {done.returncode}; output in {log}\n"
                             + "\n".join(problems[:10]))
        return wall, document

    def save_log(self, label, done):
        self.results_dir.mkdir(parents=True, exist_ok=True)
        log = self.results_dir / f"failed-{label}.log"
        log.write_text(f"$ {' '.join(done.args)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
        return log

    def close(self):
        shutil.rmtree(self.home, ignore_errors=True)


def failures(document):
    """Return 'host: task: message' for every failed or unreachable result in a json callback document."""
    found = []
    for play in document.get("plays", []):
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") or result.get("unreachable"):
                    found.append(f"{host}: {task['task']['name']}: {result.get('msg', result)}")
    return found


def _seconds(duration):
    start = datetime.datetime.fromisoformat(duration["start"])
    return (datetime.datetime.fromisoformat(duration["end"]) - start).total_seconds()


def summarise(document, wall):
    """The numbers kept from one run: wall time, playbook span, per-task durations, tasks per host."""
    plays = document["plays"]
    first = datetime.datetime.fromisoformat(plays[0]["play"]["duration"]["start"])
    last = datetime.datetime.fromisoformat(plays[-1]["play"]["duration"]["end"])
    tasks = []
    per_host = collections.defaultdict(lambda: [0, 0, 0])  # listed, ran (not skipped), loop items
    for play in plays:
        for task in play["tasks"]:
            results = task["hosts"]
            tasks.append({
                "name": task["task"]["name"],
                "seconds": _seconds(task["task"]["duration"]),
                "skipped": all(result.get("skipped") for result in results.values()),
            })
            for host, result in results.items():
                counts = per_host[host]
                counts[0] += 1
                if not result.get("skipped"):
                    counts[1] += 1
                    counts[2] += len(result.get("results", ()))
    # Hosts differ only by run_once tasks, which run on the first host: report the common count.
    listed, ran, items = collections.Counter(tuple(c) for c in per_host.values()).most_common(1)[0][0]
    return {
        "wall": wall,
        "span": (last - first).total_seconds(),
        "tasks": tasks,
        "per_host": {"listed": listed, "ran": ran, "items": items},
    }


# ---------------------------------------------------------------- checks


def reports(document):
    """Return {host: containerd_mirror_report} from our run (with serial, each batch is a play of its own)."""
    found = {}
    for play in document["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].rpartition(" : ")[2] == REPORT_TASK:
                found.update((host, result["ansible_facts"]["containerd_mirror_report"])
                             for host, result in task["hosts"].items())
    if not found:
        raise BenchError(f"our run has no task {REPORT_TASK!r}: the role changed; update bench/bench.py")
    return found


def check_run(label, side, phase, document, hosts, first_changes=("certs.d",), first_restart="none"):
    """Fail unless every host ran, the re-run changed nothing, and (ours) the report says what is expected."""
    stats = document["stats"]
    if set(stats) != set(hosts):
        raise BenchError(f"{label}: ran on {sorted(stats)}, expected {sorted(hosts)}")
    for host in hosts:
        changed = stats[host]["changed"]
        if phase == "rerun" and changed != 0:
            raise BenchError(f"{label}: {host} reports changed={changed} on an unchanged re-run")
        if phase == "first" and changed == 0:
            raise BenchError(f"{label}: {host} changed nothing on a first apply")
    if side != "ours":
        return
    found = reports(document)
    for host in hosts:
        report = found.get(host)
        expected_changes = set(first_changes) if phase == "first" else set()
        expected_restart = first_restart if phase == "first" else "none"
        if report is None or set(report["changed"]) != expected_changes or report["restarted"] != expected_restart:
            raise BenchError(f"{label}: {host} reports {report}, expected changed={sorted(expected_changes)} "
                             f"and restarted={expected_restart!r}")


def local_tree(path):
    """{relative path: (kind, mode, bytes)} of everything under path."""
    tree = {}
    for entry in sorted(Path(path).rglob("*")):
        info = entry.lstat()
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        tree[str(entry.relative_to(path))] = (kind, oct(stat.S_IMODE(info.st_mode)),
                                              entry.read_bytes() if kind == "file" else b"")
    return tree


def compare_trees(label, ours, baseline, expected=EXPECTED_FILES):
    """Fail unless both trees are identical (and hold the expected files); say where they differ."""
    missing = sorted(expected - set(ours))
    if missing:
        raise BenchError(f"{label}: ours did not write {missing}")
    if ours == baseline:
        return
    for name in sorted(set(ours) | set(baseline)):
        if ours.get(name) != baseline.get(name):
            mine, theirs = ours.get(name), baseline.get(name)
            detail = ""
            if mine and theirs and mine[0] == theirs[0] == "file" and mine[2] != theirs[2]:
                detail = "\n" + "".join(difflib.unified_diff(
                    mine[2].decode(errors="replace").splitlines(True),
                    theirs[2].decode(errors="replace").splitlines(True), "ours", "baseline"))
            raise BenchError(f"{label}: {name} differs: ours {mine and mine[:2]}, baseline {theirs and theirs[:2]}"
                             + detail)


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
        hosts[name] = {"containerd_mirror_config_path": str(paths[name]), "containerd_mirror_cert_path": str(ca)}
    root.mkdir(parents=True)
    inventory = root / "inventory.yml"
    group_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **FAKE_MIRROR}
    inventory.write_text(yaml.safe_dump({"all": {"vars": group_vars, "hosts": hosts}}, sort_keys=False))
    return inventory, paths


def bench_fleet(runner, sizes, repeats_for, scratch, log, warm_up=True):
    """Time both sides at every size; return the list of run records."""
    ca = make_ca(scratch)
    records = []
    if warm_up:  # untimed: the first ansible-playbook after a change compiles and caches Python files
        warm = scratch / "warm-up"
        cas = make_cas(warm / "ca", 1, ca)
        for side in SIDES:
            inventory = make_fleet(warm / side, cas)[0]
            runner.run(f"warm-up-{side}", PLAYBOOKS[side], inventory, "-e", "containerd_mirror_serial=1")
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
                    wall, document = runner.run(label, PLAYBOOKS[side], inventory,
                                                "-e", f"containerd_mirror_serial={size}")
                    check_run(label, side, phase, document, paths)
                    record = {"where": "local", "n": size, "repeat": repeat, "side": side, "phase": phase,
                              **summarise(document, wall)}
                    records.append(record)
                    log(f"{label}: {wall:.2f} s")
            for host, path in fleets["ours"][1].items():
                compare_trees(f"n{size}-r{repeat} {host}", local_tree(path), local_tree(fleets["baseline"][1][host]))
            log(f"n{size}-r{repeat}: both sides wrote identical files on all {size} hosts")
            shutil.rmtree(work)
    return records


# ---------------------------------------------------------------- the test bed (podman nodes)


def podman(*args, check=True, env=None):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, env=env)


def node_tree(name, env):
    """{relative path: (kind, mode, bytes)} of the hosts.toml files in a node's /etc/containerd/certs.d."""
    done = subprocess.run(["podman", "exec", name, "tar", "-C", "/etc/containerd/certs.d", "-cf", "-", "."],
                          capture_output=True, check=True, env=env)
    tree = {}
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith("/hosts.toml"):
                tree[member.name.removeprefix("./")] = ("file", oct(member.mode), archive.extractfile(member).read())
    return tree


def bench_testbed(runner, nodes, repeats, log):
    """Time the real job and the baseline on test-bed nodes; return the list of run records."""
    if os.geteuid() != 0 or shutil.which("podman") is None:
        raise BenchError("--testbed needs root and podman (see testbed/README.md)")
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "testbed" / "containers.conf"))
    subprocess.run(["bash", str(ROOT / "testbed" / "registry.sh"), "start"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    image = subprocess.run(["bash", str(ROOT / "testbed" / "build-node-image.sh")], check=True, env=env,
                           capture_output=True, text=True).stdout.split()[-1]
    cluster_file = ROOT / "examples" / "cluster.json"
    cluster = json.loads(cluster_file.read_text())
    settings = {CLUSTER_FIELDS[field]: value for field, value in cluster.items() if field in CLUSTER_FIELDS}
    mirror_directory = cluster["customRegistryUrl"].split("://", 1)[1]
    expected = {f"{mirror_directory}/hosts.toml"} | {name.replace("10.101.101.100:443", mirror_directory)
                                                     for name in EXPECTED_FILES}
    names = [f"{TESTBED_PREFIX}{index}" for index in range(1, nodes + 1)]
    scratch = Path(tempfile.mkdtemp(prefix="kubenode-bench-testbed-"))
    inventory = scratch / "inventory.yml"
    group_vars = {"ansible_connection": "containers.podman.podman", "ansible_python_interpreter": "/usr/bin/python3",
                  "containerd_mirror_config_path": "/etc/containerd/certs.d", **settings}  # the role's default
    inventory.write_text(yaml.safe_dump({"all": {"vars": group_vars, "hosts": dict.fromkeys(names)}},
                                        sort_keys=False))
    runner.env["CONTAINERS_CONF"] = env["CONTAINERS_CONF"]
    extra = {"ours": ["-e", f"@{cluster_file}"], "baseline": []}
    records = []
    try:
        for name in names:
            podman("rm", "-f", name, check=False, env=env)  # left over from an interrupted run
            podman("run", "-d", "--name", name, "--privileged", "--network", "host", "--systemd=always", image,
                   "/sbin/init", env=env)
        for name in names:
            for _second in range(60):
                state = podman("exec", name, "systemctl", "is-system-running", check=False, env=env).stdout.strip()
                if state == "running":
                    break
                time.sleep(1)
            else:
                raise BenchError(f"test bed: {name} did not boot (systemd is {state!r})")
            podman("exec", name, "sh", "-c", f"mkdir -p {TESTBED_SAVED} && cp -a /etc/containerd {TESTBED_SAVED}/",
                   env=env)
        log(f"test bed: {nodes} nodes from {image}")
        for repeat in range(repeats):
            order = SIDES if repeat % 2 == 0 else SIDES[::-1]
            trees = {}
            for side in order:
                # Back to the pristine node: no certs.d, no CA, config.toml as shipped, agents running.
                subprocess.run(["bash", str(ROOT / "testbed" / "registry.sh"), "start"], check=True, env=env,
                               stdout=subprocess.DEVNULL)
                for name in names:
                    podman("exec", name, "sh", "-c",
                           f"rm -rf /etc/containerd && cp -a {TESTBED_SAVED}/containerd /etc/containerd"
                           " && rm -f /var/lib/kubenode-registry-mirror.restart-pending"
                           " && systemctl start pf9-hostagent pf9-nodeletd", env=env)
                for phase in PHASES:
                    label = f"testbed-r{repeat}-{side}-{phase}"
                    wall, document = runner.run(label, PLAYBOOKS[side], inventory, *extra[side])
                    check_run(label, side, phase, document, names,
                              first_changes=("ca", "certs.d", "config.toml"), first_restart="pmk")
                    records.append({"where": "testbed", "n": nodes, "repeat": repeat, "side": side, "phase": phase,
                                    **summarise(document, wall)})
                    log(f"{label}: {wall:.2f} s")
                trees[side] = {name: node_tree(name, env) for name in names}
            for name in names:
                compare_trees(f"testbed-r{repeat} {name}", trees["ours"][name], trees["baseline"][name], expected)
            log(f"testbed-r{repeat}: both sides wrote identical hosts.toml files on all {nodes} nodes")
    finally:
        for name in names:
            podman("rm", "-f", "-t", "0", name, check=False, env=env)
        shutil.rmtree(scratch, ignore_errors=True)
    return records


# ---------------------------------------------------------------- report


def machine():
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    version = subprocess.run([str(ANSIBLE_PLAYBOOK), "--version"], capture_output=True, text=True, check=True)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "ansible_core": version.stdout.split("\n", 1)[0].split("core ", 1)[-1].strip(" ]"),
        "load_start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def medians(records, where):
    """{(n, side, phase): (median, min, max, runs)} of wall times."""
    walls = collections.defaultdict(list)
    for record in records:
        if record["where"] == where:
            walls[record["n"], record["side"], record["phase"]].append(record["wall"])
    return {key: (statistics.median(values), min(values), max(values), len(values)) for key, values in walls.items()}


def tasks_per_host(records, where, n, side):
    """'ran of listed (loop items)' for the first apply, and for the re-run when it differs."""
    texts = []
    for phase in PHASES:
        counts = next(r["per_host"] for r in records
                      if (r["where"], r["n"], r["side"], r["phase"]) == (where, n, side, phase))
        text = f"{counts['ran']} of {counts['listed']}"
        text += f" ({counts['items']} loop items)" if counts["items"] else ""
        if not texts or text != texts[0]:
            texts.append(text if not texts else f"re-run {text}")
    return "; ".join(texts)


def results_table(records, where):
    times = medians(records, where)
    sizes = sorted({key[0] for key in times})
    lines = [
        "| N | tasks/host ours (ran of listed) | tasks/host baseline | first apply ours (s) | "
        "first apply baseline (s) | ratio | re-run ours (s) | re-run baseline (s) | ratio |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        cells = [str(n), tasks_per_host(records, where, n, "ours"), tasks_per_host(records, where, n, "baseline")]
        for phase in PHASES:
            ours, baseline = times[n, "ours", phase], times[n, "baseline", phase]
            cells += [f"{ours[0]:.2f}", f"{baseline[0]:.2f}", f"{ours[0] / baseline[0]:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    runs = sorted({(key[0], value[3]) for key, value in times.items()})
    return "\n".join(lines), ", ".join(f"N={n}: {count}" for n, count in runs)


SKIPPED_ROW = "tasks skipped on every host (when: false), together"
OVERHEAD_ROWS = (
    "between tasks (strategy, includes, play starts)",
    "process start, inventory, exit (wall - playbook span)",
    "**total (wall)**",
)


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


def profile_table(records, where, n):
    """Per-task median durations (seconds, whole fleet) of both sides at size n."""
    lines = ["| side | task | first apply (s) | re-run (s) |", "|---|---|---:|---:|"]
    for side in SIDES:
        rows = {}  # row name -> {phase: [(seconds, count) per run]}
        for phase in PHASES:  # tasks in the order they run; those of the first apply first
            for record in records:
                if (record["where"], record["n"], record["side"], record["phase"]) == (where, n, side, phase):
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
            lines.append(f"| {side} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = medians(records, "local")
    sizes = sorted({key[0] for key in times})
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    styles = {("ours", "first"): ("tab:blue", "o", "-"), ("ours", "rerun"): ("tab:blue", "s", "--"),
              ("baseline", "first"): ("tab:red", "o", "-"), ("baseline", "rerun"): ("tab:red", "s", "--")}
    for (side, phase), (color, marker, line) in styles.items():
        values = [times[n, side, phase] for n in sizes]
        medians_ = [v[0] for v in values]
        errors = [[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]]
        axes.errorbar(sizes, medians_, yerr=errors, color=color, marker=marker, linestyle=line, capsize=3,
                      label=f"{'ours (configure-mirror.yml)' if side == 'ours' else 'baseline (template loop)'}, "
                            f"{PHASE_TITLES[phase]}")
    axes.set_xlabel("hosts (N)")
    axes.set_ylabel("wall time, median (s)")
    axes.set_title("Fleet-scale cost: configure-mirror.yml vs template loop")
    axes.set_xticks(sizes)
    axes.set_xlim(0, max(sizes) * 1.05)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def command_line(args):
    """The command that reproduces this run, for the report."""
    return (f"python bench/bench.py --sizes {','.join(map(str, args.sizes))} --repeats {args.repeats}"
            f" --large-repeats {args.large_repeats} --forks {args.forks}"
            + (f" --testbed --testbed-nodes {args.testbed_nodes}" if args.testbed else ""))


def write_report(path, results, plot_name):
    """Write benchmarks.md from a results document (what main saves as raw JSON)."""
    records, info, forks = results["runs"], results["machine"], results["forks"]
    table, runs = results_table(records, "local")
    times = medians(records, "local")
    small = sorted({n for n, _side, _phase in times if n <= 50}) or sorted({key[0] for key in times})
    profile_n = small[-1]  # 50, the target size, when measured
    testbed_nodes = next((r["n"] for r in records if r["where"] == "testbed"), None)
    lines = [
        "# Benchmark: fleet-scale cost against the template-loop way",
        "",
        f"Generated by `{results['command']}` (see the docstring of [bench/bench.py](../bench/bench.py) for what "
        "it measures and how).",
        "",
        "- **ours**: `playbooks/configure-mirror.yml`, the role `containerd_mirror` with "
        "`self_signed_certs=true` (CA given as a path on the node), `restart_strategy=none`, `preflight=false`, "
        "`manage_config=false`, against a fake mirror (never contacted).",
        "- **baseline**: [bench/baseline/playbook.yml](../bench/baseline/playbook.yml), the common way (as Kubespray "
        "does): one `ansible.builtin.file` task and one `ansible.builtin.template` task, each looped over the six "
        "registry directories. It only writes the files: no validation, no CA check, no report.",
        f"- N hosts on this machine (`ansible_connection=local`), `--forks {forks}` and "
        "`-e containerd_mirror_serial=N` for both, the same inventory and ansible.cfg, no fact gathering, "
        "the `ansible.posix.json` callback; each run is a whole `ansible-playbook` process (wall clock). "
        "The sides alternate run by run; times are medians of the repeats "
        f"({runs} runs per cell), first apply on empty directories, re-run on the result.",
        "- Checked on every run (the benchmark fails otherwise): both sides wrote byte-identical trees (paths, "
        "modes, contents) on every host; our re-run has changed=0 on every host and our report says "
        "`restarted: none`; the baseline's re-run has changed=0.",
        "",
        "## Machine",
        "",
        "| date | nproc | memory | CPU | Python | ansible-core | load average (1, 5, 15 min) at start / end | "
        "1-min load when each run started: median (max), mostly the benchmark's own forks |",
        "|---|---:|---|---|---|---|---|---|",
        f"| {info['date']} | {info['nproc']} | {info['memory']} | {info['cpu']} | {info['python']} | "
        f"{info['ansible_core']} | {info['load_start']} / {info['load_end']} | {info['load_runs']} |",
        "",
        "## Results",
        "",
        table,
        "",
        "Tasks per host: the tasks that ran (not skipped) of those listed for a host in the json callback's "
        "results (`run_once` tasks, listed for the first host only, are not counted); a loop item is one module "
        "run on the node.",
        "",
    ]
    target_n = 50 if any(key[0] == 50 for key in times) else None
    if target_n:
        ratios = {phase: times[50, "ours", phase][0] / times[50, "baseline", phase][0] for phase in PHASES}
        met = all(ratio <= 0.5 for ratio in ratios.values())
        lines += [
            f"**Target (issue): at N=50, ours at most 0.5x the baseline on the first apply and on the re-run: "
            f"{'met' if met else 'NOT met'}** (first apply {ratios['first']:.2f}x, re-run {ratios['rerun']:.2f}x).",
            "",
        ]
    if plot_name:
        lines += [f"![wall time against N, four series]({plot_name})", ""]
    lines += [
        f"## Where the time goes (N={profile_n})",
        "",
        "Median per-task wall time over the whole fleet (one task runs on all hosts at once, with the forks), "
        "from the json callback's task durations (the numbers `ansible.posix.profile_tasks` prints).",
        "",
        profile_table(records, "local", profile_n),
        "",
    ]
    if testbed_nodes:
        table, runs = results_table(records, "testbed")
        lines += [
            "## Test bed: real nodes",
            "",
            f"{testbed_nodes} podman nodes (systemd, containerd 1.6, PMK agent stand-ins; testbed/README.md), "
            "`ansible_connection=containers.podman.podman`. **ours** is the real job: "
            "`-e @examples/cluster.json` (the CA fetched from a URL into certs.d, containerd's config.toml managed, "
            "`restart_strategy=pmk`: the PMK agents restarted in order on the first apply), with the playbook's "
            "default `serial: 1` (one node at a time) for both sides. The **baseline** writes only the same "
            "hosts.toml files (checked identical) and does nothing else, so it does less work than ours here. "
            f"Runs per cell: {runs}. Each first apply starts from the node as shipped.",
            "",
            table,
            "",
            f"Where the time goes on the test bed ({testbed_nodes} nodes, each task summed over the serial "
            "batches):",
            "",
            profile_table(records, "testbed", testbed_nodes),
            "",
        ]
    # Hand-written notes after NOTES_MARK in the existing report are kept.
    notes = path.read_text().partition(NOTES_MARK)[2] if path.exists() else ""
    lines += [NOTES_MARK + notes] if notes.strip() else []
    path.write_text("\n".join(lines) + ("" if notes.strip() else "\n"))


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",") if n],
                        help="fleet sizes N, comma separated (default 10,50,200; with --smoke 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell for N <= 50 (default 3)")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs per cell for N > 50 (default 1)")
    parser.add_argument("--forks", type=int, default=10, help="ansible forks, the same for both sides (default 10)")
    parser.add_argument("--out", type=Path, help="where benchmarks.md and benchmarks.png go (default docs/)")
    parser.add_argument("--results", type=Path, help="raw results and failed runs' output (default bench/results/)")
    parser.add_argument("--no-plot", action="store_true", help="do not write benchmarks.png")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check that everything works: N=3, 1 repeat, output into --out "
                             "(default: a new temporary directory, never docs/)")
    parser.add_argument("--testbed", action="store_true", help="also time real test-bed nodes (root, podman)")
    parser.add_argument("--testbed-nodes", type=int, default=3, choices=(2, 3, 4), help="test-bed nodes (default 3)")
    parser.add_argument("--report-from", type=Path, metavar="RESULTS_JSON",
                        help="run nothing: write the report and plot into --out from a saved raw results file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = args.sizes or [3]
        args.repeats = args.large_repeats = 1
        args.out = args.out or Path(tempfile.mkdtemp(prefix="kubenode-bench-smoke-"))
    args.sizes = args.sizes if args.sizes is not None else [10, 50, 200]
    args.out = args.out or ROOT / "docs"
    args.results = args.results or (args.out if args.smoke else ROOT / "bench" / "results")
    if not args.sizes or min(args.sizes) < 1 or args.repeats < 1 or args.large_repeats < 1 or args.forks < 1:
        parser.error("sizes, repeats and forks must be positive")
    return args


def publish(results, out, plot_file=True):
    """Write benchmarks.md (and benchmarks.png) into out; return the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    plot_name = None
    if plot_file:
        plot_name = "benchmarks.png"
        plot(results["runs"], out / plot_name)
    report = out / "benchmarks.md"
    write_report(report, results, plot_name)
    print(report.read_text().split("## Results\n\n", 1)[1].split("\n## ", 1)[0])
    return report


def main(argv=None):
    args = parse_args(argv)
    if args.report_from:
        report = publish(json.loads(args.report_from.read_text()), args.out, not args.no_plot)
        print(f"wrote {report} from {args.report_from}")
        return
    if not ANSIBLE_PLAYBOOK.exists():
        sys.exit(f"{ANSIBLE_PLAYBOOK} not found: run with the virtual environment's Python (source scripts/venv.sh)")
    if not (ROOT / ".cache/collections/ansible_collections/kubenode/registry_mirror").exists() \
            and "ANSIBLE_COLLECTIONS_PATH" not in os.environ:
        sys.exit("the collection is not linked into .cache/collections: source scripts/venv.sh first")

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    info = machine()
    log(f"load average at start: {info['load_start']} on {info['nproc']} CPUs")
    runner = Runner(args.forks, args.results)
    scratch = Path(tempfile.mkdtemp(prefix="kubenode-bench-"))
    records = []
    try:
        records += bench_fleet(runner, args.sizes, lambda n: args.repeats if n <= 50 else args.large_repeats,
                               scratch, log, warm_up=not args.smoke)
        if args.testbed:
            records += bench_testbed(runner, args.testbed_nodes, args.repeats, log)
    except BenchError as error:
        sys.exit(f"BENCHMARK FAILED: {error}")
    finally:
        runner.close()
        shutil.rmtree(scratch, ignore_errors=True)
    info["load_end"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    info["load_runs"] = f"{statistics.median(runner.loads):.1f} (max {max(runner.loads):.1f})"

    # Every check passed if we got here: files identical, re-runs unchanged, no restarts.
    results = {"command": command_line(args), "forks": args.forks, "machine": info, "files_identical": True,
               "runs": records}
    args.results.mkdir(parents=True, exist_ok=True)
    raw = args.results / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.write_text(json.dumps(results, indent=1))
    report = publish(results, args.out, not args.no_plot)
    log(f"wrote {report}; raw results in {raw}")


if __name__ == "__main__":
    main()
