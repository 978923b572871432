"""A stand-in registry with token authentication (Docker distribution's `auth: token`, Harbor) and its token service.

    TokenServer(users, public, private)   the realm: GET (anonymous, or Basic) and the POST OAuth2 password grant
    TokenRegistry(token_server, ...)      /v2/, tags lists and manifests, each answered only with a token from it

Both are tests/fakes/base.py's FakeServer (threads, context managers; plain HTTP unless given a TLS context).
Neither records a secret: `requests` keeps each request with its Authorization header reduced to its scheme and
a form body to its field names, and TokenServer.log says for each token request how it authenticated (the form,
the user name, service and scope), never with a password or a token.

The token service works as distribution's reference one and Harbor's: a request with credentials that do not match
is answered 401; otherwise (anonymous included) a token is issued for the part of the scope the client may have:
pull on a repository of a public project for anyone, of a private project for its members. The registry then
answers a request whose token does not cover its repository 401 with a Bearer challenge naming the scope and
error="insufficient_scope", as distribution does.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import secrets
import threading
from urllib.parse import parse_qs

try:
    from fakes.base import Answer, FakeServer
except ImportError:  # run as a script
    from base import Answer, FakeServer

SERVICE = "kubenode-token-registry"
_SCOPE = re.compile(r"repository:([^:]+):([a-z*,]+)")
_TAGS = re.compile(r"/v2/(.+)/tags/list")
_MANIFEST = re.compile(r"/v2/(.+)/manifests/([^/]+)")
_FORM = "application/x-www-form-urlencoded"


def _scrubbed(request):
    """The request without any secret: the Authorization header's scheme only, a form body's field names only."""
    headers = {key: (value.split(" ", 1)[0] + " <redacted>" if key.lower() == "authorization" else value)
               for key, value in request.headers.items()}
    fields = sorted(parse_qs(request.raw_body.decode("utf-8", "replace"))) if request.raw_body else []
    return dataclasses.replace(request, headers=headers, raw_body=" ".join(fields).encode(), body=None)


def basic_user(authorization, users):
    """(name, ok) of a Basic authorization header: ok when the password matches; (None, False) without one."""
    if not authorization or not authorization.startswith("Basic "):
        return None, False
    try:
        name, password = base64.b64decode(authorization[6:], validate=True).decode("utf-8").split(":", 1)
    except ValueError:
        return None, False
    return name, users.get(name) == password


class _Scrubbing(FakeServer):
    def __init__(self, host="127.0.0.1", tls_context=None):
        super().__init__(host=host, tls_context=tls_context)
        self.host = host

    @property
    def url(self):
        return f"{self.scheme}://{self.host}:{self.port}"

    def record(self, request):
        super().record(_scrubbed(request))


class TokenServer(_Scrubbing):
    """The realm at <url>/token. users: {name: password}; public: project names anyone may pull from; private:
    {project: names of the users who may pull}. post_status: answer every POST with it (404: a token service
    without the password grant, so containerd's GET with Basic follows)."""

    path = "/token"

    def __init__(self, users=None, public=(), private=None, host="127.0.0.1", tls_context=None):
        super().__init__(host=host, tls_context=tls_context)
        self.users = dict(users or {})
        self.public = set(public)
        self.private = {project: set(members) for project, members in (private or {}).items()}
        self.post_status = None
        self.echo = False  # repeat what the client sent (its Authorization header, its password) in error messages
        self.tokens = {}  # token -> the set of repositories it may pull
        self.log = []  # one dict per token request: method, form, username, service, scope, client_id
        self._tokens_lock = threading.Lock()

    @property
    def realm(self):
        return f"{self.url}{self.path}"

    def clear(self):
        super().clear()
        self.log.clear()

    def _grant(self, user, scope):
        """The repositories of scope (space-separated scopes) that user (None: anonymous) may pull."""
        granted = set()
        for name, actions in _SCOPE.findall(scope or ""):
            project = name.split("/", 1)[0]
            allowed = project in self.public or (user is not None and user in self.private.get(project, ()))
            if allowed and ("pull" in actions.split(",") or actions == "*"):
                granted.add(name)
        return granted

    def answer(self, request):
        if request.path != self.path:
            return Answer(404, {"errors": [{"code": "NOT_FOUND"}]})
        if request.method == "POST":
            return self._post(request)
        if request.method != "GET":
            return Answer(405, {})
        user, ok = basic_user(request.header("Authorization"), self.users)
        query = {key: values[0] for key, values in request.query.items()}
        form = "get-basic" if user is not None else "get-anonymous"
        self.log.append({"method": "GET", "form": form, "username": user, "service": query.get("service"),
                         "scope": " ".join(request.query.get("scope", [])) or None, "client_id": None})
        if request.header("Authorization") and not ok:
            said = f" (got {request.header('Authorization')})" if self.echo else ""
            message = f"incorrect username or password{said}"
            return Answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
                          {"WWW-Authenticate": f'Basic realm="{self.realm}"'})
        return self._issue(user, " ".join(request.query.get("scope", [])), "token")

    def _post(self, request):
        form = {key: values[0] for key, values in parse_qs(request.raw_body.decode("utf-8", "replace")).items()}
        self.log.append({"method": "POST", "form": "post-" + form.get("grant_type", "none"),
                         "username": form.get("username"), "service": form.get("service"),
                         "scope": form.get("scope"), "client_id": form.get("client_id")})
        if self.post_status is not None:
            return Answer(self.post_status, {"errors": [{"code": "UNSUPPORTED"}]})
        if request.header("Content-Type") != _FORM or form.get("grant_type") != "password":
            return Answer(400, {"error": "unsupported_grant_type"})
        user = form.get("username")
        if self.users.get(user) != form.get("password"):
            said = f" (got {form.get('password')})" if self.echo else ""
            return Answer(401, {"errors": [{"code": "invalid_grant", "message": f"incorrect password{said}"}]})
        return self._issue(user, form.get("scope"), "access_token")

    def _issue(self, user, scope, key):
        token = secrets.token_urlsafe(24)
        with self._tokens_lock:
            self.tokens[token] = self._grant(user, scope)
        return Answer(200, {key: token, "expires_in": 300})


