"""The containerd_config action plugin and module, run for real through ansible-playbook."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures" / "containerd_config"
CRI = "io.containerd.grpc.v1.cri"
MODULE = "kubenode.registry_mirror.containerd_config"


def config_task(name, path, **options):
    return {"name": name, MODULE: {"path": str(path), **options}}


def placed(tmp_path, fixture, mode=0o640, name="config.toml"):
    path = tmp_path / name
    path.write_bytes((FIXTURES / fixture).read_bytes())
    path.chmod(mode)
    return path


def snapshot(path):
    """Everything about a file a no-op must leave alone."""
    info = path.stat()
    return path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_ino


def test_sets_config_path_then_changes_nothing_keeping_mode_bytes_and_a_backup(run_playbook, tmp_path):
    path = placed(tmp_path, "containerd-1.6-default.toml", mode=0o640)
    original = path.read_text()
    certs = str(tmp_path / "certs.d")
    run = run_playbook(
        [
            config_task("first", path, config_path=certs, backup=True),
            config_task("second", path, config_path=certs, backup=True),
        ]
    )
    assert run.rc == 0, run.stdout + run.stderr
    first, second = run.task_results("first"), run.task_results("second")

    assert first["changed"] is True
    assert first["section"] == f'plugins."{CRI}".registry'
    assert first["containerd_major"] == 1
    assert first["previous_config_path"] == ""
    assert first["config_path"] == certs
    # exactly the one line differs, in place
    assert original.count('      config_path = ""\n') == 1
    assert path.read_text() == original.replace('      config_path = ""\n', f'      config_path = "{certs}"\n')
    assert tomllib.loads(path.read_text())["plugins"][CRI]["registry"]["config_path"] == certs
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert Path(first["backup_file"]).read_text() == original

    assert second["changed"] is False
    assert second["previous_config_path"] == certs
    assert "backup_file" not in second
    assert sorted(p.name for p in tmp_path.glob("config.toml*")) == ["config.toml", Path(first["backup_file"]).name]


def test_check_mode_writes_nothing_and_diff_shows_the_change(run_playbook, tmp_path):
    path = placed(tmp_path, "v2-comments.toml", mode=0o600)
    missing = tmp_path / "absent-dir" / "config.toml"
    before = snapshot(path)
    run = run_playbook(
        [config_task("existing", path), config_task("missing", missing, version=3)], check=True, diff=True
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert snapshot(path) == before
    assert not missing.parent.exists()

    existing = run.task_results("existing")
    assert existing["changed"] is True
    assert existing["previous_config_path"] == "/etc/docker/certs.d"
    diff = existing["diff"][0]  # then one per migrated hosts.toml (the file's configs auth)
    assert diff["before_header"] == diff["after_header"] == str(path)
    assert diff["before"] == path.read_text().replace('password = "not-a-secret"', 'password = "********"')
    after = tomllib.loads(diff["after"])
    assert after["plugins"][CRI]["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert '      config_path = "/etc/containerd/certs.d"   # set by the image build\n' in diff["after"]

    created = run.task_results("missing")
    assert created["changed"] is True
    assert created["containerd_major"] == 2
    assert created["diff"][0]["before"] == ""
    assert tomllib.loads(created["diff"][0]["after"]) == {
        "version": 3,
        "plugins": {"io.containerd.cri.v1.images": {"registry": {"config_path": "/etc/containerd/certs.d"}}},
    }


def test_diff_is_printed_by_the_default_callback(run_playbook, tmp_path):
    path = placed(tmp_path, "v1-comments.toml")
    run = run_playbook([config_task("diff", path, config_path="/srv/certs.d")], diff=True, json_output=False)
    assert run.rc == 0, run.stdout + run.stderr
    assert f"--- before: {path}" in run.stdout
    assert f"+++ after: {path}" in run.stdout
    assert '+[plugins.cri.registry]\n+  config_path = "/srv/certs.d"\n' in run.stdout


def test_a_symlinked_file_is_updated_through_its_link(run_playbook, tmp_path):
    target = placed(tmp_path, "debian-1.6-package.toml", mode=0o600, name="real.toml")
    link = tmp_path / "config.toml"
    link.symlink_to(target)
    run = run_playbook([config_task("link", link, backup=True)])
    assert run.rc == 0, run.stdout + run.stderr
    assert link.is_symlink() and link.resolve() == target
    assert tomllib.loads(target.read_text())["plugins"][CRI]["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (
        Path(run.task_results("link")["backup_file"]).read_bytes()
        == (FIXTURES / "debian-1.6-package.toml").read_bytes()
    )


def test_missing_files_are_created_minimal_and_world_readable(run_playbook, tmp_path):
    v2, v3 = tmp_path / "one" / "config.toml", tmp_path / "two" / "config.toml"
    run = run_playbook([config_task("v2", v2), config_task("v3", v3, version=3)])
    assert run.rc == 0, run.stdout + run.stderr
    assert tomllib.loads(v2.read_text()) == {
        "version": 2,
        "plugins": {CRI: {"registry": {"config_path": "/etc/containerd/certs.d"}}},
    }
    assert tomllib.loads(v3.read_text()) == {
        "version": 3,
        "plugins": {"io.containerd.cri.v1.images": {"registry": {"config_path": "/etc/containerd/certs.d"}}},
    }
    for path in (v2, v3):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert path.stat().st_uid == os.geteuid()
    assert run.task_results("v2")["section"] == f'plugins."{CRI}".registry'
    assert run.task_results("v3")["section"] == 'plugins."io.containerd.cri.v1.images".registry'
    assert run.task_results("v3")["previous_config_path"] is None


def test_refusals_fail_clearly_and_leave_the_files_untouched(run_playbook, tmp_path):
    mirrors = placed(tmp_path, "v2-legacy-mirrors.toml", name="mirrors.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry\n  config_path = ""\n')
    before = {path: snapshot(path) for path in (mirrors, broken)}
    run = run_playbook(
        [
            {**config_task("mirrors", mirrors, backup=True, legacy_mirrors="refuse"), "ignore_errors": True},
            {**config_task("broken", broken, backup=True), "ignore_errors": True},
        ]
    )
    assert run.rc == 0, run.stdout + run.stderr  # both failures ignored, so the play goes on
    assert {path: snapshot(path) for path in (mirrors, broken)} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".yml") == [
        "broken.toml",
        "mirrors.toml",
    ]

    refused = run.task_results("mirrors")
    assert refused["failed"] is True
    message = refused["msg"]
    assert message.startswith(f'plugins."{CRI}".registry.mirrors: sets mirrors for docker.io')
    assert "`mirrors` cannot be set when `config_path` is provided" in message
    assert "/etc/containerd/certs.d/<registry>/hosts.toml" in message

    invalid = run.task_results("broken")
    assert invalid["failed"] is True
    assert invalid["msg"].startswith(f"{broken}: is not valid TOML")


def test_absent_removes_only_our_value(run_playbook, tmp_path):
    ours = placed(tmp_path, "containerd-1.6-default.toml", name="ours.toml")
    theirs = placed(tmp_path, "v2-comments.toml", name="theirs.toml")
    original = ours.read_text()
    untouched = snapshot(theirs)
    run = run_playbook(
        [
            config_task("set", ours),
            config_task("unset", ours, state="absent"),
            config_task("unset again", ours, state="absent"),
            config_task("not ours", theirs, state="absent"),
        ]
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert [run.task_results(name)["changed"] for name in ("set", "unset", "unset again", "not ours")] == [
        True,
        True,
        False,
        False,
    ]
    assert ours.read_text() == original.replace('      config_path = ""\n', "", 1)
    assert "config_path" not in tomllib.loads(ours.read_text())["plugins"][CRI]["registry"]
    assert snapshot(theirs) == untouched
    assert run.task_results("not ours")["previous_config_path"] == "/etc/docker/certs.d"


def run_module(tmp_path, args):
    """Run the module on its own, as a node would, with the given parameters."""
    collections = os.environ["ANSIBLE_COLLECTIONS_PATH"]
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansible_collections.kubenode.registry_mirror.plugins.modules.containerd_config",
            str(args_file),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=collections),
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    return json.loads(done.stdout)


def test_module_writes_nothing_when_the_file_changed_since_it_was_read(tmp_path):
    path = placed(tmp_path, "v1-comments.toml")
    before = snapshot(path)
    stale = hashlib.sha256(b"what the controller read earlier").hexdigest()
    result = run_module(tmp_path, {"path": str(path), "_content": "version = 2\n", "_read_sha256": stale})
    assert result["failed"] is True
    assert result["msg"].startswith(f"{path}: changed on the node since it was read")
    assert snapshot(path) == before


def test_module_refuses_to_run_without_its_action(tmp_path):
    result = run_module(tmp_path, {"path": str(tmp_path / "config.toml")})
    assert result["failed"] is True
    assert "action plugin" in result["msg"]
    assert not (tmp_path / "config.toml").exists()
