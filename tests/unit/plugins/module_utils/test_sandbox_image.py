"""_sandbox_image: the sandbox image read from `containerd config dump`, the route containerd takes for it, and the
HEAD of its manifest as containerd's resolver sends it; plus that HEAD against the fake registry (_preflight).

The 1.6.20 dumps are containerd's own output on this project's machines (Debian's config, and PMK's stock
config.toml with a private registry's sandbox image); the 2.1 dump is written by hand in go-toml v2's style
(single-quoted strings and keys), as containerd 2.x prints it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fakes import tls_registry as fake

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _preflight
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _sandbox_image as sandbox
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import get_ca
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import dump_argv
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import parse_image_reference

DUMPS = Path(__file__).parents[2] / "fixtures" / "containerd_dump"
V1_KEY = 'containerd config dump: plugins."io.containerd.grpc.v1.cri".sandbox_image'
V2_KEY = 'containerd config dump: plugins."io.containerd.cri.v1.images".pinned_images.sandbox'
SHA256 = "sha256:" + "ab" * 32


def basic(user, password):
    """The Authorization header containerd sends for hosts.toml's credentials (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@pytest.mark.parametrize(
    ("dump", "image", "where"),
    [
        ("containerd-1.6.20.toml", "registry.k8s.io/pause:3.6", V1_KEY),
        ("containerd-1.6.20-pmk-private-registry.toml", "10.0.0.1:443/infra/k8s/pause:3.6", V1_KEY),
        ("containerd-2.1-handwritten.toml", "registry.k8s.io/pause:3.10", V2_KEY),
    ],
)
def test_the_sandbox_image_of_each_release(dump, image, where):
    assert sandbox.sandbox_image_of((DUMPS / dump).read_text()) == (image, where)


@pytest.mark.parametrize(
    ("dump", "image"),
    [
        # 2.x's key wins over a 1.x one
        ("[plugins.'io.containerd.grpc.v1.cri']\n  sandbox_image = 'old:1'\n"
         "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = 'new:2'\n", "new:2"),
        # escapes in a basic string, a comment after the value, tabs
        ('[plugins."io.containerd.grpc.v1.cri"]\n\tsandbox_image = "a\\u002fb" # the pause image\n', "a/b"),
        ('[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "x\\"y"\n', 'x"y'),
        # the same key in another table is not it
        ("[plugins.'io.containerd.cri.v1.runtime']\n  sandbox_image = 'no:1'\n"
         "[plugins.'io.containerd.grpc.v1.cri'.registry]\n  sandbox_image = 'no:2'\n", None),
        # an array of tables ends the table before it
        ("[plugins.'io.containerd.grpc.v1.cri']\n[[plugins.'io.containerd.grpc.v1.cri'.x]]\n  sandbox_image = 'no'\n",
         None),
        # empty: not named
        ('[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = ""\n', None),
        ("", None),
        ("not toml at all [", None),
    ],
)
def test_only_the_sandbox_keys_are_read(dump, image):
    assert sandbox.sandbox_image_of(dump)[0] == image


def test_the_dump_command_reads_the_given_config():
    assert dump_argv("/usr/bin/containerd", "/etc/containerd/config.toml") == [
        "/usr/bin/containerd", "--config", "/etc/containerd/config.toml", "config", "dump"]


# --- the route and the request ------------------------------------------------------------------------------------

MIRROR = {"target": 0, "repo_path": None, "capabilities": ["pull", "resolve"], "field": "m"}
ROUTES = [
    {"registry": "10.0.0.1:443", "field": "url", "upstream_fallback": True, "mirrors": []},
    {"registry": "registry.k8s.io", "field": "url", "upstream_fallback": False, "mirrors": [MIRROR]},
    {"registry": "index.docker.io", "field": 'registry_mirrors["index.docker.io"]', "upstream_fallback": True,
     "mirrors": [MIRROR]},
    {"registry": "*", "field": 'registry_mirrors["*"]', "upstream_fallback": False, "mirrors": [MIRROR]},
]


@pytest.mark.parametrize(
    ("image", "field"),
    [
        ("registry.k8s.io/pause:3.6", "url"),
        ("Registry.K8s.io/pause:3.6", "url"),
        ("pause:3.6", 'registry_mirrors["index.docker.io"]'),  # Docker Hub's spellings are one registry
        ("quay.io/org/app:1", 'registry_mirrors["*"]'),
        ("10.0.0.1:443/infra/k8s/pause:3.6", "url"),  # the mirror's own host: its own directory, no mirror
    ],
)
def test_the_route_is_the_registrys_own_directory_else_the_wildcards(image, field):
    assert sandbox.route_for(ROUTES, parse_image_reference(image))["field"] == field


def test_no_route_without_a_directory_or_wildcard():
    assert sandbox.route_for(ROUTES[:3], parse_image_reference("quay.io/org/app:1")) is None


def test_a_tag_is_resolved_only_by_mirrors_that_may_resolve_a_digest_pulled_by_any():
    pull_only = dict(MIRROR, capabilities=["pull"], field="pull-only")
    route = {"mirrors": [pull_only, MIRROR]}
    assert sandbox.eligible_mirrors(route, parse_image_reference("pause:3.6")) == [MIRROR]
    assert sandbox.eligible_mirrors(route, parse_image_reference(f"pause@{SHA256}")) == [pull_only, MIRROR]


