"""The containerd_hosts action plugin and module, run for real through ansible-playbook."""

from __future__ import annotations

import base64
import stat
import tomllib
from pathlib import Path

import pytest
import yaml

SEED_FILES = yaml.safe_load((Path(__file__).parents[1] / "unit" / "fixtures" / "seed-hosts.yml").read_text())
SEED_AUTH = "Basic d1h1YmhhbTpwZjck"
SEED_USER, SEED_PASSWORD = base64.b64decode(SEED_AUTH.split()[1]).decode().split(":", 1)
SECRET_PASSWORD = "s3cr3t:pässwörd"
SECRET_AUTH = "Basic " + base64.b64encode(f"mirror-user:{SECRET_PASSWORD}".encode()).decode()
TASK = "write certs.d"


def hosts_task(config_path, **options):
    args = {
        "url": "https://10.101.101.100:443",
        "repo_path": "infra/k8s",
        "username": SEED_USER,
        "password": SEED_PASSWORD,
        "skip_tls": False,
        "ca_file": "/usr/local/share/reg-ca.crt",
        "config_path": str(config_path),
    }
    args.update(options)
    args = {name: value for name, value in args.items() if value is not None}
    return {"name": TASK, "kubenode.registry_mirror.containerd_hosts": args, "register": "result"}


def tree(config_path):
    return {str(p.relative_to(config_path)): p.read_text() for p in sorted(Path(config_path).rglob("*")) if p.is_file()}


def pmk_task(config_path):
    """The seed's settings under the PMK cluster API names."""
    return hosts_task(
        config_path,
        url=None, repo_path=None, username=None, password=None, skip_tls=None,
        customRegistryUrl="https://10.101.101.100:443",
        customRegistryPath="/infra/k8s/",
        customRegistryUsername=SEED_USER,
        customRegistryPassword=SEED_PASSWORD,
        customRegistrySkipTls=False,
    )


def test_seed_settings_write_the_seed_files_then_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    first = run_playbook([pmk_task(certs)])
    assert first.rc == 0, first.stdout
    result = first.task_results(TASK)
    assert result["changed"] is True
    assert {f["status"] for f in result["files"]} == {"created"}
    expected = {name: tomllib.loads(text) for name, text in SEED_FILES.items()}
    written = {p.parent.name: p for p in certs.glob("*/hosts.toml")}
    assert sorted(written) == sorted(expected)
    for name, path in written.items():
        document = tomllib.loads(path.read_text())
        assert document == expected[name]
        assert list(document["host"]) == list(expected[name]["host"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    second = run_playbook([hosts_task(certs)])  # the same settings under their own names
    result = second.task_results(TASK)
    assert result["changed"] is False
    assert {f["status"] for f in result["files"]} == {"unchanged"}


def test_check_mode_writes_nothing_and_reports_what_it_would_do(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run = run_playbook([hosts_task(certs)], check=True, diff=True)
    assert run.rc == 0, run.stdout
    result = run.task_results(TASK)
    assert result["changed"] is True
    assert {f["status"] for f in result["files"]} == {"created"}
    assert not certs.exists()


def test_check_mode_on_a_configured_node_changes_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs)])
    before = tree(certs)
    run = run_playbook([hosts_task(certs, skip_tls=True)], check=True, diff=True)
    assert run.task_results(TASK)["changed"] is True
    assert tree(certs) == before


@pytest.mark.parametrize("verbosity", [0, 3])
def test_secrets_never_shown(run_playbook, tmp_path, verbosity):
    certs = tmp_path / "certs.d"
    options = {"username": "mirror-user", "password": SECRET_PASSWORD}
    runs = [
        run_playbook([hosts_task(certs, **options)], diff=True, verbosity=verbosity, json_output=False),
        run_playbook([hosts_task(certs, **options)], diff=True, verbosity=verbosity),  # json
        # a password change: the diff must say so without showing either header
        run_playbook([hosts_task(certs, password="an0ther")], diff=True, verbosity=verbosity,
                     json_output=False),
    ]
    old_auth = SECRET_AUTH
    new_auth = "Basic " + base64.b64encode(f"{SEED_USER}:an0ther".encode()).decode()
    for run in runs:
        assert run.rc == 0, run.stdout
        output = run.stdout + run.stderr
        for secret in (SECRET_PASSWORD, old_auth.split()[1], "an0ther", new_auth.split()[1]):
            assert secret not in output
    assert "******** (changed)" in runs[2].stdout
    assert "authorization" in runs[0].stdout  # the diff is there, masked
    assert new_auth in (certs / "docker.io" / "hosts.toml").read_text()


