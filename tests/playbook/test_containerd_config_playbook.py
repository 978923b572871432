"""The containerd_config action plugin and module, run for real through ansible-playbook."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from fakes.containerd_2x import Containerd2x
from fakes.node_programs import path_without

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import KEPT_ASIDE_SUFFIX, MARKER

FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures" / "containerd_config"
CRI = "io.containerd.grpc.v1.cri"
IMAGES = "io.containerd.cri.v1.images"
MODULE = "kubenode.registry_mirror.containerd_config"


def config_task(name, path, **options):
    return {"name": name, MODULE: {"path": str(path), **options}}


def placed(tmp_path, fixture, mode=0o640, name="config.toml"):
    path = tmp_path / name
    path.write_bytes((FIXTURES / fixture).read_bytes())
    path.chmod(mode)
    return path


def on_containerd_2x(task, tmp_path, version="2.2.0"):
    """The task run where containerd is 2.x: the host's is 1.6, which does not read a version 3 or 4 file."""
    return {**task, "environment": Containerd2x(tmp_path / f"containerd-{version}", version).environment}


def minimal(version):
    """The settings of the file created where there is none: its version and config_path, nothing else."""
    plugin = CRI if version == 2 else IMAGES
    return {"version": version, "plugins": {plugin: {"registry": {"config_path": "/etc/containerd/certs.d"}}}}


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
        [config_task("existing", path), on_containerd_2x(config_task("missing", missing, version=3), tmp_path)],
        check=True,
        diff=True,
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
    assert tomllib.loads(created["diff"][0]["after"]) == minimal(3)


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
    run = run_playbook([config_task("v2", v2), on_containerd_2x(config_task("v3", v3, version=3), tmp_path)])
    assert run.rc == 0, run.stdout + run.stderr
    assert tomllib.loads(v2.read_text()) == minimal(2)
    assert tomllib.loads(v3.read_text()) == minimal(3)
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


# Legacy registry settings: every stock PMK node ships mirrors in config.toml (pmk-node-facts.md).
STOCK = FIXTURES / "pmk-stock.toml"
STOCK_MIGRATED = {
    "platform9.io": {
        "server": "https://platform9.io",
        "host": {"https://dockermirror.platform9.io": {"capabilities": ["pull", "resolve"]}},
    },
    "docker.io": {
        "server": "https://registry-1.docker.io",
        "host": {
            "https://dockermirror.platform9.io": {"capabilities": ["pull", "resolve"]},
            "https://registry-1.docker.io": {"capabilities": ["pull", "resolve"]},
        },
    },
}
MIRRORS_SECTION = f'plugins."{CRI}".registry'


