"""registry_preflight checks the node's sandbox image on the mirrors of its registry, before anything changes.

Two fake mirrors (tests/fakes/tls_registry.py) hold the manifests a case gives them and record every HEAD; a
stand-in containerd (tests/fakes/node_programs.py) prints a `config dump` when the image is read on the node, on a
PATH without this machine's own containerd.
"""

from __future__ import annotations

import base64
import json

import pytest
from fakes import tls_registry as fake
from fakes.node_programs import FakeProgram, path_without

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._sandbox_image import MANIFEST_ACCEPT

MODULE = "kubenode.registry_mirror.registry_preflight"
USER = "robot$sandbox"
PASSWORD = "Zq8-SANDBOXSECRET-wü-4417"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")
PAUSE = "registry.k8s.io/pause:3.6"
DUMP_1X = '[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    sandbox_image = "registry.k8s.io/pause:3.6"\n'
DUMP_2X = ("[plugins]\n  [plugins.'io.containerd.cri.v1.images'.pinned_images]\n"
           "    sandbox = 'registry.k8s.io/pause:3.10'\n")


@pytest.fixture(scope="module")
def servers(pki):
    users = {USER: PASSWORD}
    with fake.TlsRegistry(pki, users=users) as first, fake.TlsRegistry(pki, users=users) as second:
        yield first, second


@pytest.fixture
def mirrors(servers):
    for server in servers:
        server.clear()
        server.manifests = set()
    return servers


@pytest.fixture(scope="module")
def node_path(tmp_path_factory):
    """A stand-in containerd first on PATH, and the PATH without any containerd: (with, without, the stand-in)."""
    without = path_without(tmp_path_factory.mktemp("path"), ("containerd",))
    containerd = FakeProgram(tmp_path_factory.mktemp("bin"), "containerd", {"default": {"stdout": DUMP_1X}})
    return f"{containerd.directory}:{without}", str(without), containerd


def mirror(server, pki, repo_path=None, **settings):
    settings = dict({"url": server.url, "username": USER, "password": "{{ mirror_password }}",
                     "ca_content": pki.ca.read_text()}, **settings)
    return dict(settings, repo_path=repo_path) if repo_path else settings


def task(name, path, **args):
    return {"name": name, MODULE: args, "ignore_errors": True, "environment": {"PATH": path}}


def heads(server):
    return [(r.path, r.query) for r in server.requests if r.method == "HEAD"]


def assert_no_secret(run):
    output = run.stdout + run.stderr
    assert PASSWORD not in output and AUTHORIZATION.split()[1] not in output


