"""Make the collection importable as ansible_collections.kubenode.registry_mirror, tests/fakes as fakes
and bench/playbook_runner.py as playbook_runner.

ansible-test runs from a tree at ansible_collections/kubenode/registry_mirror
already; a git checkout is linked into .cache/collections, as scripts/venv.sh does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _collections_dir():
    if ROOT.parent.name == "kubenode" and ROOT.parents[1].name == "ansible_collections":
        return ROOT.parents[2]
    base = ROOT / ".cache" / "collections"
    link = base / "ansible_collections" / "kubenode" / "registry_mirror"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."), target_is_directory=True)
    return base


COLLECTIONS_DIR = _collections_dir()
# The collection, tests/ itself for the stand-in servers in tests/fakes, and bench/ for the
# ansible-playbook runner that tests/playbook shares with the benchmark.
for path in (COLLECTIONS_DIR, ROOT / "tests", ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_DIR)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """CAs and certificates made by openssl (tests/fakes/tls_registry.py), shared by the tests."""
    from fakes.tls_registry import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def open_dir():
    """A directory every user can enter (pytest's own temp tree is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="kubenode-open-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)
