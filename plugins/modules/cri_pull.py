#!/usr/bin/python
# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cri_pull
short_description: Pull images the way kubelet does, through containerd's CRI, to prove the node's mirrors
version_added: 1.1.0
description:
  - Pulls each of O(images) with C(crictl -r <runtime_endpoint> pull <image>), through containerd's CRI
    (C(runtime.v1.ImageService/PullImage)), the path kubelet pulls every image by, the pod sandbox image included.
    The CRI finds a registry's hosts only through C(config_path) in containerd's effective configuration, so
    only such a pull proves that kubelet's pulls use the mirrors.
  - The CRI client is O(crictl) (by default the one a Platform9 (PMK) node ships), else C(crictl) on C(PATH).
  - A pull that fails fails the task, naming the image and the client's error, which names the host containerd
    tried. Every image is tried.
  - Only on a node without a CRI client, each image is pulled with
    C(ctr --namespace k8s.io images pull --hosts-dir <ctr_hosts_dir> <image>) instead (with C(--local) where
    C(ctr images pull --help) lists it, containerd 1.7 and 2.x), with a warning; ctr reads the certs.d files
    directly and never looks at containerd's configuration, so this proves the files, not kubelet's path.
  - Without a CRI client and without ctr, nothing is pulled and nothing fails; a warning and RV(verified) say
    that nothing was verified.
  - Every image reference is checked before anything runs; one that is not a valid reference fails the task,
    naming the option and the value.
  - A check, not a change - the task never reports changed. In check mode nothing is pulled.
author:
  - kubenode maintainers (@kubenode)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubenode.registry_mirror.attributes.no_files
attributes:
  check_mode:
    details: The images are checked and the client is looked up; nothing is pulled, and the result says so.