def tree(root):
    """Every file under root: relative path -> (bytes, mode)."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_the_adhoc_reproduction_now_migrates_a_stock_pmk_node(tmp_path):
    path = placed(tmp_path, "pmk-stock.toml", mode=0o644)
    certs = tmp_path / "certs.d"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}",
            "-m", MODULE,
            "-a", f"path={path} config_path={certs}",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_NOCOLOR="1"),
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CHANGED" in done.stdout
    for registry, expected in STOCK_MIGRATED.items():
        hosts = certs / registry / "hosts.toml"
        assert tomllib.loads(hosts.read_text()) == expected
        assert stat.S_IMODE(hosts.stat().st_mode) == 0o600
        assert stat.S_IMODE(hosts.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(certs.stat().st_mode) == 0o755
    data = tomllib.loads(path.read_text())
    assert data["plugins"][CRI]["registry"] == {"config_path": str(certs)}
    (backup,) = tmp_path.glob("config.toml.*~")
    assert backup.read_bytes() == STOCK.read_bytes()


def test_stock_node_migrates_once_then_changes_nothing(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml", mode=0o644)
    certs = tmp_path / "certs.d"
    run = run_playbook(
        [config_task("first", path, config_path=str(certs)), config_task("second", path, config_path=str(certs))]
    )
    assert run.rc == 0, run.stdout + run.stderr
    first, second = run.task_results("first"), run.task_results("second")

    assert first["changed"] is True
    assert first["legacy_removed"] is True
    assert first["migrated"] == [
        {
            "registry": "platform9.io",
            "path": str(certs / "platform9.io" / "hosts.toml"),
            "status": "created",
            "hosts": ["https://dockermirror.platform9.io"],
        },
        {
            "registry": "docker.io",
            "path": str(certs / "docker.io" / "hosts.toml"),
            "status": "created",
            "hosts": ["https://dockermirror.platform9.io", "https://registry-1.docker.io"],
        },
    ]
    assert first["previous_config_path"] is None
    assert first["config_path"] == str(certs)
    assert Path(first["backup_file"]).read_bytes() == STOCK.read_bytes()
    assert Path(first["backup_file"]).parent == tmp_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    written = tree(certs)
    assert sorted(written) == ["docker.io/hosts.toml", "platform9.io/hosts.toml"]
    for name, (content, mode) in written.items():
        assert mode == 0o600
        assert content.decode().startswith(
            f"# Migrated by kubenode.registry_mirror from the legacy CRI registry settings of {path} "
            f"({MIRRORS_SECTION}); state=absent keeps it.\n"
        )
        assert tomllib.loads(content.decode()) == STOCK_MIGRATED[name.split("/")[0]]

    assert second["changed"] is False
    assert second["migrated"] == []
    assert second["legacy_removed"] is False
    assert "backup_file" not in second
    assert tree(certs) == written
    assert len(list(tmp_path.glob("config.toml.*~"))) == 1


def test_check_mode_writes_nothing_but_says_what_would_move(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = tmp_path / "certs.d"
    before = snapshot(path)
    run = run_playbook([config_task("check", path, config_path=str(certs))], check=True, diff=True)
    assert run.rc == 0, run.stdout + run.stderr
    assert snapshot(path) == before
    assert not certs.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("config.toml")) == ["config.toml"]

    result = run.task_results("check")
    assert result["changed"] is True
    assert result["legacy_removed"] is True
    assert [(entry["registry"], entry["status"]) for entry in result["migrated"]] == [
        ("platform9.io", "created"),
        ("docker.io", "created"),
    ]
    assert "backup_file" not in result
    config_diff, *file_diffs = result["diff"]
    assert config_diff["before"] == STOCK.read_text()
    assert "mirrors" not in config_diff["after"]
    assert [diff["after_header"] for diff in file_diffs] == [
        str(certs / "platform9.io" / "hosts.toml"),
        str(certs / "docker.io" / "hosts.toml"),
    ]
    assert tomllib.loads(file_diffs[1]["after"]) == STOCK_MIGRATED["docker.io"]


SECRETS = (
    "s3cr3t-Pa55",
    base64.b64encode(b"robot$node:s3cr3t-Pa55").decode(),
    "Z2hjci11c2VyOmdoY3ItcGFzcw==",
    "Basic ",
)


def test_diff_at_vvv_shows_no_secret(run_playbook, tmp_path):
    path = placed(tmp_path, "v2-legacy-configs.toml")
    certs = tmp_path / "certs.d"
    run = run_playbook(
        [config_task("secrets", path, config_path=str(certs))], diff=True, verbosity=3, json_output=False
    )
    assert run.rc == 0, run.stdout + run.stderr
    output = run.stdout + run.stderr
    for secret in SECRETS:
        assert secret not in output
    assert f"--- before: {path}" in output
    assert '         password = "********"' in output  # the config.toml diff, masked where it stays
    assert f"+++ after: {certs / 'harbor.example:8443' / 'hosts.toml'}" in output
    assert "kept_existing" not in output
    # the credentials stay where containerd reads them (and sends them on to a token service, 1.6 too)
    configs = tomllib.loads(path.read_text())["plugins"][CRI]["registry"]["configs"]
    assert configs["harbor.example:8443"]["auth"]["password"] == SECRETS[0]
    assert configs["ghcr.io"]["auth"]["auth"] == SECRETS[2]
    harbor = tomllib.loads((certs / "harbor.example:8443" / "hosts.toml").read_text())
    assert "header" not in harbor and harbor["host"]["https://harbor.example:8443"]["ca"] == "/etc/pki/harbor-ca.pem"


def test_tls_settings_an_existing_hosts_toml_would_lose_fail_naming_them(run_playbook, tmp_path):
    """Issue 23, defect 2: never delete the only copy of a setting. The legacy tls of harbor.example:8443 cannot move
    into the operator's own hosts.toml there: the task fails naming the key and the file, and writes nothing."""
    path = placed(tmp_path, "v2-legacy-configs.toml")
    certs = tmp_path / "certs.d"
    theirs = certs / "harbor.example:8443" / "hosts.toml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text('server = "https://harbor.example:8443"\n[host."https://harbor.example:8443"]\n')
    before = {file: file.read_bytes() for file in (path, *certs.rglob("*")) if file.is_file()}
    run = run_playbook([{**config_task("lose", path, config_path=str(certs)), "ignore_errors": True}])
    result = run.task_results("lose")
    assert result["failed"] is True
    assert result["msg"].startswith(f"{theirs}: already exists with other content, so the settings of "
                                    f'{MIRRORS_SECTION}.configs."harbor.example:8443".tls in {path} cannot move there')
    assert result["msg"].endswith("nothing was written")
    assert {file: file.read_bytes() for file in (path, *certs.rglob("*")) if file.is_file()} == before
    assert not list(tmp_path.glob("config.toml.*"))  # no backup either


