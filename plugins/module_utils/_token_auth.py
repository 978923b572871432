# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry token flow as containerd's docker resolver follows it: the pure parts.

Standard library only (Python 3.8+), no Ansible imports. registry_preflight (_preflight.py) sends the requests;
this module reads a WWW-Authenticate challenge, decides whether a realm may be asked for a token (and be sent the
mirror's credentials), words the token requests, and reads the token from the answer.

containerd (remotes/docker/authorizer.go and auth/fetch.go, 1.6 to 2.x): on a 401 with a Bearer challenge it asks
the challenge's realm for a token for the request's scope; without credentials with GET (query service and
scope); with them first with a POST OAuth2 password grant (form grant_type=password, username, password,
service, scope, client_id=containerd-client), and with GET and Basic only when the POST is answered 400, 401, 404
or 405. The token is the answer's "token" (GET) or "access_token" (POST). containerd sends the credentials to
whatever realm the mirror names; the preflight does not: see check_realm.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple
from urllib.parse import urlencode, urlsplit

CLIENT_ID = "containerd-client"  # containerd's default client_id of the password grant
# The statuses of a POST password grant after which containerd asks again with GET and Basic.
POST_FALLBACK_STATUSES = (400, 401, 404, 405)
MAX_TOKEN_BODY = 1024 * 1024  # a token answer larger than this is refused
MAX_TOKEN = 64 * 1024  # a token longer than this is refused: it goes into a header

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_SPACE = re.compile(r"[ \t]*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')

Challenge = namedtuple("Challenge", ["scheme", "params"])
"""One challenge of a WWW-Authenticate header: scheme in lower case, params {name in lower case: value}."""


class TokenAuthError(Exception):
    """A challenge, a realm or a token answer that cannot be used; the message says why, without any secret."""


def _skip(text, position, pattern=_SPACE):
    return pattern.match(text, position).end()


def _param(text, position):
    """(name, value, end) of the auth-param at position, or None when there is none there (a new challenge)."""
    name = _TOKEN.match(text, position)
    if name is None:
        return None
    after = _skip(text, name.end())
    if after >= len(text) or text[after] != "=":
        return None
    after = _skip(text, after + 1)
    quoted = _QUOTED.match(text, after)
    if quoted is not None:
        return name.group(0).lower(), re.sub(r"\\(.)", r"\1", quoted.group(1)), quoted.end()
    value = _TOKEN.match(text, after)
    if value is None:
        raise TokenAuthError(f"the value of {name.group(0)} is neither a token nor a quoted string")
    return name.group(0).lower(), value.group(0), value.end()


def _params(text, position):
    """The auth-params (or token68) of one challenge from position: (params, end)."""
    params = {}
    token68 = _TOKEN68.match(text, position)
    if token68 is not None and _param(text, position) is None:
        end = _skip(text, token68.end())
        if end >= len(text) or text[end] == ",":
            return params, end  # a token68 (Basic's form), nothing to read
    while position < len(text):
        found = _param(text, position)
        if found is None:
            break
        name, value, position = found
        if params.setdefault(name, value) != value:  # containerd takes the last, RFC 9110 allows one
            raise TokenAuthError(f"the challenge gives {name} twice, with different values")
        position = _skip(text, position)
        if position < len(text) and text[position] != ",":
            raise TokenAuthError(f"unexpected {text[position]!r} after the value of {name}")
        next_param = _skip(text, _skip(text, position, re.compile(r"[ \t,]*")))
        if next_param >= len(text) or _param(text, next_param) is None:
            return params, position  # the end, or a new challenge after the comma
        position = next_param
    return params, position


def parse_challenges(values):
    """The challenges of one or more WWW-Authenticate header values (RFC 9110 11.6.1), in order.

    Quoted values may hold commas and backslash escapes; several challenges may share one header, separated by
    commas. Raises TokenAuthError on text that is not a challenge list.
    """
    if isinstance(values, str):
        values = [values]
    challenges = []
    for text in values or ():
        position = 0
        while True:
            position = _skip(text, position, re.compile(r"[ \t,]*"))
            if position >= len(text):
                break
            scheme = _TOKEN.match(text, position)
            if scheme is None:
                raise TokenAuthError(f"{text[position:position + 20]!r} is not an authentication scheme")
            params, position = _params(text, _skip(text, scheme.end()))
            challenges.append(Challenge(scheme.group(0).lower(), params))
    return challenges


def bearer_challenge(values):
    """The first Bearer challenge of the WWW-Authenticate values with a realm, or None (Basic, none).

    Raises TokenAuthError for values that are not a challenge list, or that name more than one realm (a parameter
    given twice, Bearer challenges with different realms): containerd reads them its own way (one challenge per
    header value, the last of a repeated parameter, the first Bearer), so the realm checked here could be another
    than the one it sends the credentials to.
    """
    bearers = [c for c in parse_challenges(values) if c.scheme == "bearer" and c.params.get("realm")]
    realms = list(dict.fromkeys(c.params["realm"] for c in bearers))
    if len(realms) > 1:
        raise TokenAuthError(f"the Bearer challenges name more than one token realm: {', '.join(realms)}")
    return bearers[0] if bearers else None


def host_port(scheme, host, port):
    """host:port of a URL's parts, the port its scheme's default when none is given; IPv6 in brackets."""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port or (443 if scheme == 'https' else 80)}"


def realm_allowed(realm_parts, mirror_parts, token_realms):
    """Whether a realm (urlsplit) may be asked for a token of the mirror (urlsplit).

    Its host is the mirror's own host name (compared without case, on any port: a registry's token service is
    very often the same machine on another port, as Harbor's and distribution's set-ups are, and the TLS
    certificate the realm is verified with names hosts, not ports), or one of token_realms: a host (any port) or
    a host:port (that port only; the scheme's default when the realm gives none).
    """
    host = (realm_parts.hostname or "").lower()
    if host == (mirror_parts.hostname or "").lower():
        return True
    exact = host_port(realm_parts.scheme.lower(), host, realm_parts.port)
    for allowed in token_realms or ():
        allowed = allowed.lower()
        if allowed in (host, f"[{host}]", exact):
            return True
    return False


def check_realm(realm, mirror_url, token_realms, field):
    """The realm URL, checked before any request goes there; raise TokenAuthError saying what to fix.

    mirror_url is the mirror's URL (scheme://host[:port]/...); field names the setting that lists the realms
    allowed. The realm must be http(s) without credentials, https unless the mirror itself is http, and on the
    mirror's host or one of token_realms (realm_allowed).
    """
    try:
        parts, mirror = urlsplit(realm), urlsplit(mirror_url)
        parts.port  # noqa: B018 (a bad port raises ValueError)
    except ValueError:
        raise TokenAuthError(f"the mirror names the token realm {realm[:200]!r}, which is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise TokenAuthError(f"the mirror names the token realm {realm[:200]!r}, which is not an http(s) URL")
    if "@" in parts.netloc:
        raise TokenAuthError("the mirror names a token realm with credentials in its URL; it is not asked")
    if scheme == "http" and mirror.scheme.lower() != "http":
        raise TokenAuthError(
            f"the mirror names the token realm {realm}, over plain http while the mirror is https; the credentials "
            "and tokens would cross the network unencrypted: have the registry name an https realm"
        )
    if not realm_allowed(parts, mirror, token_realms):
        raise TokenAuthError(
            f"the mirror names the token realm {realm}, on another host than the mirror ({mirror.hostname}); it was "
            f"not asked, and no credentials go there. If that token service is the registry's own, list "
            f"{parts.hostname if ':' not in parts.hostname else '[' + parts.hostname + ']'} in {field}"
        )
    return realm


def scope_for(repository, challenge):
    """The scope to ask for: the pull scope of repository when there is one, else the challenge's own (or None)."""
    if repository:
        return f"repository:{repository}:pull"
    return challenge.params.get("scope") or None


def token_get_url(realm, service, scope):
    """The GET request's URL: the realm with service and scope added to its query, as containerd's FetchToken."""
    query = [(name, value) for name, value in (("service", service), ("scope", scope)) if value]
    if not query:
        return realm
    return f"{realm}{'&' if urlsplit(realm).query else '?'}{urlencode(query)}"


def token_post_form(service, scope, username, password):
    """The POST password grant's form (bytes), as containerd's FetchTokenWithOAuth sends it."""
    form = [("grant_type", "password"), ("username", username), ("password", password), ("client_id", CLIENT_ID)]
    form += [(name, value) for name, value in (("service", service), ("scope", scope)) if value]
    return urlencode(form).encode("utf-8")


def parse_token(body):
    """The token of a token service's answer (bytes): its "token", or else its "access_token"; raise
    TokenAuthError when there is none (the message never holds the body, which may hold other secrets)."""
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TokenAuthError("the token service's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise TokenAuthError("the token service's answer is not a JSON object")
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenAuthError("the token service's answer holds no token (token or access_token)")
    if len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable() or " " in token:
        raise TokenAuthError("the token service's answer holds a token that cannot be sent in a header")
    return token
