# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way this collection writes a file on a node."""

from __future__ import annotations

import os
import tempfile


def write_file(module, path, content):
    """Atomically replace path with content (bytes).

    The temporary file lives beside the target so the final rename is atomic,
    and a umask of 077 keeps the file unreadable to others until the caller
    applies the requested attributes: our files can hold credentials.
    """
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as tmp_file:
            tmp_file.write(content)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        old_umask = os.umask(0o077)
        try:
            module.atomic_move(tmp_path, path, unsafe_writes=module.params.get("unsafe_writes", False))
        finally:
            os.umask(old_umask)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
