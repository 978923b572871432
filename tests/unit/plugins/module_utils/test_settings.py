"""_settings: the one table of mirror settings, the validator, the PMK body both ways, and the filters on them."""

from __future__ import annotations

import pytest
from fakes.qbert_server import REGISTRY_FIELD_TYPES

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _settings as settings
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ARGUMENT_SPEC as HOSTS_ARGUMENT_SPEC,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    REQUIRED_IF,
    REQUIRED_TOGETHER,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pmk_cluster import (
    FIELDS,
    REGISTRY_ARGUMENT_SPEC,
    wanted_fields,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError

SEED_BODY = {
    "customRegistryUrl": "https://10.101.101.100:443",
    "customRegistryRepoPath": "infra/k8s",
    "customRegistryUsername": "username",
    "customRegistryPassword": "password",
    "customRegistrySkipTls": False,
    "customRegistrySelfSignedCerts": True,
    "customRegistryCertPath": "/usr/local/share/reg-ca.crt",
}
SEED_OPTIONS = {
    "url": "https://10.101.101.100:443",
    "repo_path": "infra/k8s",
    "username": "username",
    "password": "password",
    "skip_tls": False,
    "self_signed_certs": True,
    "cert_path": "/usr/local/share/reg-ca.crt",
}


def role_name(option):
    return f"containerd_mirror_{option}"


# --- the table and what derives from it ---------------------------------


def test_the_table_holds_the_seed_fields_in_order_with_their_json_types():
    assert [setting.pmk for setting in settings.PMK_SETTINGS] == list(SEED_BODY)
    assert {pmk: kind for _option, pmk, kind in FIELDS} == REGISTRY_FIELD_TYPES
    assert settings.BY_OPTION["repo_path"].aliases == ["customRegistryRepoPath", "customRegistryPath"]


@pytest.mark.parametrize("option", ["url", "repo_path", "username", "password", "skip_tls", "ca_file", "registries",
                                    "fallbacks", "config_path"])
def test_containerd_hosts_options_come_from_the_table(option):
    setting = settings.BY_OPTION[option]
    spec = HOSTS_ARGUMENT_SPEC[option]
    assert spec["type"] == setting.type
    assert spec.get("aliases", []) == setting.aliases
    assert spec.get("no_log", False) is setting.no_log
    default = list(setting.default) if isinstance(setting.default, tuple) else setting.default
    assert spec.get("default") == default


@pytest.mark.parametrize("setting", settings.PMK_SETTINGS, ids=lambda setting: setting.option)
def test_pmk_cluster_registry_options_come_from_the_table_without_defaults(setting):
    spec = REGISTRY_ARGUMENT_SPEC[setting.option]
    assert spec == {"type": setting.type, "aliases": setting.aliases, **({"no_log": True} if setting.no_log else {})}


def test_rules_become_ansible_required_together_and_required_if():
    assert REQUIRED_TOGETHER == [["username", "password"]]
    # containerd_hosts has no self_signed_certs; its url may be left out for registry_mirrors
    assert REQUIRED_IF == [["state", "present", ["url", "registry_mirrors"], True]]
    options = ("state", "url", "self_signed_certs", "cert_path")
    assert settings.required_if(options) == [["state", "present", ["url"]], ["self_signed_certs", True, ["cert_path"]]]
    assert settings.required_together(("username",)) == []


def test_the_qbert_body_and_the_pmk_body_mapping_are_inverse():
    assert settings.from_pmk_body(SEED_BODY) == SEED_OPTIONS
    assert settings.pmk_body(SEED_OPTIONS) == SEED_BODY
    assert wanted_fields(SEED_OPTIONS) == SEED_BODY


# --- the rules between settings -----------------------------------------

RULES = [
    # (settings, the setting the error is about, every setting the message names)
    ({"username": "u"}, "password", ["username", "password"]),
    ({"password": "p"}, "username", ["username", "password"]),
    ({"username": "", "password": "p"}, "username", ["username", "password"]),
    ({"state": "present"}, "url", ["url", "state"]),
    ({"state": "present", "url": ""}, "url", ["url", "state"]),
    ({"self_signed_certs": True}, "cert_path", ["cert_path", "self_signed_certs"]),
    ({"self_signed_certs": True, "cert_path": ""}, "cert_path", ["cert_path", "self_signed_certs"]),
    ({"self_signed_certs": True, "cert_path": "/ca.crt", "ca_src": "/a", "ca_content": "x"}, "ca_content",
     ["ca_src", "ca_content"]),
    ({"ca_content": "x"}, "ca_content", ["ca_src", "ca_content", "self_signed_certs", "cert_path"]),
    ({"ca_src": "/a", "cert_path": "/ca.crt"}, "ca_src", ["ca_src", "ca_content", "self_signed_certs", "cert_path"]),
    ({"ca_src": "/a", "self_signed_certs": True, "cert_path": "https://x/ca.crt"}, "ca_src",
     ["ca_src", "ca_content", "self_signed_certs", "cert_path"]),
]


@pytest.mark.parametrize(("given", "field", "named"), RULES)
@pytest.mark.parametrize("name", [None, role_name], ids=["option", "role"])
def test_each_rule_names_the_setting_and_every_setting_it_involves(given, field, named, name):
    name = name or (lambda option: option)
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings(given, name)
    assert raised.value.field == name(field)
    assert str(raised.value).startswith(f"{name(field)}: ")
    for option in named:
        assert name(option) in raised.value.problem


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"state": "absent"},
        {"state": "absent", "url": "", "self_signed_certs": False},
        {"username": "", "password": ""},
        {"username": "u", "password": "p"},
        {"self_signed_certs": False, "cert_path": "https://x/ca.crt"},
        {"self_signed_certs": True, "cert_path": "/ca.crt", "ca_src": "", "ca_content": "x"},
        {"state": "present", "url": "m:5000", "self_signed_certs": True, "cert_path": "https://x/ca.crt"},
    ],
)
def test_settings_that_keep_the_rules_pass(given):
    assert set(settings.check_settings(given)) == set(given)


