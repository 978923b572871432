"""_http: the one bounded HTTP request, against real servers on 127.0.0.1 (tests/fakes/base.py)."""

from __future__ import annotations

import re
import select
import socket
import socketserver
import ssl
import threading
import time

import pytest
from fakes import tls_registry as fake
from fakes.base import Answer, FakeServer

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _http

SECRET = "s3cr3t-Kq8-USERINFO"


class Scripted(FakeServer):
    """answers: {path: Answer or callable(request) -> Answer}; anything else is a 404."""

    def __init__(self, answers=None, tls_context=None):
        super().__init__(tls_context=tls_context)
        self.answers = dict(answers or {})

    def answer(self, request):
        found = self.answers.get(request.path, Answer(404, b"not here"))
        return found(request) if callable(found) else found


@pytest.fixture
def server():
    with Scripted() as running:
        yield running


@pytest.fixture
def other():
    """A second server: another port is another origin."""
    with Scripted() as running:
        yield running


@pytest.fixture
def silent():
    """Accepts connections (into the backlog) and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def get(url, **options):
    options.setdefault("timeout", 5)
    options.setdefault("max_bytes", 1024)
    return _http.request(options.pop("method", "GET"), url, **options)


# --- answers -------------------------------------------------------------


def test_get_returns_status_headers_and_body(server):
    server.answers["/ca.pem"] = Answer(200, b"hello", {"X-Test": "yes"})
    response = get(f"{server.url}/ca.pem?x=1", headers={"User-Agent": "kubenode-test", "Accept": "text/plain"})
    assert (response.status, response.reason, response.body) == (200, "OK", b"hello")
    assert response.headers.get("x-test") == "yes"
    assert response.url == f"{server.url}/ca.pem?x=1"
    assert response.truncated is False
    assert 0 <= response.elapsed < 5
    sent = server.requests[0]
    assert (sent.method, sent.target) == ("GET", "/ca.pem?x=1")
    assert sent.header("Host") == f"127.0.0.1:{server.port}"
    assert sent.header("User-Agent") == "kubenode-test"


def test_a_write_sends_its_body(server):
    server.answers["/c"] = Answer(200, {"ok": True})
    response = get(f"{server.url}/c", method="PUT", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert response.status == 200
    assert server.requests[0].method == "PUT"
    assert server.requests[0].body == {"a": 1}
    assert server.requests[0].header("Content-Type") == "application/json"


def test_an_error_status_is_returned_with_its_body_cut(server):
    server.answers["/e"] = Answer(500, b"x" * 100)
    response = get(f"{server.url}/e", max_bytes=10)
    assert (response.status, response.body, response.truncated) == (500, b"x" * 10, True)


def test_a_2xx_body_past_the_cap_raises_unless_truncate(server):
    server.answers["/big"] = Answer(200, b"y" * 2000)
    with pytest.raises(_http.HttpTooLarge) as caught:
        get(f"{server.url}/big", max_bytes=1000)
    assert caught.value.limit == 1000
    assert "larger than 1000 bytes" in str(caught.value)
    response = get(f"{server.url}/big", max_bytes=1000, truncate=True)
    assert (len(response.body), response.truncated) == (1000, True)
    assert get(f"{server.url}/big", max_bytes=2000).body == b"y" * 2000


def test_a_connection_closed_before_content_length_is_a_protocol_error(server):
    server.answers["/short"] = Answer(200, b"0123456789", {"Content-Length": "100", "Connection": "close"})
    with pytest.raises(_http.HttpProtocolError, match="IncompleteRead"):
        get(f"{server.url}/short")


def test_a_server_that_does_not_speak_http(request):
    sock = socket.create_server(("127.0.0.1", 0))
    request.addfinalizer(sock.close)

    def babble():
        conn, _address = sock.accept()
        conn.recv(1024)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        conn.close()

    threading.Thread(target=babble, daemon=True).start()
    with pytest.raises(_http.HttpProtocolError) as caught:
        get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    assert "no valid HTTP answer" in caught.value.reason


# --- the total deadline ---------------------------------------------------


@pytest.mark.parametrize(
    "trickle_head, phase",
    [(False, "while reading the answer ("), (True, "while waiting for the answer")],
)
def test_one_byte_at_a_time_ends_at_the_deadline(server, trickle_head, phase):
    # Every byte comes well within the timeout: only a deadline for the whole request ends this.
    server.answers["/slow"] = Answer(200, b"z" * 200, trickle=0.2, trickle_head=trickle_head)
    started = time.monotonic()
    with pytest.raises(_http.HttpTimeout) as caught:
        get(f"{server.url}/slow", timeout=1.5)
    took = time.monotonic() - started
    assert 1.5 <= took < 2.5, took
    error = caught.value
    assert 1.5 <= error.elapsed < 2.5
    assert error.timeout == 1.5
    assert phase in error.phase
    assert re.fullmatch(rf"GET {server.url}/slow: timed out after [12]\.[0-9] s .*", str(error)), str(error)
    if not trickle_head:
        assert "bytes of the body received" in error.reason and "(0 bytes" not in error.reason


def test_a_silent_server_ends_at_the_deadline(silent):
    for scheme, phase in (("http", "while waiting for the answer"), ("https", "during the TLS handshake")):
        started = time.monotonic()
        with pytest.raises(_http.HttpTimeout) as caught:
            get(f"{scheme}://{silent}/v2/", timeout=1)
        assert time.monotonic() - started < 2
        assert caught.value.phase == phase


def test_the_deadline_covers_every_redirect(server):
    def slow_hop(request):
        time.sleep(0.4)
        return Answer(302, b"", {"Location": "/hop"})

    server.answers["/hop"] = slow_hop
    started = time.monotonic()
    with pytest.raises(_http.HttpTimeout):
        get(f"{server.url}/hop", timeout=1, redirects=_http.SAME_ORIGIN)
    assert time.monotonic() - started < 1.8
    assert 2 <= len(server.requests) <= 3


# --- connections and TLS --------------------------------------------------


def test_refused_and_unresolvable():
    with pytest.raises(_http.HttpConnectError) as caught:
        get(f"http://127.0.0.1:{fake.free_port()}/")
    assert "refused" in caught.value.reason.lower()
    assert caught.value.dns is False
    with pytest.raises(_http.HttpConnectError) as caught:
        get("https://mirror.invalid/v2/")
    assert caught.value.dns is True
    assert "does not resolve" in caught.value.reason


def test_tls(pki):
    with Scripted({"/v2/": Answer(200, b"{}")}, tls_context=fake.server_context(pki)) as registry:
        assert get(f"{registry.url}/v2/", context=ssl.create_default_context(cafile=str(pki.ca))).status == 200
        with pytest.raises(_http.HttpTlsError) as caught:
            get(f"{registry.url}/v2/", context=ssl.create_default_context(cafile=str(pki.other_ca)))
        assert caught.value.verify is True
        assert isinstance(caught.value.cause, ssl.SSLCertVerificationError)
        with pytest.raises((_http.HttpProtocolError, _http.HttpConnectError)):  # closed or reset, by timing
            get(f"http://127.0.0.1:{registry.port}/v2/")  # plain HTTP to the TLS port


# --- redirects ------------------------------------------------------------


def test_no_redirects_raises_with_status_and_location(server):
    server.answers["/v2/"] = Answer(302, b"", {"Location": "https://elsewhere.invalid/v2/"})
    with pytest.raises(_http.HttpRedirectError) as caught:
        get(f"{server.url}/v2/", headers={"Authorization": "Basic x"})
    error = caught.value
    assert (error.status, error.location) == (302, "https://elsewhere.invalid/v2/")
    assert error.why == "redirects are not followed"
    assert len(server.requests) == 1


def test_same_origin_follows_a_relative_location_with_the_headers(server):
    server.answers["/old"] = Answer(301, b"", {"Location": "/new?x=1"})
    server.answers["/new"] = Answer(200, b"moved")
    response = get(f"{server.url}/old", redirects=_http.SAME_ORIGIN, headers={"X-Auth-Token": "tok"})
    assert (response.status, response.body, response.url) == (200, b"moved", f"{server.url}/new?x=1")
    assert [request.header("X-Auth-Token") for request in server.requests] == ["tok", "tok"]


@pytest.mark.parametrize("where", ["another port", "another scheme"])
def test_same_origin_refuses_another_port_or_scheme(server, other, where):
    other.answers["/c"] = Answer(200, b"{}")
    location = f"{other.url}/c" if where == "another port" else f"https://127.0.0.1:{server.port}/c"
    server.answers["/c"] = Answer(302, b"", {"Location": location})
    with pytest.raises(_http.HttpRedirectError) as caught:
        get(f"{server.url}/c", redirects=_http.SAME_ORIGIN, headers={"X-Auth-Token": "tok"})
    assert caught.value.location == location
    assert caught.value.why == "it leads to another scheme, host or port"
    assert other.requests == []
    assert len(server.requests) == 1


def test_any_origin_follows_without_credential_headers(server, other):
    other.answers["/ca.pem"] = Answer(200, b"pem")
    server.answers["/ca.pem"] = Answer(302, b"", {"Location": f"{other.url}/ca.pem"})
    headers = {"X-Auth-Token": "tok", "Authorization": "Basic x", "Accept": "text/plain", "User-Agent": "ua"}
    response = get(f"{server.url}/ca.pem", redirects=_http.ANY_ORIGIN, headers=headers)
    assert response.body == b"pem"
    assert response.url == f"{other.url}/ca.pem"
    moved = other.requests[0]
    assert moved.header("X-Auth-Token") is None and moved.header("Authorization") is None
    assert (moved.header("Accept"), moved.header("User-Agent")) == ("text/plain", "ua")
    assert server.requests[0].header("X-Auth-Token") == "tok"


def test_any_origin_never_goes_from_https_to_http(pki, other):
    other.answers["/ca.pem"] = Answer(200, b"pem")
    answers = {"/ca.pem": Answer(302, b"", {"Location": f"{other.url}/ca.pem"})}
    context = ssl.create_default_context(cafile=str(pki.ca))
    with Scripted(answers, tls_context=fake.server_context(pki)) as secure:
        with pytest.raises(_http.HttpRedirectError) as caught:
            get(f"{secure.url}/ca.pem", redirects=_http.ANY_ORIGIN, context=context)
    assert caught.value.why == "it leads from https to http"
    assert other.requests == []


@pytest.mark.parametrize("method, status", [("PUT", 307), ("PUT", 301), ("POST", 308), ("PUT", 303)])
def test_a_write_is_never_redirected(server, method, status):
    server.answers["/c"] = Answer(status, b"", {"Location": "/c2"})
    server.answers["/c2"] = Answer(200, b"{}")
    for policy in _http.REDIRECT_POLICIES:
        with pytest.raises(_http.HttpRedirectError) as caught:
            get(f"{server.url}/c", method=method, body=b"{}", redirects=policy)
        assert caught.value.status == status
        assert caught.value.location == f"{server.url}/c2"
        assert caught.value.why == f"a {method} request is never redirected"
    assert {request.path for request in server.requests} == {"/c"}


@pytest.mark.parametrize(
    "location, why",
    [
        (None, "the answer has no Location"),
        ("ftp://127.0.0.1/ca.pem", "it does not lead to an http:// or https:// URL"),
        (f"http://user:{SECRET}@127.0.0.1:1/ca.pem", "it leads to a URL with credentials"),
    ],
)
def test_redirects_that_are_never_followed(server, location, why):
    server.answers["/ca.pem"] = Answer(302, b"", {"Location": location} if location else {})
    with pytest.raises(_http.HttpRedirectError) as caught:
        get(f"{server.url}/ca.pem", redirects=_http.ANY_ORIGIN)
    assert caught.value.why == why
    assert SECRET not in str(caught.value) and SECRET not in str(caught.value.location)


def test_a_redirect_loop_ends(server):
    server.answers["/loop"] = Answer(302, b"", {"Location": "/loop"})
    with pytest.raises(_http.HttpRedirectError, match="more than 10 redirects"):
        get(f"{server.url}/loop", redirects=_http.SAME_ORIGIN)
    assert len(server.requests) == _http.MAX_REDIRECTS + 1


# --- credentials in URLs --------------------------------------------------


@pytest.mark.parametrize(
    "url, secrets, shown",
    [
        ("https://u:pw@host/ca.crt", ["pw", "u:pw"], "https://host/ca.crt"),
        ("u:pw@host:5000", ["pw", "u:pw"], "host:5000"),
        ("https://u@host", ["u"], "https://host"),
        ("https://u:p%40ss@host/", ["p%40ss", "p@ss", "u:p%40ss", "u:p@ss"], "https://host/"),
        ("https://host/path@x", [], "https://host/path@x"),
        ("https://host/?to=a@b", [], "https://host/?to=a@b"),
        (None, [], None),
    ],
)
def test_url_credentials_and_display_url(url, secrets, shown):
    assert _http.url_credentials(url) == secrets
    if url is not None:
        assert _http.display_url(url) == shown


def test_a_url_with_credentials_is_refused_unsent(server):
    url = f"http://user:{SECRET}@127.0.0.1:{server.port}/"
    with pytest.raises(_http.HttpError) as caught:
        get(url)
    assert SECRET not in str(caught.value)
    assert caught.value.url == f"http://127.0.0.1:{server.port}/"
    assert server.requests == []


class FakeModule:
    def __init__(self, **params):
        self.params = params
        self.no_log_values = set()
        self.failed = None

    def fail_json(self, **result):
        self.failed = result
        raise SystemExit(1)


def test_refuse_url_credentials_names_the_field_and_hides_the_secret():
    module = FakeModule(api_url="https://api", cert_path=f"https://me:{SECRET}@ca.example/ca.crt")
    with pytest.raises(SystemExit):
        _http.refuse_url_credentials(module, ["api_url", "cert_path"], hint="; nope", path="/x")
    assert module.failed == {
        "msg": "cert_path: must not contain credentials (user:password@ before the host); nope",
        "path": "/x",
    }
    assert SECRET in module.no_log_values and f"me:{SECRET}" in module.no_log_values
    _http.refuse_url_credentials(FakeModule(url="https://ok/ca.crt"), ["url"])  # nothing to refuse


# --- proxies --------------------------------------------------------------


@pytest.fixture
def proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_an_http_proxy_from_the_environment(server, other, proxy_env):
    other.answers["/ca.pem"] = Answer(200, b"from the proxy")  # `other` plays the proxy
    proxy_env.setenv("http_proxy", f"http://pu:pp@127.0.0.1:{other.port}")
    response = get("http://mirror.example:8080/ca.pem")
    assert response.body == b"from the proxy"
    sent = other.requests[0]
    assert sent.target == "http://mirror.example:8080/ca.pem"
    assert sent.header("Host") == "mirror.example:8080"
    assert sent.header("Proxy-Authorization") == "Basic cHU6cHA="  # pu:pp
    proxy_env.setenv("no_proxy", "127.0.0.1")
    server.answers["/direct"] = Answer(200, b"direct")
    assert get(f"{server.url}/direct").body == b"direct"
    assert len(other.requests) == 1


class _TunnelProxy(socketserver.ThreadingTCPServer):
    """A CONNECT proxy: records each CONNECT line, then relays bytes both ways."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _TunnelHandler)
        self.connects = []


