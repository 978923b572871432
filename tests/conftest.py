"""Make the collection importable as ansible_collections.kubenode.registry_mirror.

ansible-test runs from a checkout at ansible_collections/kubenode/registry_mirror
already; a plain clone is linked into such a tree under the temp directory.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _collections_dir():
    if ROOT.parent.name == "kubenode" and ROOT.parents[1].name == "ansible_collections":
        return ROOT.parents[2]
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"kubenode-collections-{digest}"
    link = base / "ansible_collections" / "kubenode" / "registry_mirror"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)
    return base


COLLECTIONS_DIR = _collections_dir()
if str(COLLECTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_DIR))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_DIR)