def test_the_role_message_for_username_without_password():
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings({"username": "u", "password": ""}, role_name)
    assert str(raised.value) == (
        "containerd_mirror_password: containerd_mirror_username and containerd_mirror_password must be given together"
    )


# --- each setting --------------------------------------------------------

BAD_VALUES = [
    # (option, value, fragment of the message); the rules between settings hold
    ("url", "ftp://mirror", "scheme 'ftp'"),
    ("url", 5, "must be a string, got int"),
    ("repo_path", "a//b", "empty path segment"),
    ("username", "a:b", "':'"),
    ("password", "pw\nX: 1", "control characters"),
    ("skip_tls", "yes", "must be a boolean, got str"),
    ("self_signed_certs", 1, "must be a boolean, got int"),
    ("cert_path", "ca.crt", "must be an http(s) URL or an absolute path"),
    ("cert_path", "HTTPS://x/ca.crt", "lowercase"),
    ("cert_path", "ftp://x/ca.crt", "scheme"),
    ("cert_path", "/my ca.crt", "whitespace"),
    ("cert_path", '/ca".crt', "quotes"),
    ("ca_file", "", "must be an absolute path"),
    ("ca_file", "ca.crt", "must be an absolute path"),
    ("config_path", "~/certs.d", "'~/certs.d' must be an absolute path on the node"),
    ("containerd_config", "config.toml", "must be an absolute path"),
    ("nodeletd", "$HOME/nodeletd", "'$HOME/nodeletd' must be an absolute path"),
    ("nodeletd", "/opt/x\\y", "backslashes"),
    ("state", "gone", "'gone' is not one of present, absent"),
    ("ca_content", ["x"], "must be a string"),
    ("verify_image", "Pause:3.6", "'Pause:3.6' is not a valid image reference"),
    ("verify_image", {"image": "pause"}, "must be an image reference or a list of them, got dict"),
]


KEEPING_THE_RULES = {"username": "u", "password": "p", "self_signed_certs": True, "cert_path": "/ca.crt"}


