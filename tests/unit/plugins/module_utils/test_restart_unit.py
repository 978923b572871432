"""The restart unit's program, run as systemd would run it, against fake systemctl and su: whatever happens to
the sequence, it starts the agent again and records what it did in the marker; and its systemd-run command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _restart_lock as lock
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _restart_unit as unit

FAKE_SYSTEMCTL = """#!/bin/bash
echo "systemctl $*" >> "$FAKE/log"
if [[ $1 == is-active ]]; then cat "$FAKE/containerd-state" 2>/dev/null || echo inactive; exit 0; fi
if [[ -f $FAKE/rc-$1-$2 ]]; then echo "cannot $1 $2" >&2; exit "$(cat "$FAKE/rc-$1-$2")"; fi
exit 0
"""
FAKE_SU = """#!/bin/bash
echo "su $*" >> "$FAKE/log"
echo $$ > "$FAKE/su.pid"
[[ -f $FAKE/su-sleep ]] && sleep "$(cat "$FAKE/su-sleep")"
printf 'INDEX NUMBER\\tFILE\\tNAME\\tPHASE STATUS\\n3\\t-\\tDrain all pods (stop only operation)\\texecuted\\n'
"""
PHASES_STOP = "su pf9 -s /bin/bash -c '/opt/pf9/nodelet/nodeletd phases stop'"


@pytest.fixture
def fake(tmp_path):
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("su", FAKE_SU)):
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o755)
    marker = tmp_path / "marker"
    marker.write_text(json.dumps({"stage": "sequence", "restarted_at": 1.0, "run": {"taken_at": 1.0}}) + "\n")
    return tmp_path


def start(fake, strategy="pmk", **limits):
    arguments = unit.unit_arguments(str(fake / "marker"), strategy, "pf9", "/opt/pf9/nodelet/nodeletd",
                                    systemctl=str(fake / "systemctl"), su=str(fake / "su"))
    arguments.update(limits)
    return subprocess.Popen([sys.executable, "-c", unit.UNIT_PROGRAM, json.dumps(arguments)],
                            env=dict(os.environ, FAKE=str(fake)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def outcome(fake, process, timeout=30):
    process.wait(timeout=timeout)
    log = [line.replace(str(fake) + "/", "") for line in (fake / "log").read_text().splitlines()]
    return process.returncode, log, json.loads((fake / "marker").read_text())


def test_the_sequence_stops_the_stack_then_starts_pf9_hostagent(fake):
    rc, log, document = outcome(fake, start(fake))
    assert rc == 0
    # (the fake su logs its arguments unquoted)
    assert log == ["systemctl stop pf9-hostagent", "systemctl stop pf9-nodeletd",
                   "su pf9 -s /bin/bash -c /opt/pf9/nodelet/nodeletd phases stop", "systemctl is-active containerd",
                   "systemctl start pf9-hostagent"]
    # the steps as the module returns them: the seed's commands
    assert [step["step"] for step in document["steps"]] == [
        f"{fake}/systemctl stop pf9-hostagent", f"{fake}/systemctl stop pf9-nodeletd", f"{fake}/{PHASES_STOP}",
        f"{fake}/systemctl start pf9-hostagent"]
    assert document["stage"] == "health" and document["containerd_after_stop"] == "inactive"
    assert [step["rc"] for step in document["steps"]] == [0, 0, 0, 0]
    assert document["steps"][-1]["restore"] is True and "restore" not in document["steps"][0]
    assert "Drain all pods" in document["phases_stop_output"]
    # what the module wrote before is kept: the next run names the run whose sequence this was
    assert document["run"] == {"taken_at": 1.0} and document["ended_at"] >= document["unit_started_at"]
    assert lock.stack_stopped(document, "pmk") and lock.sequence_error(document, "pmk") is None


def test_containerd_still_running_after_phases_stop_is_not_a_stopped_stack(fake):
    (fake / "containerd-state").write_text("active\n")
    rc, log, document = outcome(fake, start(fake))
    assert rc == 1
    assert log[-1] == "systemctl start pf9-hostagent"
    assert document["stage"] == "sequence" and document["containerd_after_stop"] == "active"
    assert not lock.stack_stopped(document, "pmk")
    assert "containerd is still active" in lock.sequence_error(document, "pmk")


def test_a_failed_stop_ends_the_sequence_and_still_starts_pf9_hostagent(fake):
    (fake / "rc-stop-pf9-nodeletd").write_text("5")
    rc, log, document = outcome(fake, start(fake))
    assert rc == 1
    assert log == ["systemctl stop pf9-hostagent", "systemctl stop pf9-nodeletd", "systemctl start pf9-hostagent"]
    assert document["stage"] == "sequence"
    assert document["steps"][1]["rc"] == 5 and document["steps"][1]["stderr"] == "cannot stop pf9-nodeletd"
    assert "systemctl stop pf9-nodeletd failed (rc 5): cannot stop pf9-nodeletd" in lock.sequence_error(document, "pmk")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stopped_during_the_drain_it_ends_the_drain_and_starts_pf9_hostagent(fake, signum):
    """systemd stops the unit with SIGTERM (RuntimeMaxSec, systemctl stop); its whole cgroup gets it."""
    (fake / "su-sleep").write_text("60")
    process = start(fake)
    deadline = time.monotonic() + 20
    while not (fake / "su.pid").exists():
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signum)
    rc, log, document = outcome(fake, process, timeout=20)
    assert rc == 1
    assert log[-1] == "systemctl start pf9-hostagent"
    assert document["stopped_by"] == signal.Signals(signum).name and document["stage"] == "sequence"
    assert document["steps"][2]["step"].endswith("'/opt/pf9/nodelet/nodeletd phases stop'")
    assert document["steps"][2]["rc"] == -1
    # the drain's process group is gone with it
    with pytest.raises(ProcessLookupError):
        os.kill(int((fake / "su.pid").read_text()), 0)
    assert "the restart unit was stopped" in lock.sequence_error(document, "pmk")


def test_a_drain_over_its_time_limit_is_ended_and_pf9_hostagent_started(fake):
    (fake / "su-sleep").write_text("60")
    rc, log, document = outcome(fake, start(fake, phases_stop_timeout=1))
    assert rc == 1
    assert log[-1] == "systemctl start pf9-hostagent"
    assert document["steps"][2]["rc"] == 124 and document["steps"][2]["stderr"] == "timed out after 1 s"
    assert document["steps"][2]["seconds"] < 10
    with pytest.raises(ProcessLookupError):
        os.kill(int((fake / "su.pid").read_text()), 0)


def test_the_containerd_strategy_restarts_containerd_and_starts_it_again_at_the_end(fake):
    rc, log, document = outcome(fake, start(fake, "containerd"))
    assert rc == 0
    assert log == ["systemctl restart containerd", "systemctl start containerd"]
    assert document["stage"] == "health" and lock.sequence_error(document, "containerd") is None


def test_a_failed_containerd_restart_still_starts_containerd(fake):
    (fake / "rc-restart-containerd").write_text("1")
    rc, log, document = outcome(fake, start(fake, "containerd"))
    assert rc == 1
    assert log == ["systemctl restart containerd", "systemctl start containerd"]
    assert document["stage"] == "sequence"


@pytest.mark.parametrize(("strategy", "restored"), [("pmk", "pf9-hostagent"), ("containerd", "containerd")])
def test_the_unit_command(strategy, restored):
    arguments = unit.unit_arguments("/var/lib/marker", strategy, "pf9", "/opt/pf9/nodelet/nodeletd")
    argv = unit.unit_command("/usr/bin/systemd-run", "/usr/bin/systemctl", "/usr/bin/python3", arguments)
    options = argv[1:argv.index("--")]
    assert argv[0] == "/usr/bin/systemd-run"
    assert "--unit=kubenode-registry-mirror-restart" in options
    # unloaded once ended, failed or not, so that the next run can start it again; returns when it has ended
    assert "--collect" in options and "--wait" in options
    assert f"--property=RuntimeMaxSec={lock.SEQUENCE_TIME_LIMIT}" in options
    assert f"--property=TimeoutStopSec={lock.STOP_GRACE}" in options
    # the safety net: systemd starts the agent again even when the program is killed
    assert f"--property=ExecStopPost=/usr/bin/systemctl start {restored}.service" in options
    assert argv[argv.index("--") + 1:argv.index("--") + 4] == ["/usr/bin/python3", "-c", unit.UNIT_PROGRAM]
    passed = json.loads(argv[-1])
    assert passed["restore"] == restored and passed["marker"] == "/var/lib/marker"
    assert (passed["systemctl"], passed["su"]) == ("systemctl", "su")
