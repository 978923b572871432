# Python 3 (no shebang: ansible-test's shebang rules for a collection do not allow one here;
# registry.sh runs it as `python3 testbed/token_server.py CONFIG LOG ADDR:PORT`).
# TEST BED token server for docker-registry (distribution 2.8) in `auth: token` mode, as
# Harbor's /service/token or Docker Hub's auth.docker.io answer containerd:
#   GET  /token?service=S&scope=repository:NAME:pull    with Basic credentials, or without
#                                                       (anonymous)
#   POST /token  grant_type=password&username=&password=&scope=&service=&client_id=
#                (the OAuth2 password grant containerd sends when it has credentials)
#   GET  /healthz                                       (not logged)
# Tokens are JWTs signed RS256 with the signing certificate in the `x5c` header: distribution
# verifies that chain against its `rootcertbundle` (the test bed CA), then the signature with the
# leaf's key, then `iss`, `aud` (= service), `exp`/`nbf` and the `access` claim.
# Every token request is one JSON line in LOG (time, method, form, user, scope, service,
# granted, status, user agent): never a password or a token. The CONFIG file (JSON, written by
# registry.sh, 0600) is read at every request, so changed users or rights take effect at once.
# Standard library only, plus the openssl command (signs with the key file).
from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ANONYMOUS = "anonymous"  # a rights entry: a request without credentials
AUTHENTICATED = "authenticated"  # a rights entry: any user with the right password
FORM_POST = "post-password-grant"
FORM_GET_BASIC = "get-basic"
FORM_ANONYMOUS = "anonymous"
# type[(class)]:name:actions; the name may hold colons (a host:port), the actions never do.
_SCOPE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\((?P<cls>[a-z0-9]+)\))?:(?P<name>.+):(?P<actions>[a-z*,]*)$")