@pytest.mark.parametrize(
    ("fixture", "backup_mode"),
    [("v2-legacy-configs.toml", 0o600), ("containerd-1.6-default.toml", 0o644)],
    ids=["secrets", "none"],
)
def test_a_backup_holding_secrets_is_0600(run_playbook, tmp_path, fixture, backup_mode):
    """Issue 23, defect 3: the backup of a config.toml with a password the diff masks is 0600; others keep 0644."""
    path = placed(tmp_path, fixture, mode=0o644)
    original = path.read_bytes()
    run = run_playbook([config_task("backup", path, config_path=str(tmp_path / "certs.d"), backup=True)])
    assert run.rc == 0, run.stdout + run.stderr
    backup = Path(run.task_results("backup")["backup_file"])
    assert backup.read_bytes() == original
    assert stat.S_IMODE(backup.stat().st_mode) == backup_mode
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # config.toml itself keeps its mode
    assert not list(tmp_path.glob(".tmp-*"))


def test_an_existing_hosts_toml_is_kept_with_a_warning(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = tmp_path / "certs.d"
    theirs = certs / "docker.io" / "hosts.toml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text('server = "https://registry-1.docker.io"\n[host."https://their-mirror.example"]\n')
    untouched = snapshot(theirs)
    run = run_playbook([config_task("kept", path, config_path=str(certs))])
    assert run.rc == 0, run.stdout + run.stderr
    result = run.task_results("kept")

    assert snapshot(theirs) == untouched
    assert [(entry["registry"], entry["status"]) for entry in result["migrated"]] == [
        ("platform9.io", "created"),
        ("docker.io", "kept_existing"),
    ]
    (warning,) = [warning for warning in result["warnings"] if str(theirs) in warning]
    assert "legacy endpoints for docker.io" in warning
    assert "not copied" in warning
    assert "takes over for docker.io once config_path is set" in warning
    assert tomllib.loads(path.read_text())["plugins"][CRI]["registry"] == {"config_path": str(certs)}
    assert (certs / "platform9.io" / "hosts.toml").exists()

    # A file that already holds exactly the migrated text is reported unchanged.
    original = (tmp_path / Path(result["backup_file"]).name).read_bytes()
    path.write_bytes(original)
    again = run_playbook([config_task("again", path, config_path=str(certs))])
    assert again.rc == 0, again.stdout + again.stderr
    assert [(entry["registry"], entry["status"]) for entry in again.task_results("again")["migrated"]] == [
        ("platform9.io", "unchanged"),
        ("docker.io", "kept_existing"),
    ]


def test_refuse_mode_fails_and_leaves_everything_byte_identical(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = tmp_path / "certs.d"
    before = snapshot(path)
    run = run_playbook(
        [{**config_task("refuse", path, config_path=str(certs), legacy_mirrors="refuse"), "ignore_errors": True}]
    )
    assert run.rc == 0, run.stdout + run.stderr
    result = run.task_results("refuse")
    assert result["failed"] is True
    assert result["msg"].startswith(f"{MIRRORS_SECTION}.mirrors: sets mirrors for docker.io, platform9.io. ")
    assert snapshot(path) == before
    assert not certs.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("config.toml")) == ["config.toml"]


def test_a_refused_migration_writes_nothing(run_playbook, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n'
        f'[plugins."{CRI}".registry.configs."m.example".auth]\n  identitytoken = "refresh-token"\n'
        f'[plugins."{CRI}".registry.configs."m.example".tls]\n  min_version = "1.2"\n'
    )
    certs = tmp_path / "certs.d"
    before = snapshot(path)
    run = run_playbook([{**config_task("token", path, config_path=str(certs)), "ignore_errors": True}])
    assert run.rc == 0, run.stdout + run.stderr
    result = run.task_results("token")
    assert result["failed"] is True
    assert result["msg"].startswith(f'{MIRRORS_SECTION}.configs."m.example".tls.min_version: cannot be migrated')
    assert "refresh-token" not in run.stdout
    assert snapshot(path) == before
    assert not certs.exists()


def test_module_writes_no_hosts_toml_when_config_toml_changed_since_it_was_read(tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = tmp_path / "certs.d"
    stale = hashlib.sha256(b"what the controller read earlier").hexdigest()
    result = run_module(
        tmp_path,
        {
            "path": str(path),
            "config_path": str(certs),
            "_content": "version = 2\n",
            "_read_sha256": stale,
            "_hosts_files": [{"registry": "docker.io", "hosts": [], "content": 'server = "https://x"\n'}],
            "_legacy_removed": True,
        },
    )
    assert result["failed"] is True
    assert "changed on the node since it was read" in result["msg"]
    assert not certs.exists()


def test_legacy_settings_of_a_registry_the_mirror_serves_already_are_kept_aside(run_playbook, tmp_path):
    # The legacy mirrors came back (an agent rewrote config.toml) after the mirror's files were written.
    path = placed(tmp_path, "pmk-stock.toml")
    certs = tmp_path / "certs.d"
    ours = certs / "docker.io" / "hosts.toml"
    ours.parent.mkdir(parents=True)
    ours.write_text(f'{MARKER}\nserver = "https://docker.io"\n')
    untouched = snapshot(ours)
    run = run_playbook([config_task("aside", path, config_path=str(certs))])
    assert run.rc == 0, run.stdout + run.stderr
    result = run.task_results("aside")
    kept = certs / "docker.io" / f"hosts.toml{KEPT_ASIDE_SUFFIX}"
    assert [(entry["registry"], entry["status"], entry["path"]) for entry in result["migrated"]] == [
        ("platform9.io", "created", str(certs / "platform9.io" / "hosts.toml")),
        ("docker.io", "kept_aside", str(kept)),
    ]
    assert snapshot(ours) == untouched
    assert list(tomllib.loads(kept.read_text())["host"]) == [
        "https://dockermirror.platform9.io",
        "https://registry-1.docker.io",
    ]
    assert not [warning for warning in result.get("warnings", []) if "docker.io" in warning]


# --- issue 10: masked diffs whatever the spelling (point 5), CRLF (point 11), literal paths (point 12) ---

SPELT_SECRETS = ("pw-inline-7", "pw-dotted-7", "pw-multi-7", "pw-comment-7", "tok-inline-7")
SPELT = f"""version = 2
[plugins."{CRI}".registry.configs]
  "inline.example" = {{ auth = {{ username = "alice", password = "pw-inline-7" }} }}
  "dotted.example".auth.password = "pw-dotted-7"
  "dotted.example".auth.username = "bob"
[ plugins . "{CRI}" . registry . configs . "multi.example" . auth ]  # credentials
  username = "carol"
  password = \"\"\"
pw-multi-7\"\"\"
[plugins."{CRI}".registry.configs."comment.example".auth] # pw-comment-7 was the old one
  username = "dave"
  password = "pw-comment-7"
[plugins."{CRI}".registry.headers]
  X-Token = ["tok-inline-7"]
"""


def test_config_diff_masks_secrets_however_they_are_spelt(run_playbook, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(SPELT)
    certs = tmp_path / "certs.d"
    for check in (True, False):
        run = run_playbook([config_task("spelt", path, config_path=str(certs))], diff=True, check=check,
                           verbosity=3, json_output=False)
        assert run.rc == 0, run.stdout + run.stderr
        output = run.stdout + run.stderr
        for secret in SPELT_SECRETS:
            assert secret not in output
        for secret in ("alice:pw-", "bob:pw-", "carol:pw-", "dave:pw-"):  # nor their Basic values
            assert base64.b64encode(secret.encode()).decode()[:8] not in output
        assert f"--- before: {path}" in output
        assert "********" in output
    # config.toml itself keeps the credentials, for containerd
    configs = tomllib.loads(path.read_text())["plugins"][CRI]["registry"]["configs"]
    assert configs["inline.example"]["auth"] == {"username": "alice", "password": "pw-inline-7"}
    assert not certs.exists()


def test_a_crlf_file_keeps_crlf_on_the_line_added(run_playbook, tmp_path):
    path = tmp_path / "config.toml"
    original = (FIXTURES / "containerd-1.6-default.toml").read_bytes().replace(b"\n", b"\r\n")
    original = original.replace(b'      config_path = ""\r\n', b"")  # so that the setting is a new line
    path.write_bytes(original)
    run = run_playbook([config_task("crlf", path, config_path="/etc/containerd/certs.d")])
    assert run.rc == 0, run.stdout + run.stderr
    data = path.read_bytes()
    assert b'config_path = "/etc/containerd/certs.d"\r\n' in data
    assert data.count(b"\n") == data.count(b"\r\n")
    assert len(data.splitlines()) == len(original.splitlines()) + 1

    stock = tmp_path / "stock.toml"  # a legacy migration, lines deleted and one added
    stock.write_bytes((FIXTURES / "pmk-stock.toml").read_bytes().replace(b"\n", b"\r\n"))
    run = run_playbook([config_task("stock", stock, config_path=str(tmp_path / "certs.d"))])
    assert run.rc == 0, run.stdout + run.stderr
    data = stock.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b"config_path" in data


def test_node_paths_are_taken_literally(run_playbook, tmp_path):
    for options, field in (
        ({"path": "~/config.toml"}, "path"),
        ({"path": "$HOME/config.toml"}, "path"),
        ({"path": "config.toml"}, "path"),
        ({"config_path": "~/certs.d"}, "config_path"),
        ({"config_path": "$HOME/certs.d"}, "config_path"),
    ):
        task = config_task("literal", tmp_path / "config.toml")
        task[MODULE].update(options)
        result = run_playbook([task]).task_results("literal")
        assert result["failed"] is True
        value = options[field]
        assert result["msg"].startswith(f"{field}: {value!r} must be an absolute path"), result["msg"]
    assert list(tmp_path.glob("*.toml")) == []


def test_one_read_reports_the_restart_marker_and_containerd_version(run_playbook, tmp_path):
    """The read that gets config.toml also says whether node_restart's marker exists and which containerd runs."""
    path = placed(tmp_path, "v2-comments.toml")
    marker = tmp_path / "restart-pending"
    certs = {"config_path": str(tmp_path / "certs.d")}
    first = run_playbook([config_task("apply", path, pending_marker=str(marker), **certs)])
    marker.write_text("{}\n")
    tasks = [config_task("again", path, pending_marker=str(marker), **certs), config_task("no marker", path, **certs)]
    verbose = run_playbook(tasks, json_output=False, verbosity=3)
    assert verbose.rc == 0, verbose.stdout
    # one module run a task when nothing changes: the read
    assert len(re.findall(r"EXEC /bin/sh -c '\S*python\S* \S+/AnsiballZ_containerd_config\.py", verbose.stdout)) == 2
    result = run_playbook(tasks)
    assert first.task_results("apply")["pending_restart"] is False
    assert result.task_results("again")["pending_restart"] is True
    assert result.task_results("again")["changed"] is False
    assert result.task_results("no marker")["pending_restart"] is None
    version = shutil.which("containerd") and subprocess.run(
        ["containerd", "--version"], capture_output=True, text=True, check=False).stdout.split()[2].lstrip("v")
    assert result.task_results("again")["containerd_version"] == (version or None)
    relative = run_playbook([config_task("relative", path, pending_marker="marker")]).task_results("relative")
    assert relative["failed"] is True
    assert relative["msg"] == "pending_marker: 'marker' must be an absolute path on the node"


def with_list(version, listed):
    """A config.toml of the given version (2 or 3) whose CRI registry config_path lists directories."""
    plugin = CRI if version == 2 else IMAGES
    return f'version = {version}\n\n[plugins."{plugin}".registry]\n  config_path = "{listed}"  # the distribution\'s\n'


def test_a_colon_list_is_replaced_with_a_warning_in_v2_and_v3_files_then_left_alone(run_playbook, tmp_path):
    certs, docker = tmp_path / "certs.d", tmp_path / "docker" / "certs.d"
    theirs = docker / "registry.example" / "hosts.toml"  # in a dropped directory: left where it is
    theirs.parent.mkdir(parents=True)
    theirs.write_text('server = "https://registry.example"\n')
    files = {
        # containerd 2.2's default shape (first entry ours), and a 1.x-era list where ours comes second
        "v3": (tmp_path / "v3.toml", 3, f"{certs}:{docker}", IMAGES),
        "v2": (tmp_path / "v2.toml", 2, f"{docker}:{certs}", CRI),
    }
    for path, version, listed, _plugin in files.values():
        path.write_text(with_list(version, listed))
    original = {name: snapshot(path) for name, (path, *_rest) in files.items()}
    untouched = snapshot(theirs)
    tasks = [config_task(name, path, config_path=str(certs)) for name, (path, *_rest) in files.items()]
    tasks[0] = on_containerd_2x(tasks[0], tmp_path)  # the version 3 file

    checked = run_playbook(tasks, check=True, diff=True)
    assert checked.rc == 0, checked.stdout + checked.stderr
    assert {name: snapshot(path) for name, (path, *_rest) in files.items()} == original
    applied = run_playbook(tasks, diff=True)
    assert applied.rc == 0, applied.stdout + applied.stderr
    again = run_playbook(tasks)
    assert again.rc == 0, again.stdout + again.stderr

    for name, (path, version, listed, plugin) in files.items():
        for run in (checked, applied):
            result = run.task_results(name)
            assert result["changed"] is True
            assert result["previous_config_path"] == listed
            assert result["config_path"] == str(certs)
            (warning,) = result["warnings"]
            assert warning.startswith(f'plugins."{plugin}".registry.config_path: {listed!r} lists several directories')
            assert "transfer service, which reads config_path as one directory" in warning
            assert f"Dropped from the list: {docker}; containerd no longer reads the files there" in warning
            assert f"move any <registry>/hosts.toml in them into {certs}." in warning
            (diff,) = result["diff"]
            assert f'  config_path = "{listed}"  # the distribution\'s\n' in diff["before"]
            assert f'  config_path = "{certs}"  # the distribution\'s\n' in diff["after"]
        assert path.read_text() == with_list(version, listed).replace(listed, str(certs))
        assert tomllib.loads(path.read_text())["plugins"][plugin]["registry"] == {"config_path": str(certs)}
        settled = again.task_results(name)
        assert settled["changed"] is False
        assert settled["previous_config_path"] == str(certs)
        assert "warnings" not in settled
    assert snapshot(theirs) == untouched


def test_a_missing_file_on_a_containerd_2_node(run_playbook, tmp_path):
    """No config.toml on a containerd 2.2 node (faked through PATH): the read reports 2.2.0, so the file created
    is a version 3 one, containerd 2.x's own, unless version 2 is asked for; both set one directory, so
    containerd's built-in colon list no longer applies."""
    default, two = tmp_path / "default" / "config.toml", tmp_path / "two" / "config.toml"
    environment = Containerd2x(tmp_path / "bin", "2.2.0").environment
    run = run_playbook(
        [
            {**config_task("default", default), "environment": environment},
            {**config_task("two", two, version=2), "environment": environment},
        ]
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert tomllib.loads(default.read_text()) == minimal(3)
    assert tomllib.loads(two.read_text()) == minimal(2)
    for name in ("default", "two"):
        result = run.task_results(name)
        assert result["containerd_version"] == "2.2.0"
        assert result["previous_config_path"] is None
        assert "warnings" not in result
    # containerd_major says which containerd reads the file's version, not which one the node runs
    assert run.task_results("default")["containerd_major"] == 2
    assert run.task_results("two")["containerd_major"] == 1


# --- issue 20: containerd's effective configuration (the dump and its imports), checked ------------------------

PAUSE = "registry.k8s.io/pause:3.6"  # the stock PMK node's sandbox image, containerd 1.6's default


def module_runs(run):
    """The module runs on the node, from a -vvv run (the local connection does not pipeline)."""
    assert run.rc == 0 or "fatal" in run.stdout, run.stdout[-3000:]
    return len(re.findall(r"EXEC /bin/sh -c '\S*python\S* \S+/AnsiballZ_containerd_config\.py", run.stdout))


def with_imports(text, *entries):
    listed = ", ".join(f'"{entry}"' for entry in entries)
    return text.replace("version = 2\n", f"version = 2\nimports = [{listed}]\n", 1)


def test_the_results_say_the_sandbox_image_and_what_containerd_runs_with(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = str(tmp_path / "certs.d")
    run = run_playbook([config_task("apply", path, config_path=certs), config_task("again", path, config_path=certs)])
    assert run.rc == 0, run.stdout + run.stderr
    for name in ("apply", "again"):  # the write's own dump, then the read's
        result = run.task_results(name)
        assert result["sandbox_image"] == PAUSE
        assert result["effective"] == {"config_path": certs, "section": MIRRORS_SECTION, "version": 2, "imports": []}
    assert "effective" not in run.task_results("again")["invocation"]["module_args"]


def test_a_drop_in_with_legacy_mirrors_is_refused_naming_it_and_nothing_is_written(run_playbook, tmp_path):
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    drop_in = conf_d / "10-mirror.toml"
    drop_in.write_text(f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n')
    path = tmp_path / "config.toml"
    path.write_text(with_imports(STOCK.read_text(), f"{conf_d}/*.toml"))
    certs = tmp_path / "certs.d"
    before = {file: snapshot(file) for file in (path, drop_in)}
    for check in (True, False):
        run = run_playbook([{**config_task("refused", path, config_path=str(certs)), "ignore_errors": True}],
                           check=check)
        assert run.rc == 0, run.stdout + run.stderr
        result = run.task_results("refused")
        assert result["failed"] is True
        assert result["msg"].startswith(
            f"containerd would not read {certs} after this change, so nothing was written. {drop_in}: sets mirrors "
            f"(docker.io) in [{MIRRORS_SECTION}]. Drop-ins are not edited"
        )
        assert "delete them from this file, and run this again." in result["msg"]
    assert {file: snapshot(file) for file in (path, drop_in)} == before
    assert not certs.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("config.toml")) == ["config.toml"]


def test_a_drop_in_replacing_the_cri_section_is_refused_on_1x(run_playbook, tmp_path):
    """containerd 1.x replaces config.toml's whole CRI section with a drop-in's: its config_path would be gone."""
    drop_in = tmp_path / "runtime.toml"
    drop_in.write_text(f'version = 2\n[plugins."{CRI}".containerd]\n  snapshotter = "native"\n')
    path = tmp_path / "config.toml"
    path.write_text(with_imports((FIXTURES / "containerd-1.6-default.toml").read_text().replace("imports = []\n", ""),
                                 "runtime.toml"))
    before = snapshot(path)
    run = run_playbook([{**config_task("replaced", path, config_path=str(tmp_path / "certs.d")),
                         "ignore_errors": True}])
    result = run.task_results("replaced")
    assert result["failed"] is True
    assert f'{drop_in}: has a [plugins."{CRI}"] table without {MIRRORS_SECTION}.config_path' in result["msg"]
    assert f'Add config_path = "{tmp_path / "certs.d"}" to its [{MIRRORS_SECTION}] table' in result["msg"]
    assert snapshot(path) == before


def test_check_state_passes_reading_only_once_and_writes_nothing(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = str(tmp_path / "certs.d")
    assert run_playbook([config_task("apply", path, config_path=certs)]).rc == 0
    before = snapshot(path)
    task = config_task("check", path, config_path=certs, state="check")
    verbose = run_playbook([task], json_output=False, verbosity=3)
    assert module_runs(verbose) == 1
    run = run_playbook([task])
    assert run.rc == 0, run.stdout + run.stderr
    result = run.task_results("check")
    assert result["changed"] is False
    assert result["sandbox_image"] == PAUSE
    assert result["effective"] == {"config_path": certs, "section": MIRRORS_SECTION, "version": 2, "imports": []}
    assert snapshot(path) == before


def test_check_state_fails_on_a_stock_node_naming_config_path_and_the_file(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    certs = tmp_path / "certs.d"
    before = snapshot(path)
    for check in (False, True):
        run = run_playbook([{**config_task("check", path, config_path=str(certs), state="check"),
                             "ignore_errors": True}], check=check)
        result = run.task_results("check")
        assert result["failed"] is True
        assert result["msg"] == (
            f"kubelet's pulls would not use the mirror: in containerd's effective configuration (`containerd --config "
            f"{path} config dump`), {MIRRORS_SECTION}.config_path is '', not '{certs}'; {MIRRORS_SECTION}.mirrors is "
            f'set for docker.io, platform9.io. Set config_path = "{certs}" in the [{MIRRORS_SECTION}] table of {path}, '
            f"and move the legacy registry settings of {path} into hosts.toml files under {certs} (containerd_config "
            "with state=present migrates config.toml's)."
        )
        assert result["sandbox_image"] == PAUSE
    assert snapshot(path) == before
    assert not certs.exists()


def test_check_state_names_the_drop_in_that_defeats_config_path(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    drop_in = tmp_path / "other.toml"
    drop_in.write_text(f'version = 2\n[plugins."{CRI}".registry]\n  config_path = "/etc/docker/certs.d"\n')
    path = tmp_path / "config.toml"
    path.write_text(f'version = 2\nimports = ["{drop_in}"]\n[plugins."{CRI}".registry]\n  config_path = "{certs}"\n')
    missing = tmp_path / "missing.toml"
    run = run_playbook([
        {**config_task("drop-in", path, config_path=str(certs), state="check"), "ignore_errors": True},
        {**config_task("missing", missing, config_path=str(certs), state="check"), "ignore_errors": True},
    ])
    message = run.task_results("drop-in")["msg"]
    assert message.startswith(f"kubelet's pulls would not use the mirror: in containerd's effective configuration "
                              f"(`containerd --config {path} config dump`), {MIRRORS_SECTION}.config_path is "
                              f"'/etc/docker/certs.d', not '{certs}'. {drop_in}: sets {MIRRORS_SECTION}.config_path")
    assert run.task_results("missing")["msg"] == (
        f"kubelet's pulls would not use the mirror: {missing} does not exist, so containerd runs with its built-in "
        f'defaults, which do not set config_path = "{certs}". Create it with that setting (state=present does).'
    )
    assert not missing.exists()


def test_a_write_containerd_would_not_read_is_put_back_byte_for_byte(run_playbook, tmp_path):
    """With the real containerd 1.6: config.toml imports a glob that also matches the backup this run makes of it
    (config.toml.<pid>.<date>~). Before the write it matches nothing; after it, containerd loads the backup, the
    original with its legacy mirrors, whose CRI section replaces the new one: the write is undone."""
    path = tmp_path / "config.toml"
    path.write_text(with_imports(STOCK.read_text(), f"{tmp_path}/config.toml.*"))
    path.chmod(0o640)
    original = path.read_bytes()
    certs = tmp_path / "certs.d"
    task = {**config_task("undone", path, config_path=str(certs)), "ignore_errors": True}
    verbose = run_playbook([task], json_output=False, verbosity=3)
    assert module_runs(verbose) == 3  # the read, the write, the rollback
    assert path.read_bytes() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    (backup,) = tmp_path.glob("config.toml.*~")

    path.write_bytes(original)
    backup.unlink()
    shutil.rmtree(certs)
    run = run_playbook([task])
    result = run.task_results("undone")
    assert result["failed"] is True
    (backup,) = tmp_path.glob("config.toml.*~")
    assert result["msg"].startswith(
        f"{path} was written, but kubelet's pulls would not use the mirror: in containerd's effective configuration "
        f"(`containerd --config {path} config dump`), {MIRRORS_SECTION}.config_path is '', not '{certs}'; "
        f"{MIRRORS_SECTION}.mirrors is set for docker.io, platform9.io. {backup}: sets mirrors (docker.io, "
        "platform9.io)"
    )
    assert result["msg"].endswith(
        f"So {path} was put back as it was. The hosts.toml files migrated from it stay: "
        f"{certs}/platform9.io/hosts.toml, {certs}/docker.io/hosts.toml."
    )
    assert path.read_bytes() == original
    # the next run refuses before writing, naming the backup the glob now matches
    again = run_playbook([task]).task_results("undone")
    assert again["msg"].startswith(f"containerd would not read {certs} after this change, so nothing was written.")
    assert f"{backup}: sets mirrors (docker.io, platform9.io)" in again["msg"]
    assert path.read_bytes() == original


def test_a_new_file_that_containerd_would_not_read_is_refused_before_writing(run_playbook, tmp_path):
    """containerd 1.6 (the host's) ignores a version 3 file's CRI table; containerd 2.2 refuses a version 4 file."""
    v3, v4 = tmp_path / "v3" / "config.toml", tmp_path / "v4" / "config.toml"
    run = run_playbook([
        {**config_task("v3 on 1.6", v3, version=3), "ignore_errors": True},
        {**on_containerd_2x(config_task("v4 on 2.2", v4, version=4), tmp_path), "ignore_errors": True},
    ])
    message = run.task_results("v3 on 1.6")["msg"]
    assert message.startswith("containerd would not read /etc/containerd/certs.d after this change, so nothing was "
                              f"written. {v3}: would be a config version 3 file, which containerd 1.6")
    assert "refuses (version 4 needs containerd 2.3 or later)" in run.task_results("v4 on 2.2")["msg"]
    assert not v3.parent.exists() and not v4.parent.exists()


def test_containerd_2_3_gets_a_version_4_file_and_reads_it(run_playbook, tmp_path):
    """A containerd 2.3 node (faked: 2.3 is not in Debian; the fake's dump is the file itself): a new file is
    written in version 4, its own default, and the check reads config_path and the sandbox image from it."""
    path = tmp_path / "etc" / "config.toml"
    fake = Containerd2x(tmp_path / "bin", "2.3.0")
    run = run_playbook([
        {**config_task("create", path), "environment": fake.environment},
        {**config_task("check", path, state="check"), "environment": fake.environment},
    ])
    assert run.rc == 0, run.stdout + run.stderr
    assert tomllib.loads(path.read_text()) == minimal(4)
    created = run.task_results("create")
    assert created["version"] == 4 and created["containerd_major"] == 2
    assert created["effective"] == {"config_path": "/etc/containerd/certs.d",
                                    "section": 'plugins."io.containerd.cri.v1.images".registry', "version": 4,
                                    "imports": []}
    assert run.task_results("check")["effective"]["config_path"] == "/etc/containerd/certs.d"
    assert ["--config", str(path), "config", "dump"] in fake.calls


def test_without_containerd_nothing_is_written_and_the_command_is_named(run_playbook, tmp_path):
    path = placed(tmp_path, "pmk-stock.toml")
    before = snapshot(path)
    bare = path_without(tmp_path / "bin", {"containerd"})
    run = run_playbook([{**config_task("bare", path, config_path=str(tmp_path / "certs.d")),
                         "environment": {"PATH": str(bare)}, "ignore_errors": True}])
    message = run.task_results("bare")["msg"]
    assert message.startswith(f"`containerd --config {path} config dump`: containerd is not on PATH ({bare}), so its "
                              "effective configuration cannot be checked; nothing was written")
    assert snapshot(path) == before
    assert not (tmp_path / "certs.d").exists()


def test_a_dump_that_fails_is_named_with_its_error(run_playbook, tmp_path):
    path = placed(tmp_path, "containerd-1.6-default.toml")
    path.write_text(with_imports(path.read_text().replace("imports = []\n", ""), str(tmp_path / "gone.toml")))
    before = snapshot(path)
    run = run_playbook([{**config_task("fails", path, config_path=str(tmp_path / "certs.d")), "ignore_errors": True}])
    message = run.task_results("fails")["msg"]
    assert message.startswith(f"`containerd --config {path} config dump` failed (exit 1): ")
    assert f"{tmp_path / 'gone.toml'}: no such file or directory" in message
    assert message.endswith("; nothing was written")
    assert snapshot(path) == before


def test_an_unchanged_file_whose_setting_is_not_in_effect_fails_and_says_so(run_playbook, tmp_path):
    """config.toml already sets config_path, but what containerd runs with does not (a 2.x dump, faked: the real 1.6
    here cannot show it without a drop-in, which is refused first)."""
    path = tmp_path / "config.toml"
    path.write_text(f"version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '{tmp_path}'\n")
    before = snapshot(path)
    fake = Containerd2x(tmp_path / "bin", "2.1.9")
    fake.queue_dump((FIXTURES / "dump-2.2-default-colon-list.toml").read_text())
    run = run_playbook([{**config_task("unchanged", path, config_path=str(tmp_path)), "environment": fake.environment,
                         "ignore_errors": True}])
    result = run.task_results("unchanged")
    assert result["failed"] is True
    assert result["msg"].startswith(
        "kubelet's pulls would not use the mirror: in containerd's effective configuration (`containerd --config "
        f"{path} config dump`), plugins.\"io.containerd.cri.v1.images\".registry.config_path is "
        "'/etc/containerd/certs.d:/etc/docker/certs.d', not "
    )
    assert result["msg"].endswith("(nothing was written)")
    assert result["sandbox_image"] == "registry.k8s.io/pause:3.10.1"
    assert snapshot(path) == before
