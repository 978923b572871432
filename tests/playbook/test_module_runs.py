"""How many module runs the role makes on a node (issue 14): at most 3 on an unchanged re-run, a URL CA downloaded once.

Counted from ansible-playbook -vvv: every module run on the node is one "EXEC ... python .../AnsiballZ_<module>.py"
line (the local connection does not pipeline). The CA URL and the mirror are tests/fakes servers, which record
every request.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from fakes import tls_registry as fake
from playbook_runner import write_config_reading

ROOT = Path(__file__).resolve().parents[2]
STOCK_PMK_CONFIG = ROOT / "testbed" / "node" / "config.toml"
_MODULE_RUN = re.compile(r"EXEC /bin/sh -c '\S*python\S* \S+/AnsiballZ_(\w+)\.py")
USER, PASSWORD = "mirror-user", "mirror-pass"


def module_runs(run):
    """The modules run on the node, in order."""
    assert run.rc == 0, run.stdout[-3000:] + run.stderr
    return _MODULE_RUN.findall(run.stdout)


def play(settings):
    return [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars": settings,
        "roles": [{"role": "kubenode.registry_mirror.containerd_mirror"}],
    }]


@pytest.fixture
def mirror(pki):
    with fake.TlsRegistry(pki, users={USER: PASSWORD}) as registry, \
            fake.FileServer({"ca.pem": pki.ca.read_bytes()}) as files:
        yield registry, files


def ca_downloads(files):
    return [request.path for request in files.requests].count("/ca.pem")


def test_seed_settings_three_module_runs_on_a_rerun_and_one_download_a_run(run_playbook, tmp_path, mirror):
    registry, files = mirror
    config = tmp_path / "config.toml"
    config.write_bytes(STOCK_PMK_CONFIG.read_bytes())
    marker = tmp_path / "restart-pending"
    seed = {  # the seed's settings: a CA from a URL, config.toml managed, PMK restarts, preflight on
        "containerd_mirror_url": registry.url,
        "containerd_mirror_repo_path": "infra/k8s",
        "containerd_mirror_username": USER,
        "containerd_mirror_password": PASSWORD,
        "containerd_mirror_self_signed_certs": True,
        "containerd_mirror_cert_path": f"{files.url}/ca.pem",
        "containerd_mirror_config_path": str(tmp_path / "certs.d"),
        "containerd_mirror_containerd_config": str(config),
        "containerd_mirror_restart_strategy": "pmk",
        "containerd_mirror_preflight": True,
        "containerd_mirror_manage_config": True,
        "containerd_mirror_verify_image": "",  # no containerd runs here to pull through (cri_pull: its own tests)
        "_containerd_mirror_restart_marker": str(marker),
    }

    playbook = tmp_path / "role.yml"
    playbook.write_text(yaml.safe_dump(play({})))

    def apply(check=False, **overrides):
        downloads = ca_downloads(files)
        run = run_playbook(None, playbook=playbook, extra_vars=dict(seed, **overrides), json_output=False,
                           verbosity=3, check=check)
        return module_runs(run), ca_downloads(files) - downloads, run

    # First apply, in check mode (a real one would run Platform9's restart sequence on this machine).
    runs, downloads, _run = apply(check=True)
    assert Counter(runs) == {"registry_preflight": 1, "containerd_config": 2, "containerd_hosts": 1,
                             "node_restart": 1}, runs
    assert downloads == 1
    assert not (tmp_path / "certs.d").exists() and config.read_bytes() == STOCK_PMK_CONFIG.read_bytes()

    # First apply for real, without the restart.
    runs, downloads, run = apply(containerd_mirror_restart_strategy="none")
    assert runs == ["registry_preflight", "containerd_config", "containerd_config", "containerd_hosts"]
    assert downloads == 1
    assert "changed: ca, certs.d, config.toml; legacy mirrors migrated: " in run.stdout
    ca_file = tmp_path / "certs.d" / registry.url.split("://")[1] / "ca.crt"
    assert ca_file.read_bytes() == files.files["ca.pem"]

    # The unchanged re-run, PMK restarts on: the preflight, the read of config.toml, containerd_hosts.
    runs, downloads, run = apply()
    assert runs == ["registry_preflight", "containerd_config", "containerd_hosts"]
    assert downloads == 1
    assert "changed=0" in run.stdout
    assert "restarted: none" in run.stdout

    # An unfinished PMK restart is still seen through: the read reports the marker, node_restart runs.
    marker.write_text("{}\n")
    runs, downloads, run = apply(check=True)
    assert runs == ["registry_preflight", "containerd_config", "containerd_hosts", "node_restart"]
    assert marker.exists()


def test_local_settings_two_module_runs(run_playbook, tmp_path, pki):
    """Preflight off, config.toml not managed, no restart (the benchmark's local runs): two module runs a node,
    the check that containerd reads certs.d and certs.d itself."""
    ca_file = tmp_path / "reg-ca.crt"
    ca_file.write_bytes(pki.ca.read_bytes())
    settings = {
        "containerd_mirror_url": "https://10.101.101.100:443",
        "containerd_mirror_self_signed_certs": True,
        "containerd_mirror_cert_path": str(ca_file),
        "containerd_mirror_config_path": str(tmp_path / "certs.d"),
        "containerd_mirror_containerd_config": str(write_config_reading(tmp_path / "c.toml", tmp_path / "certs.d")),
        "containerd_mirror_restart_strategy": "none",
        "containerd_mirror_preflight": False,
        "containerd_mirror_manage_config": False,
        "containerd_mirror_verify_image": "",  # no containerd runs here to pull through
    }
    for _run in range(2):
        runs = module_runs(run_playbook(play(settings), json_output=False, verbosity=3))
        assert runs == ["containerd_config", "containerd_hosts"]


def test_a_bad_ca_fails_before_anything_changes(run_playbook, tmp_path, pki):
    """The CA is checked where it is used: an expired one stops containerd_hosts with nothing written."""
    settings = {
        "containerd_mirror_url": "https://10.101.101.100:443",
        "containerd_mirror_self_signed_certs": True,
        "containerd_mirror_cert_path": str(tmp_path / "reg-ca.crt"),
        "containerd_mirror_ca_content": pki.expired_ca.read_text(),
        "containerd_mirror_config_path": str(tmp_path / "certs.d"),
        "containerd_mirror_containerd_config": str(write_config_reading(tmp_path / "c.toml", tmp_path / "certs.d")),
        "containerd_mirror_restart_strategy": "none",
        "containerd_mirror_preflight": False,
        "containerd_mirror_manage_config": False,
    }
    run = run_playbook(play(settings))
    assert run.rc != 0
    result = run.task_results("Write certs.d and the mirror's CA")
    assert result["msg"].startswith("Nothing was written. ca_content: the certificate (CN=kubenode expired CA) expired")
    assert not (tmp_path / "certs.d").exists() and not (tmp_path / "reg-ca.crt").exists()