class TokenError(Exception):
    """A request the server refuses: HTTP status and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def parse_scope(text):
    """'repository:public/tiny:pull,push' -> {'type', 'class', 'name', 'actions'}; TokenError 400."""
    match = _SCOPE.match(text)
    if not match:
        raise TokenError(400, f"invalid scope {text!r}: expected type:name:actions")
    actions = [a for a in match["actions"].split(",") if a]
    return {"type": match["type"], "class": match["cls"] or "", "name": match["name"], "actions": actions}


def parse_scopes(values):
    """The scopes of each value (repeated `scope` parameters, each space-separated), in order."""
    return [parse_scope(part) for value in values for part in value.split()]


def parse_basic(header):
    """(user, password) of an 'Authorization: Basic ...' value; TokenError 401 if not Basic."""
    scheme, _space, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        raise TokenError(401, f"unsupported authorization scheme {scheme!r}: Basic only")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError(401, "malformed Basic credentials") from exc
    user, colon, password = decoded.partition(":")
    if not colon:
        raise TokenError(401, "malformed Basic credentials: no colon")
    return user, password


def check_password(users, user, password):
    """True if users (name -> password) has user with that password (constant time compare)."""
    known = users.get(user)
    return known is not None and hmac.compare_digest(known.encode("utf-8"), password.encode("utf-8"))


def _may(entries, user):
    if user is None:
        return ANONYMOUS in entries
    return AUTHENTICATED in entries or user in entries


def allowed_actions(projects, user, scope):
    """The actions of scope that user (None: anonymous) gets: its project's rights.

    projects: project (the repository name's first component) -> action -> entries, each
    'anonymous', 'authenticated' or a user name. Only repository scopes are granted.
    """
    if scope["type"] != "repository":
        return []
    rights = projects.get(scope["name"].split("/", 1)[0], {})
    return [action for action in scope["actions"] if _may(rights.get(action, []), user)]


def grant(projects, user, scopes):
    """The `access` claim: each scope with the actions user gets (an empty list when none)."""
    return [
        {"type": s["type"], "name": s["name"], "actions": allowed_actions(projects, user, s)} for s in scopes
    ]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_header(cert_der):
    """RS256 with the signing certificate (DER) as the one-element x5c chain (standard base64)."""
    return {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert_der).decode("ascii")]}


def jwt_claims(issuer, service, subject, access, now, ttl, jti):
    """The claims distribution checks: iss, aud (= service), nbf/exp around now, access."""
    return {
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "exp": now + ttl,
        "nbf": now - 1,
        "iat": now,
        "jti": jti,
        "access": access,
    }


def signing_input(header, claims):
    """The JWS signing input: b64url(header) . b64url(claims)."""
    parts = [json.dumps(part, separators=(",", ":"), sort_keys=True).encode("utf-8") for part in (header, claims)]
    return ".".join(b64url(part) for part in parts)


def pem_to_der(pem):
    """The DER bytes of the first certificate of a PEM text."""
    body = pem.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
    return base64.b64decode("".join(body.split()))


def credentials(method, headers, form):
    """(form name, user or None, password or None) of a token request."""
    if method == "POST":
        if form.get("grant_type") != "password":
            raise TokenError(400, f"unsupported grant_type {form.get('grant_type')!r}: password only")
        if not form.get("username"):
            raise TokenError(400, "grant_type=password without a username")
        return FORM_POST, form["username"], form.get("password", "")
    if headers.get("Authorization"):
        user, password = parse_basic(headers["Authorization"])
        return FORM_GET_BASIC, user, password
    return FORM_ANONYMOUS, None, None


def decide(config, method, headers, params):
    """Handle a token request, without signing: (status, record, claims or None).

    params: parameter -> list of values (the query of a GET, the form of a POST).
    record: the log line's fields; it never holds a password or a token.
    """
    form = {key: values[0] for key, values in params.items() if values}
    record = {"method": method, "form": None, "user": None, "scope": [], "service": form.get("service")}
    record["client_id"] = form.get("client_id")
    record["scope"] = [part for value in params.get("scope", []) for part in value.split()]
    try:
        record["form"], user, password = credentials(method, headers, form)
        record["user"] = user
        scopes = parse_scopes(params.get("scope", []))
        if form.get("service") not in (None, config["service"]):
            raise TokenError(400, f"unknown service {form.get('service')!r}")
        if user is not None and not check_password(config["users"], user, password):
            raise TokenError(401, "unknown user or wrong password")
    except TokenError as exc:
        record.update(status=exc.status, error=str(exc), granted=[])
        return exc.status, record, None
    access = grant(config["projects"], user, scopes)
    record.update(status=200, granted=[f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access])
    now = int(time.time())
    claims = jwt_claims(config["issuer"], config["service"], user or "", access, now, config["ttl"], uuid.uuid4().hex)
    return 200, record, claims


def token_body(method, token, claims):
    """The JSON answer: `token` (and `access_token`) for GET, `access_token` for the OAuth2 POST."""
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["iat"]))
    body = {"access_token": token, "expires_in": claims["exp"] - claims["iat"], "issued_at": issued}
    if method == "GET":
        body["token"] = token
    return body


def sign(key_file, data):
    """RS256 (RSASSA-PKCS1-v1_5 with SHA-256) of data with the PEM key in key_file."""
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key_file], input=data, capture_output=True, check=True
    )
    return done.stdout


class Handler(BaseHTTPRequestHandler):
    server_version = "kubenode-testbed-token/1"
    config_file = ""
    log_file = None
    log_lock = threading.Lock()

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        """No access log on stderr: the JSON lines are the log."""

    def _answer(self, status, body, extra=()):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _token(self, method, params):
        path = urlsplit(self.path).path
        if path != "/token":
            self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": f"no {path} here: /token"}]})
            return
        with open(self.config_file, encoding="utf-8") as stream:
            config = json.load(stream)
        status, record, claims = decide(config, method, self.headers, params)
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}
        record["user_agent"] = self.headers.get("User-Agent")
        with self.log_lock:
            self.log_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.log_file.flush()
        if claims is None:
            error = {"errors": [{"code": "UNAUTHORIZED" if status == 401 else "DENIED", "message": record["error"]}]}
            extra = [("WWW-Authenticate", 'Basic realm="kubenode-testbed-token"')] if status == 401 else []
            self._answer(status, error, extra)
            return
        with open(config["cert"], encoding="ascii") as stream:
            header = jwt_header(pem_to_der(stream.read()))
        unsigned = signing_input(header, claims)
        token = unsigned + "." + b64url(sign(config["key"], unsigned.encode("ascii")))
        self._answer(200, token_body(method, token, claims))

    def do_GET(self):  # noqa: N802 - http.server's name
        if urlsplit(self.path).path == "/healthz":
            self._answer(200, {"ok": True})
            return
        self._token("GET", parse_qs(urlsplit(self.path).query))

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self._token("POST", parse_qs(body))


def main(argv):
    """token_server.py CONFIG LOG ADDR:PORT: serve HTTPS with the config's tls_cert/tls_key."""
    if len(argv) != 4:
        sys.stderr.write("usage: token_server.py CONFIG LOG ADDR:PORT\n")
        return 2
    config_file, log_path, listen = argv[1:]
    with open(config_file, encoding="utf-8") as stream:
        config = json.load(stream)
    host, _colon, port = listen.rpartition(":")
    Handler.config_file = config_file
    Handler.log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - open while serving
    server = ThreadingHTTPServer((host, int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config["tls_cert"], config["tls_key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
