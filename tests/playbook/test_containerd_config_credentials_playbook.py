"""containerd_config's credentials, run for real through ansible-playbook: configs."<host>".auth in config.toml
where containerd 1.x reads it for a registry's token service (issue 24, item 2)."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures" / "containerd_config"
CRI = "io.containerd.grpc.v1.cri"
MODULE = "kubenode.registry_mirror.containerd_config"
HOST = "harbor.example:8443"
PASSWORD = "Robot-Pw-7c41e9"
CREDENTIALS = [{"host": HOST, "username": "robot$pull", "password": PASSWORD}]


def config_task(name, path, **options):
    return {"name": name, MODULE: {"path": str(path), **options}}


def placed(tmp_path, mode=0o644):
    path = tmp_path / "config.toml"
    path.write_bytes((FIXTURES / "containerd-1.6-default.toml").read_bytes())
    path.chmod(mode)
    return path


def auths(path):
    configs = tomllib.loads(path.read_text())["plugins"][CRI]["registry"].get("configs", {})
    return {host: tables["auth"] for host, tables in configs.items() if "auth" in tables}


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_credentials_are_written_0600_once_then_unchanged(run_playbook, tmp_path):
    path = placed(tmp_path)
    certs = str(tmp_path / "certs.d")
    task = {"config_path": certs, "credentials": CREDENTIALS, "backup": True}
    run = run_playbook([config_task("first", path, **task), config_task("second", path, **task)])
    assert run.rc == 0, run.stdout + run.stderr
    first, second = run.task_results("first"), run.task_results("second")
    assert first["changed"] is True and second["changed"] is False
    assert auths(path) == {HOST: {"username": "robot$pull", "password": PASSWORD}}
    assert "# kubenode.registry_mirror" in path.read_text()
    assert mode(path) == 0o600  # it was 0644: containerd (root) is its only reader
    assert mode(Path(first["backup_file"])) == 0o644  # the backup of the file before: no secret in it
    # never in the results: not the invocation, not the module's runs
    assert PASSWORD not in run.stdout + run.stderr
    assert first["invocation"]["module_args"]["credentials"][0]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_diff_and_vvv_never_show_the_password(run_playbook, tmp_path):
    path = placed(tmp_path)
    task = config_task("write", path, config_path=str(tmp_path / "certs.d"), credentials=CREDENTIALS)
    check = run_playbook([task], check=True, diff=True, verbosity=3, json_output=False)
    assert check.rc == 0, check.stdout + check.stderr
    assert PASSWORD not in check.stdout + check.stderr
    assert f'[plugins."{CRI}".registry.configs."{HOST}".auth]' in check.stdout
    assert '+  password = "******** (changed)"' in check.stdout  # a new secret: masked, said to be new
    assert auths(path) == {} and mode(path) == 0o644  # check mode: nothing written
    run = run_playbook([task], diff=True, verbosity=3, json_output=False)
    assert run.rc == 0, run.stdout + run.stderr
    assert PASSWORD not in run.stdout + run.stderr and '+  password = "******** (changed)"' in run.stdout
    assert auths(path)[HOST]["password"] == PASSWORD


def test_ours_are_removed_when_dropped_and_on_absent_leaving_the_operators(run_playbook, tmp_path):
    path = placed(tmp_path)
    theirs = f'\n[plugins."{CRI}".registry.configs."own.example".auth]\n  username = "me"\n  password = "mine"\n'
    path.write_text(path.read_text() + theirs)
    certs = str(tmp_path / "certs.d")
    other = {"host": "10.0.0.5:5000", "username": "u", "password": "Other-Pw-91"}
    run = run_playbook([
        config_task("both", path, config_path=certs, credentials=[*CREDENTIALS, other]),
        config_task("dropped", path, config_path=certs, credentials=CREDENTIALS),
    ])
    assert run.rc == 0, run.stdout + run.stderr
    assert run.task_results("dropped")["changed"] is True
    assert set(auths(path)) == {HOST, "own.example"}
    run = run_playbook([config_task("absent", path, config_path=certs, state="absent")])
    assert run.rc == 0, run.stdout + run.stderr
    assert auths(path) == {"own.example": {"username": "me", "password": "mine"}}
    assert "kubenode.registry_mirror" not in path.read_text()


def test_an_operators_other_credentials_fail_naming_the_key_with_nothing_written(run_playbook, tmp_path):
    path = placed(tmp_path)
    path.write_text(path.read_text() + f'\n[plugins."{CRI}".registry.configs."{HOST}".auth]\n  username = "x"\n'
                    '  password = "theirs-pw"\n')
    before = path.read_bytes()
    run = run_playbook([config_task("refused", path, credentials=CREDENTIALS)])
    assert run.rc != 0
    result = run.task_results("refused")
    assert result["msg"].startswith(f'plugins."{CRI}".registry.configs."{HOST}".auth: ')
    assert "nothing was written" in result["msg"]
    assert path.read_bytes() == before and mode(path) == 0o644
    assert PASSWORD not in run.stdout + run.stderr