def test_absent_removes_only_our_files(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io", "quay.io"])])
    foreign = certs / "ghcr.io" / "hosts.toml"
    foreign.parent.mkdir()
    foreign.write_text('server = "https://ghcr.io"\n')
    hijacked = certs / "quay.io" / "hosts.toml"
    hijacked.write_text('server = "https://quay.io"\n')  # someone replaced ours
    neighbour = certs / "docker.io" / "ca.crt"
    neighbour.write_text("not ours\n")

    run = run_playbook([hosts_task(certs, state="absent", registries=["docker.io", "quay.io", "ghcr.io"])])
    assert run.rc == 0, run.stdout
    statuses = {f["registry"]: f["status"] for f in run.task_results(TASK)["files"]}
    assert statuses == {"10.101.101.100:443": "removed", "docker.io": "removed", "quay.io": "foreign",
                        "ghcr.io": "foreign"}
    assert tree(certs) == {
        "docker.io/ca.crt": "not ours\n",
        "ghcr.io/hosts.toml": 'server = "https://ghcr.io"\n',
        "quay.io/hosts.toml": 'server = "https://quay.io"\n',
    }
    assert not (certs / "10.101.101.100:443").exists()  # emptied directory removed

    again = run_playbook([hosts_task(certs, state="absent", registries=["docker.io", "quay.io", "ghcr.io"])])
    assert again.task_results(TASK)["changed"] is False


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"url": "ftp://10.0.0.1"}, "url"),
        ({"url": "https://10.0.0.1/v2/infra"}, "url"),
        ({"password": None}, "username"),
        ({"registries": ["docker.io", "../../etc"]}, "registries[1]"),
        ({"repo_path": 'infra"\n[host."https://evil"]'}, "repo_path"),
    ],
)
def test_bad_input_fails_clearly_and_leaves_the_node_as_it_was(run_playbook, tmp_path, options, field):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs)])
    before = tree(certs)
    run = run_playbook([hosts_task(certs, **options)])
    assert run.rc != 0
    result = run.task_results(TASK)
    assert result["failed"] is True
    assert field in result["msg"]
    assert tree(certs) == before


def test_mode_backup_and_update(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io"])])
    run = run_playbook([hosts_task(certs, registries=["docker.io"], skip_tls=True, backup=True, mode="0640")])
    result = run.task_results(TASK)
    entry = {f["registry"]: f for f in result["files"]}["docker.io"]
    assert entry["status"] == "updated"
    backup = Path(entry["backup_file"])
    assert "skip_verify" not in backup.read_text()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    path = certs / "docker.io" / "hosts.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert tomllib.loads(path.read_text())["host"]["https://10.101.101.100:443/v2/infra/k8s"]["skip_verify"] is True


def test_a_changed_mode_alone_is_a_change(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io"])])
    (certs / "docker.io" / "hosts.toml").chmod(0o644)
    result = run_playbook([hosts_task(certs, registries=["docker.io"])]).task_results(TASK)
    assert result["changed"] is True
    assert stat.S_IMODE((certs / "docker.io" / "hosts.toml").stat().st_mode) == 0o600


def test_filters_through_jinja(run_playbook):
    tasks = [
        {"name": "filters", "ansible.builtin.set_fact": {
            "auth": "{{ 'wXubham' | kubenode.registry_mirror.basic_auth('pf7$') }}",
            "endpoint": "{{ '10.101.101.100:443/' | kubenode.registry_mirror.mirror_endpoint('/infra/k8s/') }}",
            "text": "{{ {'registry': 'quay.io', 'url': 'https://10.101.101.100:443', 'repo_path': 'infra/k8s',"
                    " 'username': 'wXubham', 'password': 'pf7$', 'ca_file': '/usr/local/share/reg-ca.crt'}"
                    " | kubenode.registry_mirror.hosts_toml }}",
        }},
    ]
    facts = run_playbook(tasks).task_results("filters")["ansible_facts"]
    assert facts["auth"] == SEED_AUTH
    assert facts["endpoint"] == "https://10.101.101.100:443/v2/infra/k8s"
    assert tomllib.loads(facts["text"]) == tomllib.loads(SEED_FILES["quay.io"])


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("'us:er' | kubenode.registry_mirror.basic_auth('x')", "basic_auth: username"),
        ("'ftp://x' | kubenode.registry_mirror.mirror_endpoint('a')", "mirror_endpoint: url"),
        ("{'registry': 'a/b', 'url': 'https://m'} | kubenode.registry_mirror.hosts_toml", "hosts_toml: registry"),
    ],
)
def test_filters_are_strict(run_playbook, expression, message):
    run = run_playbook([{"name": "filter", "ansible.builtin.debug": {"msg": "{{ " + expression + " }}"}}])
    assert run.rc != 0
    assert message in run.task_results("filter")["msg"]
