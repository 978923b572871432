"""The pure logic of pmk_cluster_registry: fields, comparison, body, diff, URLs and messages."""

from __future__ import annotations

import json

import pytest
from fakes.qbert_server import REGISTRY_FIELD_TYPES

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _pmk_cluster as pmk
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ARGUMENT_SPEC as HOSTS_ARGUMENT_SPEC,
)

# The seed document's fields and their JSON types, as the stand-in API checks them.
SEED_TYPES = REGISTRY_FIELD_TYPES
FULL = dict(
    url="https://10.101.101.100:443",
    repo_path="infra/k8s",
    username="mirror",
    password="s3cret-pw",
    skip_tls=False,
    self_signed_certs=True,
    cert_path="/usr/local/share/reg-ca.crt",
)
# What a cluster holding FULL returns on GET (no password).
FULL_CLUSTER = {
    "uuid": "c1",
    "customRegistryUrl": "https://10.101.101.100:443",
    "customRegistryRepoPath": "infra/k8s",
    "customRegistryUsername": "mirror",
    "customRegistrySkipTls": False,
    "customRegistrySelfSignedCerts": True,
    "customRegistryCertPath": "/usr/local/share/reg-ca.crt",
}


# --- options -------------------------------------------------------------


@pytest.mark.parametrize("option", ["url", "repo_path", "username", "password", "skip_tls"])
def test_shared_options_match_containerd_hosts(option):
    ours, theirs = pmk.REGISTRY_ARGUMENT_SPEC[option], HOSTS_ARGUMENT_SPEC[option]
    assert ours["aliases"] == theirs["aliases"]
    assert ours["type"] == theirs["type"]
    assert ours.get("no_log", False) == theirs.get("no_log", False)
    assert "default" not in ours  # an option the task does not set is never sent


def test_every_seed_field_has_an_option_alias():
    aliases = {alias for spec in pmk.REGISTRY_ARGUMENT_SPEC.values() for alias in spec.get("aliases", [])}
    assert set(SEED_TYPES) <= aliases
    assert pmk.REGISTRY_ARGUMENT_SPEC["password"]["no_log"] is True


# --- wanted fields and the body -----------------------------------------


def test_body_has_the_seed_names_and_json_types():
    plan = pmk.plan_update({"uuid": "c1"}, pmk.wanted_fields(FULL))
    assert set(plan.body) == set(SEED_TYPES)
    for name, value in plan.body.items():
        assert isinstance(value, SEED_TYPES[name]), name
    assert json.loads(json.dumps(plan.body))["customRegistrySkipTls"] is False
    assert plan.body["customRegistryPassword"] == "s3cret-pw"


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, {}),
        ({"url": "10.0.0.1:5000"}, {"customRegistryUrl": "https://10.0.0.1:5000"}),
        ({"url": "HTTP://Mirror.Example:80/"}, {"customRegistryUrl": "http://Mirror.Example:80"}),
        ({"repo_path": "/infra/k8s/"}, {"customRegistryRepoPath": "infra/k8s"}),
        ({"repo_path": ""}, {"customRegistryRepoPath": ""}),
        ({"url": ""}, {"customRegistryUrl": ""}),
        ({"skip_tls": False}, {"customRegistrySkipTls": False}),
        ({"self_signed_certs": True, "url": None}, {"customRegistrySelfSignedCerts": True}),
        ({"cert_path": "https://example.com/cacert"}, {"customRegistryCertPath": "https://example.com/cacert"}),
    ],
)
def test_wanted_fields_only_set_and_normalised(params, expected):
    assert pmk.wanted_fields(params) == expected


@pytest.mark.parametrize(
    "params, field, fragment",
    [
        ({"url": "ftp://mirror"}, "url", "scheme"),
        ({"url": "https://mirror/v2/infra"}, "url", "repo_path"),
        ({"url": "https://user:pw@mirror"}, "url", "credentials"),
        ({"url": "https://mirror:99999"}, "url", "out of range"),
        ({"url": "https://mir ror"}, "url", "whitespace"),
        ({"repo_path": "Infra/K8s"}, "repo_path", "not a valid repository path component"),
        ({"repo_path": "infra//k8s"}, "repo_path", "empty path segment"),
        ({"username": "a:b"}, "username", "':'"),
        ({"password": "pw\nX-Evil: 1"}, "password", "control characters"),
        ({"cert_path": "reg-ca.crt"}, "cert_path", "absolute path"),
        ({"cert_path": "ftp://example.com/ca"}, "cert_path", "scheme"),
        ({"skip_tls": "yes"}, "skip_tls", "boolean"),
        ({"url": 5}, "url", "string"),
    ],
)
def test_wanted_fields_refuse_bad_values(params, field, fragment):
    with pytest.raises(pmk.RegistrySettingError) as caught:
        pmk.wanted_fields(params)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert fragment in str(caught.value)


