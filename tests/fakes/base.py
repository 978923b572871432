"""What the stand-in servers share: start and stop, the request log, and how an answer is sent.

A server subclasses FakeServer and implements answer(request) -> Answer. FakeServer listens on
127.0.0.1 (a free port unless one is given), serves each connection in a thread of its own
(TLS too, with a server-side ssl context: the handshake happens in that thread, so a client
that gives up on the certificate never blocks the server), records every request before it is
answered, and is a context manager.

An Answer can be sent slowly, one byte every `trickle` seconds, from its first byte or (with
trickle_head=False) from the first byte of its body: a server that never stops, but never
finishes either. A client that hangs up on such an answer is recorded in `hangups`: how long
after its request it was noticed gone and how much of the answer it got, the server's own
measure of a client's deadline (it notices a closed connection at its next write or two).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str  # undecoded, as sent, without the query
    headers: dict  # as sent (case preserved)
    query: dict = field(default_factory=dict)  # name -> list of values
    body: object = None  # the parsed JSON, or None when the body is empty or not JSON
    raw_body: bytes = b""
    target: str = ""  # the request target as sent (absolute-form through a proxy)

    def header(self, name):
        """A header's value, case-insensitively (None when absent)."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass
class Hangup:
    path: str
    seconds: float  # from the request's arrival to the failed write that showed the client gone
    sent: int  # bytes of the answer written before that
    size: int  # bytes of the whole answer


@dataclass
class Answer:
    status: int
    body: bytes | str | dict | list = b""  # a dict or list is sent as JSON
    headers: dict = field(default_factory=dict)
    trickle: float | None = None  # seconds between bytes: send the answer one byte at a time
    trickle_head: bool = True  # trickle from the status line on; False: the head at once, the body slowly

    def payload(self):
        """(body bytes, default Content-Type)."""
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain"
        return self.body, "text/plain"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    tls_context = None

    def finish_request(self, request, client_address):
        if self.tls_context is not None:
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except OSError:  # the client refused our certificate, or spoke plain HTTP
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a client that hangs up is part of the tests


class FakeServer:
    """Start/stop plumbing and the request log; subclasses implement answer()."""

    scheme = "http"

    def __init__(self, host="127.0.0.1", port=0, tls_context=None):
        self.requests = []
        self.hangups = []
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _handler_for(self))
        self._httpd.tls_context = tls_context
        if tls_context is not None:
            self.scheme = "https"
        self._thread = None

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self):
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def record(self, request):
        with self._lock:
            self.requests.append(request)

    def record_hangup(self, hangup):
        with self._lock:
            self.hangups.append(hangup)

    def clear(self):
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def answer(self, request):
        """Return the Answer to a RecordedRequest (called from the handler threads)."""
        raise NotImplementedError


def _handler_for(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                body = None
            parts = urlsplit(self.path)
            request = RecordedRequest(
                self.command, parts.path, dict(self.headers), parse_qs(parts.query, keep_blank_values=True), body,
                raw_body, self.path,
            )
            arrived = time.monotonic()
            server.record(request)
            answer = server.answer(request)
            self.sent = 0
            try:
                self._send(answer)
            except OSError:  # the client gave up (a timeout test): a broken pipe, a reset, TLS closed
                server.record_hangup(Hangup(parts.path, time.monotonic() - arrived, self.sent, self.size))

        def _send(self, answer):
            payload, content_type = answer.payload()
            if self.command == "HEAD":
                payload = b""
            headers = {"Content-Type": content_type, "Content-Length": str(len(payload)), **answer.headers}
            if headers.get("Connection", "").lower() == "close":
                self.close_connection = True
            reason = self.responses.get(answer.status, ("",))[0]
            head = f"HTTP/1.1 {answer.status} {reason}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
            head = head.encode("latin-1")
            self.size = len(head + payload)
            if answer.trickle is None:
                self.wfile.write(head + payload)
                return
            if not answer.trickle_head:
                self.wfile.write(head)
                self.wfile.flush()
                self.sent, head = len(head), b""
            for index in range(len(head + payload)):
                self.wfile.write((head + payload)[index : index + 1])
                self.wfile.flush()
                self.sent += 1
                time.sleep(answer.trickle)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, format, *args):
            pass

    return Handler
