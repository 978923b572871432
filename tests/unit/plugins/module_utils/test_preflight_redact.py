"""_preflight: what a mirror sends back never shows the credentials sent to it (issue 23, defect 9)."""

from __future__ import annotations

import base64
import http.client
import json
from email.message import Message
from urllib.parse import quote, quote_plus, urlencode

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http, _preflight
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import basic_auth

USERNAME, PASSWORD = "robot$ci", "S3cret-pa55word"
AUTHORIZATION = basic_auth(USERNAME, PASSWORD)
TOKEN = AUTHORIZATION.split(" ", 1)[1]
URL = "https://mirror.example:5000/v2/"
PREFIX = 'registry_mirrors["docker.io"][0].'
# Every form of the credentials a server may repeat; none may be shown.
SECRETS = [AUTHORIZATION, TOKEN, f"{USERNAME}:{PASSWORD}", PASSWORD, quote(PASSWORD, safe=""),
           base64.b64decode(TOKEN).decode()]
ECHOES = {
    "header": f"bad header Authorization: {AUTHORIZATION}",
    "token": f"cannot decode {TOKEN}",
    "userpass": f"no user {USERNAME}:{PASSWORD} here",
    "password": f"wrong password {PASSWORD!r}",
}


def target(prefix=PREFIX):
    return _preflight.Target(URL, USERNAME, AUTHORIZATION, None, None, prefix, None)


def answer(status, echo, where):
    """A Response that repeats echo in the body's error message, the challenge or the reason phrase."""
    headers = Message()
    reason = echo if where == "reason" else "Whatever"
    if where == "challenge":
        headers["WWW-Authenticate"] = f'Basic realm="{echo}"'
    message = echo if where == "body" else "denied"
    body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
    return _http.Response(status, reason, headers, body, URL, 0.1, False)


def assert_redacted(text):
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in {text!r}"


@pytest.mark.parametrize("prefix", ["", PREFIX])
@pytest.mark.parametrize("where", ["body", "challenge", "reason"])
@pytest.mark.parametrize("echo", sorted(ECHOES))
@pytest.mark.parametrize("status", [401, 403, 500])
@pytest.mark.parametrize("check", ["v2", "repo_path", "manifest"])
def test_a_servers_answer_never_shows_the_credentials(monkeypatch, prefix, where, echo, status, check):
    monkeypatch.setattr(_http, "request", lambda *args, **kwargs: answer(status, ECHOES[echo], where))
    if check == "manifest":
        why = _preflight.check_manifest(target(prefix), URL + "x/manifests/1", "*/*", 5)[1]
    else:
        with pytest.raises(_preflight.PreflightError) as raised:
            if check == "v2":
                _preflight.check_v2(target(prefix), 5)
            else:
                _preflight.check_repo_path(target(prefix), "proxy", 5)
        why = str(raised.value)
    assert_redacted(why)
    assert URL.rstrip("/") in why  # the message still names what failed


@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_a_redirect_or_a_broken_answer_never_shows_the_credentials(monkeypatch, echo):
    def redirect(*args, **kwargs):
        raise _http.HttpRedirectError("GET", URL, 302, f"https://other.example/?q={quote(ECHOES[echo])}"
                                      f"&raw={ECHOES[echo]}", "redirects are not followed", 0.1)

    def broken(*args, **kwargs):
        cause = http.client.BadStatusLine(ECHOES[echo])
        raise _http.HttpProtocolError("GET", URL, "no valid HTTP answer", 0.1, cause)

    for fake in (redirect, broken):
        monkeypatch.setattr(_http, "request", fake)
        with pytest.raises(_preflight.PreflightError) as raised:
            _preflight.check_v2(target(), 5)
        assert_redacted(str(raised.value))
        assert URL in str(raised.value)


def test_the_registrys_own_words_are_kept_around_the_redaction(monkeypatch):
    monkeypatch.setattr(_http, "request", lambda *args, **kwargs: answer(401, ECHOES["header"], "body"))
    with pytest.raises(_preflight.PreflightError) as raised:
        _preflight.check_v2(target(), 5)
    assert "bad header Authorization: " in str(raised.value)
    assert "(HTTP 401: bad header Authorization: ********)" in str(raised.value)


def test_without_credentials_nothing_is_redacted(monkeypatch):
    monkeypatch.setattr(_http, "request", lambda *args, **kwargs: answer(401, ECHOES["password"], "body"))
    with pytest.raises(_preflight.PreflightError) as raised:
        _preflight.check_v2(target()._replace(username=None, authorization=None), 5)
    assert f"wrong password {PASSWORD!r}" in str(raised.value)


def test_a_long_message_is_cut_after_the_redaction(monkeypatch):
    echo = "x" * 195 + TOKEN
    monkeypatch.setattr(_http, "request", lambda *args, **kwargs: answer(401, echo, "body"))
    with pytest.raises(_preflight.PreflightError) as raised:
        _preflight.check_v2(target(), 5)
    assert TOKEN[:5] not in str(raised.value)
    assert "x" * 195 + "*****" in str(raised.value)


@pytest.mark.parametrize("password", ["s3cret pass", "p&w=d+x", "pässwörd:2"])
def test_a_password_grant_echoed_back_never_shows_the_password(password):
    """A token service that repeats the form of the POST password grant (a space as +) in its error."""
    secret = _preflight.Target(URL, USERNAME, basic_auth(USERNAME, password), None, None, "", None)
    body = urlencode({"grant_type": "password", "username": USERNAME, "password": password})
    shown = _preflight.redact(secret, f"cannot handle {body}")
    assert quote_plus(password) not in shown and password not in shown, shown


def test_a_token_service_whose_certificate_fails_is_named_as_such(monkeypatch):
    """A realm that fails TLS verification is reported as the token service, not as the mirror's certificate."""
    realm = "https://auth.example/token"

    def request(method, url, **kwargs):
        if url.startswith(realm):
            raise _http.HttpTlsError(method, url, "certificate verify failed", 0.1, ValueError("unable to get issuer"),
                                     verify=True)
        headers = Message()
        headers["WWW-Authenticate"] = f'Bearer realm="{realm}",service="registry"'
        return _http.Response(401, "Unauthorized", headers, b"{}", url, 0.1, False)

    monkeypatch.setattr(_http, "request", request)
    mirror = target()._replace(token_realms=("auth.example",))
    with pytest.raises(_preflight.PreflightError) as raised:
        _preflight.check_v2(mirror, 5)
    assert str(raised.value).startswith(f"TLS verification of the token service at {realm} failed (")
    assert f"with {PREFIX}ca_content or {PREFIX}ca_file" in str(raised.value)
    assert "the mirror's certificate is not valid" not in str(raised.value)
