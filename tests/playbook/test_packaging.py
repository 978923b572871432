"""The collection as users get it: built with ansible-galaxy, installed, documented, usable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = ["containerd_hosts", "containerd_config", "ca_certificate", "registry_preflight", "pmk_cluster_registry"]
FILTERS = ["basic_auth", "mirror_endpoint", "hosts_toml", "hosts_files"]


def run(*command, env=None, cwd=None):
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_build_install_document_and_use(tmp_path):
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    run(str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(tmp_path))
    tarball = tmp_path / f"kubenode-registry_mirror-{version}.tar.gz"
    assert tarball.is_file()
    listing = run("tar", "-tzf", str(tarball))
    paths = [line.removeprefix("./") for line in listing.splitlines()]
    for dev_only in ("testbed/", "molecule/", "bench/", "scripts/", ".cache/", ".venv/", ".config/", ".github/", "ee/",
                     "execution-environment.yml"):
        assert not [path for path in paths if path.startswith(dev_only)], dev_only
    assert "roles/containerd_mirror/tasks/main.yml" in listing

    installed = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_HOME=str(tmp_path / "home"))
    run(str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(installed), env=env)
    assert (installed / "ansible_collections" / "kubenode" / "registry_mirror" / "MANIFEST.json").is_file()

    for name in MODULES:
        doc = json.loads(run(str(BIN / "ansible-doc"), "--json", f"kubenode.registry_mirror.{name}", env=env))
        assert doc[f"kubenode.registry_mirror.{name}"]["doc"]["options"], name
    for name in FILTERS:
        doc = json.loads(run(str(BIN / "ansible-doc"), "--json", "-t", "filter", f"kubenode.registry_mirror.{name}",
                             env=env))
        assert doc[f"kubenode.registry_mirror.{name}"]["doc"]["short_description"], name
    role_name = "kubenode.registry_mirror.containerd_mirror"
    role = json.loads(run(str(BIN / "ansible-doc"), "--json", "-t", "role", role_name, env=env))
    assert "containerd_mirror_url" in role[role_name]["entry_points"]["main"]["options"]

    # The installed copy runs from anywhere, with no reference to this checkout.
    playbook = tmp_path / "use.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"kubenode.registry_mirror.containerd_hosts": {
            "url": "https://mirror.example:5000", "registries": ["docker.io"], "config_path": str(tmp_path / "certs.d"),
        }}],
    }]))
    run(str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e",
        f"ansible_python_interpreter={sys.executable}", str(playbook), env=env, cwd=tmp_path)
    assert (tmp_path / "certs.d" / "docker.io" / "hosts.toml").is_file()
