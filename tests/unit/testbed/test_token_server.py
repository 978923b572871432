"""testbed/token_server.py: the pure parts of the test bed's token server (scopes, rights, JWT shape)."""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

PATH = Path(__file__).resolve().parents[3] / "testbed" / "token_server.py"
_SPEC = importlib.util.spec_from_file_location("testbed_token_server", PATH)
ts = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ts)

ROBOT = "robot$private+puller"
PUSHER = "tokenbed-pusher"
CONFIG = {
    "issuer": "kubenode-testbed-token-server",
    "service": "kubenode-token-registry",
    "ttl": 300,
    "users": {ROBOT: "t0k3n:r0b0t", PUSHER: "pu5her", "other-user": "other"},
    "projects": {
        "public": {"pull": ["anonymous", "authenticated"], "push": [PUSHER]},
        "private": {"pull": [ROBOT, PUSHER], "push": [PUSHER]},
    },
}


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:public/tiny:pull", ("repository", "", "public/tiny", ["pull"])),
        ("repository:private/a/b:pull,push", ("repository", "", "private/a/b", ["pull", "push"])),
        ("repository:127.0.0.1:5000/x:pull", ("repository", "", "127.0.0.1:5000/x", ["pull"])),
        ("repository(plugin):p/x:pull", ("repository", "plugin", "p/x", ["pull"])),
        ("registry:catalog:*", ("registry", "", "catalog", ["*"])),
        ("repository:public/tiny:", ("repository", "", "public/tiny", [])),
    ],
)
def test_parse_scope(text, expected):
    scope = ts.parse_scope(text)
    assert (scope["type"], scope["class"], scope["name"], scope["actions"]) == expected


@pytest.mark.parametrize("text", ["", "repository", "repository:pull", ":x:pull", "Repository:x:pull"])
def test_a_malformed_scope_is_a_400_naming_it(text):
    with pytest.raises(ts.TokenError, match="invalid scope") as caught:
        ts.parse_scope(text)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ([], []),
        (["repository:a/x:pull"], ["a/x"]),
        (["repository:a/x:pull repository:b/y:pull"], ["a/x", "b/y"]),  # the POST form: space-separated
        (["repository:a/x:pull", "repository:b/y:pull"], ["a/x", "b/y"]),  # GET: the parameter repeated
    ],
)
def test_parse_scopes(values, names):
    assert [scope["name"] for scope in ts.parse_scopes(values)] == names


@pytest.mark.parametrize(
    ("user", "scope", "actions"),
    [
        (None, "repository:public/library/tiny:pull", ["pull"]),
        (None, "repository:private/library/tiny:pull", []),
        (None, "repository:public/library/tiny:pull,push", ["pull"]),
        ("other-user", "repository:public/library/tiny:pull", ["pull"]),
        ("other-user", "repository:private/library/tiny:pull", []),
        (ROBOT, "repository:private/library/tiny:pull", ["pull"]),
        (ROBOT, "repository:private/library/tiny:pull,push", ["pull"]),
        (PUSHER, "repository:private/library/tiny:pull,push", ["pull", "push"]),
        (ROBOT, "repository:privateer/tiny:pull", []),  # the project is the first path component
        (ROBOT, "repository:tiny:pull", []),
        (PUSHER, "registry:catalog:*", []),
    ],
)
def test_allowed_actions(user, scope, actions):
    assert ts.allowed_actions(CONFIG["projects"], user, ts.parse_scope(scope)) == actions


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic(ROBOT, "t0k3n:r0b0t"), (ROBOT, "t0k3n:r0b0t")),  # the password's colon stays in it
        (basic("u", ""), ("u", "")),
        ("basic " + base64.b64encode("ü:p".encode()).decode(), ("ü", "p")),
    ],
)
def test_parse_basic(header, expected):
    assert ts.parse_basic(header) == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer abc", "unsupported authorization scheme 'Bearer'"),
        ("Basic !!!", "malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "no colon"),
    ],
)
def test_parse_basic_refuses(header, message):
    with pytest.raises(ts.TokenError, match=message) as caught:
        ts.parse_basic(header)
    assert caught.value.status == 401


def _decide(method, headers=None, **params):
    return ts.decide(CONFIG, method, headers or {}, {key: [value] for key, value in params.items()})


SCOPE = "repository:private/library/tiny:pull"
POST = {"grant_type": "password", "service": CONFIG["service"], "scope": SCOPE, "client_id": "containerd-client"}