def test_password_error_does_not_echo_it():
    with pytest.raises(pmk.RegistrySettingError) as caught:
        pmk.wanted_fields({"password": "top\x00secret"})
    assert "secret" not in str(caught.value)


# --- comparison ---------------------------------------------------------


@pytest.mark.parametrize(
    "field, current, wanted, same",
    [
        ("customRegistryUrl", "https://10.0.0.1:443", "https://10.0.0.1:443", True),
        ("customRegistryUrl", "https://10.0.0.1:443/", "https://10.0.0.1:443", True),
        ("customRegistryUrl", "10.0.0.1:443", "https://10.0.0.1:443", True),
        ("customRegistryUrl", "https://10.0.0.1:443", "https://10.0.0.2:443", False),
        ("customRegistryUrl", "https://10.0.0.1:443/v2/x", "https://10.0.0.1:443", False),
        ("customRegistryUrl", None, "https://10.0.0.1:443", False),
        ("customRegistryUrl", None, "", True),
        ("customRegistryRepoPath", "/infra/k8s/", "infra/k8s", True),
        ("customRegistryRepoPath", "infra/k8s", "infra/k9s", False),
        ("customRegistryUsername", "Mirror", "mirror", False),
        ("customRegistryUsername", 12, "12", False),
        ("customRegistryCertPath", "", "", True),
        ("customRegistrySkipTls", None, False, True),
        ("customRegistrySkipTls", None, True, False),
        ("customRegistrySkipTls", "true", True, True),
        ("customRegistrySkipTls", "false", True, False),
        ("customRegistrySelfSignedCerts", True, True, True),
        ("customRegistrySelfSignedCerts", 1, True, True),
        ("customRegistrySelfSignedCerts", "maybe", False, False),
    ],
)
def test_same_value(field, current, wanted, same):
    assert pmk.same_value(field, current, wanted) is same


def test_current_fields_reads_the_legacy_repo_path_name():
    current = pmk.current_fields({"customRegistryPath": "infra/k8s"})
    assert current["customRegistryRepoPath"] == "infra/k8s"
    assert pmk.PASSWORD_FIELD not in current


def test_current_fields_refuses_a_non_object():
    with pytest.raises(pmk.RegistrySettingError):
        pmk.current_fields(["not", "a", "cluster"])


# --- plan: idempotence and update_password ------------------------------

NO_PASSWORD = {key: value for key, value in FULL.items() if key != "password"}


@pytest.mark.parametrize(
    "cluster, params, update_password, changed, sends_password",
    [
        (FULL_CLUSTER, NO_PASSWORD, "on_change_of_other_fields", [], False),
        (FULL_CLUSTER, FULL, "on_change_of_other_fields", [], False),
        (FULL_CLUSTER, FULL, "always", ["customRegistryPassword"], True),
        (
            dict(FULL_CLUSTER, customRegistryUrl="https://old:443"),
            FULL,
            "on_change_of_other_fields",
            ["customRegistryUrl", "customRegistryPassword"],
            True,
        ),
        (dict(FULL_CLUSTER, customRegistrySkipTls=True), NO_PASSWORD, "always", ["customRegistrySkipTls"], False),
        ({"uuid": "c1"}, {"password": "pw"}, "on_change_of_other_fields", [], False),
        ({"uuid": "c1"}, {"password": "pw"}, "always", ["customRegistryPassword"], True),
        ({"uuid": "c1"}, {"skip_tls": False, "self_signed_certs": False}, "always", [], False),
    ],
)
def test_plan(cluster, params, update_password, changed, sends_password):
    plan = pmk.plan_update(cluster, pmk.wanted_fields(params), update_password)
    assert plan.changed == changed
    assert bool(plan.body) == bool(changed)
    assert (pmk.PASSWORD_FIELD in plan.body) is sends_password


def test_plan_sends_every_set_field_when_one_differs():
    cluster = dict(FULL_CLUSTER, customRegistryCertPath="/old/ca.crt", other="kept")
    plan = pmk.plan_update(cluster, pmk.wanted_fields(NO_PASSWORD))
    assert plan.changed == ["customRegistryCertPath"]
    assert plan.body == {key: value for key, value in FULL_CLUSTER.items() if key != "uuid"}


