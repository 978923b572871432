"""cri_pull through ansible-playbook with stand-ins for crictl and ctr (tests/fakes/node_programs.py).

Each task gets a PATH of its own (the task's environment): the machine's programs without crictl, ctr and
containerd, plus the stand-ins the case needs, so that what the module finds is what the case says.
"""

from __future__ import annotations

import os

import pytest
from fakes.node_programs import FakeProgram, path_without

MODULE = "kubenode.registry_mirror.cri_pull"
ENDPOINT = "unix:///run/containerd/containerd.sock"
HIDDEN = ("crictl", "ctr", "containerd")
# What crictl prints for a CRI pull containerd could not resolve: its klog line, then logrus' fatal line.
TINY_STDERR = (
    'E1204 10:00:00.000000    4242 remote_image.go:180] "PullImage from image service failed" err="rpc error: '
    'code = NotFound desc = failed to pull and unpack image \\"docker.io/library/tiny:1\\""\n'
    'time="2026-12-04T10:00:00Z" level=fatal msg="pulling image: rpc error: code = NotFound desc = failed to pull '
    'and unpack image \\"docker.io/library/tiny:1\\": failed to resolve reference \\"docker.io/library/tiny:1\\": '
    'unexpected status from HEAD request to https://127.0.0.1:5443/v2/infra/k8s/library/tiny/manifests/1?ns=docker.io: '
    '404 Not Found"\n'
)
TINY_ERROR = ('exit 1: pulling image: rpc error: code = NotFound desc = failed to pull and unpack image '
              '"docker.io/library/tiny:1": failed to resolve reference "docker.io/library/tiny:1": unexpected status '
              'from HEAD request to https://127.0.0.1:5443/v2/infra/k8s/library/tiny/manifests/1?ns=docker.io: 404 '
              'Not Found')
CTR_HELP_17 = ("NAME:\n   ctr images pull - pull an image from a remote\n\nOPTIONS:\n"
               "   --hosts-dir value  Custom hosts configuration directory\n"
               "   --local  Fetch content from local client rather than using transfer service (default: false)\n")


@pytest.fixture
def node(tmp_path):
    """The stand-ins and the PATHs of the cases: a PMK crictl at its own path, crictl or ctr on PATH, neither."""
    system = path_without(tmp_path / "system", HIDDEN)
    for directory in ("/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin"):  # get_bin_path looks there too
        if any(os.path.exists(os.path.join(directory, name)) for name in HIDDEN[:2]):
            pytest.skip(f"{directory} holds crictl or ctr: the cases without them cannot be made here")
    pmk = FakeProgram(tmp_path / "pf9-kube", "crictl", {
        "rules": [{"when": ["pull", "docker.io/library/tiny:1"], "exit": 1, "stderr": TINY_STDERR}],
        "default": {"stdout": "Image is up to date for sha256:1234\n"},
    })
    on_path = FakeProgram(tmp_path / "crictl-on-path", "crictl", {"default": {"stdout": "Image is up to date\n"}})
    ctr = FakeProgram(tmp_path / "ctr-on-path", "ctr", {
        "rules": [{"when": ["--help"], "stdout": CTR_HELP_17}],
        "default": {"stdout": "docker.io/library/pause:3.6: resolved\n"},
    })

    class Node:
        pass

    node = Node()
    node.pmk, node.on_path, node.ctr = pmk, on_path, ctr
    node.paths = {
        "none": str(system),
        "crictl": f"{on_path.directory}:{system}",
        "ctr": f"{ctr.directory}:{system}",
    }
    return node


def task(name, path, check_mode=False, **args):
    return {"name": name, MODULE: args, "environment": {"PATH": path}, "ignore_errors": True,
            "check_mode": check_mode}


def test_pulls_through_the_cri_and_fails_naming_the_image_and_crictls_error(run_playbook, node, tmp_path):
    crictl = str(node.pmk.path)
    run = run_playbook([
        task("ok", node.paths["none"], images=["pause:3.6", "registry.k8s.io/pause:3.6"], crictl=crictl),
        task("failing", node.paths["none"], images=["pause:3.6", "docker.io/library/tiny:1"], crictl=crictl),
        task("other endpoint", node.paths["none"], images=["pause:3.6"], crictl=crictl,
             runtime_endpoint="unix:///run/k3s/containerd/containerd.sock"),
    ])
    assert run.rc == 0, run.stdout + run.stderr
    ok = run.task_results("ok")
    assert ok.get("failed", False) is False, ok.get("msg")
    assert (ok["changed"], ok["method"], ok["client"], ok["verified"]) == (False, "cri", crictl, True)
    assert ok["pulls"] == [
        {"image": "pause:3.6", "method": "cri", "ok": True, "error": None,
         "command": [crictl, "-r", ENDPOINT, "pull", "pause:3.6"]},
        {"image": "registry.k8s.io/pause:3.6", "method": "cri", "ok": True, "error": None,
         "command": [crictl, "-r", ENDPOINT, "pull", "registry.k8s.io/pause:3.6"]},
    ]
    assert "warnings" not in ok

    failing = run.task_results("failing")
    assert failing["failed"] is True and failing["changed"] is False
    assert failing["msg"] == (f"1 of 2 images did not pull through containerd's CRI at {ENDPOINT} (crictl pull, as "
                              f"kubelet pulls). docker.io/library/tiny:1: {TINY_ERROR}")
    assert [pull["ok"] for pull in failing["pulls"]] == [True, False]
    assert failing["pulls"][1]["error"] == TINY_ERROR
    assert failing["verified"] is False

    assert run.task_results("other endpoint")["pulls"][0]["command"][1:3] == [
        "-r", "unix:///run/k3s/containerd/containerd.sock"]
    # crictl ran exactly as kubelet's path needs it, once per image, and ctr never
    assert node.pmk.calls == [
        ["-r", ENDPOINT, "pull", "pause:3.6"], ["-r", ENDPOINT, "pull", "registry.k8s.io/pause:3.6"],
        ["-r", ENDPOINT, "pull", "pause:3.6"], ["-r", ENDPOINT, "pull", "docker.io/library/tiny:1"],
        ["-r", "unix:///run/k3s/containerd/containerd.sock", "pull", "pause:3.6"],
    ]
    assert node.ctr.calls == node.on_path.calls == []


