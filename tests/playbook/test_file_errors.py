"""File system faults on the node (issue 10, points 8 and 9), with real files and permissions.

Each fault fails the task with a message that names the user's path and the operation, never a
temporary file or a raw "[Errno N]"; containerd_hosts reports changed as soon as a file changed,
also when it then fails, and lists what happened to each file. Permission faults need a user
without root's rights: the tasks become "nobody" (with su, as root needs no password for it).
"""

from __future__ import annotations

import os
import pwd
import stat
import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import MARKER

FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures" / "containerd_config"
MIRROR = "10.101.101.100:443"
HOSTS = "hosts"
CONFIG = "config"
# An interpreter user nobody may run: the test venv's lives under /root.
NODE_PYTHON = "/usr/bin/python3"


def _nobody_reason():
    if os.geteuid() != 0:
        return "needs root, to become nobody without a password"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "no user nobody"
    if not os.access(NODE_PYTHON, os.X_OK):
        return f"no {NODE_PYTHON} for nobody to run modules with"
    return None


needs_nobody = pytest.mark.skipif(_nobody_reason() is not None, reason=_nobody_reason() or "")
AS_NOBODY = {"become": True, "become_method": "su", "become_user": "nobody", "become_flags": "-s /bin/sh"}
NOBODY = "'nobody' (uid 65534)" if _nobody_reason() is None else None


def hosts_task(certs, **options):
    args = {"url": f"https://{MIRROR}", "registries": ["platform9.io", "docker.io", "quay.io"],
            "config_path": str(certs)}
    args.update(options)
    return {"name": HOSTS, "kubenode.registry_mirror.containerd_hosts": args}


def config_task(path, config_path, **options):
    args = {"path": str(path), "config_path": str(config_path), **options}
    return {"name": CONFIG, "kubenode.registry_mirror.containerd_config": args}


def run_as_nobody(run_playbook, task):
    return run_playbook([dict(task, **AS_NOBODY)], extra_vars={"ansible_python_interpreter": NODE_PYTHON})


def snapshot(root):
    root = Path(root)
    if not root.exists():
        return None
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, stat.S_IMODE(p.lstat().st_mode))
        for p in sorted(root.rglob("*"))
    }


def statuses(result):
    return {f["registry"]: f["status"] for f in result["files"]}


def assert_clear(msg):
    """The message of a file system fault: no temporary name, no raw errno, no traceback."""
    assert ".tmp-" not in msg
    assert "Errno" not in msg
    assert "Traceback" not in msg
    assert "MODULE FAILURE" not in msg


def root_owned_directory(path, mode=0o755):
    path.mkdir(parents=True)
    path.chmod(mode)
    return path


@pytest.fixture
def open_certs(open_dir):
    """A certs.d directory nobody may write in (the sticky bit off: renames must work)."""
    certs = open_dir / "certs.d"
    certs.mkdir()
    certs.chmod(0o777)
    return certs


# --- containerd_hosts, as root: faults found before anything is written ------------------------


def _registry_directory_is_a_file(tmp_path, certs):
    certs.mkdir()
    (certs / "quay.io").write_text("not a directory\n")
    return {}, f"cannot read {certs}/quay.io/hosts.toml: {certs}/quay.io is not a directory"


def _hosts_toml_is_a_directory(tmp_path, certs):
    (certs / "quay.io" / "hosts.toml").mkdir(parents=True)
    return {}, f"cannot read {certs}/quay.io/hosts.toml: {certs}/quay.io/hosts.toml is a directory"


def _config_path_is_a_file(tmp_path, certs):
    certs.write_text("a file\n")
    return {}, f"cannot read {certs}/{MIRROR}/hosts.toml: {certs} is not a directory"


def _name_too_long(tmp_path, certs):
    long_name = tmp_path / ("x" * 300)
    return {"config_path": str(long_name)}, f"cannot read {long_name}/{MIRROR}/hosts.toml: file name too long"


def _unknown_owner(tmp_path, certs):
    return ({"owner": "no-such-kubenode-user"},
            f"cannot chown {certs}/*/hosts.toml: owner: user 'no-such-kubenode-user' does not exist on this node")