options:
  images:
    description:
      - The images to pull, as kubelet names them, for example C(registry.k8s.io/pause:3.6) or C(pause:3.6)
        (Docker Hub's C(docker.io/library/pause:3.6)).
      - Each must be a valid image reference - C([host[:port]/]path[:tag][@digest]), the path in lowercase.
    type: list
    elements: str
    required: true
  crictl:
    description:
      - Path of the CRI client. When it is not an executable file, C(crictl) on C(PATH) is used.
    type: str
    default: /opt/pf9/pf9-kube/bin/crictl
  runtime_endpoint:
    description:
      - containerd's CRI socket, as crictl's C(-r) takes it.
    type: str
    default: unix:///run/containerd/containerd.sock
  timeout:
    description:
      - Seconds each pull may take; a pull still running then is stopped and fails.
    type: int
    default: 300
  ctr_hosts_dir:
    description:
      - The certs.d directory ctr reads the hosts from, used only when the node has no CRI client.
    type: str
    default: /etc/containerd/certs.d
notes:
  - The pulls need access to containerd's socket, which is root's (and C(pf9)'s on a PMK node); use become.
  - An image already present is still resolved through the registry hosts by a CRI pull.
seealso:
  - module: kubenode.registry_mirror.containerd_hosts
    description: Writes the hosts.toml files this module proves.
  - module: kubenode.registry_mirror.registry_preflight
    description: Checks the mirrors, and the node's sandbox image on them, before anything changes.
  - name: crictl
    description: The CRI command line client (cri-tools).
    link: https://github.com/kubernetes-sigs/cri-tools/blob/master/docs/crictl.md
"""

EXAMPLES = r"""
- name: Prove that kubelet's pulls go through the mirror, with the sandbox image every pod needs
  kubenode.registry_mirror.cri_pull:
    images:
      - registry.k8s.io/pause:3.6
      - docker.io/library/busybox:1.36
  become: true

- name: The same with a CRI client elsewhere and a longer time for big images
  kubenode.registry_mirror.cri_pull:
    images: [quay.io/prometheus/node-exporter:v1.8.2]
    crictl: /usr/local/bin/crictl
    timeout: 900
  become: true
"""

RETURN = r"""
pulls:
  description: One entry per image of O(images), in order.
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: The image as given.
      type: str
      sample: registry.k8s.io/pause:3.6
    method:
      description:
        - V(cri) pulled through containerd's CRI with crictl; V(ctr) with ctr and O(ctr_hosts_dir) (no CRI client);
          V(none) not pulled (no client at all).
      type: str
      sample: cri
    ok:
      description: Whether the pull succeeded; null when it was not tried (no client, or check mode).
      type: bool
      sample: true
    error:
      description: The client's error when the pull failed, which names the host containerd tried; else null.
      type: str
      sample: >-
        exit 1: pulling image: rpc error: code = NotFound desc = failed to pull and unpack image
        "registry.k8s.io/pause:3.6": failed to resolve reference "registry.k8s.io/pause:3.6":
        registry.k8s.io/pause:3.6: not found
    command:
      description: The command that pulled it; null when none ran.
      type: list
      elements: str
      sample:
        - /opt/pf9/pf9-kube/bin/crictl
        - -r
        - unix:///run/containerd/containerd.sock
        - pull
        - registry.k8s.io/pause:3.6
method:
  description: V(cri), V(ctr) or V(none), as in RV(pulls[].method).
  returned: always
  type: str
  sample: cri
client:
  description: Path of the program that pulled (or would pull, in check mode); null when there is none.
  returned: always
  type: str
  sample: /opt/pf9/pf9-kube/bin/crictl
verified:
  description:
    - True when every image was pulled (through the CRI, or with ctr when there is no CRI client; RV(method) says
      which); false when nothing was pulled (no client, or check mode).
  returned: always
  type: bool
  sample: true
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _cri_pull as cri
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import module_argument_spec

# Where a node's own binaries are when the module's PATH (a non-login shell's) misses them.
_EXTRA_DIRS = ["/usr/local/bin"]


def _is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _pull(module, client, image, ctr_local):
    params = module.params
    argv = cri.pull_argv(client, image, params["runtime_endpoint"], params["ctr_hosts_dir"], ctr_local)
    rc, stdout, stderr = module.run_command(cri.with_timeout(argv, params["timeout"]))
    error = cri.pull_error(rc, stdout, stderr, params["timeout"])
    return {"image": image.given, "method": client.method, "ok": error is None, "error": error, "command": argv}


def main():
    module = AnsibleModule(
        argument_spec=module_argument_spec("cri_pull"),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, pulls=[], method=cri.NONE, client=None, verified=False)
    try:
        images = cri.parse_images(params["images"])
    except RegistrySettingError as error:
        module.fail_json(msg=str(error), **result)
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout: must be positive", **result)

    def which(name):
        return module.get_bin_path(name, opt_dirs=_EXTRA_DIRS)

    client = cri.choose_client(params["crictl"], _is_executable, which)
    result.update(method=client.method, client=client.path)
    not_tried = [{"image": image.given, "method": client.method, "ok": None, "error": None, "command": None}
                 for image in images]
    if module.check_mode:
        result["pulls"] = not_tried
        module.exit_json(msg=f"check mode: nothing was pulled ({len(images)} image(s) with {client.method})",
                         **result)
    if client.method == cri.NONE:
        module.warn(cri.nothing_warning(params["crictl"]))
        result["pulls"] = not_tried
        module.exit_json(msg="nothing was verified: no CRI client and no ctr on the node", **result)
    ctr_local = False
    if client.method == cri.CTR:
        module.warn(cri.fallback_warning(params["crictl"], params["ctr_hosts_dir"]))
        _rc, help_out, help_err = module.run_command([client.path, "images", "pull", "--help"])
        ctr_local = cri.ctr_has_local(help_out + help_err)
    result["pulls"] = [_pull(module, client, image, ctr_local) for image in images]
    failures = [(pull["image"], pull["error"]) for pull in result["pulls"] if not pull["ok"]]
    if failures:
        module.fail_json(msg=cri.failure_message(client, failures, len(images), params["runtime_endpoint"],
                                                 params["ctr_hosts_dir"]), **result)
    result["verified"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