def test_mirror_only_the_first_mirror_with_the_image_passes_none_fails_naming_each(run_playbook, mirrors, pki,
                                                                                   node_path):
    first, second = mirrors
    second.manifests = {"k8s/pause:3.6"}
    _with, without, _containerd = node_path
    only = {"registry.k8s.io": {"mirrors": [mirror(first, pki, "k8s"), mirror(second, pki, "k8s")],
                                "upstream_fallback": False}}
    run = run_playbook([
        task("second has it", without, registry_mirrors=only, sandbox_image=PAUSE),
        task("none has it", without, registry_mirrors=only, sandbox_image="registry.k8s.io/pause:3.10"),
        task("none has it, fallback", without, sandbox_image="registry.k8s.io/pause:3.10",
             registry_mirrors={"registry.k8s.io": dict(only["registry.k8s.io"], upstream_fallback=True)}),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)
    head = "/v2/k8s/pause/manifests/%s?ns=registry.k8s.io"

    passed = run.task_results("second has it")
    assert passed.get("failed", False) is False, passed.get("msg")
    assert passed["sandbox"] == {
        "image": PAUSE, "source": "sandbox_image", "reference": PAUSE,
        "served_by": 'registry_mirrors["registry.k8s.io"]', "upstream_fallback": False, "found": True,
        "tried": [
            {"url": first.url + head % "3.6", "field": 'registry_mirrors["registry.k8s.io"].mirrors[0]', "status": 404,
             "why": f"{first.url + head % '3.6'} answered HTTP 404 (not on this mirror)"},
            {"url": second.url + head % "3.6", "field": 'registry_mirrors["registry.k8s.io"].mirrors[1]',
             "status": 200},
        ],
    }
    assert "warnings" not in passed

    failed = run.task_results("none has it")
    assert failed["failed"] is True
    message = failed["msg"]
    assert message.startswith("The sandbox image registry.k8s.io/pause:3.10 (sandbox_image), which every new pod on "
                              "this node needs, is on none of the mirrors of registry.k8s.io "
                              '(registry_mirrors["registry.k8s.io"]), and upstream_fallback is false for it')
    for server in (first, second):
        assert f"{server.url + head % '3.10'} answered HTTP 404 (not on this mirror)" in message
    assert failed["sandbox"]["found"] is False and len(failed["sandbox"]["tried"]) == 2

    warned = run.task_results("none has it, fallback")
    assert warned.get("failed", False) is False, warned.get("msg")
    (warning,) = warned["warnings"]
    assert warning.startswith("The sandbox image registry.k8s.io/pause:3.10 (sandbox_image) is on none of the mirrors "
                              "of registry.k8s.io")
    assert "containerd will pull it from registry.k8s.io itself (upstream_fallback)" in warning

    # each mirror was asked exactly as containerd asks: HEAD, its repo path, ns, Accept, the credentials
    assert heads(first) == [("/v2/k8s/pause/manifests/3.6", {"ns": ["registry.k8s.io"]})] + [
        ("/v2/k8s/pause/manifests/3.10", {"ns": ["registry.k8s.io"]})] * 2
    assert heads(second) == [(f"/v2/k8s/pause/manifests/{tag}", {"ns": ["registry.k8s.io"]})
                             for tag in ("3.6", "3.10", "3.10")]
    for request in [r for server in mirrors for r in server.requests if r.method == "HEAD"]:
        assert request.header("Accept") == MANIFEST_ACCEPT
        assert request.header("Authorization") == AUTHORIZATION


def test_docker_hub_names_the_wildcard_and_the_pmk_mirror(run_playbook, mirrors, pki, node_path):
    first, second = mirrors
    first.manifests = {"dockerhub-proxy/library/pause:3.6", "all/org/app:1", "infra/k8s/pause:3.6"}
    _with, without, _containerd = node_path
    pmk = {"url": first.url, "repo_path": "infra/k8s", "username": USER, "password": "{{ mirror_password }}",
           "ca_file": str(pki.ca), "upstream_fallback": False}
    run = run_playbook([
        task("docker hub", without, sandbox_image="pause:3.6",
             registry_mirrors={"docker.io": {"mirrors": [mirror(first, pki, "dockerhub-proxy")],
                                             "upstream_fallback": False}}),
        task("wildcard", without, sandbox_image="quay.io/org/app:1",
             registry_mirrors={"*": {"mirrors": [mirror(first, pki, "all")], "repo_path_for_all": True,
                                     "upstream_fallback": False}}),
        task("pmk mirror", without, sandbox_image=PAUSE, **pmk),
        task("pmk mirror, pmk names", without, sandbox_image=PAUSE, customRegistryUrl=first.url,
             customRegistryRepoPath="infra/k8s", customRegistryUsername=USER,
             customRegistryPassword="{{ mirror_password }}", ca_file=str(pki.ca), upstream_fallback=False),
        task("pmk mirror, not one of its registries", without, sandbox_image="ghcr.io/org/pause:1", **pmk),
        task("on the mirror's own host", without, sandbox_image=f"127.0.0.1:{first.port}/pause:3.6", **pmk),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    for name in ("docker hub", "wildcard", "pmk mirror", "pmk mirror, pmk names"):
        result = run.task_results(name)
        assert result.get("failed", False) is False, (name, result.get("msg"))
        assert result["sandbox"]["found"] is True, name
    assert run.task_results("docker hub")["sandbox"]["reference"] == "docker.io/library/pause:3.6"
    assert run.task_results("pmk mirror")["sandbox"]["served_by"] == "url"
    for name in ("pmk mirror, not one of its registries", "on the mirror's own host"):
        result = run.task_results(name)
        assert result.get("failed", False) is False, (name, result.get("msg"))
        assert (result["sandbox"]["served_by"], result["sandbox"]["found"], result["sandbox"]["tried"]) == (
            None, None, []), name
    assert heads(first) == [
        ("/v2/dockerhub-proxy/library/pause/manifests/3.6", {"ns": ["docker.io"]}),
        ("/v2/all/org/app/manifests/1", {"ns": ["quay.io"]}),
        ("/v2/infra/k8s/pause/manifests/3.6", {"ns": ["registry.k8s.io"]}),
        ("/v2/infra/k8s/pause/manifests/3.6", {"ns": ["registry.k8s.io"]}),
    ]


def test_the_image_is_read_from_containerd_config_dump_when_not_given(run_playbook, mirrors, pki, node_path, tmp_path):
    first, _second = mirrors
    first.manifests = {"k8s/pause:3.6", "k8s/pause:3.10"}
    with_containerd, without, containerd = node_path
    config = str(tmp_path / "config.toml")
    only = {"registry.k8s.io": {"mirrors": [mirror(first, pki, "k8s")], "upstream_fallback": False}}
    fallback = {"registry.k8s.io": [mirror(first, pki, "k8s")]}
    run = run_playbook([
        task("1.x", with_containerd, registry_mirrors=only, containerd_config=config),
        {"name": "a 2.x dump", "ansible.builtin.copy": {
            "dest": str(containerd.directory / "containerd.json"),
            "content": json.dumps({"default": {"stdout": DUMP_2X}})}},
        task("2.x", with_containerd, registry_mirrors=only),
        {"name": "a failing dump", "ansible.builtin.copy": {
            "dest": str(containerd.directory / "containerd.json"),
            "content": json.dumps({"default": {"exit": 1, "stderr": "containerd: failed to load TOML: bad"}})}},
        task("dump fails, mirror only", with_containerd, registry_mirrors=only),
        task("dump fails, fallback", with_containerd, registry_mirrors=fallback),
        task("no containerd, mirror only", without, registry_mirrors=only),
        task("no containerd, fallback", without, registry_mirrors=fallback),
        {"name": "a dump naming a bad image", "ansible.builtin.copy": {
            "dest": str(containerd.directory / "containerd.json"),
            "content": json.dumps({"default": {"stdout": DUMP_1X.replace("pause:3.6", "Pause:3.6")}})}},
        task("bad image in the dump, fallback", with_containerd, registry_mirrors=fallback),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    v1 = run.task_results("1.x")
    assert v1.get("failed", False) is False, v1.get("msg")
    assert (v1["sandbox"]["image"], v1["sandbox"]["source"], v1["sandbox"]["found"]) == (
        PAUSE, 'containerd config dump: plugins."io.containerd.grpc.v1.cri".sandbox_image', True)
    v2 = run.task_results("2.x")
    assert v2.get("failed", False) is False, v2.get("msg")
    assert (v2["sandbox"]["image"], v2["sandbox"]["source"]) == (
        "registry.k8s.io/pause:3.10", 'containerd config dump: plugins."io.containerd.cri.v1.images".pinned_images.'
                                      "sandbox")
    assert containerd.calls[:2] == [["--config", config, "config", "dump"],
                                    ["--config", "/etc/containerd/config.toml", "config", "dump"]]

    command = f"`{containerd.path} --config /etc/containerd/config.toml config dump` failed (exit 1: containerd: " \
              "failed to load TOML: bad)"
    strict = run.task_results("dump fails, mirror only")
    assert strict["failed"] is True
    assert strict["msg"] == (f"sandbox_image: {command}, and registry_mirrors[\"registry.k8s.io\"] serve only from "
                             "mirrors (upstream_fallback false), so the sandbox image every new pod needs must be on "
                             "them; give sandbox_image")
    lenient = run.task_results("dump fails, fallback")
    assert lenient.get("failed", False) is False
    assert lenient["warnings"] == [f"sandbox_image: {command}; the sandbox image was not checked on the mirrors"]
    missing = ("sandbox_image: `containerd --config /etc/containerd/config.toml config dump` cannot run: containerd "
               "is not installed (no containerd program on PATH)")
    assert run.task_results("no containerd, mirror only")["msg"].startswith(missing + ", and ")
    assert run.task_results("no containerd, fallback")["warnings"] == [
        f"{missing}; the sandbox image was not checked on the mirrors"]
    assert "sandbox" not in lenient
    assert run.task_results("bad image in the dump, fallback")["warnings"] == [
        "sandbox_image: containerd config dump: plugins.\"io.containerd.grpc.v1.cri\".sandbox_image: "
        "'registry.k8s.io/Pause:3.6' is not a valid image reference: the repository name 'Pause' must be lowercase "
        "(for example registry.k8s.io/pause:3.6, pause:3.6 or quay.io/org/app@sha256:<64 hex digits>); the sandbox "
        "image was not checked on the mirrors"]
    assert heads(first) == [("/v2/k8s/pause/manifests/3.6", {"ns": ["registry.k8s.io"]}),
                            ("/v2/k8s/pause/manifests/3.10", {"ns": ["registry.k8s.io"]})]


def test_a_bad_sandbox_image_is_refused_before_any_request(run_playbook, mirrors, pki, node_path):
    first, _second = mirrors
    _with, without, _containerd = node_path
    run = run_playbook([task("bad", without, sandbox_image="registry.k8s.io/Pause:3.6",
                             registry_mirrors={"registry.k8s.io": [mirror(first, pki)]})],
                       extra_vars={"mirror_password": PASSWORD})
    result = run.task_results("bad")
    assert result["failed"] is True
    assert result["msg"].startswith("sandbox_image: 'registry.k8s.io/Pause:3.6' is not a valid image reference: the "
                                    "repository name 'Pause' must be lowercase")
    assert first.requests == []


@pytest.mark.parametrize("verbosity", [0, 3])
def test_credentials_never_appear(run_playbook, mirrors, pki, node_path, verbosity):
    first, second = mirrors
    _with, without, _containerd = node_path
    second.manifests = {"k8s/pause:3.6"}
    only = {"registry.k8s.io": {"mirrors": [mirror(first, pki, "k8s"), mirror(second, pki, "k8s")],
                                "upstream_fallback": False}}
    tasks = [task("fails", without, registry_mirrors=only, sandbox_image="registry.k8s.io/pause:3.10"),
             task("passes", without, registry_mirrors=only, sandbox_image=PAUSE),
             task("warns", without, registry_mirrors={"registry.k8s.io": only["registry.k8s.io"]["mirrors"]},
                  sandbox_image="registry.k8s.io/pause:3.10")]
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD}, verbosity=verbosity, json_output=False)
    assert run.stdout.count("is on none of the mirrors of registry.k8s.io") >= 2  # the failure and the warning
    assert [r.header("Authorization") for server in mirrors for r in server.requests] == [AUTHORIZATION] * (
        len(first.requests) + len(second.requests))
    assert_no_secret(run)
