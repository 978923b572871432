"""execution-environment.yml makes a build context: `scripts/ee.sh create` (ansible-builder create).

No container runtime is needed: this checks the Containerfile and the files ansible-builder
puts next to it, not the image (test_ee_runner.py builds and runs that).
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / ".cache" / "ee" / "context"


def pins(path):
    """name -> version of the name==version lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)$", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


@pytest.fixture(scope="module")
def context():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "ee.sh"), "create"], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == ".cache/ee/context/Containerfile"
    return CONTEXT


def test_containerfile_base_image_and_pins(context):
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    containerfile = (context / "Containerfile").read_text()
    base = definition["images"]["base_image"]["name"]
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile

    # ansible-core and ansible-runner as constraints.txt pins them; every pip install of the builder
    # stage (the collection's requirements among them) at constraints.txt's pins.
    test_pins = pins(ROOT / "constraints.txt")
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"$', containerfile, re.M).group(1).split()
    assert sorted(refs) == sorted([f"ansible-core=={test_pins['ansible-core']}",
                                   f"ansible-runner=={test_pins['ansible-runner']}"])
    builder = containerfile.split("FROM base AS builder", 1)[1].split("\nFROM ", 1)[0]
    constraint = builder.index("ENV PIP_CONSTRAINT=/build/constraints.txt")
    assert constraint < builder.index("RUN /output/scripts/assemble"), builder
    assert (context / "_build" / "configs" / "constraints.txt").read_text() == (ROOT / "constraints.txt").read_text()

    # The collection from the local tarball, nothing from Galaxy; the runner's home as AWX expects.
    assert "ansible-galaxy collection install" in containerfile
    assert "LABEL ansible-execution-environment=true" in containerfile
    assert "WORKDIR /runner" in containerfile
    assert not re.search(r"galaxy\.ansible\.com|--server|\bhttps?://", containerfile)


def test_python_and_system_requirements(context):
    build = context / "_build"
    wanted = {re.split(r"[<>=!~ ]", line, maxsplit=1)[0].lower()
              for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert wanted == {"tomli-w", "tomlkit"}
    listed = {re.split(r"[<>=!~ ]", line, maxsplit=1)[0].lower()
              for line in (build / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert listed == wanted
    bindep = (build / "bindep.txt").read_text()
    assert "openssh-client [platform:dpkg]" in bindep  # ssh, ssh-agent: SSH and AWX machine credentials


def test_collection_comes_from_this_checkout_as_a_tarball(context):
    build = context / "_build"
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    assert requirements == {"collections": [
        {"name": "/build/collection/kubenode-registry_mirror.tar.gz", "type": "file"},
    ]}
    tarball = build / "collection" / "kubenode-registry_mirror.tar.gz"
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
        names = set(archive.getnames())
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
        galaxy["namespace"], galaxy["name"], galaxy["version"])
    # Every module, filter and the role of this tree, and the controller requirements next to them
    # (ansible-builder's introspection reads a collection's requirements.txt).
    for path in [*(ROOT / "plugins" / "modules").glob("*.py"), *(ROOT / "plugins" / "filter").glob("*"),
                 ROOT / "roles" / "containerd_mirror" / "tasks" / "main.yml", ROOT / "requirements.txt",
                 ROOT / "playbooks" / "configure-mirror.yml"]:
        if path.name != "__pycache__":
            assert str(path.relative_to(ROOT)) in names
    assert not any(name.startswith(("testbed/", "molecule/", ".cache/")) for name in names)
