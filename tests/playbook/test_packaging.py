"""The collection as users get it: built with ansible-galaxy, installed, documented, usable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = ["containerd_hosts", "containerd_config", "ca_certificate", "registry_preflight", "pmk_cluster_registry"]
FILTERS = ["basic_auth", "mirror_endpoint", "hosts_toml", "hosts_files"]
# What the tarball leaves out: the test suite, the test bed, the benchmark and its report, CI, the
# development pins and notes, unreleased changelog fragments.
DEV_ONLY = ("tests/", "testbed/", "molecule/", "bench/", "scripts/", ".cache/", ".venv/", ".config/", ".github/",
            ".ci/", "ee/", "execution-environment.yml", "constraints.txt", "requirements-test.txt", "DEVELOPERS.md",
            "changelogs/fragments/", "docs/benchmarks", ".ansible-lint", "ansible.cfg", "pyproject.toml")
# What it holds besides the plugins: the role, the playbooks, the docsite's guides and the changelog.
SHIPPED = ("roles/containerd_mirror/tasks/main.yml", "playbooks/configure-mirror.yml", "docs/docsite/extra-docs.yml",
           "docs/docsite/links.yml", "docs/docsite/rst/pmk_rollout.rst", "changelogs/changelog.yaml",
           "requirements.txt", "README.md")


def galaxy_version():
    return yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


@pytest.mark.parametrize("document", ["README.md", "docs/docsite/rst/airgapped.rst"])
def test_install_command_names_this_version(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    named = set(re.findall(r"kubenode-registry_mirror-([0-9][^ ]*?)\.tar\.gz", text))
    assert named == {galaxy_version()}, f"{document} installs {sorted(named)}, galaxy.yml says {galaxy_version()}"


def test_this_version_is_released_in_the_changelog():
    # antsibull-changelog release writes the release into changelog.yaml and CHANGELOG.rst; galaxy.yml's version
    # must be one that was released so, with its summary, or be the next one with a summary fragment waiting.
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    version = galaxy_version()
    if version in releases:
        assert releases[version]["changes"]["release_summary"].startswith(f"Release {version} ")
        assert f"\nv{version}\n" in (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")
    else:
        fragment = yaml.safe_load((ROOT / "changelogs" / "fragments" / "release-summary.yml").read_text())
        assert f"{version} " in fragment["release_summary"]


def run(*command, env=None, cwd=None):
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_build_install_document_and_use(tmp_path):
    version = galaxy_version()
    run(str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(tmp_path))
    tarball = tmp_path / f"kubenode-registry_mirror-{version}.tar.gz"
    assert tarball.is_file()
    listing = run("tar", "-tzf", str(tarball))
    paths = [line.removeprefix("./") for line in listing.splitlines()]
    for dev_only in DEV_ONLY:
        assert not [path for path in paths if path.startswith(dev_only)], dev_only
    for shipped in SHIPPED:
        assert shipped in paths, shipped

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
