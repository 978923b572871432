"""_token_auth: the WWW-Authenticate challenges, the realm policy, the token requests and answers (issue 24)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _token_auth as token_auth
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import check_token_realms

Challenge = token_auth.Challenge


# --- challenges -------------------------------------------------------------


@pytest.mark.parametrize(("values", "expected"), [
    # Harbor's, as issue 24 quotes it
    ('Bearer realm="https://harbor.example/service/token",service="harbor-registry"',
     [Challenge("bearer", {"realm": "https://harbor.example/service/token", "service": "harbor-registry"})]),
    # distribution's, with a scope whose value holds a comma inside the quotes
    ('Bearer realm="https://r/token",service="reg",scope="repository:a/b:pull,push"',
     [Challenge("bearer", {"realm": "https://r/token", "service": "reg", "scope": "repository:a/b:pull,push"})]),
    # an unquoted (token) value, spaces around = and commas, names in any case
    ('bearer Realm = "https://r/t" , SERVICE=reg', [Challenge("bearer", {"realm": "https://r/t", "service": "reg"})]),
    # quoted-pair escapes
    (r'Bearer realm="https://r/t",error="say \"no\", twice"',
     [Challenge("bearer", {"realm": "https://r/t", "error": 'say "no", twice'})]),
    # several challenges in one header, the first with a comma inside its quoted realm
    ('Basic realm="a, b", Bearer realm="https://r/t", service=s',
     [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": "https://r/t", "service": "s"})]),
    # RFC 9110's example: three parameters, then a new challenge
    ('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
     [Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
      Challenge("basic", {"realm": "simple"})]),
    # a token68 challenge, then another
    ("Basic dXNlcjpwYXNz, Bearer realm=r", [Challenge("basic", {}), Challenge("bearer", {"realm": "r"})]),
    # several headers
    (['Basic realm="x"', 'Bearer realm="https://r/t"'],
     [Challenge("basic", {"realm": "x"}), Challenge("bearer", {"realm": "https://r/t"})]),
    ("Bearer", [Challenge("bearer", {})]),
    ("", []),
    ([], []),
    (None, []),
    # a parameter repeated with the same value
    ('Bearer realm="https://r/1", realm="https://r/1"', [Challenge("bearer", {"realm": "https://r/1"})]),
])
def test_challenges_are_parsed(values, expected):
    assert token_auth.parse_challenges(values) == expected


@pytest.mark.parametrize("value", ['Bearer realm="unterminated', '"quoted" realm=x', "Bearer realm=",
                                   'Bearer realm="x" junk',
                                   # containerd takes the last of a repeated parameter: which realm is unclear
                                   'Bearer realm="https://r/1", realm="https://r/2"'])
def test_malformed_challenges_are_refused(value):
    with pytest.raises(token_auth.TokenAuthError):
        token_auth.parse_challenges(value)


@pytest.mark.parametrize(("values", "realm"), [
    ('Basic realm="Registry Realm"', None),  # a Basic challenge keeps today's behaviour
    ('Bearer service="x"', None),  # no realm: nothing to ask
    ('Basic realm="x", Bearer realm="https://r/t"', "https://r/t"),
    (['Basic realm="x"', 'Bearer realm="https://r/t"'], "https://r/t"),
    (['Bearer realm="https://r/t"', 'Bearer realm="https://r/t",service=s'], "https://r/t"),  # one realm twice
    (None, None),
])
def test_the_bearer_challenge_is_found(values, realm):
    challenge = token_auth.bearer_challenge(values)
    assert (challenge and challenge.params["realm"]) == realm


@pytest.mark.parametrize(("values", "fragment"), [
    # containerd reads the last realm of one challenge, and one challenge per header value (the second here),
    # so checking the first realm would let the credentials go to the other one
    ('Bearer realm="https://harbor.example/service/token",service="harbor-registry",realm="https://evil.example/t"',
     "gives realm twice"),
    (['Basic realm="harbor", Bearer realm="https://harbor.example/service/token"',
      'Bearer realm="https://evil.example/token"'],
     "more than one token realm: https://harbor.example/service/token, https://evil.example/token"),
    ('Bearer realm="unterminated', None),  # unreadable: no realm is asked
])
def test_a_challenge_that_could_name_another_realm_is_refused(values, fragment):
    with pytest.raises(token_auth.TokenAuthError, match=fragment):
        token_auth.bearer_challenge(values)


# --- the realm policy --------------------------------------------------------

MIRROR = "https://mirror.example:8443/v2/"


@pytest.mark.parametrize(("realm", "mirror", "allowed"), [
    ("https://mirror.example:8443/service/token", MIRROR, ()),  # same host and port
    ("https://mirror.example/token", MIRROR, ()),  # same host name, another port: allowed (host only)
    ("https://MIRROR.example:5001/token", MIRROR, ()),  # host names without case
    ("http://127.0.0.1:5001/token", "http://127.0.0.1:5000/v2/", ()),  # http realm of an http mirror
    ("https://auth.example/token", MIRROR, ("auth.example",)),  # a listed host, any port
    ("https://auth.example:9443/token", MIRROR, ("auth.example:9443",)),  # a listed host:port
    ("https://auth.example/token", MIRROR, ("auth.example:443",)),  # the scheme's default port
    ("http://auth.example/token", "http://mirror.example/v2/", ("auth.example:80",)),
    ("https://[::1]:9443/token", MIRROR, ("[::1]",)),
    ("https://auth.example/token", MIRROR, ("AUTH.example",)),  # as the module gets it unchecked
    ("https://[::1]:9443/token", MIRROR, ("[::1]:9443",)),
])
def test_realms_that_may_be_asked(realm, mirror, allowed):
    assert token_auth.check_realm(realm, mirror, allowed, "token_realms") == realm


@pytest.mark.parametrize(("realm", "mirror", "allowed", "fragments"), [
    ("https://auth.example/token", MIRROR, (),
     ["token realm https://auth.example/token", "another host than the mirror (mirror.example)",
      "list auth.example in token_realms"]),
    ("https://auth.example:9443/token", MIRROR, ("auth.example:443",), ["list auth.example in token_realms"]),
    ("https://auth.example/token", MIRROR, ("other.example",), ["another host"]),
    ("https://mirror.example.evil/token", MIRROR, (), ["another host"]),  # not a suffix match
    ("https://[::2]/token", MIRROR, ("[::1]",), ["list [::2] in token_realms"]),
    ("http://mirror.example:8443/token", MIRROR, (), ["over plain http while the mirror is https"]),
    ("ftp://mirror.example/token", MIRROR, (), ["not an http(s) URL"]),
    ("/service/token", MIRROR, (), ["not an http(s) URL"]),
    ("https://u:p@mirror.example/token", MIRROR, (), ["credentials in its URL"]),
    ("https://mirror.example:99999/token", MIRROR, (), ["not a valid URL"]),
])
def test_realms_that_are_refused(realm, mirror, allowed, fragments):
    with pytest.raises(token_auth.TokenAuthError) as raised:
        token_auth.check_realm(realm, mirror, allowed, "token_realms")
    for fragment in fragments:
        assert fragment in str(raised.value)
    assert "u:p" not in str(raised.value)


@pytest.mark.parametrize(("value", "expected"), [
    ([], []), (["Auth.Example"], ["auth.example"]),
    (["auth.example:5001", "10.0.0.2"], ["auth.example:5001", "10.0.0.2"]),
    (("[::1]:443",), ["[::1]:443"]),
])
def test_token_realms_setting(value, expected):
    assert check_token_realms(value) == expected


@pytest.mark.parametrize(("value", "field", "fragment"), [
    ("auth.example", "token_realms", "must be a list"),
    (["https://auth.example"], "token_realms[0]", "is not a valid registry host[:port]"),
    (["ok.example", ""], "token_realms[1]", "must not be empty"),
    ([5], "token_realms[0]", "must be a string"),
])
def test_bad_token_realms_name_the_entry(value, field, fragment):
    with pytest.raises(RegistrySettingError) as raised:
        check_token_realms(value)
    assert raised.value.field == field
    assert fragment in raised.value.problem


# --- requests and answers ------------------------------------------------------


@pytest.mark.parametrize(("repository", "challenge", "scope"), [
    ("proj/kubenode-preflight-probe", Challenge("bearer", {"realm": "r"}),
     "repository:proj/kubenode-preflight-probe:pull"),
    ("proj/img", Challenge("bearer", {"realm": "r", "scope": "repository:x:push"}), "repository:proj/img:pull"),
    (None, Challenge("bearer", {"realm": "r", "scope": "registry:catalog:*"}), "registry:catalog:*"),
    (None, Challenge("bearer", {"realm": "r"}), None),
])
def test_the_scope_asked_for(repository, challenge, scope):
    assert token_auth.scope_for(repository, challenge) == scope


@pytest.mark.parametrize(("realm", "service", "scope", "url"), [
    ("https://r/token", "reg", "repository:a/b:pull", "https://r/token?service=reg&scope=repository%3Aa%2Fb%3Apull"),
    ("https://r/token?x=1", "reg", None, "https://r/token?x=1&service=reg"),
    ("https://r/token", None, None, "https://r/token"),
])
def test_the_get_request(realm, service, scope, url):
    assert token_auth.token_get_url(realm, service, scope) == url


def test_the_post_password_grant_is_containerds_form():
    form = dict(parse_qsl(token_auth.token_post_form("harbor-registry", "repository:p/i:pull", "robot$x", "p&=w d")
                          .decode()))
    assert form == {"grant_type": "password", "username": "robot$x", "password": "p&=w d",
                    "client_id": "containerd-client", "service": "harbor-registry", "scope": "repository:p/i:pull"}


@pytest.mark.parametrize(("body", "token"), [
    (b'{"token": "abc.def.ghi"}', "abc.def.ghi"),
    (b'{"access_token": "xyz", "expires_in": 300}', "xyz"),
    (b'{"token": "t1", "access_token": "t2"}', "t1"),
    (b'{"token": "", "access_token": "t2"}', "t2"),
])
def test_the_token_is_read(body, token):
    assert token_auth.parse_token(body) == token


@pytest.mark.parametrize(("body", "fragment"), [
    (b"<html>secret-ish</html>", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'["token"]', "not a JSON object"),
    (b'{"refresh_token": "r"}', "holds no token"),
    (b'{"token": 5}', "holds no token"),
    (b'{"token": "a b"}', "cannot be sent in a header"),
    (b'{"token": "a\\nb"}', "cannot be sent in a header"),
    (json.dumps({"token": "x" * (token_auth.MAX_TOKEN + 1)}).encode(), "cannot be sent in a header"),
])
def test_bad_token_answers(body, fragment):
    with pytest.raises(token_auth.TokenAuthError) as raised:
        token_auth.parse_token(body)
    assert fragment in str(raised.value)
    assert "secret-ish" not in str(raised.value)


def test_the_realm_host_comparison_is_by_host_name():
    """Documented choice: host only, so the port of a realm on the mirror's host does not matter."""
    mirror = urlsplit("https://reg.example:5000/v2/")
    assert token_auth.realm_allowed(urlsplit("https://reg.example:5001/auth"), mirror, ())
    assert not token_auth.realm_allowed(urlsplit("https://auth.reg.example/auth"), mirror, ())
