"""A stand-in for the Platform9 Qbert API: the three cluster calls the registry mirror needs.

    GET  /qbert/v4/{project}/clusters/{uuid}            the cluster, never its customRegistryPassword
    PUT  /qbert/v4/{project}/clusters/{uuid}            cluster update with a JSON object body
    POST /qbert/v4/{project}/clusters/{uuid}/upgrade    cluster upgrade, ?type=...&force=true|false

Every request is recorded (method, path, query, headers, body) before it is
answered, so tests can assert what a client sent. A wrong or missing
X-Auth-Token gets 401; an unknown project or cluster gets 404. Failures and
delays can be queued with fail_next().

As a pytest fixture: use qbert_server (below), or `with QbertServer(...) as server:`.
For demos: python tests/fakes/qbert_server.py --port 8080 --token secret --project p1 --cluster c1
"""

from __future__ import annotations

import argparse
import copy
import json
import signal
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

PASSWORD_FIELD = "customRegistryPassword"
REGISTRY_FIELD_TYPES = {
    "customRegistryUrl": str,
    "customRegistryRepoPath": str,
    "customRegistryUsername": str,
    "customRegistryPassword": str,
    "customRegistrySkipTls": bool,
    "customRegistrySelfSignedCerts": bool,
    "customRegistryCertPath": str,
}
UPGRADE_TYPES = ("major", "minor", "patch")


@dataclass
class RecordedRequest:
    method: str
    path: str  # undecoded, as sent
    query: dict  # name -> list of values
    headers: dict  # as sent (case preserved)
    body: object  # the parsed JSON, or None when the body is empty or not JSON
    raw_body: bytes

    def header(self, name):
        """A header's value, case-insensitively (None when absent)."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass
class _Failure:
    status: int | None  # None: answer normally (after the delay)
    body: object
    delay: float
    cluster: str | None
    method: str | None
    times: int = 1

    def matches(self, method, cluster):
        return (self.cluster is None or self.cluster == cluster) and (self.method is None or self.method == method)


class QbertServer:
    """The fake API. State: {project: {cluster uuid: cluster object}}, password included (never returned)."""

    def __init__(self, token="qbert-test-token", host="127.0.0.1", port=0):
        self.token = token
        self.projects = {}
        self.requests = []
        self._failures = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = None

    # --- state -----------------------------------------------------------

    def add_cluster(self, project, uuid, **fields):
        """Create (or replace) a cluster; fields are stored as given (customRegistry* or anything else)."""
        with self._lock:
            cluster = {"uuid": uuid, "name": f"cluster-{uuid}", "projectId": project, "status": "ok"}
            cluster.update(fields)
            self.projects.setdefault(project, {})[uuid] = cluster
            return cluster

    def add_project(self, project):
        with self._lock:
            self.projects.setdefault(project, {})

    def cluster(self, project, uuid):
        """The stored cluster object, password included (for assertions)."""
        with self._lock:
            return copy.deepcopy(self.projects[project][uuid])

    def fail_next(self, status=None, message=None, body=None, delay=0.0, cluster=None, method=None, times=1):
        """Answer the next matching request(s) with status (JSON {"message": message} or body) after delay.

        status=None with a delay only slows the normal answer down (to trigger a client timeout).
        body may be a dict/list (sent as JSON) or str/bytes (sent as text). cluster and method
        restrict which requests match; times is how many to affect.
        """
        if body is None and message is not None:
            body = {"message": message}
        with self._lock:
            self._failures.append(_Failure(status, body, delay, cluster, method, times))

    def clear(self):
        """Forget the recorded requests and queued failures (state stays)."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    def methods(self):
        """The recorded request methods, in order."""
        with self._lock:
            return [request.method for request in self.requests]

    def writes(self):
        """The recorded PUT and POST requests."""
        with self._lock:
            return [request for request in self.requests if request.method in ("PUT", "POST")]

    # --- lifecycle -------------------------------------------------------

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="qbert-fake", daemon=True)
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

    # --- request handling (called from handler threads) -------------------

    def _take_failure(self, method, cluster):
        with self._lock:
            for failure in self._failures:
                if failure.matches(method, cluster):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _record(self, request):
        with self._lock:
            self.requests.append(request)

    def handle(self, method, target, headers, raw_body):
        """Return (status, body object or text) for one request."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        self._record(RecordedRequest(method, parts.path, query, dict(headers), body, raw_body))

        segments = [unquote(s) for s in parts.path.split("/")]
        # ['', 'qbert', 'v4', project, 'clusters', uuid, ('upgrade')]
        routed = len(segments) in (6, 7) and segments[1:3] == ["qbert", "v4"] and segments[4] == "clusters"
        cluster_id = segments[5] if routed else None

        failure = self._take_failure(method, cluster_id)
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)
            if failure.status is not None:
                return failure.status, failure.body

        if headers.get("X-Auth-Token") != self.token:
            return 401, {"message": "The request you have made requires authentication.", "code": 401}
        if not routed:
            return 404, {"message": f"no route for {method} {parts.path}"}
        project, upgrade = segments[3], len(segments) == 7
        if upgrade and segments[6] != "upgrade":
            return 404, {"message": f"no route for {method} {parts.path}"}
        if (method, upgrade) not in (("GET", False), ("PUT", False), ("POST", True)):
            return 405, {"message": f"{method} is not allowed on {parts.path}"}
        with self._lock:
            if project not in self.projects:
                return 404, {"message": f"project {project} not found"}
            cluster = self.projects[project].get(cluster_id)
            if cluster is None:
                return 404, {"message": f"cluster {cluster_id} not found"}
            if method == "GET":
                return 200, {key: value for key, value in cluster.items() if key != PASSWORD_FIELD}
            if upgrade:
                upgrade_type = query.get("type", [""])[0]
                if upgrade_type not in UPGRADE_TYPES:
                    return 400, {"message": f"invalid upgrade type {upgrade_type!r}"}
                if query.get("force", ["false"])[0] not in ("true", "false"):
                    return 400, {"message": "force must be true or false"}
            if not isinstance(body, dict):
                return 400, {"message": "the request body must be a JSON object"}
            for key, value in body.items():
                kind = REGISTRY_FIELD_TYPES.get(key)
                if kind is not None and not isinstance(value, kind):
                    return 400, {"message": f"{key} must be a {'boolean' if kind is bool else 'string'}"}
            cluster.update(body)
            return 200, {} if upgrade else {key: value for key, value in cluster.items() if key != PASSWORD_FIELD}


def _handler_for(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            status, body = server.handle(self.command, self.path, self.headers, raw_body)
            if isinstance(body, (dict, list)):
                payload, content_type = json.dumps(body).encode(), "application/json"
            else:
                payload = body if isinstance(body, bytes) else str(body or "").encode()
                content_type = "text/plain"
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, format, *args):
            pass

    return Handler


try:
    import pytest
except ImportError:  # the demo server does not need pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def qbert_server():
        """A running QbertServer with token qbert-test-token and no projects."""
        with QbertServer() as server:
            yield server


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="qbert-test-token")
    parser.add_argument("--project", default="project-1")
    parser.add_argument("--cluster", default="cluster-1")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly (and print the log) on kill too
    server = QbertServer(token=args.token, port=args.port)
    server.add_cluster(args.project, args.cluster)
    server.start()
    print(
        f"Qbert fake at {server.url}/qbert/v4/{args.project}/clusters/{args.cluster} (X-Auth-Token: {args.token})",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for request in server.requests:
            print(request.method, request.path, json.dumps(request.query), json.dumps(request.body), flush=True)


if __name__ == "__main__":
    main()
