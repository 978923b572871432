# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which attributes our modules support, by kind of module, written once.

The descriptions come from ansible.builtin.action_common_attributes (and its .files and .flow), which
each module extends too. A module's own attributes block adds only details; a value it sets wins.
"""

from __future__ import annotations


class ModuleDocFragment:
    # A module that writes files on the node (ca_certificate, containerd_config, containerd_hosts).
    NODE_FILES = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  safe_file_operations:
    support: full
  vault:
    support: none
  platform:
    platforms: posix
"""

    # A module that writes no file (node_restart, registry_preflight, pmk_cluster_registry).
    NO_FILES = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    # A module run through an action plugin of ours, which renders on the controller.
    ACTION = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""