@pytest.mark.parametrize(
    ("image", "repo_path", "url"),
    [
        ("registry.k8s.io/pause:3.6", None, "https://m:5443/v2/pause/manifests/3.6?ns=registry.k8s.io"),
        ("registry.k8s.io/pause:3.6", "infra/k8s", "https://m:5443/v2/infra/k8s/pause/manifests/3.6?ns=registry.k8s.io"),
        ("pause:3.6", "dockerhub-proxy", "https://m:5443/v2/dockerhub-proxy/library/pause/manifests/3.6?ns=docker.io"),
        ("busybox", None, "https://m:5443/v2/library/busybox/manifests/latest?ns=docker.io"),
        (f"reg.local:5000/app:1@{SHA256}", None, f"https://m:5443/v2/app/manifests/{SHA256}?ns=reg.local%3A5000"),
    ],
)
def test_the_manifest_url_is_the_one_containerd_asks(image, repo_path, url):
    assert sandbox.manifest_url("https://m:5443/v2/", repo_path, parse_image_reference(image)) == url


def test_the_messages_name_the_image_every_mirror_tried_and_what_to_do():
    reference = parse_image_reference("registry.k8s.io/pause:3.6")
    route = ROUTES[1]
    tried = [{"why": "https://a/v2/pause/manifests/3.6?ns=registry.k8s.io answered HTTP 404 (not on this mirror)"},
             {"why": "the mirror at https://b/v2/pause/manifests/3.6?ns=registry.k8s.io is unreachable (refused)"}]
    failure = sandbox.failure_message("registry.k8s.io/pause:3.6", "sandbox_image", reference, route, tried)
    assert failure.startswith("The sandbox image registry.k8s.io/pause:3.6 (sandbox_image), which every new pod on "
                              "this node needs, is on none of the mirrors of registry.k8s.io (url), and "
                              "upstream_fallback is false for it")
    assert f"Tried, in containerd's order: {tried[0]['why']}; {tried[1]['why']}." in failure
    assert failure.endswith("or allow upstream_fallback for registry.k8s.io. Nothing was changed.")
    assert "None of its mirrors may resolve a tag" in sandbox.failure_message("i", "s", reference, route, [])
    warning = sandbox.fallback_warning("registry.k8s.io/pause:3.6", "sandbox_image", reference, route, tried)
    assert "containerd will pull it from registry.k8s.io itself (upstream_fallback)" in warning
    assert tried[1]["why"] in warning


def test_an_image_that_cannot_be_read_fails_only_where_a_registry_has_no_fallback():
    strict = sandbox.unread_message("containerd is not installed", ['registry_mirrors["*"]', "url"])
    assert strict == ('sandbox_image: containerd is not installed, and registry_mirrors["*"], url serve only from '
                      "mirrors (upstream_fallback false), so the sandbox image every new pod needs must be on them; "
                      "give sandbox_image")
    assert sandbox.unread_message("x", []) == "sandbox_image: x; the sandbox image was not checked on the mirrors"


# --- the HEAD itself ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(pki):
    with fake.TlsRegistry(pki, users={"robot": "pw"}, manifests={"k8s/pause:3.6"}) as registry:
        yield registry


def target(pki, server, password="pw"):
    ca = get_ca(content=pki.ca.read_text())
    authorization = basic("robot", password)
    return _preflight.Target(f"{server.url}/v2/", "robot", authorization, _preflight.tls_context(False, ca), ca, "",
                             None)


@pytest.mark.parametrize(
    ("path", "password", "status", "why"),
    [
        ("k8s/pause/manifests/3.6?ns=registry.k8s.io", "pw", 200, None),
        ("k8s/pause/manifests/3.7?ns=registry.k8s.io", "pw", 404, "answered HTTP 404 (not on this mirror)"),
        ("k8s/pause/manifests/3.6?ns=registry.k8s.io", "wrong", 401, "the mirror rejected the credentials for user "
                                                                     "'robot'"),
    ],
)
def test_the_manifest_is_asked_with_head_containerds_accept_and_the_credentials(pki, server, path, password, status,
                                                                                why):
    server.clear()
    url = f"{server.url}/v2/{path}"
    assert _preflight.check_manifest(target(pki, server, password), url, sandbox.MANIFEST_ACCEPT, 5)[0] == status
    got = _preflight.check_manifest(target(pki, server, password), url, sandbox.MANIFEST_ACCEPT, 5)[1]
    assert (got is None) if why is None else (why in got and url in got)
    (request, _again) = server.requests
    assert (request.method, request.path, request.query) == ("HEAD", f"/v2/{path.split('?')[0]}",
                                                             {"ns": ["registry.k8s.io"]})
    assert request.header("Accept") == sandbox.MANIFEST_ACCEPT
    assert request.header("Authorization") == basic("robot", password)


def test_an_unreachable_mirror_raises(pki):
    closed = fake.free_port()
    ca = get_ca(content=pki.ca.read_text())
    gone = _preflight.Target(f"https://127.0.0.1:{closed}/v2/", None, None, _preflight.tls_context(False, ca), ca, "",
                             None)
    with pytest.raises(_preflight.PreflightError) as raised:
        _preflight.check_manifest(gone, f"https://127.0.0.1:{closed}/v2/x/manifests/1", sandbox.MANIFEST_ACCEPT, 5)
    assert raised.value.status is None and "is unreachable" in str(raised.value)