class _TunnelHandler(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        line = head.split(b"\r\n", 1)[0].decode()
        self.server.connects.append(line)
        host, port = line.split()[1].rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        sockets = [self.request, upstream]
        while True:
            readable, _writable, _failed = select.select(sockets, [], [], 5)
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.request else self.request).sendall(data)


def test_an_https_proxy_tunnel(pki, proxy_env):
    proxy = _TunnelProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with Scripted({"/v2/": Answer(200, b"tunnelled")}, tls_context=fake.server_context(pki)) as registry:
            proxy_env.setenv("https_proxy", f"127.0.0.1:{proxy.server_address[1]}")
            response = get(f"{registry.url}/v2/", context=ssl.create_default_context(cafile=str(pki.ca)))
        assert response.body == b"tunnelled"
        assert [line.rsplit(" ", 1)[0] for line in proxy.connects] == [f"CONNECT 127.0.0.1:{registry.port}"]
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_an_unknown_policy_is_a_programming_error(server):
    with pytest.raises(ValueError):
        get(server.url, redirects="sometimes")


@pytest.mark.parametrize(("verify", "ca"), [(True, False), (True, True), (False, False)])
def test_tls_context(pki, verify, ca):
    """The one way a module builds its TLS context: the trust store, a CA's text, or no verification at all."""
    context = _http.tls_context(verify=verify, cadata=pki.ca.read_text() if ca else None)
    assert context.verify_mode == (ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
    assert context.check_hostname is verify
    names = [dict(rdn[0] for rdn in cert["subject"]).get("commonName") for cert in context.get_ca_certs()]
    assert (fake.CA_NAME in names) is ca
    with fake.TlsRegistry(pki) as registry:
        try:
            status = _http.request("GET", f"{registry.url}/v2/", timeout=10, max_bytes=1024, context=context).status
        except _http.HttpTlsError:
            status = None
    assert status == (200 if ca or not verify else None)  # the fake's CA is in no system trust store


class _Frame:
    """A stand-in for a Python frame: its function's name and its caller."""

    def __init__(self, names):
        self.f_code = type("Code", (), {"co_name": names[0]})()
        self.f_back = _Frame(names[1:]) if len(names) > 1 else None


@pytest.mark.parametrize(
    ("stack", "phase"),
    [
        (["recv_into", "readinto", "_read_status", "begin", "getresponse", "do_open"], "while waiting for the answer"),
        (["do_handshake", "_create", "wrap_socket", "connect", "send", "_send_output", "do_open"],
         "during the TLS handshake"),
        (["readinto", "_read_status", "_tunnel", "connect", "send", "_send_output"], "while opening the proxy tunnel"),
        (["create_connection", "connect", "send", "_send_output", "do_open"], "while connecting"),
        (["sendall", "send", "_send_output", "endheaders", "do_open"], "while sending the request"),
        (["read1", "_read_body", "_send_once", "request"], None),  # the body: request() says how far it got
    ],
)
def test_the_phase_is_read_from_the_functions_interrupted(stack, phase):
    assert _http._phase_of(_Frame(stack)) == phase