class TokenRegistry(_Scrubbing):
    """GET /v2/, GET /v2/<name>/tags/list and HEAD or GET /v2/<name>/manifests/<reference>, each answered only to a
    Bearer token of token_server (or of other_token_servers) that covers the repository (any of its tokens for
    /v2/), otherwise 401 with a Bearer challenge whose realm is realm (default: token_server's). A tags list of a
    covered repository answers 404 NAME_UNKNOWN (it holds no repository but manifests), a manifest 200 when
    "<name>:<reference>" is in manifests."""

    def __init__(self, token_server, realm=None, manifests=(), host="127.0.0.1", tls_context=None):
        super().__init__(host=host, tls_context=tls_context)
        self.token_server = token_server
        self.realm = realm
        self.manifests = set(manifests)
        self.other_token_servers = ()  # token services on other hosts whose tokens it takes too
        self.echo = False  # repeat the Authorization header it got in its error messages

    def _challenge(self, scope=None, error=None):
        realm = self.realm or self.token_server.realm
        challenge = f'Bearer realm="{realm}",service="{SERVICE}"'
        if scope:
            challenge += f',scope="{scope}"'
        if error:
            challenge += f',error="{error}"'
        return {"WWW-Authenticate": challenge}

    def answer(self, request):
        tags, manifest = _TAGS.fullmatch(request.path), _MANIFEST.fullmatch(request.path)
        name = (tags or manifest).group(1) if (tags or manifest) else None
        if request.path != "/v2/" and name is None:
            return Answer(404, {"errors": [{"code": "NOT_FOUND"}]})
        authorization = request.header("Authorization") or ""
        granted = None
        if authorization.startswith("Bearer "):
            for server in (self.token_server, *self.other_token_servers):
                granted = server.tokens.get(authorization[7:])
                if granted is not None:
                    break
        scope = f"repository:{name}:pull" if name else None
        if granted is None:
            return Answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                          self._challenge(scope))
        if name is not None and name not in granted:
            said = f" (got {authorization})" if self.echo else ""
            return Answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": f"authentication required{said}",
                                            "detail": [{"Type": "repository", "Name": name, "Action": "pull"}]}]},
                          self._challenge(scope, "insufficient_scope"))
        if name is None:
            return Answer(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
        if manifest and f"{name}:{manifest.group(2)}" in self.manifests:
            return Answer(200, {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": []}, {"Content-Type": "application/vnd.oci.image.index.v1+json"})
        code = "MANIFEST_UNKNOWN" if manifest else "NAME_UNKNOWN"
        return Answer(404, {"errors": [{"code": code, "message": "not known to registry"}]})
