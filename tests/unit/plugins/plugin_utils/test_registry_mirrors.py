"""registry_mirrors and upstream_fallback: every shape of the mapping rendered to hand-written hosts.toml texts,
the directories they manage, what each containerd reads, and every refusal."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.kubenode.registry_mirror.plugins.filter.registry_mirror import FilterModule
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    RegistrySettingError,
    hosts_directories,
    parse_mirror,
    preflight_routes,
    registry_mirror_warnings,
    render_hosts_files,
    render_hosts_toml,
    render_node_files,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import (
    masked_registry_mirrors,
    preflight_targets,
    read_registry_mirrors,
)

FILTERS = FilterModule().filters()
SEED_FILE = Path(__file__).parents[2] / "fixtures" / "seed-hosts.yml"
PMK = dict(url="https://10.101.101.100:443", repo_path="infra/k8s", username="wXubham", password="pf7$",
           ca_file="/usr/local/share/reg-ca.crt")
HARBOR = "https://harbor.example"

# The pieces of the expected texts, written out by hand.
MARK = "# Managed by kubenode.registry_mirror; local changes are overwritten.\n"
PULL_RESOLVE = 'capabilities = [\n    "pull",\n    "resolve",\n]\n'
PULL = 'capabilities = [\n    "pull",\n]\n'
CLIENT = 'client = [\n    [\n        "/etc/kubenode/client.crt",\n        "/etc/kubenode/client.key",\n    ],\n]\n'
AUTH = 'authorization = "Basic dTpw"\n'  # u:p
PMK_AUTH = 'authorization = "Basic d1h1YmhhbTpwZjck"\n'  # the seed's


def harbor(project, **settings):
    return dict(url=HARBOR, repo_path=project, **settings)


CASES = [
    # (id, render_hosts_files keyword arguments, {directory: the expected hosts.toml})
    ("harbor project per registry",
     dict(registry_mirrors={"docker.io": [harbor("dockerhub-proxy")], "quay.io": [harbor("quay-proxy")]}),
     {"docker.io": MARK + '[host."https://harbor.example/v2/dockerhub-proxy"]\n' + PULL_RESOLVE
      + "override_path = true\n",
      "quay.io": MARK + '[host."https://harbor.example/v2/quay-proxy"]\n' + PULL_RESOLVE + "override_path = true\n"}),
    ("several mirrors in order, the upstream last",
     dict(registry_mirrors={"ghcr.io": [{"url": "http://10.0.0.5:5000"},
                                        harbor("ghcr-proxy", username="u", password="p", capabilities=["pull"])]}),
     {"ghcr.io": MARK + '[host."http://10.0.0.5:5000"]\n' + PULL_RESOLVE + "\n"
      + '[host."https://harbor.example/v2/ghcr-proxy"]\n' + PULL + "override_path = true\n\n"
      + '[host."https://harbor.example/v2/ghcr-proxy".header]\n' + AUTH}),
    ("upstream_fallback false for one registry: the first mirror is the server as well",
     dict(registry_mirrors={"quay.io": {"mirrors": [harbor("quay-proxy"), {"url": "https://backup.example"}],
                                        "upstream_fallback": False}}),
     {"quay.io": MARK + 'server = "https://harbor.example/v2/quay-proxy"\n' + PULL_RESOLVE + "override_path = true\n\n"
      + '[host."https://harbor.example/v2/quay-proxy"]\n' + PULL_RESOLVE + "override_path = true\n\n"
      + '[host."https://backup.example"]\n' + PULL_RESOLVE}),
    ("upstream_fallback false globally, with credentials at the root too",
     dict(upstream_fallback=False,
          registry_mirrors={"docker.io": [harbor("dockerhub-proxy", username="u", password="p")]}),
     {"docker.io": MARK + 'server = "https://harbor.example/v2/dockerhub-proxy"\n' + PULL_RESOLVE
      + "override_path = true\n\n[header]\n" + AUTH + "\n"
      + '[host."https://harbor.example/v2/dockerhub-proxy"]\n' + PULL_RESOLVE + "override_path = true\n\n"
      + '[host."https://harbor.example/v2/dockerhub-proxy".header]\n' + AUTH}),
    ("a registry's own upstream_fallback true beats the global false",
     dict(upstream_fallback=False, registry_mirrors={"docker.io": {"mirrors": [{"url": HARBOR}],
                                                                   "upstream_fallback": True}}),
     {"docker.io": MARK + '[host."https://harbor.example"]\n' + PULL_RESOLVE}),
    ("wildcard: _default without a server line, containerd ends with each registry itself",
     dict(registry_mirrors={"*": [{"url": "https://cache.example:5000"}]}),
     {"_default": MARK + '[host."https://cache.example:5000"]\n' + PULL_RESOLVE}),
    ("wildcard with one path for every registry, said explicitly",
     dict(registry_mirrors={"*": {"mirrors": [harbor("all-upstreams")], "repo_path_for_all": True}}),
     {"_default": MARK + '[host."https://harbor.example/v2/all-upstreams"]\n' + PULL_RESOLVE
      + "override_path = true\n"}),
    ("wildcard never going upstream",
     dict(registry_mirrors={"*": {"mirrors": [{"url": "https://cache.example"}], "upstream_fallback": False}}),
     {"_default": MARK + 'server = "https://cache.example"\n' + PULL_RESOLVE + "\n"
      + '[host."https://cache.example"]\n' + PULL_RESOLVE}),
    ("mTLS: the client pair, the CA, credentials with skip_tls",
     dict(registry_mirrors={"docker.io": [harbor("dockerhub-proxy", ca_file="/etc/kubenode/ca.crt",
                                                 client_cert="/etc/kubenode/client.crt",
                                                 client_key="/etc/kubenode/client.key")],
                            "quay.io": [{"url": "https://10.0.0.9:15444", "skip_tls": True, "username": "u",
                                         "password": "p", "capabilities": ["resolve", "pull", "push"]}]}),
     {"docker.io": MARK + '[host."https://harbor.example/v2/dockerhub-proxy"]\n' + PULL_RESOLVE
      + 'ca = "/etc/kubenode/ca.crt"\n' + CLIENT + "override_path = true\n",
      "quay.io": MARK + '[host."https://10.0.0.9:15444"]\n'
      + 'capabilities = [\n    "pull",\n    "resolve",\n    "push",\n]\n' + "skip_verify = true\n\n"
      + '[host."https://10.0.0.9:15444".header]\n' + AUTH}),
    ("one project, two paths: the same mirror twice with other repo paths",
     dict(registry_mirrors={"registry.k8s.io": [harbor("k8s-proxy"), harbor("k8s-archive")]}),
     {"registry.k8s.io": MARK + '[host."https://harbor.example/v2/k8s-proxy"]\n' + PULL_RESOLVE
      + "override_path = true\n\n" + '[host."https://harbor.example/v2/k8s-archive"]\n' + PULL_RESOLVE
      + "override_path = true\n"}),
]


@pytest.mark.parametrize(("kwargs", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_registry_mirrors_render_the_hand_written_files(kwargs, expected):
    rendered = render_hosts_files(**kwargs)
    assert rendered == list(expected.items())
    for directory, text in rendered:
        assert tomllib.loads(text) == tomllib.loads(expected[directory]), directory
        assert list(tomllib.loads(text)["host"]) == list(tomllib.loads(expected[directory])["host"]), directory


def test_without_upstream_fallback_no_host_is_an_upstream():
    rendered = dict(render_hosts_files(upstream_fallback=False, registry_mirrors={
        "docker.io": [harbor("dockerhub-proxy")], "*": [{"url": "https://cache.example"}]}))
    for directory, text in rendered.items():
        document = tomllib.loads(text)
        assert document["server"] in document["host"], directory  # the server is one of the mirrors
        assert all(host.startswith((HARBOR, "https://cache.example")) for host in document["host"]), directory


# --- the PMK mirror with per-registry overrides -----------------------------


def test_an_entry_overrides_the_pmk_mirror_for_its_registry_only():
    seed = yaml.safe_load(SEED_FILE.read_text())
    rendered = render_hosts_files(**PMK, registry_mirrors={"docker.io": [harbor("dockerhub-proxy")],
                                                           "ghcr.io": [harbor("ghcr-proxy")]})
    assert [directory for directory, _text in rendered] == [
        "10.101.101.100:443", "platform9.io", "docker.io", "gcr.io", "quay.io", "registry.k8s.io", "ghcr.io"]
    texts = dict(rendered)
    assert texts["docker.io"] == MARK + '[host."https://harbor.example/v2/dockerhub-proxy"]\n' + PULL_RESOLVE + (
        "override_path = true\n")
    assert texts["ghcr.io"] == MARK + '[host."https://harbor.example/v2/ghcr-proxy"]\n' + PULL_RESOLVE + (
        "override_path = true\n")
    for directory in ("10.101.101.100:443", "platform9.io", "gcr.io", "quay.io", "registry.k8s.io"):
        assert tomllib.loads(texts[directory]) == tomllib.loads(seed[directory]), directory


def test_no_registry_mirrors_keeps_the_seed_output_byte_for_byte():
    assert render_hosts_files(**PMK, registry_mirrors={}, upstream_fallback=True, containerd_version="1.6.20") == (
        render_hosts_files(**PMK))


def test_the_pmk_mirror_without_upstream_fallback():
    texts = dict(render_hosts_files(**PMK, registries=["docker.io"], upstream_fallback=False))
    pmk_host = (PULL_RESOLVE + 'ca = "/usr/local/share/reg-ca.crt"\noverride_path = true\n')
    assert texts["docker.io"] == (
        MARK + 'server = "https://10.101.101.100:443/v2/infra/k8s"\n' + pmk_host + "\n[header]\n" + PMK_AUTH + "\n"
        + '[host."https://10.101.101.100:443/v2/infra/k8s"]\n' + pmk_host + "\n"
        + '[host."https://10.101.101.100:443/v2/infra/k8s".header]\n' + PMK_AUTH
    )
    assert "dockermirror" not in texts["docker.io"] and "registry-1" not in texts["docker.io"]  # no fallbacks
    # the mirror's own directory names the mirror as its server either way
    with_fallback = dict(render_hosts_files(**PMK, registries=["docker.io"]))
    assert texts["10.101.101.100:443"] == with_fallback["10.101.101.100:443"]


def test_registry_mirrors_alone_write_only_their_registries():
    assert [d for d, _t in render_hosts_files(registry_mirrors={"quay.io": [{"url": HARBOR}]})] == ["quay.io"]


# --- what each containerd reads ---------------------------------------------

TIMEOUT_MIRRORS = {"docker.io": [harbor("dockerhub-proxy", dial_timeout="3s")]}


@pytest.mark.parametrize(
    ("version", "written", "warning"),
    [
        ("2.1.9", True, None),
        ("v2.2.0", True, None),
        ("2.0.7", True, None),
        ("2.0.6", False, "containerd 2.0.6 does not read it (2.0.7 and later do)"),
        ("1.7.24~ds1-1", False, "containerd 1.7.24~ds1-1 does not read it (2.0.7 and later do)"),
        ("1.6.20", False, "containerd 1.6.20 does not read it (2.0.7 and later do)"),
        (None, False, "the containerd version is unknown, and releases before 2.0.7 do not read it"),
    ],
)
def test_dial_timeout_only_where_containerd_reads_it(version, written, warning):
    text = dict(render_hosts_files(registry_mirrors=TIMEOUT_MIRRORS, containerd_version=version))["docker.io"]
    expected = MARK + '[host."https://harbor.example/v2/dockerhub-proxy"]\n' + PULL_RESOLVE + "override_path = true\n"
    assert text == (expected + 'dial_timeout = "3s"\n' if written else expected)
    assert tomllib.loads(text)["host"]["https://harbor.example/v2/dockerhub-proxy"].get("dial_timeout") == (
        "3s" if written else None)
    warnings = registry_mirror_warnings(TIMEOUT_MIRRORS, version)
    assert warnings == ([] if warning is None else [
        f'registry_mirrors["docker.io"][0].dial_timeout: left out of hosts.toml: {warning}'])


# --- the directories the settings manage ------------------------------------


@pytest.mark.parametrize(
    ("mirror_directory", "registries", "registry_mirrors", "expected"),
    [
        ("10.0.0.1:443", ["docker.io", "quay.io"], None, ["10.0.0.1:443", "docker.io", "quay.io"]),
        ("10.0.0.1:443", ["docker.io", "quay.io"], {"quay.io": [{"url": HARBOR}], "*": [{"url": HARBOR}]},
         ["10.0.0.1:443", "docker.io", "quay.io", "_default"]),
        (None, ["docker.io"], {"ghcr.io": [{"url": HARBOR}], "nvcr.io": [{"url": HARBOR}]},
         ["docker.io", "ghcr.io", "nvcr.io"]),
        (None, [], {"myreg:5000": [{"url": HARBOR}]}, ["myreg:5000"]),
        (None, ["_default"], {"*": [{"url": HARBOR}]}, ["_default"]),
    ],
)
def test_hosts_directories_lists_every_directory_of_ours(mirror_directory, registries, registry_mirrors, expected):
    assert hosts_directories(mirror_directory, registries, registry_mirrors) == expected


# --- refusals ---------------------------------------------------------------

MIRROR = {"url": HARBOR}
REFUSED = [
    # (the field the error names, a fragment of the problem, render_hosts_files keyword arguments)
    ('registry_mirrors["Docker.IO"]', "the same registry as 'docker.io'",
     dict(registry_mirrors={"docker.io": [MIRROR], "Docker.IO": [MIRROR]})),
    ('registry_mirrors["registry-1.docker.io"]', "the same registry as 'docker.io'",
     dict(registry_mirrors={"docker.io": [MIRROR], "registry-1.docker.io": [MIRROR]})),
    ('registry_mirrors["docker.io"]', "the same registry as 'index.docker.io'",
     dict(registry_mirrors={"index.docker.io": [MIRROR], "docker.io": [MIRROR]})),
    ('registry_mirrors["docker.io"][0].client_cert', "client_cert and", dict(
        registry_mirrors={"docker.io": [dict(MIRROR, client_key="/k.pem")]})),
    ('registry_mirrors["docker.io"][1].client_key', "must be given together", dict(
        registry_mirrors={"docker.io": [MIRROR, {"url": "https://b", "client_cert": "/c.pem"}]})),
    ('registry_mirrors["docker.io"][1].url', "https://harbor.example/v2/p is listed twice", dict(
        registry_mirrors={"docker.io": [harbor("p"), {"url": "harbor.example/", "repo_path": "/p/"}]})),
    ('registry_mirrors["docker.io"].mirrors', "lists no mirror",
     dict(registry_mirrors={"docker.io": {"mirrors": [], "upstream_fallback": False}})),
    ('registry_mirrors["docker.io"]', "lists no mirror", dict(registry_mirrors={"docker.io": []})),
    ('registry_mirrors["docker.io"].mirrors', "is required", dict(registry_mirrors={"docker.io": {}})),
    ('registry_mirrors["docker.io"][0].colour', "is not a mirror setting",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, colour="blue")]})),
    ('registry_mirrors["docker.io"][0].customRegistryUrl', "is not a mirror setting",
     dict(registry_mirrors={"docker.io": [{"customRegistryUrl": HARBOR}]})),
    ('registry_mirrors["docker.io"].fallbacks', "known: mirrors, upstream_fallback",
     dict(registry_mirrors={"docker.io": {"mirrors": [MIRROR], "fallbacks": []}})),
    ('registry_mirrors["docker.io"].repo_path_for_all', "is only for the * entry",
     dict(registry_mirrors={"docker.io": {"mirrors": [MIRROR], "repo_path_for_all": True}})),
    ('registry_mirrors["*"][0].repo_path', "repo_path_for_all: true",
     dict(registry_mirrors={"*": [harbor("all")]})),
    ('registry_mirrors["*"].mirrors[0].repo_path', "repo_path_for_all: true",
     dict(registry_mirrors={"*": {"mirrors": [harbor("all")], "repo_path_for_all": False}})),
    ('registry_mirrors["*"].repo_path_for_all', "must be a boolean, got str",
     dict(registry_mirrors={"*": {"mirrors": [harbor("all")], "repo_path_for_all": "yes"}})),
    ('registry_mirrors["_default"]', "write * for", dict(registry_mirrors={"_default": [MIRROR]})),
    ('registry_mirrors["a/b"]', "not a valid registry host", dict(registry_mirrors={"a/b": [MIRROR]})),
    ("registry_mirrors[5]", "a registry is a string", dict(registry_mirrors={5: [MIRROR]})),
    ("registry_mirrors", "must be a mapping of registry", dict(registry_mirrors=[MIRROR])),
    ('registry_mirrors["docker.io"]', "must be a list of mirrors", dict(registry_mirrors={"docker.io": HARBOR})),
    ('registry_mirrors["docker.io"][0]', "must be a mapping", dict(registry_mirrors={"docker.io": [HARBOR]})),
    ('registry_mirrors["docker.io"][0].url', "is required", dict(registry_mirrors={"docker.io": [{"repo_path": "x"}]})),
    ('registry_mirrors["docker.io"][0].url', "must not contain a path",
     dict(registry_mirrors={"docker.io": [{"url": "https://harbor.example/v2/x"}]})),
    ('registry_mirrors["docker.io"][0].repo_path', "not a valid repository path component",
     dict(registry_mirrors={"docker.io": [harbor("Proxy")]})),
    ('registry_mirrors["docker.io"][0].password', "must be given together",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, username="u")]})),
    ('registry_mirrors["docker.io"][0].skip_tls', "must be a boolean, got str",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, skip_tls="yes")]})),
    ('registry_mirrors["docker.io"][0].ca_file', "must be an absolute path",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, ca_file="ca.crt")]})),
    ('registry_mirrors["docker.io"][0].client_key', "quotes", dict(
        registry_mirrors={"docker.io": [dict(MIRROR, client_cert="/c", client_key='/k"\nskip_verify = true')]})),
    ('registry_mirrors["docker.io"][0].capabilities', "must be a list of pull, resolve, push, got str",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, capabilities="pull")]})),
    ('registry_mirrors["docker.io"][0].capabilities[1]', "'fetch' is not one of pull, resolve, push",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, capabilities=["pull", "fetch"])]})),
    ('registry_mirrors["docker.io"][0].capabilities[1]', "listed twice",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, capabilities=["pull", "pull"])]})),
    ('registry_mirrors["docker.io"][0].capabilities', "at least one",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, capabilities=[])]})),
    ('registry_mirrors["docker.io"][0].dial_timeout', "is not a duration",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, dial_timeout="3")]})),
    ('registry_mirrors["docker.io"][0].dial_timeout', "is not a duration",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, dial_timeout="-1s")]})),
    ('registry_mirrors["docker.io"][0].dial_timeout', "longer than zero",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, dial_timeout="0ms")]})),
    ('registry_mirrors["docker.io"][0].dial_timeout', "must be a string, got int",
     dict(registry_mirrors={"docker.io": [dict(MIRROR, dial_timeout=3)]})),
    ('registry_mirrors["docker.io"].upstream_fallback', "must be a boolean, got str",
     dict(registry_mirrors={"docker.io": {"mirrors": [MIRROR], "upstream_fallback": "no"}})),
    ("upstream_fallback", "must be a boolean, got str", dict(upstream_fallback="no", registry_mirrors={})),
    ('registry_mirrors["10.101.101.100:443"]', "is the mirror of url itself",
     dict(PMK, registry_mirrors={"10.101.101.100:443": [MIRROR]})),
    ("fallbacks", "'docker.io' is served by registry_mirrors",
     dict(PMK, fallbacks={"docker.io": ["https://registry-1.docker.io"]}, registry_mirrors={"docker.io": [MIRROR]})),
    ("fallbacks[docker.io]", "must be empty when upstream_fallback is false",
     dict(PMK, fallbacks={"docker.io": ["https://registry-1.docker.io"]}, upstream_fallback=False)),
    ("url", "is required", dict(registry_mirrors={})),
    ("containerd_version", "is not a containerd version", dict(PMK, containerd_version="latest")),
    ("containerd_version", "older than 1.6", dict(PMK, containerd_version="1.5.9")),
]


@pytest.mark.parametrize(("field", "fragment", "kwargs"), REFUSED,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(REFUSED)])
def test_refusals_name_the_field(field, fragment, kwargs):
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files(**kwargs)
    assert raised.value.field == field
    assert fragment in raised.value.problem
    assert str(raised.value).startswith(f"{field}: ")


def test_a_mirror_password_is_never_echoed():
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files(registry_mirrors={"docker.io": [dict(MIRROR, username="u", password="top\x00secret")]})
    assert raised.value.field == 'registry_mirrors["docker.io"][0].password'
    assert "secret" not in str(raised.value)


# --- the filters --------------------------------------------------------------


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(Display, "warning", lambda self, msg, *args, **kwargs: shown.append(msg))
    return shown


def test_hosts_files_filter_takes_the_new_keys_and_warns(warnings):
    files = FILTERS["hosts_files"]({"registry_mirrors": TIMEOUT_MIRRORS, "upstream_fallback": None,
                                    "containerd_version": "1.7.24"})
    assert files == [{"directory": "docker.io", "content": MARK + '[host."https://harbor.example/v2/dockerhub-proxy"]\n'
                      + PULL_RESOLVE + "override_path = true\n"}]
    assert warnings == ['hosts_files: registry_mirrors["docker.io"][0].dial_timeout: left out of hosts.toml: '
                        "containerd 1.7.24 does not read it (2.0.7 and later do)"]


def test_hosts_toml_filter_renders_one_registry_of_mirrors(warnings):
    spec = {"registry": "*", "mirrors": [harbor("all", dial_timeout="250ms")], "repo_path_for_all": True,
            "upstream_fallback": False, "containerd_version": "2.1.4"}
    host = PULL_RESOLVE + 'override_path = true\ndial_timeout = "250ms"\n'
    assert FILTERS["hosts_toml"](spec) == (MARK + 'server = "https://harbor.example/v2/all"\n' + host + "\n"
                                           + '[host."https://harbor.example/v2/all"]\n' + host)
    assert warnings == []
    FILTERS["hosts_toml"](dict(spec, containerd_version=None))
    assert warnings == ["hosts_toml: mirrors[0].dial_timeout: left out of hosts.toml: the containerd version is "
                        "unknown, and releases before 2.0.7 do not read it"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"registry": "docker.io", "url": HARBOR, "mirrors": [MIRROR]}, "url"),
        ({"registry": "docker.io", "mirrors": [{"url": HARBOR, "dial_timeout": "1 s"}]}, "mirrors[0].dial_timeout"),
        ({"registry": "docker.io", "mirrors": [MIRROR], "repo_path_for_all": True}, "repo_path_for_all"),
        ({"registry": "_default", "mirrors": [MIRROR]}, "registry"),
        ({"registry": "docker.io", "url": HARBOR, "repo_path_for_all": True}, "repo_path_for_all"),
        ({"registry": "docker.io", "url": HARBOR, "upstream_fallback": False, "fallbacks": ["https://x"]},
         "fallbacks"),
        ({"registry": "docker.io"}, "url"),
    ],
)
def test_hosts_toml_spec_with_mirrors_is_strict(spec, field):
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_toml(spec)
    assert raised.value.field == field


def test_hosts_toml_with_the_pmk_mirror_and_no_upstream_fallback():
    text = render_hosts_toml({"registry": "gcr.io", "url": "https://m:5000", "upstream_fallback": False})
    assert text == MARK + 'server = "https://m:5000"\n' + PULL_RESOLVE + '\n[host."https://m:5000"]\n' + PULL_RESOLVE


def role_settings(**overrides):
    return dict({"state": "present", "url": "https://10.101.101.100:443", "registries": ["docker.io"],
                 "registry_mirrors": {}, "upstream_fallback": True}, **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"registry_mirrors": {"docker.io": [MIRROR, {"url": "https://b", "client_cert": "/c"}]}},
         'containerd_mirror_registry_mirrors["docker.io"][1].client_key: containerd_mirror_registry_mirrors'
         '["docker.io"][1].client_cert and containerd_mirror_registry_mirrors["docker.io"][1].client_key must be '
         "given together"),
        ({"state": "absent", "registry_mirrors": {"*": [harbor("all")]}},
         'containerd_mirror_registry_mirrors["*"][0].repo_path: under * serves'),
        ({"registry_mirrors": {"10.101.101.100:443": [MIRROR]}},
         'containerd_mirror_registry_mirrors["10.101.101.100:443"]: is the mirror of url itself'),
        ({"upstream_fallback": "no"}, "containerd_mirror_upstream_fallback: must be a boolean, got str"),
        ({"registry_mirrors": "docker.io"}, "containerd_mirror_registry_mirrors: must be a mapping of registry"),
        ({"url": ""}, "containerd_mirror_url: containerd_mirror_url or containerd_mirror_registry_mirrors is "
                      "required when containerd_mirror_state is present"),
    ],
)
def test_mirror_settings_checks_registry_mirrors_with_the_role_names(overrides, message):
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS["mirror_settings"](role_settings(**overrides))
    assert str(raised.value).startswith(f"mirror_settings: {message}")


def test_mirror_settings_takes_registry_mirrors_without_url():
    settings = role_settings(url="", registry_mirrors={"docker.io": [harbor("dockerhub-proxy")]},
                             upstream_fallback=False)
    assert FILTERS["mirror_settings"](settings) == settings


# --- the CA and the client pair given as text: files beside hosts.toml, which names them (issue 12) -------------


def tls_mirror(pki, **settings):
    return {"url": "https://registry.site.internal:5443", "ca_content": pki.ca.read_text(),
            "client_cert_content": pki.client.read_text(), "client_key_content": pki.client_key.read_text(), **settings}


@pytest.mark.parametrize(
    ("config_path", "root"),
    [(None, "/etc/containerd/certs.d"), ("/var/lib/certs.d", "/var/lib/certs.d")],
)
def test_pem_texts_become_files_of_the_registry_directory_that_hosts_toml_names(pki, config_path, root):
    mirrors = {"docker.io": [tls_mirror(pki, repo_path="dockerhub-proxy"), {"url": HARBOR}],
               "*": {"mirrors": [tls_mirror(pki)]}}
    rendered = {d: (text, files) for d, text, files in render_node_files(registry_mirrors=mirrors,
                                                                         config_path=config_path)}
    host = "registry.site.internal:5443"
    for directory in ("docker.io", "_default"):
        text, files = rendered[directory]
        base = f"{root}/{directory}/{host}"
        assert files == {f"{host}.ca.crt": MARK + pki.ca.read_text(),
                         f"{host}.client.cert": MARK + pki.client.read_text(),
                         f"{host}.client.key": MARK + pki.client_key.read_text()}
        table = next(iter(tomllib.loads(text)["host"].values()))
        assert table["ca"] == f"{base}.ca.crt"
        assert table["client"] == [[f"{base}.client.cert", f"{base}.client.key"]]
    assert tomllib.loads(rendered["docker.io"][0])["host"][HARBOR] == {"capabilities": ["pull", "resolve"]}
    # the files are ours by the hosts.toml marker line, which PEM readers skip
    assert all(text.startswith(MARK + "-----BEGIN ") for _t, files in rendered.values() for text in files.values())


def test_without_texts_there_are_no_files_and_the_hosts_files_are_the_same(pki):
    mirrors = {"docker.io": [dict(MIRROR, ca_file="/etc/pki/ca.crt")]}
    assert [(d, t) for d, t, files in render_node_files(**PMK, registry_mirrors=mirrors) if not files] == (
        render_hosts_files(**PMK, registry_mirrors=mirrors))


def test_one_host_of_one_registry_has_one_file_of_each_kind(pki):
    same = {"docker.io": [tls_mirror(pki, repo_path="a"), tls_mirror(pki, repo_path="b")]}
    assert len(dict((d, f) for d, _t, f in render_node_files(registry_mirrors=same))["docker.io"]) == 3
    other = {"docker.io": [tls_mirror(pki, repo_path="a"),
                           tls_mirror(pki, repo_path="b", ca_content=pki.long_ca.read_text())]}
    with pytest.raises(RegistrySettingError) as raised:
        render_node_files(registry_mirrors=other)
    assert raised.value.field == 'registry_mirrors["docker.io"][1].ca_content'
    assert "registry.site.internal:5443.ca.crt" in raised.value.problem
    assert 'registry_mirrors["docker.io"][0]' in raised.value.problem


def test_a_key_that_is_not_its_certificates_is_refused_before_anything_is_rendered(pki):
    mirrors = {"quay.io": {"mirrors": [tls_mirror(pki, client_key_content=pki.other_client_key.read_text())]}}
    with pytest.raises(RegistrySettingError) as raised:
        render_node_files(registry_mirrors=mirrors)
    assert str(raised.value).startswith(
        'registry_mirrors["quay.io"].mirrors[0].client_key_content: the key does not belong to the certificate')
    assert pki.other_client_key.read_text().splitlines()[1] not in str(raised.value)


def test_the_hosts_toml_filter_names_the_files_under_its_config_path(pki):
    text = render_hosts_toml({"registry": "docker.io", "mirrors": [tls_mirror(pki)], "config_path": "/srv/certs.d"})
    assert tomllib.loads(text)["host"]["https://registry.site.internal:5443"]["ca"] == (
        "/srv/certs.d/docker.io/registry.site.internal:5443.ca.crt")


# --- what registry_preflight calls -------------------------------------------------------------------------------


def test_preflight_targets_are_the_distinct_mirrors_with_their_texts_and_secrets(pki):
    mtls = tls_mirror(pki, repo_path="dockerhub-proxy", username="u", password="p")
    on_node = {"url": HARBOR, "ca_file": "/etc/pki/ca.crt", "client_cert": "/etc/pki/n.crt",
               "client_key": "/etc/pki/n.key"}
    entries = read_registry_mirrors({"docker.io": [mtls, on_node], "quay.io": {"mirrors": [mtls]},
                                     "*": [dict(on_node, skip_tls=True)]})
    targets, secrets = preflight_targets(entries)
    assert [target["fields"] for target in targets] == [
        ['registry_mirrors["docker.io"][0]', 'registry_mirrors["quay.io"].mirrors[0]'],
        ['registry_mirrors["docker.io"][1]'], ['registry_mirrors["*"][0]']]
    first = targets[0]
    assert (first["url"], first["repo_path"], first["username"]) == (
        "https://registry.site.internal:5443", "dockerhub-proxy", "u")
    # texts are sent as texts: their files are not on the node before containerd_hosts writes them
    assert (first["ca_file"], first["client_cert"], first["client_key"]) == (None, None, None)
    assert first["client_key_content"] == pki.client_key.read_text()
    assert (targets[1]["ca_file"], targets[1]["client_cert"], targets[1]["client_key"]) == (
        "/etc/pki/ca.crt", "/etc/pki/n.crt", "/etc/pki/n.key")
    assert targets[1]["repo_path"] is None and targets[2]["skip_tls"] is True
    assert "password" not in first  # only the header it becomes goes to the node
    assert secrets == sorted([AUTH.split(" = ")[1].strip().strip('"'), pki.client_key.read_text()])
    assert masked_registry_mirrors({"docker.io": [mtls]}, "X")["docker.io"][0] == dict(
        mtls, password="X", client_key_content="X")


# --- the routes of the sandbox image's preflight: which mirrors containerd will ask for each registry ------------


def routes_of(registry_mirrors, upstream_fallback=True, url=None, repo_path=None, **pmk):
    entries = read_registry_mirrors(registry_mirrors, upstream_fallback)
    targets, _secrets = preflight_targets(entries)
    mirror = None if url is None else parse_mirror(url, repo_path)
    return preflight_routes(entries, targets, mirror, upstream_fallback=upstream_fallback, **pmk), targets


def test_each_registry_has_its_mirrors_in_order_the_wildcard_its_own():
    routes, targets = routes_of({
        "docker.io": [harbor("dockerhub-proxy", username="u", password="p"), {"url": "https://b.example"}],
        "quay.io": {"mirrors": [harbor("dockerhub-proxy", username="u", password="p")], "upstream_fallback": False},
        "*": {"mirrors": [{"url": "https://all.example", "repo_path": "all", "capabilities": ["pull"]}],
              "repo_path_for_all": True},
    })
    assert [target["url"] for target in targets] == [HARBOR, "https://b.example", "https://all.example"]
    assert routes == [
        {"registry": "docker.io", "field": 'registry_mirrors["docker.io"]', "upstream_fallback": True, "mirrors": [
            {"target": 0, "repo_path": "dockerhub-proxy", "capabilities": ["pull", "resolve"],
             "field": 'registry_mirrors["docker.io"][0]'},
            {"target": 1, "repo_path": None, "capabilities": ["pull", "resolve"],
             "field": 'registry_mirrors["docker.io"][1]'}]},
        {"registry": "quay.io", "field": 'registry_mirrors["quay.io"]', "upstream_fallback": False, "mirrors": [
            {"target": 0, "repo_path": "dockerhub-proxy", "capabilities": ["pull", "resolve"],
             "field": 'registry_mirrors["quay.io"].mirrors[0]'}]},  # the same mirror: one target
        {"registry": "*", "field": 'registry_mirrors["*"]', "upstream_fallback": True, "mirrors": [
            {"target": 2, "repo_path": "all", "capabilities": ["pull"], "field": 'registry_mirrors["*"].mirrors[0]'}]},
    ]


def test_the_pmk_mirror_serves_its_registries_unless_registry_mirrors_does():
    routes, targets = routes_of({"docker.io": [harbor("dockerhub-proxy")]}, upstream_fallback=False,
                                url="10.101.101.100:443/", repo_path="/infra/k8s/", registries=["docker.io", "gcr.io"])
    pmk = {"target": None, "repo_path": "infra/k8s", "capabilities": ["pull", "resolve"], "field": "url"}
    assert routes == [
        # the mirror's own directory: containerd pulls from that host itself
        {"registry": "10.101.101.100:443", "field": "url", "upstream_fallback": True, "mirrors": []},
        {"registry": "docker.io", "field": 'registry_mirrors["docker.io"]', "upstream_fallback": False,
         "mirrors": [{"target": 0, "repo_path": "dockerhub-proxy", "capabilities": ["pull", "resolve"],
                      "field": 'registry_mirrors["docker.io"][0]'}]},
        {"registry": "gcr.io", "field": "url", "upstream_fallback": False, "mirrors": [pmk]},
    ]
    assert len(targets) == 1


def test_without_the_pmk_mirror_its_registries_have_no_route():
    assert routes_of({}, registries=["docker.io"])[0] == []
    routes = routes_of({}, url="https://m.example", registries=["_default"])[0]
    assert [route["registry"] for route in routes] == ["m.example", "*"]  # _default is containerd's *


def test_a_bad_registries_list_is_named():
    with pytest.raises(RegistrySettingError) as raised:
        routes_of({}, url="https://m.example", registries=["docker.io", "docker.io"])
    assert raised.value.field == "registries[1]"
