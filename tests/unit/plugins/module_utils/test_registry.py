# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one mirror model: each source's adapter gives the document its own builder gave before (pinned here)."""

from __future__ import annotations

import tomllib

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry import (
    Mirror,
    Registry,
    endpoint_of,
    hosts_document,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils import _hosts_toml
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    check_mirror_settings,
    parse_mirror,
    plan_node_files,
    pmk_registry,
    render_hosts_toml,
    render_node_files,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._legacy_registry import plan_migration
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import read_entry

PULL = {"capabilities": ["pull", "resolve"]}
P9 = "https://dockermirror.platform9.io"
AUTH = {"authorization": "Basic dTpw"}  # u:p


@pytest.mark.parametrize(
    ("spec", "document"),
    [
        pytest.param(
            {"registry": "10.0.0.1:443", "url": "https://10.0.0.1:443", "repo_path": "/infra/k8s/"},
            {"server": "https://10.0.0.1:443",
             "host": {"https://10.0.0.1:443/v2/infra/k8s": {**PULL, "override_path": True}}},
            id="pmk-own-directory",
        ),
        pytest.param(
            {"registry": "docker.io", "url": "https://10.0.0.1:443", "repo_path": "infra/k8s"},
            {"server": "https://docker.io",
             "host": {"https://10.0.0.1:443/v2/infra/k8s": {**PULL, "override_path": True}, P9: PULL,
                      "https://registry-1.docker.io": PULL}},
            id="pmk-seed-fallbacks",
        ),
        pytest.param(
            {"registry": "quay.io", "url": "http://m.example:5000", "username": "u", "password": "p",
             "ca_file": "/etc/ca.pem", "skip_tls": True, "fallbacks": ["https://quay.example"]},
            {"server": "https://quay.io",
             "host": {"http://m.example:5000": {**PULL, "ca": "/etc/ca.pem", "skip_verify": True, "header": AUTH},
                      "https://quay.example": PULL}},
            id="pmk-tls-auth-fallbacks",
        ),
        pytest.param(
            {"registry": "_default", "url": "https://10.0.0.1", "upstream_fallback": False},
            {"server": "https://10.0.0.1", **PULL, "host": {"https://10.0.0.1": PULL}},
            id="pmk-default-no-upstream",
        ),
        pytest.param(
            {"registry": "registry.k8s.io", "url": "https://10.0.0.1", "repo_path": "k8s", "upstream_fallback": False},
            {"server": "https://10.0.0.1/v2/k8s", **PULL, "override_path": True,
             "host": {"https://10.0.0.1/v2/k8s": {**PULL, "override_path": True}}},
            id="pmk-repo-path-no-upstream",
        ),
        pytest.param(
            {"registry": "docker.io", "mirrors": [
                {"url": "https://h.example", "repo_path": "dh"},
                {"url": "https://c.example:8443", "username": "u", "password": "p", "skip_tls": True}]},
            {"host": {"https://h.example/v2/dh": {**PULL, "override_path": True},
                      "https://c.example:8443": {**PULL, "skip_verify": True, "header": AUTH}}},
            id="mirrors-in-order",
        ),
        pytest.param(
            {"registry": "quay.io", "upstream_fallback": False, "mirrors": [
                {"url": "https://h.example", "client_cert": "/c.pem", "client_key": "/k.pem", "ca_file": "/ca.pem",
                 "dial_timeout": "3s", "capabilities": ["pull"]}]},
            {"server": "https://h.example", "capabilities": ["pull"], "ca": "/ca.pem", "client": [["/c.pem", "/k.pem"]],
             "host": {"https://h.example": {"capabilities": ["pull"], "ca": "/ca.pem",
                                            "client": [["/c.pem", "/k.pem"]]}}},
            id="mirrors-no-upstream-version-unknown",
        ),
        pytest.param(
            {"registry": "quay.io", "containerd_version": "1.6.0",
             "mirrors": [{"url": "https://h.example", "dial_timeout": "3s"}]},
            {"host": {"https://h.example": PULL}},
            id="mirrors-unread-left-out",
        ),
        pytest.param(
            {"registry": "quay.io", "containerd_version": "2.1.4",
             "mirrors": [{"url": "https://h.example", "dial_timeout": "3s"}]},
            {"host": {"https://h.example": {**PULL, "dial_timeout": "3s"}}},
            id="mirrors-dial-timeout-read",
        ),
    ],
)
def test_pmk_and_registry_mirrors_documents_are_pinned(spec, document):
    assert tomllib.loads(render_hosts_toml(spec)) == document


LEGACY = {
    "mirrors": {
        "docker.io": {"endpoint": ["mirror.example:5000/v2/dh", "https://m2.example", "https://m2.example"]},
        "*": {"endpoint": ["localhost:5000"]},
    },
    "configs": {
        "mirror.example:5000": {"tls": {"ca_file": "/ca.pem", "cert_file": "/c.pem", "key_file": "/k.pem"},
                                "auth": {"username": "u", "password": "p"}},
        "registry-1.docker.io": {"tls": {"insecure_skip_verify": True}},
        "quay.io": {"tls": {"cert_file": "/c.pem"}, "auth": {"auth": "dTpw"}},
        "gcr.io": {"tls": {}},
    },
}
LOCAL = {"http://localhost:5000": PULL}


@pytest.mark.parametrize(
    ("registry", "document"),
    [
        ("docker.io", {"server": "https://registry-1.docker.io", "skip_verify": True, "host": {
            "https://mirror.example:5000/v2/dh": {**PULL, "ca": "/ca.pem", "client": [["/c.pem", "/k.pem"]],
                                                  "override_path": True},
            "https://m2.example": PULL}}),
        ("_default", {"host": LOCAL}),
        ("mirror.example:5000", {"server": "https://mirror.example:5000", "ca": "/ca.pem",
                                 "client": [["/c.pem", "/k.pem"]], "host": LOCAL}),
        ("registry-1.docker.io", {"server": "https://registry-1.docker.io", "skip_verify": True, "host": LOCAL}),
        ("quay.io", {"server": "https://quay.io", "client": "/c.pem", "host": LOCAL}),
    ],
)
def test_legacy_documents_are_pinned(registry, document):
    files = {migrated.registry: migrated for migrated in plan_migration(LEGACY, ("registry",)).files}
    assert list(files) == ["docker.io", "_default", "mirror.example:5000", "registry-1.docker.io", "quay.io"]
    assert files[registry].document == document
    assert files[registry].hosts == list(document.get("host", {}))


def test_a_legacy_configs_host_without_endpoints_is_its_own_host():
    """containerd 1.x reads a hosts.toml without a [host] table as broken (issue 23, defect 1)."""
    migration = plan_migration({"configs": {"quay.io": {"tls": {"ca_file": "/ca.pem"}, "auth": {"auth": "dTpw"}}}},
                               ("registry",))
    assert [(f.registry, f.document) for f in migration.files] == [
        ("quay.io", {"server": "https://quay.io", "ca": "/ca.pem",
                     "host": {"https://quay.io": {**PULL, "ca": "/ca.pem"}}})
    ]
    assert migration.removals == [("configs", "quay.io", "tls")]  # the credentials stay where containerd reads them


def test_a_legacy_configs_host_with_auth_alone_keeps_it_in_config_toml():
    migration = plan_migration({"configs": {"quay.io": {"auth": {"username": "u", "password": "p"}}}}, ("registry",))
    assert (migration.files, migration.removals) == ([], [])


@pytest.mark.parametrize(
    ("server", "repo_path", "endpoint"),
    [("https://m.example", "", "https://m.example"), ("https://m.example", "a/b", "https://m.example/v2/a/b")],
)
def test_endpoint_of(server, repo_path, endpoint):
    assert endpoint_of(server, repo_path) == endpoint


MIRROR = Mirror("https://m.example", "m.example", "https://m.example/v2/p", override_path=True)
PLAIN = Mirror("https://n.example", "n.example", "https://n.example", override_path=False, skip_tls=True)


@pytest.mark.parametrize(
    ("registry", "document"),
    [
        pytest.param(Registry("_default", (MIRROR,)), {"host": {MIRROR.endpoint: {**PULL, "override_path": True}}},
                     id="no-server"),
        pytest.param(Registry("quay.io", (PLAIN, MIRROR), server="https://quay.io", fallbacks=("https://f.example",)),
                     {"server": "https://quay.io", "host": {PLAIN.endpoint: {**PULL, "skip_verify": True},
                                                            MIRROR.endpoint: {**PULL, "override_path": True},
                                                            "https://f.example": PULL}},
                     id="server-then-hosts-then-fallbacks"),
        pytest.param(Registry("quay.io", (PLAIN, MIRROR), upstream_fallback=False, server="https://quay.io"),
                     {"server": PLAIN.endpoint, **PULL, "skip_verify": True,
                      "host": {PLAIN.endpoint: {**PULL, "skip_verify": True},
                               MIRROR.endpoint: {**PULL, "override_path": True}}},
                     id="no-upstream-first-mirror-is-server"),
        pytest.param(Registry("quay.io", (), server="https://quay.io", server_host=PLAIN),
                     {"server": "https://quay.io", "skip_verify": True,
                      "host": {"https://quay.io": {**PULL, "skip_verify": True}}}, id="server-settings-no-hosts"),
        pytest.param(Registry("quay.io", (PLAIN, PLAIN)), {"host": {PLAIN.endpoint: {**PULL, "skip_verify": True}}},
                     id="a-host-once"),
    ],
)
def test_hosts_document(registry, document):
    assert hosts_document(registry) == document


@pytest.mark.parametrize(
    ("directory", "upstream_fallback", "server", "upstream"),
    [
        ("10.0.0.1", True, "https://10.0.0.1", True),
        ("10.0.0.1", False, "https://10.0.0.1", True),  # the mirror's own directory always reaches it
        ("docker.io", True, "https://docker.io", True),
        ("docker.io", False, "https://docker.io", False),
        ("_default", True, None, True),
    ],
)
def test_pmk_registry(directory, upstream_fallback, server, upstream):
    mirror = parse_mirror("https://10.0.0.1", "k8s")
    registry = pmk_registry(directory, mirror, (), upstream_fallback)
    assert (registry.mirrors, registry.server, registry.upstream_fallback) == ((mirror,), server, upstream)


@pytest.mark.parametrize(
    ("value", "upstream"),
    [([{"url": "https://h.example"}], True), ({"mirrors": [{"url": "https://h.example"}], "upstream_fallback": False},
                                              False)],
)
def test_read_entry_gives_a_registry(value, upstream):
    registry = read_entry("quay.io", value, field='registry_mirrors["quay.io"]')
    assert isinstance(registry, Registry)
    assert (registry.directory, registry.registry, registry.upstream_fallback, registry.server) == (
        "quay.io", "quay.io", upstream, None)
    assert [mirror.endpoint for mirror in registry.mirrors] == ["https://h.example"]


@pytest.fixture
def dumps(monkeypatch):
    """The documents dumped to hosts.toml text, in order."""
    dumped = []
    real = _hosts_toml.dump_checked

    def counting(document, *args):
        dumped.append(document)
        return real(document, *args)

    monkeypatch.setattr(_hosts_toml, "dump_checked", counting)
    return dumped


ROLE_SETTINGS = {"state": "present", "url": "https://10.0.0.1", "repo_path": "k8s", "registries": ["docker.io"],
                 "registry_mirrors": {"quay.io": [{"url": "https://h.example"}]}}


@pytest.mark.parametrize(
    ("settings", "directories"),
    [
        (ROLE_SETTINGS, ["10.0.0.1", "docker.io", "quay.io"]),
        ({**ROLE_SETTINGS, "upstream_fallback": False, "fallbacks": {}}, ["10.0.0.1", "docker.io", "quay.io"]),
        ({"state": "present", "registry_mirrors": {"*": [{"url": "https://h.example"}]}}, ["_default"]),
    ],
)
def test_the_role_check_plans_the_files_and_containerd_hosts_renders_each_once(dumps, settings, directories):
    check_mirror_settings(settings)
    assert dumps == []  # checked, not rendered
    given = {key: value for key, value in settings.items() if key != "state"}
    unread, planned = plan_node_files(**given)
    assert [registry.directory for registry, _files in planned] == directories
    rendered = render_node_files(**given)
    assert [directory for directory, _text, _files in rendered] == directories
    assert dumps == [hosts_document(registry, unread) for registry, _files in planned]


def test_the_role_check_refuses_what_rendering_would(dumps):
    with pytest.raises(RegistrySettingError, match=r"^registries\[1\]: 'docker.io' is listed twice"):
        check_mirror_settings({**ROLE_SETTINGS, "registries": ["docker.io", "docker.io"]})
    assert dumps == []
