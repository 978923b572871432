# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What cri_pull decides: which client proves a pull, the command it runs, and how its answer is worded.

Pure Python with no Ansible imports, standard library only and Python 3.8+; the module does the looking up
and the running. kubelet pulls through containerd's CRI, which finds a registry's hosts only through
config_path in containerd's effective configuration; crictl takes that same path. ctr --hosts-dir reads the
certs.d files directly, so a pull by ctr proves the files and not kubelet's path: it is the fallback for a
node without a CRI client only, and says so.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Sequence

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import parse_image_reference
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    type_name,
)

# PMK ships its CRI client here; nodelet's own scripts call it with -r and this endpoint.
DEFAULT_CRICTL = "/opt/pf9/pf9-kube/bin/crictl"
DEFAULT_ENDPOINT = "unix:///run/containerd/containerd.sock"
DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d"
CRI, CTR, NONE = "cri", "ctr", "none"
# The CRI keeps kubelet's images in containerd's k8s.io namespace.
CTR_NAMESPACE = "k8s.io"
# timeout(1): the time ran out (124); seconds given to a client that ignores SIGTERM before SIGKILL.
TIMED_OUT = 124
KILL_AFTER = 5
_NOT_RUN = {126: "could not be run (permission denied?)", 127: "was not found"}
# crictl logs its final error through logrus: level=fatal msg="pulling image: rpc error: ... desc = ...".
_FATAL = re.compile(r'level=fatal msg="((?:[^"\\]|\\.)*)"')
_ESCAPED = re.compile(r"\\(.)")
MAX_ERROR = 2000

Client = namedtuple("Client", ["method", "path"])
"""The program that proves the pulls: method cri (crictl), ctr (the fallback) or none; path None for none."""
Image = namedtuple("Image", ["given", "reference"])
"""An image as the task gives it, and its checked ImageReference."""


def parse_images(images, field="images"):
    """Every image checked before anything runs; an error names field[index] and the value."""
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise RegistrySettingError(field, f"must be a list of image references, got {type_name(images)}")
    if not images:
        raise RegistrySettingError(field, "lists no image")
    return [Image(image, parse_image_reference(image, f"{field}[{index}]")) for index, image in enumerate(images)]


def choose_client(crictl, is_executable, which):
    """The client to pull with: crictl at its path when it is an executable file, else crictl on PATH; without a
    CRI client, ctr on PATH; else none. is_executable(path) and which(name) -> path or None do the looking."""
    if crictl and is_executable(crictl):
        return Client(CRI, crictl)
    for method, name in ((CRI, "crictl"), (CTR, "ctr")):
        found = which(name)
        if found:
            return Client(method, found)
    return Client(NONE, None)


def ctr_has_local(help_text):
    """Whether `ctr images pull --help` lists --local (containerd 1.7 and 2.x): without it, their ctr pulls
    through the transfer service, which does not take --hosts-dir's files for the pull."""
    return re.search(r"(?:^|\s)--local\b", help_text or "") is not None


def pull_argv(client, image, endpoint, hosts_dir, ctr_local=False):
    """The command that pulls image (an ImageReference) with client: as kubelet names it to the CRI (crictl
    normalises as the CRI does), fully qualified to ctr (which does not)."""
    if client.method == CRI:
        return [client.path, "-r", endpoint, "pull", image.given]
    if client.method == CTR:
        local = ["--local"] if ctr_local else []
        return [client.path, "--namespace", CTR_NAMESPACE, "images", "pull", "--hosts-dir", hosts_dir, *local,
                str(image.reference)]
    raise ValueError("no client: nothing to run")


def with_timeout(argv, seconds):
    """argv bounded to seconds by timeout(1), then killed KILL_AFTER seconds later if it ignores SIGTERM."""
    return ["timeout", "-k", str(KILL_AFTER), str(seconds), *argv]


def _condensed(text):
    return " ".join(text.split())


def pull_error(rc, stdout, stderr, timeout):
    """Why a pull that exited rc failed, in the client's own words (None when it succeeded)."""
    if rc == 0:
        return None
    if rc == TIMED_OUT:
        return f"the pull did not finish within {timeout} seconds"
    if rc in _NOT_RUN:
        return f"the client {_NOT_RUN[rc]}"
    fatal = _FATAL.findall(stderr or "")
    said = _ESCAPED.sub(r"\1", fatal[-1]) if fatal else _condensed(stderr or "") or _condensed(stdout or "")
    said = said if len(said) <= MAX_ERROR else said[:MAX_ERROR] + "..."
    return f"exit {rc}: {said}" if said else f"exit {rc} without a message"


def failure_message(client, failures, count, endpoint, hosts_dir):
    """The task's message when pulls failed: each image with its client's error (which names the host tried)."""
    through = (f"through containerd's CRI at {endpoint} (crictl pull, as kubelet pulls)" if client.method == CRI
               else f"with ctr --hosts-dir {hosts_dir} (no CRI client on the node)")
    listed = "; ".join(f"{image}: {error}" for image, error in failures)
    return f"{len(failures)} of {count} image{'s' if count > 1 else ''} did not pull {through}. {listed}"


def fallback_warning(crictl, hosts_dir):
    return (f"No CRI client on the node ({crictl} does not exist and there is no crictl on PATH): the images were "
            f"pulled with ctr --hosts-dir {hosts_dir}, which proves the hosts.toml files but not kubelet's path "
            "(containerd's CRI reads them only through config_path in its effective configuration). Install crictl "
            "or give its path in crictl.")


def nothing_warning(crictl):
    return (f"Nothing was verified: no CRI client on the node ({crictl} does not exist and there is no crictl on "
            "PATH) and no ctr. Install crictl or give its path in crictl.")