def test_without_the_pmk_crictl_the_one_on_path_then_ctr_with_a_warning_then_nothing(run_playbook, node, tmp_path):
    missing = str(tmp_path / "no" / "crictl")
    hosts_dir = str(tmp_path / "certs.d")
    run = run_playbook([
        task("crictl on PATH", node.paths["crictl"], images=["pause:3.6"], crictl=missing),
        task("ctr", node.paths["ctr"], images=["pause:3.6", "registry.k8s.io/pause"], crictl=missing,
             ctr_hosts_dir=hosts_dir),
        task("neither", node.paths["none"], images=["pause:3.6"], crictl=missing),
    ])
    assert run.rc == 0, run.stdout + run.stderr

    on_path = run.task_results("crictl on PATH")
    assert (on_path["method"], on_path["client"], on_path["verified"]) == ("cri", str(node.on_path.path), True)
    assert node.on_path.calls == [["-r", ENDPOINT, "pull", "pause:3.6"]]
    assert "warnings" not in on_path

    ctr = run.task_results("ctr")
    assert ctr.get("failed", False) is False, ctr.get("msg")
    assert (ctr["method"], ctr["client"], ctr["verified"]) == ("ctr", str(node.ctr.path), True)
    (warning,) = ctr["warnings"]
    assert f"No CRI client on the node ({missing} does not exist and there is no crictl on PATH)" in warning
    assert "proves the hosts.toml files but not kubelet's path" in warning
    # ctr takes only fully qualified names; --local because its help lists it (containerd 1.7, 2.x)
    pulls = [["--namespace", "k8s.io", "images", "pull", "--hosts-dir", hosts_dir, "--local", image]
             for image in ("docker.io/library/pause:3.6", "registry.k8s.io/pause:latest")]
    assert node.ctr.calls == [["images", "pull", "--help"], *pulls]
    assert [pull["method"] for pull in ctr["pulls"]] == ["ctr", "ctr"]

    neither = run.task_results("neither")
    assert neither.get("failed", False) is False, neither.get("msg")
    assert (neither["method"], neither["client"], neither["verified"]) == ("none", None, False)
    assert neither["pulls"] == [{"image": "pause:3.6", "method": "none", "ok": None, "error": None, "command": None}]
    assert neither["warnings"][0].startswith("Nothing was verified: no CRI client on the node")
    assert neither["msg"] == "nothing was verified: no CRI client and no ctr on the node"


def test_a_failing_ctr_pull_fails_and_names_the_files_it_proves(run_playbook, node, tmp_path):
    node.ctr.answer({"rules": [{"when": ["--help"], "stdout": "OPTIONS:\n   --hosts-dir value\n"}],
                     "default": {"exit": 1, "stderr": 'ctr: failed to resolve reference "docker.io/library/tiny:1": '
                                                      "docker.io/library/tiny:1: not found\n"}})
    run = run_playbook([task("ctr", node.paths["ctr"], images=["tiny:1"], crictl=str(tmp_path / "none"))])
    result = run.task_results("ctr")
    assert result["failed"] is True
    assert "1 of 1 image did not pull with ctr --hosts-dir /etc/containerd/certs.d (no CRI client on the node). " \
           'tiny:1: exit 1: ctr: failed to resolve reference "docker.io/library/tiny:1"' in result["msg"]
    assert node.ctr.calls[-1] == ["--namespace", "k8s.io", "images", "pull", "--hosts-dir", "/etc/containerd/certs.d",
                                  "docker.io/library/tiny:1"]  # no --local: containerd 1.6's ctr has none


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (["pause:3.6", "Pause:3.6"], "images[1]: 'Pause:3.6' is not a valid image reference: the repository name "
                                     "'Pause' must be lowercase"),
        (["pause:3.6", "registry.k8s.io/pause:-x"], "images[1]: 'registry.k8s.io/pause:-x' is not a valid image "
                                                    "reference: the tag '-x'"),
        ([], "images: lists no image"),
    ],
)
def test_an_invalid_reference_is_refused_before_anything_runs(run_playbook, node, images, message):
    run = run_playbook([task("invalid", node.paths["ctr"], images=images, crictl=str(node.pmk.path))])
    result = run.task_results("invalid")
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
    assert node.pmk.calls == node.ctr.calls == []


def test_check_mode_pulls_nothing_and_says_so(run_playbook, node):
    run = run_playbook([task("check", node.paths["ctr"], check_mode=True, images=["pause:3.6"],
                             crictl=str(node.pmk.path))])
    result = run.task_results("check")
    assert result.get("failed", False) is False, result.get("msg")
    assert result["msg"] == "check mode: nothing was pulled (1 image(s) with cri)"
    assert (result["changed"], result["verified"], result["pulls"][0]["ok"]) == (False, False, None)
    assert node.pmk.calls == node.ctr.calls == []