def _unknown_group(tmp_path, certs):
    return ({"group": "no-such-kubenode-group"},
            f"cannot chgrp {certs}/*/hosts.toml: group: group 'no-such-kubenode-group' does not exist on this node")


@pytest.mark.parametrize(
    "fault",
    [_registry_directory_is_a_file, _hosts_toml_is_a_directory, _config_path_is_a_file, _name_too_long,
     _unknown_owner, _unknown_group],
    ids=lambda fault: fault.__name__.strip("_"),
)
def test_a_fault_found_before_writing_names_the_path_and_writes_nothing(run_playbook, tmp_path, fault):
    node = tmp_path / "node"
    node.mkdir()
    certs = node / "certs.d"
    options, message = fault(node, certs)
    before = snapshot(node)
    run = run_playbook([hosts_task(certs, **options)])
    assert run.rc != 0
    result = run.task_results(HOSTS)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"].startswith("Nothing was written. " + message), result["msg"]
    assert_clear(result["msg"])
    assert snapshot(node) == before


def test_a_registry_directory_that_is_a_file_is_no_fault_on_absent(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    certs.mkdir()
    (certs / "quay.io").write_text("not a directory\n")
    result = run_playbook([hosts_task(certs, state="absent")]).task_results(HOSTS)
    assert result.get("failed") is not True, result["msg"]
    assert statuses(result)["quay.io"] == "unchanged"


# --- containerd_hosts, as nobody: faults while writing ------------------------------------------


@needs_nobody
def test_a_failure_after_some_files_reports_changed_and_what_happened_to_each(run_playbook, open_certs):
    root_owned_directory(open_certs / "docker.io")
    run = run_as_nobody(run_playbook, hosts_task(open_certs))
    assert run.rc != 0
    result = run.task_results(HOSTS)
    assert result["failed"] is True
    assert result["changed"] is True  # two files were written before the failure
    assert statuses(result) == {MIRROR: "created", "platform9.io": "created", "docker.io": "failed",
                                "quay.io": "skipped"}
    failed = {f["registry"]: f for f in result["files"]}["docker.io"]
    expected = (f"cannot write {open_certs}/docker.io/hosts.toml: permission denied for {NOBODY} "
                f"in {open_certs}/docker.io")
    assert failed["msg"] == expected
    assert result["msg"].startswith(expected + ".")
    assert f"Done before the failure: {MIRROR} created, platform9.io created." in result["msg"]
    assert "Not attempted: quay.io." in result["msg"]
    assert_clear(result["msg"])
    for registry in (MIRROR, "platform9.io"):
        written = open_certs / registry / "hosts.toml"
        assert written.read_text().startswith(MARKER)
        assert written.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert list((open_certs / "docker.io").iterdir()) == []  # no temporary file left behind
    assert not (open_certs / "quay.io").exists()


@needs_nobody
def test_a_directory_that_cannot_be_created_is_named(run_playbook, open_certs):
    closed = root_owned_directory(open_certs / "closed")
    certs = closed / "certs.d"
    run = run_as_nobody(run_playbook, hosts_task(certs))
    result = run.task_results(HOSTS)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"].startswith(f"cannot create directory {certs}: permission denied for {NOBODY} in {closed}.")
    assert "Nothing else was done before it." in result["msg"]
    assert "Nothing on the node changed." in result["msg"]
    assert_clear(result["msg"])


@needs_nobody
def test_a_foreign_file_that_cannot_be_kept_aside_is_named_and_stays(run_playbook, open_certs):
    docker = root_owned_directory(open_certs / "docker.io")
    theirs = docker / "hosts.toml"
    theirs.write_text('server = "https://registry-1.docker.io"\n')
    theirs.chmod(0o644)
    run = run_as_nobody(run_playbook, hosts_task(open_certs, registries=["docker.io"]))
    result = run.task_results(HOSTS)
    assert result["failed"] is True
    assert result["changed"] is True  # the mirror's own directory was written first
    assert statuses(result) == {MIRROR: "created", "docker.io": "failed"}
    assert result["msg"].startswith(
        f"cannot rename {theirs} to {theirs}.before-kubenode: permission denied for {NOBODY} in {docker}."
    )
    assert_clear(result["msg"])
    assert theirs.read_text() == 'server = "https://registry-1.docker.io"\n'


@needs_nobody
def test_state_absent_names_the_file_it_cannot_remove(run_playbook, open_certs):
    # as root, readable by nobody, in directories nobody may not write in
    assert run_playbook([hosts_task(open_certs, registries=["docker.io"], mode="0644")]).rc == 0
    result = run_as_nobody(run_playbook, hosts_task(open_certs, registries=["docker.io"], state="absent"))
    result = result.task_results(HOSTS)
    assert result["failed"] is True
    assert result["changed"] is False
    assert statuses(result) == {MIRROR: "failed", "docker.io": "skipped"}
    path = open_certs / MIRROR / "hosts.toml"
    assert result["msg"].startswith(f"cannot remove {path}: permission denied for {NOBODY} in {path.parent}.")
    assert path.exists()


# --- containerd_config ---------------------------------------------------------------------------


def placed(directory, fixture, mode=0o644):
    path = directory / "config.toml"
    path.write_bytes((FIXTURES / fixture).read_bytes())
    path.chmod(mode)
    return path


def test_config_under_a_file_is_named(run_playbook, tmp_path):
    blocker = tmp_path / "etc"
    blocker.write_text("a file\n")
    result = run_playbook([config_task(blocker / "config.toml", tmp_path / "certs.d")]).task_results(CONFIG)
    assert result["failed"] is True
    assert result["msg"] == (f"cannot read {blocker}/config.toml: a component of the path is not a directory; "
                             "nothing was written")


def test_config_that_is_a_directory_is_named(run_playbook, tmp_path):
    path = tmp_path / "config.toml"
    path.mkdir()
    result = run_playbook([config_task(path, tmp_path / "certs.d")]).task_results(CONFIG)
    assert result["failed"] is True
    assert result["msg"] == f"cannot read {path}: {path} is a directory; nothing was written"


def test_migrated_hosts_toml_under_a_file_is_named_and_nothing_is_written(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    original = path.read_bytes()
    blocker = tmp_path / "certs"
    blocker.write_text("a file\n")
    certs = blocker / "certs.d"
    result = run_playbook([config_task(path, certs)]).task_results(CONFIG)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"].startswith(f"cannot read {certs}/")
    assert f"{blocker} is not a directory; nothing was written" in result["msg"]
    assert_clear(result["msg"])
    assert path.read_bytes() == original


@needs_nobody
def test_config_toml_that_cannot_be_written_is_named(run_playbook, open_dir):
    etc = root_owned_directory(open_dir / "etc")
    path = placed(etc, "containerd-1.6-default.toml")
    original = path.read_bytes()
    result = run_as_nobody(run_playbook, config_task(path, "/etc/containerd/certs.d")).task_results(CONFIG)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == f"cannot write {path}: permission denied for {NOBODY} in {etc}. Nothing was written."
    assert path.read_bytes() == original


@needs_nobody
def test_config_failure_after_the_migrated_files_reports_changed_and_names_them(run_playbook, open_dir, open_certs):
    etc = root_owned_directory(open_dir / "etc")
    path = placed(etc, "pmk-stock.toml")
    original = path.read_bytes()
    result = run_as_nobody(run_playbook, config_task(path, open_certs)).task_results(CONFIG)
    assert result["failed"] is True
    assert result["changed"] is True  # the migrated hosts.toml files were written first
    # the backup of config.toml is the first thing nobody may not write in etc
    assert result["msg"].startswith(f"cannot back up {path}: permission denied for {NOBODY} in {etc}.")
    written = sorted(open_certs.glob("*/hosts.toml"))
    assert written
    for hosts in written:
        assert str(hosts) in result["msg"]
        assert tomllib.loads(hosts.read_text())
    assert_clear(result["msg"])
    assert path.read_bytes() == original
