"""A stand-in for the Platform9 Qbert API: the three cluster calls the registry mirror needs.

    GET  /qbert/v4/{project}/clusters/{uuid}            the cluster, never its customRegistryPassword
    PUT  /qbert/v4/{project}/clusters/{uuid}            cluster update with a JSON object body
    POST /qbert/v4/{project}/clusters/{uuid}/upgrade    cluster upgrade, ?type=...&force=true|false

Every request is recorded (method, path, query, headers, body) before it is
answered, so tests can assert what a client sent. A wrong or missing
X-Auth-Token gets 401; an unknown project or cluster gets 404. Failures, delays,
redirects and slow answers can be queued with fail_next(); redirect() sends every
request under a path prefix elsewhere.

As a pytest fixture: use qbert_server (below), or `with QbertServer(...) as server:`.
For demos: python tests/fakes/qbert_server.py --port 8080 --token secret --project p1 --cluster c1
"""

from __future__ import annotations

import argparse
import copy
import json
import signal
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

try:
    from fakes.base import Answer, FakeServer
except ImportError:  # run as a script: python tests/fakes/qbert_server.py
    from base import Answer, FakeServer

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
class _Failure:
    status: int | None  # None: answer normally (after the delay)
    body: object
    delay: float
    cluster: str | None
    method: str | None
    times: int = 1
    headers: dict = field(default_factory=dict)
    trickle: float | None = None

    def matches(self, method, cluster):
        return (self.cluster is None or self.cluster == cluster) and (self.method is None or self.method == method)


class QbertServer(FakeServer):
    """The fake API. State: {project: {cluster uuid: cluster object}}, password included (never returned)."""

    def __init__(self, token="qbert-test-token", host="127.0.0.1", port=0):
        super().__init__(host, port)
        self.token = token
        self.projects = {}
        self._failures = []
        self._redirects = {}

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

    def fail_next(self, status=None, message=None, body=None, delay=0.0, cluster=None, method=None, times=1,
                  headers=None, trickle=None):
        """Answer the next matching request(s) with status (JSON {"message": message} or body) after delay.

        status=None with a delay only slows the normal answer down (to trigger a client timeout).
        body may be a dict/list (sent as JSON) or str/bytes (sent as text). cluster and method
        restrict which requests match; times is how many to affect. headers are sent along
        (a Location with a 3xx); trickle sends the answer (the normal one when status is None)
        one byte every trickle seconds.
        """
        if body is None and message is not None:
            body = {"message": message}
        with self._lock:
            self._failures.append(_Failure(status, body, delay, cluster, method, times, dict(headers or {}), trickle))

    def redirect(self, prefix, to, status=308):
        """Answer every request whose path starts with prefix with a redirect to `to` + the rest of the target."""
        with self._lock:
            self._redirects[prefix] = (to, status)

    def clear(self):
        """Forget the recorded requests, queued failures and redirects (state stays)."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self._redirects.clear()

    def methods(self):
        """The recorded request methods, in order."""
        with self._lock:
            return [request.method for request in self.requests]

    def writes(self):
        """The recorded PUT and POST requests."""
        with self._lock:
            return [request for request in self.requests if request.method in ("PUT", "POST")]

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

    def answer(self, request):
        """The Answer to one recorded request."""
        with self._lock:
            redirect = next(
                ((prefix, *target) for prefix, target in self._redirects.items() if request.path.startswith(prefix)),
                None,
            )
        if redirect is not None:
            prefix, to, status = redirect
            rest = request.path[len(prefix):]
            query = "&".join(f"{name}={value}" for name, values in request.query.items() for value in values)
            return Answer(status, b"", {"Location": to + rest + (f"?{query}" if query else "")})
        segments = [unquote(s) for s in request.path.split("/")]
        # ['', 'qbert', 'v4', project, 'clusters', uuid, ('upgrade')]
        routed = len(segments) in (6, 7) and segments[1:3] == ["qbert", "v4"] and segments[4] == "clusters"
        cluster_id = segments[5] if routed else None

        failure = self._take_failure(request.method, cluster_id)
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)
            if failure.status is not None:
                return Answer(failure.status, failure.body if failure.body is not None else b"", failure.headers,
                              failure.trickle)
        status, body = self._route(request, segments, routed, cluster_id)
        return Answer(status, body, failure.headers if failure else {}, failure.trickle if failure else None)

    def _route(self, request, segments, routed, cluster_id):
        """(status, JSON body) of the API itself."""
        method, path, query, body = request.method, request.path, request.query, request.body
        if request.header("X-Auth-Token") != self.token:
            return 401, {"message": "The request you have made requires authentication.", "code": 401}
        if not routed:
            return 404, {"message": f"no route for {method} {path}"}
        project, upgrade = segments[3], len(segments) == 7
        if upgrade and segments[6] != "upgrade":
            return 404, {"message": f"no route for {method} {path}"}
        if (method, upgrade) not in (("GET", False), ("PUT", False), ("POST", True)):
            return 405, {"message": f"{method} is not allowed on {path}"}
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
