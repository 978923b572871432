# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option of the modules that download the mirror's CA from a URL (ca_url), besides ca_url itself."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ca_validate_certs:
    description:
      - Verify the TLS certificate of O(ca_url) against the node's trust store.
    type: bool
    default: true
"""