def test_plan_refuses_an_unknown_update_password():
    with pytest.raises(pmk.RegistrySettingError, match="^update_password: "):
        pmk.plan_update({}, {}, "sometimes")


def test_registry_after_and_diff_mask_the_password():
    cluster = {"customRegistryUrl": "https://old:443", "customRegistrySkipTls": True}
    plan = pmk.plan_update(cluster, pmk.wanted_fields({"url": "https://new:443", "password": "hunter2"}))
    assert plan.registry_after() == {
        "customRegistryUrl": "https://new:443",
        "customRegistryRepoPath": None,
        "customRegistryUsername": None,
        "customRegistrySkipTls": True,
        "customRegistrySelfSignedCerts": None,
        "customRegistryCertPath": None,
    }
    diff = plan.diff()
    assert diff == {
        "before": {"customRegistryUrl": "https://old:443", "customRegistryPassword": pmk.PASSWORD_UNKNOWN},
        "after": {"customRegistryUrl": "https://new:443", "customRegistryPassword": pmk.SECRET_MASK},
    }
    assert "hunter2" not in json.dumps(diff)


def test_sanitize_cluster_drops_the_password():
    assert pmk.sanitize_cluster({"a": 1, "customRegistryPassword": "x"}) == {"a": 1}


# --- URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "api_url, expected",
    [
        ("https://acct.platform9.net", "https://acct.platform9.net/qbert/v4/p1/clusters/c1"),
        ("https://acct.platform9.net/", "https://acct.platform9.net/qbert/v4/p1/clusters/c1"),
        ("HTTPS://acct.platform9.net:8443/prefix/", "https://acct.platform9.net:8443/prefix/qbert/v4/p1/clusters/c1"),
    ],
)
def test_cluster_url(api_url, expected):
    assert pmk.cluster_url(api_url, "p1", "c1") == expected


def test_ids_are_quoted_as_one_segment():
    assert pmk.cluster_url("https://a", "p/../x", "c?1") == "https://a/qbert/v4/p%2F..%2Fx/clusters/c%3F1"


@pytest.mark.parametrize(
    "api_url, project, cluster, field",
    [
        ("acct.platform9.net", "p", "c", "api_url"),
        ("https://acct?x=1", "p", "c", "api_url"),
        ("https://a", "", "c", "project_id"),
        ("https://a", "p", "c 1", "cluster_uuid"),
    ],
)
def test_cluster_url_refuses(api_url, project, cluster, field):
    with pytest.raises(pmk.RegistrySettingError, match=f"^{field}: "):
        pmk.cluster_url(api_url, project, cluster)


@pytest.mark.parametrize("force, flag", [(False, "false"), (True, "true")])
def test_upgrade_url(force, flag):
    assert pmk.upgrade_url("https://a/", "p1", "c1", "minor", force) == (
        f"https://a/qbert/v4/p1/clusters/c1/upgrade?type=minor&force={flag}"
    )


# --- messages -----------------------------------------------------------

URL = "https://a/qbert/v4/p1/clusters/c1"


@pytest.mark.parametrize(
    "status, body, fragments",
    [
        (401, b'{"message": "expired"}', ["rejected the auth token", "HTTP 401", "expired"]),
        (403, b"", ["rejected the auth token", "HTTP 403"]),
        (404, b'{"message": "nope"}', ["'p1'", "'c1'", "not found", "HTTP 404", "nope"]),
        (400, b'{"message": "bad customRegistryUrl"}', ["GET " + URL, "HTTP 400", "bad customRegistryUrl"]),
        (409, b'{"error": {"message": "cluster is busy", "code": 409}}', ["HTTP 409", "cluster is busy"]),
        (422, b'{"detail": "bad type"}', ["HTTP 422", "bad type"]),
        (500, b"upstream   exploded\n", ["HTTP 500", "upstream exploded"]),
        (502, b"<html><body>Bad Gateway</body></html>", ["HTTP 502 and no message"]),
        (503, b'{"code": 503}', ["HTTP 503 and no message"]),
    ],
)
def test_http_error_message(status, body, fragments):
    message = pmk.http_error_message("GET", URL, status, body, "p1", "c1")
    for fragment in fragments:
        assert fragment in message


