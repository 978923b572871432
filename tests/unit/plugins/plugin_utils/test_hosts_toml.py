"""The pure rendering and validation logic, against the seed's files and a bad-input table."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.kubenode.registry_mirror.plugins.filter.registry_mirror import FilterModule
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import MARKER, is_managed
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    RegistrySettingError,
    basic_auth,
    check_mirror_settings,
    mirror_endpoint,
    normalize_repo_path,
    normalize_url,
    render_hosts_files,
    render_hosts_files_from,
    render_hosts_toml,
)

FILTERS = FilterModule().filters()
SEED_FILE = Path(__file__).parents[2] / "fixtures" / "seed-hosts.yml"
SEED_AUTH = "Basic d1h1YmhhbTpwZjck"
SEED_USER, SEED_PASSWORD = base64.b64decode(SEED_AUTH.split()[1]).decode().split(":", 1)
SEED_ARGS = dict(
    url="https://10.101.101.100:443",
    repo_path="infra/k8s",
    username=SEED_USER,
    password=SEED_PASSWORD,
    skip_tls=False,
    ca_file="/usr/local/share/reg-ca.crt",
)


def seed_files():
    return yaml.safe_load(SEED_FILE.read_text())


def test_seed_inputs_give_the_seed_files_toml_equal_host_order_included():
    rendered = dict(render_hosts_files(**SEED_ARGS))
    expected = seed_files()
    assert sorted(rendered) == sorted(expected)
    for directory, text in rendered.items():
        ours, theirs = tomllib.loads(text), tomllib.loads(expected[directory])
        assert ours == theirs, directory
        assert list(ours["host"]) == list(theirs["host"]), directory


def test_mirror_directory_comes_first_then_registries_in_order():
    rendered = [directory for directory, text in render_hosts_files(**SEED_ARGS, registries=["quay.io", "docker.io"])]
    assert rendered == ["10.101.101.100:443", "quay.io", "docker.io"]


def test_every_file_is_marked_as_ours():
    for text in dict(render_hosts_files(**SEED_ARGS)).values():
        assert text.startswith(MARKER + "\n")
        assert is_managed(text)


def test_hosts_toml_filter_matches_the_module_rendering():
    for directory, text in render_hosts_files(**SEED_ARGS):
        assert render_hosts_toml(dict(SEED_ARGS, registry=directory)) == text


@pytest.mark.parametrize(
    ("username", "password"),
    [("wXubham", "pf7$"), ("user", "pa:ss:word"), ("jürgen", "pässwörd€"), ("u", " leading and trailing ")],
)
def test_basic_auth_round_trips_utf8(username, password):
    header = basic_auth(username, password)
    scheme, token = header.split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode("utf-8") == f"{username}:{password}"


def test_seed_header():
    assert basic_auth(SEED_USER, SEED_PASSWORD) == SEED_AUTH


@pytest.mark.parametrize(
    ("url", "repo_path", "endpoint"),
    [
        ("https://10.101.101.100:443", "infra/k8s", "https://10.101.101.100:443/v2/infra/k8s"),
        ("10.101.101.100:443", "/infra/k8s/", "https://10.101.101.100:443/v2/infra/k8s"),
        ("https://user.jfrog.io/", "", "https://user.jfrog.io"),
        ("http://mirror.local:5000", None, "http://mirror.local:5000"),
        ("HTTPS://Mirror.Example.com", "a/b-c/d_e", "https://Mirror.Example.com/v2/a/b-c/d_e"),
        ("https://[fd00::1]:5000", "infra", "https://[fd00::1]:5000/v2/infra"),
        ("[::1]", "", "https://[::1]"),
    ],
)
def test_mirror_endpoint(url, repo_path, endpoint):
    assert mirror_endpoint(url, repo_path) == endpoint


def test_ipv6_mirror_gets_its_own_directory():
    rendered = dict(render_hosts_files("https://[fd00::1]:5000", "infra", registries=["docker.io"]))
    assert "[fd00::1]:5000" in rendered
    assert tomllib.loads(rendered["[fd00::1]:5000"])["server"] == "https://[fd00::1]:5000"


def test_root_mirror_has_no_override_path():
    text = dict(render_hosts_files("https://mirror:5000", registries=["docker.io"]))["docker.io"]
    host = tomllib.loads(text)["host"]["https://mirror:5000"]
    assert "override_path" not in host


def test_skip_tls_writes_skip_verify_on_the_mirror_host_only():
    text = dict(render_hosts_files(**{**SEED_ARGS, "skip_tls": True}))["docker.io"]
    hosts = tomllib.loads(text)["host"]
    assert hosts["https://10.101.101.100:443/v2/infra/k8s"]["skip_verify"] is True
    assert "skip_verify" not in hosts["https://registry-1.docker.io"]


def test_without_credentials_there_is_no_header():
    text = dict(render_hosts_files("https://m:1", "x"))["docker.io"]
    assert "header" not in tomllib.loads(text)["host"]["https://m:1/v2/x"]


def test_custom_fallbacks_replace_the_defaults():
    rendered = dict(
        render_hosts_files("https://m:1", registries=["docker.io", "ghcr.io"], fallbacks={"ghcr.io": ["ghcr.io"]})
    )
    assert list(tomllib.loads(rendered["docker.io"])["host"]) == ["https://m:1"]
    assert list(tomllib.loads(rendered["ghcr.io"])["host"]) == ["https://m:1", "https://ghcr.io"]


def test_default_directory_has_no_server():
    text = dict(render_hosts_files("https://m:1", registries=["_default"]))["_default"]
    assert "server" not in tomllib.loads(text)


BAD_INPUT = [
    # (field named in the error, keyword arguments)
    ("url", dict(url="ftp://10.0.0.1")),
    ("url", dict(url="")),
    ("url", dict(url="https://10.0.0.1:443/v2/infra")),
    ("url", dict(url="https://10.0.0.1:443?x=1")),
    ("url", dict(url="https://user:pw@10.0.0.1")),
    ("url", dict(url="https://10.0.0.1:99999")),
    ("url", dict(url="https://[fd00::zz]:5000")),
    ("url", dict(url="https://mirror\n.example")),
    ("url", dict(url='https://mirror"]\nx = "')),
    ("url", dict(url=None)),
    ("password", dict(username="user")),
    ("username", dict(password="secret")),
    ("username", dict(username="us:er", password="secret")),
    ("username", dict(username="", password="secret")),
    ("password", dict(username="user", password="")),
    ("password", dict(username="user", password="line\nbreak")),
    ("registries[0]", dict(registries=["../../etc"])),
    ("registries[1]", dict(registries=["docker.io", "a/b"])),
    ("registries[0]", dict(registries=[""])),
    ("registries[0]", dict(registries=["docker io"])),
    ("registries[0]", dict(registries=['docker.io"]\n[host."x'])),
    ("registries[1]", dict(registries=["docker.io", "docker.io"])),
    ("registries[0]", dict(registries=["10.0.0.1:443"])),
    ("registries", dict(registries="docker.io")),
    ("repo_path", dict(repo_path='infra"k8s')),
    ("repo_path", dict(repo_path="infra/k8s\n")),
    ("repo_path", dict(repo_path="infra k8s")),
    ("repo_path", dict(repo_path="infra/../etc")),
    ("repo_path", dict(repo_path="infra//k8s")),
    ("repo_path", dict(repo_path="Infra/K8s")),
    ("ca_file", dict(ca_file="relative/ca.crt")),
    ("ca_file", dict(ca_file='/etc/ca.crt"\nskip_verify = true\n#')),
    ("skip_tls", dict(skip_tls="yes")),
    ("fallbacks", dict(fallbacks={"ghcr.io": ["https://ghcr.io"]})),
    ("fallbacks[docker.io][0]", dict(fallbacks={"docker.io": ["ftp://x"]})),
    ("fallbacks[docker.io]", dict(fallbacks={"docker.io": "https://x"})),
    ("fallbacks[docker.io][1]", dict(fallbacks={"docker.io": ["https://x", "https://x"]})),
]


@pytest.mark.parametrize(("field", "kwargs"), BAD_INPUT, ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_INPUT)])
def test_bad_input_names_the_field(field, kwargs):
    arguments = dict(url="https://10.0.0.1:443", registries=["docker.io"]) | kwargs
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files(**arguments)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_errors_never_echo_the_password():
    with pytest.raises(RegistrySettingError) as raised:
        basic_auth("user", "s3cr3t\x00")
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "normalized"),
    [("https://a.b/", ("https://a.b", "a.b")), ("a.b:5000", ("https://a.b:5000", "a.b:5000"))],
)
def test_normalize_url(url, normalized):
    assert normalize_url(url) == normalized


@pytest.mark.parametrize(
    ("path", "normalized"), [("/a/b/", "a/b"), ("", ""), ("/", ""), (None, ""), ("a.b__c-d", "a.b__c-d")]
)
def test_normalize_repo_path(path, normalized):
    assert normalize_repo_path(path) == normalized


@pytest.mark.parametrize(
    "spec",
    [
        {"url": "https://m:1"},
        {"registry": "docker.io"},
        {"registry": "docker.io", "url": "https://m:1", "colour": "blue"},
        "not a mapping",
    ],
)
def test_hosts_toml_spec_is_strict(spec):
    with pytest.raises(RegistrySettingError):
        render_hosts_toml(spec)


def test_hosts_files_settings_match_the_module_rendering_and_take_defaults_for_none():
    settings = dict(SEED_ARGS, registries=None, fallbacks=None, skip_tls=None)
    assert render_hosts_files_from(settings) == [
        {"directory": directory, "content": text} for directory, text in render_hosts_files(**SEED_ARGS)
    ]


@pytest.mark.parametrize(
    ("settings", "field"),
    [({"repo_path": "a"}, "url"), ({"url": "https://m", "colour": "x"}, "settings"), ([], "settings"),
     ({"url": "https://m", "registries": ["a b"]}, "registries[0]")],
)
def test_hosts_files_settings_are_strict(settings, field):
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files_from(settings)
    assert raised.value.field == field


# --- the filters ------------------------------------------------------------


def role_name(option):
    return f"containerd_mirror_{option}"


def test_from_pmk_cluster_gives_the_role_variables():
    body = {"customRegistryUrl": SEED_ARGS["url"], "customRegistryPath": SEED_ARGS["repo_path"],  # the seed's spelling
            "customRegistryUsername": SEED_USER, "customRegistryPassword": SEED_PASSWORD,
            "customRegistrySkipTls": "false", "customRegistrySelfSignedCerts": True,
            "customRegistryCertPath": SEED_ARGS["ca_file"]}
    options = {"url": SEED_ARGS["url"], "repo_path": SEED_ARGS["repo_path"], "username": SEED_USER,
               "password": SEED_PASSWORD, "skip_tls": False, "self_signed_certs": True,
               "cert_path": SEED_ARGS["ca_file"]}
    assert FILTERS["from_pmk_cluster"](body) == {role_name(option): value for option, value in options.items()}
    assert FILTERS["from_pmk_cluster"](body, "") == options


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"customRegistryUrl": "https://m", "customRegistrySkipTLS": True},
         "from_pmk_cluster: customRegistrySkipTLS: is not a PMK registry field"),
        ({"customRegistryUrl": "https://m", "customRegistrySkipTls": "sometimes"},
         "from_pmk_cluster: customRegistrySkipTls: must be a boolean, got str"),
    ],
)
def test_from_pmk_cluster_is_strict(body, message):
    with pytest.raises(AnsibleFilterError, match="^" + message):
        FILTERS["from_pmk_cluster"](body)


def role_settings(**overrides):
    given = {"state": "present", "url": "https://10.101.101.100:443", "repo_path": "infra/k8s", "username": "",
             "password": "", "skip_tls": False, "self_signed_certs": False, "cert_path": "", "ca_src": "",
             "ca_content": "", "ca_file": None, "registries": ["docker.io"], "fallbacks": None,
             "config_path": "/etc/containerd/certs.d", "containerd_config": "/etc/containerd/config.toml",
             "nodeletd": "/opt/pf9/nodelet/nodeletd"}
    given.update(overrides)
    return given


def test_mirror_settings_returns_the_settings_normalised():
    checked = FILTERS["mirror_settings"](role_settings(url="10.101.101.100:443/", repo_path="/infra/k8s/"))
    assert checked == role_settings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": ""},
         "containerd_mirror_url: containerd_mirror_url is required when containerd_mirror_state is present"),
        ({"registries": ["docker.io", "a/b"]}, "containerd_mirror_registries[1]: "),
        ({"fallbacks": {"docker.io": ["ftp://x"]}}, "containerd_mirror_fallbacks[docker.io][0]: "),
        ({"ca_src": "/nonexistent/ca.crt", "self_signed_certs": True, "cert_path": "/ca.crt"},
         "containerd_mirror_ca_src: /nonexistent/ca.crt is not a file on the controller"),
    ],
)
def test_mirror_settings_names_the_role_variable(overrides, message):
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS["mirror_settings"](role_settings(**overrides))
    assert str(raised.value).startswith(f"mirror_settings: {message}")


def test_mirror_settings_takes_a_ca_src_that_is_a_file_and_renders_nothing_for_absent(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    assert FILTERS["mirror_settings"](role_settings(ca_src=str(ca), self_signed_certs=True, cert_path="/ca.crt",
                                                    ca_file="/ca.crt"))["ca_src"] == str(ca)
    # absent: no URL needed and no rendering, so a registry list it would refuse passes
    assert check_mirror_settings(role_settings(state="absent", url="", registries=["a/b"]))["state"] == "absent"
