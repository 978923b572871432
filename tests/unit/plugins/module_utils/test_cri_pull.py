"""_cri_pull: which client proves a pull, the command it runs, and how its answer is worded."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _cri_pull as cri
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError

PMK_CRICTL = "/opt/pf9/pf9-kube/bin/crictl"
ENDPOINT = "unix:///run/containerd/containerd.sock"
HOSTS_DIR = "/etc/containerd/certs.d"
# crictl's stderr for a pull the CRI could not resolve: a klog line, then logrus' fatal line.
CRICTL_STDERR = (
    'E1204 10:00:00.000000    4242 remote_image.go:180] "PullImage from image service failed" err="rpc error: '
    'code = Unknown desc = failed to pull and unpack image \\"docker.io/library/tiny:1\\"" image="tiny:1"\n'
    'time="2026-12-04T10:00:00Z" level=fatal msg="pulling image: rpc error: code = Unknown desc = failed to pull '
    'and unpack image \\"docker.io/library/tiny:1\\": failed to resolve reference \\"docker.io/library/tiny:1\\": '
    'failed to do request: Head \\"https://dockermirror.platform9.io/v2/library/tiny/manifests/1\\": dial tcp: '
    'lookup dockermirror.platform9.io: no such host"\n'
)


def lookup(executables=(), on_path=None):
    """is_executable and which over a made-up node: executables are files, on_path maps a name to its path."""
    on_path = on_path or {}
    return (lambda path: path in executables), on_path.get


@pytest.mark.parametrize(
    ("crictl", "executables", "on_path", "client"),
    [
        (PMK_CRICTL, [PMK_CRICTL], {"crictl": "/usr/bin/crictl", "ctr": "/usr/bin/ctr"}, ("cri", PMK_CRICTL)),
        (PMK_CRICTL, [], {"crictl": "/usr/bin/crictl", "ctr": "/usr/bin/ctr"}, ("cri", "/usr/bin/crictl")),
        ("/no/such/crictl", [], {"crictl": "/usr/bin/crictl"}, ("cri", "/usr/bin/crictl")),
        (PMK_CRICTL, [], {"ctr": "/usr/bin/ctr"}, ("ctr", "/usr/bin/ctr")),
        (PMK_CRICTL, [], {}, ("none", None)),
        ("", [], {"ctr": "/usr/bin/ctr"}, ("ctr", "/usr/bin/ctr")),
    ],
)
def test_the_client_is_crictl_first_then_crictl_on_path_then_ctr(crictl, executables, on_path, client):
    assert cri.choose_client(crictl, *lookup(executables, on_path)) == client


@pytest.mark.parametrize(
    ("client", "local", "image", "argv"),
    [
        (cri.Client("cri", PMK_CRICTL), False, "pause:3.6", [PMK_CRICTL, "-r", ENDPOINT, "pull", "pause:3.6"]),
        (cri.Client("ctr", "/usr/bin/ctr"), False, "pause:3.6",
         ["/usr/bin/ctr", "--namespace", "k8s.io", "images", "pull", "--hosts-dir", HOSTS_DIR,
          "docker.io/library/pause:3.6"]),
        (cri.Client("ctr", "/usr/bin/ctr"), True, "registry.k8s.io/pause",
         ["/usr/bin/ctr", "--namespace", "k8s.io", "images", "pull", "--hosts-dir", HOSTS_DIR, "--local",
          "registry.k8s.io/pause:latest"]),
    ],
)
def test_the_pull_command(client, local, image, argv):
    (parsed,) = cri.parse_images([image])
    assert cri.pull_argv(client, parsed, ENDPOINT, HOSTS_DIR, local) == argv


def test_no_client_runs_nothing():
    with pytest.raises(ValueError):
        cri.pull_argv(cri.Client("none", None), cri.parse_images(["pause"])[0], ENDPOINT, HOSTS_DIR)


def test_every_pull_is_bounded_by_timeout():
    assert cri.with_timeout(["crictl", "pull", "x"], 30) == ["timeout", "-k", "5", "30", "crictl", "pull", "x"]


@pytest.mark.parametrize(
    ("help_text", "local"),
    [
        ("OPTIONS:\n   --hosts-dir value  Custom hosts configuration directory\n", False),  # 1.6
        ("OPTIONS:\n   --local  Fetch content from local client rather than using transfer service (default: "
         "false)\n", True),  # 1.7, 2.x
        ("--localize-it", False),
        ("", False),
    ],
)
def test_local_where_ctr_lists_it(help_text, local):
    assert cri.ctr_has_local(help_text) is local


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "error"),
    [
        (0, "Image is up to date for sha256:abc\n", "", None),
        (124, "", "", "the pull did not finish within 30 seconds"),
        (127, "", "", "the client was not found"),
        (1, "", CRICTL_STDERR,
         'exit 1: pulling image: rpc error: code = Unknown desc = failed to pull and unpack image '
         '"docker.io/library/tiny:1": failed to resolve reference "docker.io/library/tiny:1": failed to do request: '
         'Head "https://dockermirror.platform9.io/v2/library/tiny/manifests/1": dial tcp: lookup '
         "dockermirror.platform9.io: no such host"),
        (1, "", 'ctr: failed to resolve reference\n  "x": not found\n',
         'exit 1: ctr: failed to resolve reference "x": not found'),
        (2, "only on stdout\n", "", "exit 2: only on stdout"),
        (3, "", "", "exit 3 without a message"),
    ],
)
def test_a_pull_error_is_the_clients_own_words(rc, stdout, stderr, error):
    assert cri.pull_error(rc, stdout, stderr, 30) == error


def test_a_long_error_is_cut():
    assert len(cri.pull_error(1, "", "x" * 5000, 30)) < 2100


def test_the_failure_names_each_image_and_its_error():
    message = cri.failure_message(cri.Client("cri", PMK_CRICTL), [("tiny:1", "exit 1: not found")], 2, ENDPOINT,
                                  HOSTS_DIR)
    assert message == (f"1 of 2 images did not pull through containerd's CRI at {ENDPOINT} (crictl pull, as kubelet "
                       "pulls). tiny:1: exit 1: not found")
    message = cri.failure_message(cri.Client("ctr", "/usr/bin/ctr"), [("tiny:1", "exit 1: x")], 1, ENDPOINT,
                                  HOSTS_DIR)
    assert message.startswith(f"1 of 1 image did not pull with ctr --hosts-dir {HOSTS_DIR} (no CRI client")


def test_the_warnings_say_what_was_not_proven():
    fallback = cri.fallback_warning(PMK_CRICTL, HOSTS_DIR)
    assert f"{PMK_CRICTL} does not exist and there is no crictl on PATH" in fallback
    assert "proves the hosts.toml files but not kubelet's path" in fallback
    assert "config_path" in fallback
    assert cri.nothing_warning(PMK_CRICTL).startswith("Nothing was verified: no CRI client on the node")


@pytest.mark.parametrize(
    ("images", "field", "problem"),
    [
        ([], "images", "lists no image"),
        ("pause:3.6", "images", "must be a list"),
        (["pause:3.6", "Pause:3.6"], "images[1]", "'Pause:3.6' is not a valid image reference"),
        (["pause:3.6", ""], "images[1]", "must not be empty"),
    ],
)
def test_every_image_is_checked_first(images, field, problem):
    with pytest.raises(RegistrySettingError) as raised:
        cri.parse_images(images)
    assert raised.value.field == field and problem in raised.value.problem