def test_http_error_message_redacts_secrets_the_api_echoes():
    body = b'{"message": "token tok-123 cannot set password pw-456"}'
    message = pmk.http_error_message("PUT", URL, 400, body, "p1", "c1", ["tok-123", "pw-456"])
    assert "tok-123" not in message and "pw-456" not in message
    assert pmk.SECRET_MASK in message


@pytest.mark.parametrize(
    "reason, fragment",
    [
        ("Connection failure: timed out", "within 7 seconds"),
        ("Request failed: <urlopen error [Errno 111] Connection refused>", "could not reach"),
        (None, "no reason given"),
    ],
)
def test_connection_error_message(reason, fragment):
    message = pmk.connection_error_message("GET", URL, reason, 7)
    assert fragment in message
    assert URL in message


# --- redaction comes before folding and shortening (the API may echo what it got) ----------

TOKEN = "gAAAAABm-Token-SECRET-0123456789abcdef"
SPACED_PASSWORD = "pw  with  double  spaces "  # two spaces inside, one at the end


def assert_redacted(message):
    assert message is not None
    for secret in (TOKEN, SPACED_PASSWORD):
        for size in range(6, len(secret) + 1):  # no part of it, from its start or from its end
            assert secret[:size] not in message and secret[-size:] not in message, (secret[:size], message)
    assert " ".join(SPACED_PASSWORD.split()) not in message  # not even folded
    assert "with double" not in message


@pytest.mark.parametrize(
    "body",
    [
        # the secrets in odd spacing: newlines and runs of spaces around and inside
        f"token:\n\n{TOKEN}\n   password:  {SPACED_PASSWORD}\n",
        json.dumps({"message": f"rejected\n{TOKEN}\n\npassword  {SPACED_PASSWORD}  twice {SPACED_PASSWORD}"}),
        # the password as a server might re-wrap it: its spaces become a newline or one space
        "password " + SPACED_PASSWORD.replace("  ", "\n", 1),
        "password " + " ".join(SPACED_PASSWORD.split()),
    ],
)
def test_secrets_in_odd_spacing_are_masked(body):
    message = pmk.http_error_message("PUT", URL, 400, body.encode(), "p1", "c1", [TOKEN, SPACED_PASSWORD])
    assert_redacted(message)
    assert pmk.SECRET_MASK in message


@pytest.mark.parametrize("start", range(480, 505, 3))
@pytest.mark.parametrize("as_json", [False, True])
def test_a_secret_across_the_cut_off_is_masked(start, as_json):
    for secret in (TOKEN, SPACED_PASSWORD):
        text = "x" * start + secret + " and more" * 20
        body = json.dumps({"error": {"message": text}}) if as_json else text
        message = pmk.api_message(body, [TOKEN, SPACED_PASSWORD])
        assert len(message) <= 500
        assert_redacted(message)


def test_redact_keeps_the_rest_and_prefers_the_longest_secret():
    assert pmk.redact("a tok b tok-longer c", ["tok", "tok-longer"]) == "a ******** b ******** c"
    assert pmk.redact("nothing here", ["", None]) == "nothing here"
    assert pmk.redact("a.b a+b", ["a.b"]) == "******** a+b"  # a secret is text, not a pattern


@pytest.mark.parametrize(
    "method, url, location, fragments",
    [
        ("PUT", "http://api/qbert/v4/p/clusters/c", "https://api/qbert/v4/p/clusters/c",
         ["PUT http://api/qbert/v4/p/clusters/c was answered with a redirect to https://api/qbert/v4/p/clusters/c",
          "(HTTP 301)", "nothing was written", "use https:// in api_url"]),
        ("POST", URL + "/upgrade", "https://b/x", ["POST ", "(HTTP 301)", "nothing was written",
                                                   "point api_url at the API itself"]),
        ("GET", URL, "https://b/x", [f"GET {URL} was redirected to https://b/x (HTTP 301); not followed: why",
                                     "auth token is only sent to the scheme, host and port of api_url"]),
        ("GET", URL, None, [f"GET {URL} was redirected (HTTP 301)"]),
    ],
)
def test_redirect_error_message(method, url, location, fragments):
    message = pmk.redirect_error_message(method, url, 301, location, "why", [TOKEN])
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_redirect_error_message_redacts_a_location_that_echoes_the_token():
    message = pmk.redirect_error_message("GET", URL, 302, f"https://b/?token={TOKEN}", "why", [TOKEN])
    assert TOKEN not in message and pmk.SECRET_MASK in message