@pytest.mark.parametrize(
    ("method", "headers", "params", "status", "form", "user", "granted"),
    [
        ("GET", {}, {"scope": SCOPE}, 200, "anonymous", None, ["repository:private/library/tiny:"]),
        ("GET", {"Authorization": basic(ROBOT, "t0k3n:r0b0t")}, {"scope": SCOPE}, 200, "get-basic", ROBOT,
         ["repository:private/library/tiny:pull"]),
        ("GET", {"Authorization": basic(ROBOT, "wrong")}, {"scope": SCOPE}, 401, "get-basic", ROBOT, []),
        ("GET", {"Authorization": basic("nobody", "x")}, {"scope": SCOPE}, 401, "get-basic", "nobody", []),
        ("POST", {}, {**POST, "username": ROBOT, "password": "t0k3n:r0b0t"}, 200, "post-password-grant", ROBOT,
         ["repository:private/library/tiny:pull"]),
        ("POST", {}, {**POST, "username": ROBOT, "password": "wrong"}, 401, "post-password-grant", ROBOT, []),
        ("POST", {}, {**POST, "grant_type": "refresh_token"}, 400, None, None, []),
        ("GET", {}, {"scope": SCOPE, "service": "another"}, 400, "anonymous", None, []),
        ("GET", {}, {"scope": "nonsense"}, 400, "anonymous", None, []),
    ],
)
def test_decide(method, headers, params, status, form, user, granted):
    got, record, claims = _decide(method, headers, **params)
    assert (got, record["status"], record["form"], record["user"], record["granted"]) == (
        status, status, form, user, granted,
    )
    assert (claims is None) == (status != 200)
    if claims:
        actions = [] if granted[0].endswith(":") else ["pull"]
        assert claims["access"] == [{"type": "repository", "name": "private/library/tiny", "actions": actions}]
        assert (claims["sub"], claims["aud"]) == (user or "", CONFIG["service"])


@pytest.mark.parametrize(
    ("method", "headers", "params"),
    [
        ("GET", {"Authorization": basic(ROBOT, "t0k3n:r0b0t")}, {"scope": SCOPE}),
        ("GET", {"Authorization": basic(ROBOT, "wrong-s3cret")}, {"scope": SCOPE}),
        ("POST", {}, {**POST, "username": ROBOT, "password": "t0k3n:r0b0t"}),
        ("POST", {}, {**POST, "username": ROBOT, "password": "wrong-s3cret"}),
    ],
)
def test_the_log_record_holds_no_password(method, headers, params):
    record = _decide(method, headers, **params)[1]
    text = json.dumps(record)
    assert "t0k3n" not in text and "wrong-s3cret" not in text and "Basic" not in text
    assert record["scope"] == [SCOPE] and record["method"] == method


@pytest.mark.parametrize(("user", "sub"), [(None, ""), (ROBOT, ROBOT)])
def test_jwt_claims(user, sub):
    claims = ts.jwt_claims("iss", "svc", sub, [], 1000, 300, "id")
    assert claims == {"iss": "iss", "sub": sub, "aud": "svc", "exp": 1300, "nbf": 999, "iat": 1000, "jti": "id",
                      "access": []}


@pytest.mark.parametrize(("method", "has_token"), [("GET", True), ("POST", False)])
def test_token_body(method, has_token):
    body = ts.token_body(method, "T", {"iat": 0, "exp": 300})
    assert body["access_token"] == "T" and ("token" in body) == has_token
    assert (body["expires_in"], body["issued_at"]) == (300, "1970-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("signer")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=signer",
         "-keyout", directory / "key.pem", "-out", directory / "cert.pem"],
        check=True, capture_output=True,
    )
    return directory / "key.pem", (directory / "cert.pem").read_text()


def test_a_signed_token_verifies_with_the_x5c_leaf(signer):
    """What distribution 2.8 does: the key of x5c[0] (standard base64 DER) verifies RS256."""
    key, pem = signer
    header = ts.jwt_header(ts.pem_to_der(pem))
    unsigned = ts.signing_input(header, ts.jwt_claims("iss", "svc", ROBOT, [], 1000, 300, "id"))
    token = unsigned + "." + ts.b64url(ts.sign(key, unsigned.encode()))
    raw_header, raw_claims, signature = token.split(".")
    assert b64url_json(raw_header) == {"typ": "JWT", "alg": "RS256", "x5c": header["x5c"]}
    assert b64url_json(raw_claims)["sub"] == ROBOT
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert leaf == x509.load_pem_x509_certificate(pem.encode())
    leaf.public_key().verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{raw_header}.{raw_claims}".encode(), padding.PKCS1v15(), hashes.SHA256(),
    )
