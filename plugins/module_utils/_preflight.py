# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What registry_preflight asks a mirror from the node, as containerd will, and how it words what went wrong.

Standard library only (Python 3.8+), no Ansible imports. One Target is one mirror as containerd will call it:
the PMK mirror of the url option, or one distinct mirror of registry_mirrors (its CA, client certificate,
credentials and skip_tls). Every message says what to fix in the words of the options (Target.prefix: "" for
the PMK mirror's own options, 'registry_mirrors["docker.io"][0].' for a mirror's).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
import time
from collections import namedtuple
from urllib.parse import quote, quote_plus, urlsplit

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http
from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _token_auth as token_auth
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import (
    PemError,
    load_key_files,
    load_key_pair,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pmk_cluster import redact as redact_secrets

USER_AGENT = "kubenode.registry_mirror-registry_preflight"
MAX_BODY = 65536  # the body of /v2/ is not needed; at most this much is read
# OpenSSL verify codes that mean the certificate does not name the host we called
_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_EXPIRED = (10,)  # X509_V_ERR_CERT_HAS_EXPIRED
# The repository asked for under a repo_path: a name no registry holds (see check_repo_path).
PROBE_REPOSITORY = "kubenode-preflight-probe"

# The repository a request is about, for the scope of its token: /v2/<name>/manifests/... or /v2/<name>/tags/list.
_REPOSITORY = re.compile(r"/v2/(.+?)/(?:manifests/[^/]+|tags/list)$")

Target = namedtuple(
    "Target", ["url", "username", "authorization", "context", "ca", "prefix", "client", "token_realms", "bearer"],
    defaults=((), None),
)
"""One mirror to call: url is its /v2/ URL; context the ssl context for https (None for http); ca the checked
Ca it verifies with (None: the system trust store or skip_tls); prefix how messages name its options; client
the option that holds its client certificate (None without one); token_realms the hosts besides the mirror's own
that may be asked for a token (its token_realms); bearer the token of a retried request (None before)."""


class PreflightError(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def tls_context(skip_tls, ca=None, client=None, prefix=""):
    """The ssl context containerd's settings amount to: verified with the CA's text (or the system trust store),
    or not at all with skip_tls; with client ("paths" or "content", certificate, key) the client certificate."""
    if skip_tls:
        context = _http.tls_context(verify=False)
    else:
        try:
            context = _http.tls_context(cadata=None if ca is None else ca.text)
        except ssl.SSLError as error:
            raise PreflightError(f"{ca.source}: OpenSSL cannot load it ({error})") from None
    if client is not None:
        form, certificate, key = client
        try:
            (load_key_files if form == "paths" else load_key_pair)(context, certificate, key)
        except PemError as error:
            fields = ("client_cert", "client_key") if form == "paths" else ("client_cert_content", "client_key_content")
            raise PreflightError(f"{prefix}{fields[0]} and {prefix}{fields[1]}: {error}") from None
    return context


def _tls_message(target, error):
    url, ca, prefix = target.url, target.ca, target.prefix
    reason = getattr(error, "verify_message", None) or getattr(error, "reason", None) or str(error)
    code = getattr(error, "verify_code", None)
    if code in _NAME_MISMATCH:
        return (
            f"TLS verification of {url} failed: the mirror's certificate is not valid for the host in {prefix}url "
            f"({reason}); use a name or address its certificate holds"
        )
    if code in _EXPIRED:
        return f"TLS verification of {url} failed: the mirror's certificate or its CA has expired ({reason})"
    if ca is None:
        return (
            f"TLS verification of {url} failed: the CA does not match the mirror's certificate ({reason}); "
            f"the system trust store was used: give the mirror's CA in {prefix}ca_content or {prefix}ca_file"
        )
    return (
        f"TLS verification of {url} failed: the CA does not match the mirror's certificate ({reason}); "
        "give the CA that signed the mirror's certificate"
    )


def _handshake_message(target, error):
    """A handshake that failed but not on the mirror's certificate: a mirror that wants a client certificate
    (mTLS) ends it with an alert (certificate required, unknown CA, bad certificate) or by closing it."""
    url, prefix = target.url, target.prefix
    if target.client is not None:
        return (f"TLS handshake with {url} failed ({error.cause}): the mirror does not accept the client certificate "
                f"of {target.client}; give one signed by a CA the mirror trusts for clients")
    if prefix:
        return (f"TLS handshake with {url} failed ({error.cause}): if the mirror requires a client certificate "
                f"(mTLS), give {prefix}client_cert and {prefix}client_key (node paths) or {prefix}client_cert_content "
                f"and {prefix}client_key_content; is it an https endpoint?")
    return f"TLS handshake with {url} failed ({error.cause}); is it an https endpoint?"


def _credentials(target):
    """The forms of target's credentials a server may repeat: the Authorization header, its Basic
    token, username:password, the password, and the percent-encoded forms of the last two (as in a URL, and as in
    the form body of a password grant, a space as +)."""
    bearer = [target.bearer, f"Bearer {target.bearer}"] if target.bearer else []
    if not target.authorization:
        return bearer
    token = target.authorization.partition(" ")[2] or target.authorization
    try:
        userpass = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # not a Basic token: the header and the token only
        userpass = ""
    password = userpass.partition(":")[2]
    found = {target.authorization, token, userpass, password, quote(userpass, safe=""), quote(password, safe=""),
             quote_plus(userpass, safe=""), quote_plus(password, safe="")}
    found.update(bearer)
    return [value for value in found if value]


def redact(target, text):
    """text, a server's words, with every form of target's credentials masked."""
    return redact_secrets(str(text), _credentials(target))


def _registry_message(target, body):
    """The first error message of a registry's JSON error body (distribution spec), its credentials redacted, cut
    short; "" without one."""
    try:
        errors = json.loads(body.decode("utf-8", errors="replace")).get("errors") or []
        message = redact(target, errors[0].get("message") or errors[0].get("code") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    printable = "".join(c if c.isprintable() else " " for c in message)[:200]
    return f": {printable}" if printable else ""


def http_error_message(target, url, status, reason, headers, location=None, body=b""):
    """Why a status other than the one wanted is a failure, and what to fix; what the server said (its message,
    challenge, reason and Location) with target's credentials redacted."""
    username, prefix = target.username, target.prefix
    challenge = headers.get("WWW-Authenticate") if headers is not None else None
    challenge = f" (it asks for: {redact(target, challenge.split(',')[0])})" if challenge else ""
    said = _registry_message(target, body)
    reason = redact(target, reason or "")
    if status == 401:
        if username is not None:
            return f"the mirror rejected the credentials for user {username!r} at {url} (HTTP 401{said}){challenge}"
        return (f"the mirror requires credentials: {url} answered HTTP 401{said}{challenge}; set {prefix}username "
                f"and {prefix}password")
    if status == 403:
        who = f"user {username!r}" if username is not None else "anonymous access"
        return f"the mirror forbids {who} at {url} (HTTP 403 Forbidden{said})"
    if 300 <= status < 400:
        if location is None and headers is not None:
            location = headers.get("Location")
        to = f" to {redact(target, _http.display_url(location))}" if location else ""
        return f"{url} redirects{to} (HTTP {status}); point {prefix}url at the mirror itself"
    return f"{url} answered HTTP {status} {reason}".rstrip() + f"{said}; a registry answers 200"


def _unreachable(url, reason, what="the mirror"):
    return f"{what} at {url} is unreachable ({reason})"


def _send(target, method, url, timeout, headers, redirects=_http.NO_REDIRECTS, what="the mirror", body=None,
          max_bytes=MAX_BODY):
    """One request as containerd would send it to target (its TLS context for https); the Response (any status), or
    PreflightError without one. what names the server in messages: the mirror, or its token service."""
    try:
        return _http.request(
            method, url, timeout=timeout, max_bytes=max_bytes, body=body,
            truncate=max_bytes == MAX_BODY,  # only the status and an error message matter, but a token does
            headers=headers, context=target.context if url.startswith("https://") else None, redirects=redirects,
        )  # fmt: skip
    except _http.HttpRedirectError as error:
        if what != "the mirror":
            raise PreflightError(f"{what} at {url} redirects (HTTP {error.status}); the preflight does not follow "
                                 "it, as credentials would go along", status=error.status) from None
        raise PreflightError(
            http_error_message(target, url, error.status, "", None, location=error.location), status=error.status
        ) from None
    except _http.HttpTimeout as error:
        if error.phase in ("while connecting", "during the TLS handshake"):
            raise PreflightError(_unreachable(url, f"no answer within {timeout:g} seconds; {error.reason}",
                                              what)) from None
        raise PreflightError(
            f"{what} at {url} is too slow: no complete answer within {timeout:g} seconds ({error.reason})"
        ) from None
    except _http.HttpTlsError as error:
        if error.verify and what != "the mirror":
            reason = getattr(error.cause, "verify_message", None) or getattr(error.cause, "reason", None) or error.cause
            raise PreflightError(
                f"TLS verification of {what} at {url} failed ({reason}); containerd verifies it as it verifies the "
                f"mirror, with {target.prefix}ca_content or {target.prefix}ca_file (or the system trust store): "
                "its certificate must be signed by that CA and hold the realm's host name"
            ) from None
        if error.verify:
            raise PreflightError(_tls_message(target._replace(url=url), error.cause)) from None
        raise PreflightError(_handshake_message(target._replace(url=url), error)) from None
    except _http.HttpProtocolError as error:
        said = redact(target, f"{type(error.cause).__name__}: {error.cause}")
        raise PreflightError(f"{url} did not answer HTTP ({said}); is it a registry?") from None
    except _http.HttpConnectError as error:
        if error.dns:
            raise PreflightError(_unreachable(url, f"the name does not resolve: {error.cause}", what)) from None
        raise PreflightError(_unreachable(url, error.cause, what)) from None
    except _http.HttpError as error:
        raise PreflightError(_unreachable(url, redact(target, error.reason), what)) from None


def _remaining(start, timeout, url):
    """Seconds left of the call's timeout; PreflightError when none are (the token flow took them)."""
    left = timeout - (time.monotonic() - start)
    if left <= 0:
        raise PreflightError(f"the mirror at {url} is too slow: no complete answer within {timeout} seconds, "
                             "with its token service")
    return left


def call(target, url, timeout, method="GET", accept="application/json", redirects=_http.NO_REDIRECTS):
    """Send method url as containerd would reach target; return the Response (any status), raise PreflightError
    without one. By default no redirect is followed, so the credentials go to the mirror only.

    On HTTP 401 with a Bearer challenge, the token flow is followed as containerd's resolver follows it
    (fetch_token, for the scope of the repository url is about, or the challenge's own), and the request is sent
    again with the token: that answer is returned. response.target is the target the answer came to (with its
    bearer token, so that messages about it redact the token too). All of it within timeout seconds.
    """
    start = time.monotonic()
    headers = {"User-Agent": USER_AGENT, "Accept": accept}
    if target.authorization is not None:
        headers["Authorization"] = target.authorization
    response = _send(target, method, url, timeout, headers, redirects)
    response.target = target
    get_all = getattr(response.headers, "get_all", None)
    challenge = None
    if response.status == 401 and get_all is not None:
        try:
            challenge = token_auth.bearer_challenge(get_all("WWW-Authenticate") or [])
        except token_auth.TokenAuthError as error:  # no realm is asked: which one containerd would ask is unclear
            raise PreflightError(
                f"{url} answered HTTP 401 with a WWW-Authenticate challenge that cannot be followed safely "
                f"({redact(target, error)}); no token service was asked", status=response.status,
            ) from None
    if challenge is None:
        return response  # no token flow: judged as the answer of the request itself (a Basic challenge too)
    repository = _REPOSITORY.search(urlsplit(url).path)
    scope = token_auth.scope_for(repository.group(1) if repository else None, challenge)
    try:
        token = fetch_token(target, challenge, scope, _remaining(start, timeout, url))
    except PreflightError as error:  # the status is the mirror's, whose 401 the token was for
        raise PreflightError(str(error), status=response.status) from None
    headers["Authorization"] = f"Bearer {token}"
    with_token = target._replace(bearer=token)
    response = _send(with_token, method, url, _remaining(start, timeout, url), headers, redirects)
    response.target = with_token
    return response


# --- the token flow --------------------------------------------------------


def _in_role(fields):
    """fields as the containerd_mirror role names them, for the PMK mirror's own options."""
    return " (" + " and ".join(f"containerd_mirror_{field}" for field in fields) + " in the containerd_mirror role)"


def _basic_credentials(target):
    """(username, password) of target's Basic authorization header, or None without one."""
    scheme, _space, token = (target.authorization or "").partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        username, _colon, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        return None
    return username, password


def _token_of(target, realm, response, credentials):
    """The token of the token service's answer; PreflightError saying what to fix when there is none."""
    where = f"the token service at {redact(target, realm)} (for the mirror at {target.url})"
    if response.status == 200:
        try:
            return token_auth.parse_token(response.body)
        except token_auth.TokenAuthError as error:
            raise PreflightError(f"{where}: {error}") from None
    said = _registry_message(target, response.body)
    prefix = target.prefix
    fields = f"{prefix}username and {prefix}password" + ("" if prefix else _in_role(("username", "password")))
    if response.status in (401, 403) and credentials is not None:
        raise PreflightError(f"{where} rejected the credentials for user {target.username!r} (HTTP "
                             f"{response.status}{said}); check {fields}", status=response.status)
    if response.status in (401, 403):
        raise PreflightError(f"{where} requires credentials (HTTP {response.status}{said}); set {fields}",
                             status=response.status)
    raise PreflightError(f"{where} answered HTTP {response.status}{said}; a token service answers 200 with a token",
                         status=response.status)


def _token_request(target, method, url, timeout, body=None, basic=False):
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if basic:
        headers["Authorization"] = target.authorization
    return _send(target, method, url, timeout, headers, what="the token service", body=body,
                 max_bytes=token_auth.MAX_TOKEN_BODY)


def fetch_token(target, challenge, scope, timeout):
    """A token for scope from the realm of challenge (a Bearer challenge of target), as containerd asks for it:
    anonymously with GET without credentials; with them, the POST password grant first, then GET with Basic when
    the POST is answered 400, 401, 404 or 405. The realm is checked before anything is sent there
    (token_auth.check_realm). Raises PreflightError naming what to fix; the token is never in a message."""
    start = time.monotonic()
    field = f"{target.prefix}token_realms" + ("" if target.prefix else _in_role(("token_realms",)))
    try:
        realm = token_auth.check_realm(challenge.params["realm"], target.url, target.token_realms, field)
    except token_auth.TokenAuthError as error:
        raise PreflightError(f"{redact(target, error)} (mirror {target.url})") from None
    service, credentials = challenge.params.get("service"), _basic_credentials(target)
    if credentials is not None:
        form = token_auth.token_post_form(service, scope, *credentials)
        response = _token_request(target, "POST", realm, timeout, body=form)
        if response.status not in token_auth.POST_FALLBACK_STATUSES:
            return _token_of(target, realm, response, credentials)
    url = token_auth.token_get_url(realm, service, scope)
    response = _token_request(target, "GET", url, _remaining(start, timeout, realm), basic=credentials is not None)
    return _token_of(target, realm, response, credentials)


def check_v2(target, timeout):
    """Call the mirror's /v2/ (the API version check); return the status on HTTP 200, raise PreflightError otherwise."""
    response = call(target, target.url, timeout)
    if response.status != 200:
        raise PreflightError(
            http_error_message(response.target, target.url, response.status, response.reason, response.headers,
                               body=response.body),
            status=response.status,
        )
    return response.status


def repo_path_url(target, repo_path):
    return f"{target.url}{repo_path}/{PROBE_REPOSITORY}/tags/list"


def check_repo_path(target, repo_path, timeout):
    """Ask for the tags of a repository under repo_path that does not exist; return the status when the mirror
    serves the path, raise PreflightError when it refuses it.

    Why this request: the registry API has no call for "does this namespace exist", /v2/_catalog is for
    administrators only on Harbor, and a manifest would make a proxy cache fetch from its upstream. A tags list
    is answered from the mirror's own store, never proxied, and its answer tells the cases apart:
    registry:2 (no projects) answers 404 NAME_UNKNOWN for any repository it does not hold; Harbor answers 404
    NOT_FOUND under a project that exists and that these credentials may pull from (a valid proxy-cache project
    holds no such repository), but 401 UNAUTHORIZED "project ... not found" for a project that does not exist,
    and 401 or 403 for one the credentials may not pull from; 400 (NAME_INVALID) is a path no registry takes.
    So a 200 or a 404 passes, and every other answer fails with the registry's own message.
    """
    url = repo_path_url(target, repo_path)
    response = call(target, url, timeout)
    if response.status in (200, 404):
        return response.status
    who = f"user {target.username!r}" if target.username is not None else "anonymous access"
    if response.status == 401 and target.username is None and response.target.bearer is not None:
        prefix = target.prefix  # an anonymous token does not cover the path: a private project, or none
        raise PreflightError(
            f"the mirror requires credentials for {prefix}repo_path {repo_path!r}: {url} answered HTTP 401"
            f"{_registry_message(response.target, response.body)} with an anonymous token; set {prefix}username "
            f"and {prefix}password (or check that the project exists)",
            status=response.status,
        )
    raise PreflightError(
        f"the mirror does not serve {target.prefix}repo_path {repo_path!r}: {url} answered HTTP {response.status}"
        f"{_registry_message(response.target, response.body)}; check that the project or path exists and that "
        f"{who} may pull from it",
        status=response.status,
    )


def check_manifest(target, url, accept, timeout):
    """HEAD a manifest as containerd's resolver does; return (status, why): why None on HTTP 200, else what the
    mirror answered, naming url. Redirects within the mirror are followed (containerd follows them too); one to
    another host is reported, since the mirror's CA and credentials are not for it.
    Raises PreflightError when no HTTP answer came (unreachable, TLS, too slow)."""
    try:
        response = call(target, url, timeout, method="HEAD", accept=accept, redirects=_http.SAME_ORIGIN)
    except PreflightError as error:
        if error.status is None or not 300 <= error.status < 400:
            raise
        return error.status, (f"{url} redirects to another host (HTTP {error.status}), which the preflight does not "
                              "follow with the mirror's CA and credentials")
    if response.status == 200:
        return response.status, None
    if response.status == 404:
        return response.status, f"{url} answered HTTP 404 (not on this mirror)"
    return response.status, http_error_message(response.target, url, response.status, response.reason, response.headers,
                                               body=response.body)