@pytest.mark.parametrize(("option", "value", "fragment"), BAD_VALUES)
def test_a_bad_value_is_named(option, value, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings(dict(KEEPING_THE_RULES, **{option: value}), role_name)
    assert raised.value.field == role_name(option)
    assert fragment in raised.value.problem


def test_values_are_normalised_and_blank_strings_stay_unset():
    checked = settings.check_settings({"url": "HTTP://Mirror:80/", "repo_path": "/infra/k8s/", "username": "",
                                       "cert_path": "", "registries": ["docker.io"], "fallbacks": None})
    assert checked == {"url": "http://Mirror:80", "repo_path": "infra/k8s", "username": "", "cert_path": "",
                       "registries": ["docker.io"], "fallbacks": None}


@pytest.mark.parametrize("verify_image", ["", [], "pause:3.6", ["registry.k8s.io/pause:3.6", "docker.io/library/x"]])
def test_verify_image_is_a_reference_or_a_list_kept_as_given(verify_image):
    assert settings.check_settings({"verify_image": verify_image}) == {"verify_image": verify_image}


def test_a_bad_verify_image_in_a_list_is_named_with_its_index():
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings({"verify_image": ["pause:3.6", "registry.k8s.io/Pause"]}, role_name)
    assert raised.value.field == "containerd_mirror_verify_image[1]"


@pytest.mark.parametrize(("given", "field"), [({"colour": "blue"}, "containerd_mirror_colour"),
                                              (["url"], "containerd_mirror_settings")])
def test_the_settings_are_a_mapping_of_known_names(given, field):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings(given, role_name)
    assert raised.value.field == field


def test_a_bad_password_is_never_echoed():
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings({"username": "u", "password": "top\x00secret"})
    assert "secret" not in str(raised.value)


# --- a PMK cluster body --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {}),
        ({"uuid": "c1", "name": "prod", "customRegistryUrl": "10.0.0.1:5000"}, {"url": "https://10.0.0.1:5000"}),
        ({"customRegistryPath": "/infra/k8s/"}, {"repo_path": "infra/k8s"}),
        ({"customRegistryRepoPath": None, "customRegistryPath": "infra"}, {"repo_path": "infra"}),
        # both spellings with one value (as normalised) are one setting
        ({"customRegistryRepoPath": "infra/k8s", "customRegistryPath": "/infra/k8s/"}, {"repo_path": "infra/k8s"}),
        ({"customRegistryRepoPath": "", "customRegistryPath": None}, {"repo_path": ""}),
        ({"customRegistryRepoPath": None}, {"repo_path": ""}),
        ({"customRegistryUsername": None, "customRegistrySkipTls": None}, {"username": "", "skip_tls": False}),
        ({"customRegistrySkipTls": "false", "customRegistrySelfSignedCerts": "True"},
         {"skip_tls": False, "self_signed_certs": True}),
        ({"customRegistrySkipTls": 1}, {"skip_tls": True}),
        ({"customRegistryCertPath": "https://example.com/cacert"}, {"cert_path": "https://example.com/cacert"}),
    ],
)
def test_a_pmk_body_gives_the_settings_it_holds(body, expected):
    assert settings.from_pmk_body(body) == expected


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"customRegistryUrll": "https://m"}, "customRegistryUrll", "is not a PMK registry field"),
        ({"customregistryurl": "https://m"}, "customregistryurl", "is not a PMK registry field"),
        ({"customRegistryUrl": "ftp://m"}, "customRegistryUrl", "scheme"),
        ({"customRegistryUrl": 5}, "customRegistryUrl", "must be a string, got int"),
        ({"customRegistryPath": "a//b"}, "customRegistryPath", "empty path segment"),
        # two spellings of one setting that differ: neither is picked silently
        ({"customRegistryRepoPath": "a", "customRegistryPath": "b"}, "customRegistryRepoPath",
         "'a' differs from customRegistryPath 'b'"),
        ({"customRegistryPath": "b", "customRegistryRepoPath": "a"}, "customRegistryRepoPath",
         "'a' differs from customRegistryPath 'b'"),
        ({"customRegistryRepoPath": "", "customRegistryPath": "b"}, "customRegistryRepoPath", "differs"),
        ({"customRegistrySkipTls": "yes"}, "customRegistrySkipTls", "must be a boolean, got str"),
        ({"customRegistrySelfSignedCerts": 2}, "customRegistrySelfSignedCerts", "must be a boolean, got int"),
        ({"customRegistryPassword": 1234}, "customRegistryPassword", "must be a string, got int"),
        ({"customRegistryCertPath": "ca.crt"}, "customRegistryCertPath", "absolute path"),
        ("customRegistryUrl", "body", "must be a mapping"),
    ],
)
def test_a_bad_pmk_body_names_the_field(body, field, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        settings.from_pmk_body(body)
    assert raised.value.field == field
    assert fragment in raised.value.problem


def test_a_bad_pmk_password_is_never_echoed():
    with pytest.raises(RegistrySettingError) as raised:
        settings.from_pmk_body({"customRegistryPassword": "top\x00secret"})
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), (True, True), ("TRUE", True), (" false ", False), ("", False), (0, False), (1, True),
     ("yes", None), (2, None), ([], None)],
)
def test_pmk_bool(value, expected):
    assert settings.pmk_bool(value) is expected


