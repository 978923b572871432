# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transient systemd unit that runs node_restart's sequence on the node, on its own.

Pure Python with no Ansible imports. UNIT_PROGRAM is the program the unit runs
(`python3 -c UNIT_PROGRAM ARGUMENTS`): self-contained, since the module's files
are gone once the module ends, and the unit must outlive the module. It records
each step in the pending-restart marker (the module reads it back), moves the
marker to stage "health" once the stack is seen stopped (the rule of
_restart_lock.stack_stopped), and in its `finally` starts again what the
sequence stopped. unit_command() gives the `systemd-run` command line: the
unit's ExecStopPost starts the same again when the program is killed, and
RuntimeMaxSec bounds the unit's life.
"""

from __future__ import annotations

import json

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _restart_lock as lock

UNIT_PROGRAM = r'''
import json
import os
import shlex
import signal
import subprocess
import sys
import time

ARGS = json.loads(sys.argv[1])
MARKER = ARGS["marker"]
SYSTEMCTL = ARGS["systemctl"]
RUNNING = ("active", "activating", "deactivating", "reloading")
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(Exception):
    pass


def on_signal(signum, _frame):
    raise Stopped(signal.Signals(signum).name)


def load():
    try:
        with open(MARKER, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        document = None
    return document if isinstance(document, dict) else {}


def save(document):
    temporary = MARKER + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, MARKER)


def kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    process.wait()


def run(document, argv, timeout, restore=False):
    """Run one step in its own process group; record it (command, rc, seconds) in the marker."""
    entry = {"step": shlex.join(argv), "started_at": time.time()}
    if restore:
        entry["restore"] = True
    started = time.monotonic()
    out = err = ""
    process = None
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
            rc = process.returncode
        except subprocess.TimeoutExpired:
            kill(process)
            rc, err = 124, "timed out after %d s" % timeout
    except OSError as exc:
        rc, err = 127, str(exc)
    except Stopped as exc:
        if process is not None:
            kill(process)
        entry.update(rc=-1, seconds=round(time.monotonic() - started, 1), stderr="interrupted (%s)" % exc)
        document["steps"].append(entry)
        save(document)
        raise
    entry.update(rc=rc, seconds=round(time.monotonic() - started, 1))
    if rc != 0:
        entry["stderr"] = (err or "").strip()[-2000:]
    document["steps"].append(entry)
    save(document)
    return rc, out or ""


def sequence(document):
    """The restart sequence; returns whether it did its job (the stack stopped, or containerd restarted)."""
    if ARGS["strategy"] != "pmk":
        return run(document, [SYSTEMCTL, "restart", "containerd"], ARGS["restart_timeout"])[0] == 0
    for unit in ("pf9-hostagent", "pf9-nodeletd"):
        if run(document, [SYSTEMCTL, "stop", unit], ARGS["agent_stop_timeout"])[0] != 0:
            return False
    # As the seed does: su needs no become to pf9.
    command = shlex.join([ARGS["nodeletd"], "phases", "stop"])
    rc, out = run(document, [ARGS["su"], ARGS["pmk_user"], "-s", "/bin/bash", "-c", command],
                  ARGS["phases_stop_timeout"])
    document["phases_stop_output"] = out.strip()[-4000:]
    if rc != 0:
        save(document)
        return False
    # phases stop exits 0 even when a phase failed: only a stopped containerd says the stack stopped.
    try:
        state = subprocess.run([SYSTEMCTL, "is-active", "containerd"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        state = "unknown (%s)" % exc
    document["containerd_after_stop"] = state
    save(document)
    return state not in RUNNING


def main():
    for signum in SIGNALS:
        signal.signal(signum, on_signal)
    document = load()
    document.update(steps=[], unit_started_at=time.time(), unit_pid=os.getpid(), stage="sequence")
    for name in ("ended_at", "stopped_by", "containerd_after_stop", "phases_stop_output"):
        document.pop(name, None)
    done = False
    try:
        save(document)
        done = sequence(document)
        if done:
            document["stage"] = "health"
            save(document)
    except Stopped as exc:
        document["stopped_by"] = str(exc)
    finally:
        # Whatever happened: bring the node back. (The unit's ExecStopPost does too, should this not run.)
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        restored = run(document, [SYSTEMCTL, "start", ARGS["restore"]], ARGS["restore_timeout"], restore=True)[0]
        document["ended_at"] = time.time()
        save(document)
    sys.exit(0 if done and restored == 0 else 1)


main()
'''


def unit_arguments(marker, strategy, pmk_user, nodeletd, systemctl="systemctl", su="su"):
    """Return the arguments UNIT_PROGRAM reads (as JSON, its one command-line argument).

    systemctl and su are found in the unit's PATH (systemd's default) unless given.
    """
    return {
        "marker": marker,
        "strategy": strategy,
        "systemctl": systemctl,
        "su": su,
        "pmk_user": pmk_user,
        "nodeletd": nodeletd,
        "restore": lock.RESTORED[strategy],
        "agent_stop_timeout": lock.AGENT_STOP_TIMEOUT,
        "phases_stop_timeout": lock.PHASES_STOP_TIMEOUT,
        "restart_timeout": lock.RESTART_TIMEOUT,
        "restore_timeout": lock.RESTORE_TIMEOUT,
    }


def unit_command(systemd_run, systemctl_path, python, arguments):
    """Return the `systemd-run` command that runs the sequence as UNIT and returns once the unit has ended.

    PID 1 owns the unit: killing systemd-run (the module, its SSH session, sudo) does not stop it.
    --collect unloads it when it ends, failed or not, so that the next run can start it again.
    """
    restored = arguments["restore"]
    return [
        systemd_run,
        f"--unit={lock.UNIT}",
        "--collect",
        "--wait",
        "--quiet",
        f"--description=kubenode.registry_mirror restart sequence ({arguments['strategy']}), "
        f"starts {restored} again at its end",
        f"--property=RuntimeMaxSec={lock.SEQUENCE_TIME_LIMIT}",
        f"--property=TimeoutStopSec={lock.STOP_GRACE}",
        # Runs even when the program was killed or never started.
        f"--property=ExecStopPost={systemctl_path} start {restored}.service",
        "--",
        python,
        "-c",
        UNIT_PROGRAM,
        json.dumps(arguments),
    ]