# --- registry_mirrors: the rule with url, and one mirror's settings -------


def test_url_or_registry_mirrors_is_required_when_present():
    assert settings.check_settings({"state": "present", "registry_mirrors": {"docker.io": []}})
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings({"state": "present", "url": "", "registry_mirrors": {}}, role_name)
    assert str(raised.value) == (
        "containerd_mirror_url: containerd_mirror_url or containerd_mirror_registry_mirrors is required when "
        "containerd_mirror_state is present"
    )


def test_required_if_is_one_of_when_the_options_hold_registry_mirrors():
    assert settings.required_if(("state", "url", "registry_mirrors")) == [
        ["state", "present", ["url", "registry_mirrors"], True]]
    assert settings.required_if(("state", "registry_mirrors")) == []  # url is the rule's own option
    assert settings.required_together(("username", "password", "client_cert", "client_key")) == [
        ["username", "password"], ["client_cert", "client_key"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["pull"], ["pull"]), (["resolve", "pull"], ["pull", "resolve"]), (("push", "resolve", "pull"),
                                                                        ["pull", "resolve", "push"])],
)
def test_capabilities_are_written_in_containerds_order(value, expected):
    assert settings.check_capabilities(value) == expected


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [("pull", "capabilities", "must be a list"), ([], "capabilities", "at least one"),
     (["pull", "Pull"], "capabilities[1]", "'Pull' is not one of"), (["push", "push"], "capabilities[1]", "twice"),
     ([None], "capabilities[0]", "None is not one of")],
)
def test_bad_capabilities(value, field, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_capabilities(value)
    assert raised.value.field == field
    assert fragment in raised.value.problem


@pytest.mark.parametrize("value", ["3s", "500ms", "1m30s", "1.5s", ".5s", "250us", "250µs", "1h", "10ns", "0.1s"])
def test_durations_containerd_reads(value):
    assert settings.check_duration(value) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("3", "is not a duration"), ("-3s", "is not a duration"), ("+3s", "is not a duration"),
     ("3 s", "is not a duration"), ("3S", "is not a duration"), ("", "is not a duration"),
     ("3sec", "is not a duration"),
     ("0s", "longer than zero"), ("0.0ms", "longer than zero"), (3, "must be a string, got int")],
)
def test_bad_durations(value, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_duration(value)
    assert raised.value.field == "dial_timeout"
    assert fragment in raised.value.problem


def test_a_mirror_is_normalised_with_its_defaults():
    assert settings.check_mirror({"url": "harbor.example:443/", "repo_path": "/dockerhub-proxy/", "username": ""},
                                 "m") == {
        "url": "https://harbor.example:443", "repo_path": "dockerhub-proxy", "username": None, "password": None,
        "skip_tls": False, "ca_file": None, "ca_content": None, "ca_sha256": None, "client_cert": None,
        "client_key": None,
        "client_cert_content": None, "client_key_content": None, "capabilities": ["pull", "resolve"],
        "dial_timeout": None, "token_realms": None}


@pytest.mark.parametrize(
    ("mirror", "field", "fragment"),
    [
        ({"url": "https://m", "client_key": "/k"}, "m.client_cert",
         "m.client_cert and m.client_key must be given together"),
        ({"url": "https://m", "client_cert": "/c"}, "m.client_key", "must be given together"),
        ({"url": "https://m", "client_cert": "", "client_key": "/k"}, "m.client_cert", "must be given together"),
        ({"url": "https://m", "client_cert": "c.pem", "client_key": "/k"}, "m.client_cert", "absolute path"),
        ({"url": "https://m", "password": "p"}, "m.username", "must be given together"),
        ({"url": "https://m", "cert_path": "/ca"}, "m.cert_path", "is not a mirror setting"),
        ({"url": "https://m", "registries": []}, "m.registries", "is not a mirror setting"),
        ({"repo_path": "x"}, "m.url", "is required"),
        ({"url": ""}, "m.url", "is required"),
        ("https://m", "m", "must be a mapping"),
    ],
)
def test_a_bad_mirror_names_its_field(mirror, field, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_mirror(mirror, "m")
    assert raised.value.field == field
    assert fragment in raised.value.problem


def test_the_new_settings_are_checked_by_type():
    assert settings.check_settings({"registry_mirrors": {}, "upstream_fallback": False}) == {
        "registry_mirrors": {}, "upstream_fallback": False}
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_settings({"upstream_fallback": "false"}, role_name)
    assert raised.value.field == "containerd_mirror_upstream_fallback"


# --- a mirror's CA, client certificate and key given as PEM text (issue 12) --------------------------------------


def _tls_texts(pki):
    return {"ca": pki.ca.read_text(), "cert": pki.client.read_text(), "key": pki.client_key.read_text(),
            "other_key": pki.other_client_key.read_text(), "expired": pki.expired_ca.read_text()}


def test_a_mirror_takes_its_ca_and_client_pair_as_text(pki):
    texts = _tls_texts(pki)
    checked = settings.check_mirror({"url": "https://m", "ca_content": texts["ca"].rstrip("\n"),
                                     "client_cert_content": texts["cert"], "client_key_content": texts["key"]}, "m")
    assert checked["ca_content"] == texts["ca"]  # a final newline added
    assert (checked["client_cert_content"], checked["client_key_content"]) == (texts["cert"], texts["key"])
    assert checked["ca_file"] is None and checked["client_cert"] is None
    assert settings.MIRROR_BY_OPTION["client_key_content"].no_log is True
    assert not settings.MIRROR_BY_OPTION["client_cert_content"].no_log


CONTENT_REFUSALS = [
    # (mirror settings, with "{name}" for a text of _tls_texts; the field named; a fragment of the problem)
    ({"client_key_content": "{key}"}, "m.client_cert_content",
     "m.client_cert_content and m.client_key_content must be given together"),
    ({"client_cert_content": "{cert}"}, "m.client_key_content", "must be given together"),
    ({"client_cert_content": "", "client_key_content": "{key}"}, "m.client_cert_content", "must be given together"),
    ({"ca_file": "/ca.crt", "ca_content": "{ca}"}, "m.ca_content", "give m.ca_file or m.ca_content, not both"),
    ({"client_cert": "/c", "client_key_content": "{key}"}, "m.client_key_content",
     "give m.client_cert and m.client_key, or m.client_cert_content and m.client_key_content, not both"),
    ({"client_cert": "/c", "client_key": "/k", "client_cert_content": "{cert}", "client_key_content": "{key}"},
     "m.client_cert_content", "not both"),
    ({"ca_content": "hello"}, "m.ca_content", "not PEM"),
    ({"ca_content": "{expired}"}, "m.ca_content", "expired on"),
    ({"ca_content": "{key}"}, "m.ca_content", "is a PRIVATE KEY, not a CERTIFICATE"),
    ({"client_cert_content": "{expired}", "client_key_content": "{key}"}, "m.client_cert_content", "expired on"),
    ({"client_cert_content": "{cert}", "client_key_content": "{cert}"}, "m.client_key_content",
     "is a CERTIFICATE block, not a private key"),
    ({"client_cert_content": "{cert}", "client_key_content": "{key}{key}"}, "m.client_key_content",
     "found 2 PEM blocks"),
    ({"client_cert_content": "{cert}", "client_key_content": "{other_key}"}, "m.client_key_content",
     "the key does not belong to the certificate"),
    ({"client_cert_content": "{cert}", "client_key_content": ["{key}"]}, "m.client_key_content", "must be a string"),
]


@pytest.mark.parametrize(("given", "field", "fragment"), CONTENT_REFUSALS)
def test_a_bad_text_or_a_mix_of_forms_names_its_field_and_never_the_key(pki, given, field, fragment):
    texts = _tls_texts(pki)
    mirror = {"url": "https://m"}
    for option, value in given.items():
        mirror[option] = [value[0].format(**texts)] if isinstance(value, list) else value.format(**texts)
    with pytest.raises(RegistrySettingError) as raised:
        settings.check_mirror(mirror, "m")
    assert raised.value.field == field
    assert fragment in raised.value.problem
    for secret in (texts["key"], texts["other_key"]):
        assert secret.splitlines()[1] not in str(raised.value)


def test_the_role_settings_keep_their_ca_content():
    # ca_content of the role is the PMK mirror's CA written to ca_file: not exclusive with it, unlike a mirror's
    assert settings.check_settings({"self_signed_certs": True, "cert_path": "/ca.crt", "ca_file": "/ca.crt",
                                    "ca_content": "x"})["ca_content"] == "x"
