"""registry_preflight through ansible-playbook against the fake HTTPS registry (tests/fakes/tls_registry.py).

The node's sandbox image is checked in test_preflight_sandbox_image.py; here containerd is kept off the module's
PATH, so that no case reads this machine's containerd configuration (the sandbox image is then not checked, with a
warning, as no registry is served only from mirrors).
"""

from __future__ import annotations

import base64
import socket

import pytest
from fakes import tls_registry as fake
from fakes.node_programs import path_without

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _registry_url

# How registry_preflight names the pin of the PMK mirror's CA (the role's variable too).
ROLE_PIN = "ca_sha256 (containerd_mirror_ca_sha256 in the containerd_mirror role)"

MODULE = "kubenode.registry_mirror.registry_preflight"
USER = "mirror-user"
PASSWORD = "pässwörd-Qx7-PREFLIGHTSECRET-5521"
# What containerd sends for USER:PASSWORD, computed here from RFC 7617 (UTF-8), not by the module.
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")
FORBIDDEN_USER = "no-pull"


@pytest.fixture(scope="module")
def without_containerd(tmp_path_factory):
    return str(path_without(tmp_path_factory.mktemp("path"), ("containerd",)))


@pytest.fixture
def run_playbook(run_playbook, without_containerd):
    def run(*args, env=None, **kwargs):
        return run_playbook(*args, env=dict({"PATH": without_containerd}, **(env or {})), **kwargs)

    return run


@pytest.fixture(scope="module")
def registry_server(pki):
    with fake.TlsRegistry(pki, users={USER: PASSWORD, FORBIDDEN_USER: PASSWORD}, forbidden=[FORBIDDEN_USER]) as server:
        yield server


@pytest.fixture
def registry(registry_server):
    registry_server.clear()
    registry_server.force_status = None
    yield registry_server
    registry_server.force_status = None


def task(name, **args):
    """A preflight task that does not stop the play, so that one run covers many cases."""
    args = {key: value for key, value in args.items() if value is not None}
    return {"name": name, MODULE: args, "ignore_errors": True}


def assert_no_secret(run):
    output = run.stdout + run.stderr
    assert PASSWORD not in output
    assert AUTHORIZATION.split()[1] not in output


def test_outcomes(run_playbook, registry, pki, tmp_path, request):
    ca_file, other_ca = str(pki.ca), str(pki.other_ca)
    creds = {"username": USER, "password": "{{ mirror_password }}"}
    closed = fake.free_port()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (backlog), never answers
    request.addfinalizer(silent.close)
    silent_port = silent.getsockname()[1]
    tasks = [
        task("ok", url=registry.url, ca_file=ca_file, **creds),
        dict(task("ok in check mode", url=f"127.0.0.1:{registry.port}/", ca_content=pki.ca.read_text(), **creds),
             check_mode=True),
        task("pmk names", customRegistryUrl=registry.url, customRegistryUsername=USER,
             customRegistryPassword="{{ mirror_password }}", ca_file=ca_file),
        task("wrong password", url=registry.url, ca_file=ca_file, username=USER, password="not-it"),
        task("no credentials", url=registry.url, ca_file=ca_file),
        task("forbidden", url=registry.url, ca_file=ca_file, username=FORBIDDEN_USER,
             password="{{ mirror_password }}"),
        task("wrong CA", url=registry.url, ca_file=other_ca, **creds),
        task("wrong CA content", url=registry.url, ca_content=pki.other_ca.read_text(), **creds),
        task("system trust store", url=registry.url, **creds),
        task("skip_tls with wrong CA", url=registry.url, ca_file=other_ca, skip_tls=True, **creds),
        task("name mismatch", url=f"https://localhost:{registry.port}", ca_file=ca_file, **creds),
        task("closed port", url=f"https://127.0.0.1:{closed}", ca_file=ca_file, **creds),
        task("silent port", url=f"https://127.0.0.1:{silent_port}", ca_file=ca_file, timeout=1, **creds),
        task("unknown name", url="https://mirror.invalid", ca_file=ca_file, **creds),
        task("path refused", url=f"{registry.url}/v2/infra", ca_file=ca_file),
        task("missing ca_file", url=registry.url, ca_file=str(tmp_path / "nope.crt")),
        task("not a CA", url=registry.url, ca_content="hello"),
        task("http to a TLS port", url=f"http://127.0.0.1:{registry.port}", **creds),
    ]
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)
    result = run.task_results
    v2 = f"{registry.url}/v2/"

    for name in ("ok", "ok in check mode", "pmk names", "skip_tls with wrong CA"):
        assert result(name).get("failed", False) is False, (name, result(name).get("msg"))
        assert result(name)["changed"] is False
        assert result(name)["status"] == 200
        assert result(name)["url"] == v2

    # every request the mirror got was GET /v2/; the good ones carried containerd's exact header
    assert {(r.method, r.path) for r in registry.requests} == {("GET", "/v2/")}
    sent = [r.header("Authorization") for r in registry.requests]
    assert sent.count(AUTHORIZATION) >= 4  # ok, check mode, pmk names, skip_tls (wrong CA sends nothing)
    assert None in sent  # "no credentials"

    failures = {
        "wrong password": (401, f"the mirror rejected the credentials for user '{USER}'"),
        "no credentials": (401, "the mirror requires credentials"),
        "forbidden": (403, f"the mirror forbids user '{FORBIDDEN_USER}'"),
        "wrong CA": (None, f"TLS verification of {v2} failed: the CA does not match the mirror's certificate ("),
        "wrong CA content": (None, f"TLS verification of {v2} failed: the CA does not match the mirror's certificate"),
        "system trust store": (None, "the system trust store was used"),
        "name mismatch": (None, f"TLS verification of https://localhost:{registry.port}/v2/ failed"),
        "closed port": (None, f"the mirror at https://127.0.0.1:{closed}/v2/ is unreachable ("),
        "silent port": (None, f"the mirror at https://127.0.0.1:{silent_port}/v2/ is unreachable (no answer within 1"),
        "unknown name": (None, "the mirror at https://mirror.invalid/v2/ is unreachable (the name does not resolve"),
        "missing ca_file": (None, f"ca_file: {tmp_path / 'nope.crt'} does not exist"),
        "not a CA": (None, "ca_content: not PEM"),
        "http to a TLS port": (None, f"http://127.0.0.1:{registry.port}/v2/"),
    }
    for name, (status, message) in failures.items():
        outcome = result(name)
        assert outcome["failed"] is True, name
        assert message in outcome["msg"], (name, outcome["msg"])
        assert outcome["status"] == status, (name, outcome)
        assert outcome["changed"] is False
    assert "not valid for the host" in result("name mismatch")["msg"]
    assert "mismatch" in result("name mismatch")["msg"]  # OpenSSL's reason is passed on
    assert "refused" in result("closed port")["msg"].lower()
    assert "Basic" in result("no credentials")["msg"]  # the challenge is reported

    refused = result("path refused")
    assert refused["failed"] is True and "must not contain a path ('/v2/infra')" in refused["msg"]
    assert "status" in refused and refused["status"] is None


@pytest.mark.parametrize(
    "status, expected",
    [
        (500, "answered HTTP 500"),
        (302, "redirects to https://elsewhere.invalid/v2/ (HTTP 302)"),
        (204, "answered HTTP 204"),
    ],
)
def test_other_statuses_fail_with_the_status(run_playbook, registry, pki, status, expected):
    registry.force_status = status
    run = run_playbook([task("call", url=registry.url, ca_file=str(pki.ca), username=USER,
                             password="{{ mirror_password }}")], extra_vars={"mirror_password": PASSWORD})
    outcome = run.task_results("call")
    assert outcome["failed"] is True
    assert expected in outcome["msg"]
    assert outcome["status"] == status
    assert len(registry.requests) == 1  # a redirect is not followed
    assert_no_secret(run)


@pytest.mark.parametrize("verbosity", [0, 3])
def test_password_never_shown(run_playbook, registry, pki, verbosity):
    tasks = [
        task("ok", url=registry.url, ca_file=str(pki.ca), username=USER, password="{{ mirror_password }}"),
        task("tls", url=registry.url, ca_file=str(pki.other_ca), username=USER, password="{{ mirror_password }}"),
        {"name": "bad user", MODULE: {"url": registry.url, "ca_file": str(pki.ca), "username": "x:y",
                                      "password": "{{ mirror_password }}"}, "ignore_errors": True},
    ]
    for json_output in (False, True):
        run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD}, verbosity=verbosity,
                           json_output=json_output)
        assert run.rc == 0, run.stdout + run.stderr
        assert "rejected" not in run.stdout  # the right password was accepted
        assert "username: must not contain ':'" in run.stdout
        assert_no_secret(run)


# --- node-side URL and credentials agree with the controller's ------------


def test_basic_auth_is_utf8_base64():
    assert _registry_url.basic_auth(USER, PASSWORD) == AUTHORIZATION


def test_the_ca_is_got_checked_and_handed_on(run_playbook, registry, pki, tmp_path):
    """ca_url, ca_content or ca_file: the CA is checked as ca_certificate checks it, then used; its text comes back."""
    creds = {"username": USER, "password": PASSWORD}
    on_node = tmp_path / "reg-ca.crt"
    on_node.write_bytes(pki.ca.read_bytes())
    on_node.chmod(0o600)
    with fake.FileServer({"ca.pem": pki.ca.read_bytes(), "other.pem": pki.other_ca.read_bytes()}) as files:
        run = run_playbook([
            task("url", url=registry.url, ca_url=f"{files.url}/ca.pem", **creds),
            task("only the CA", ca_url=f"{files.url}/ca.pem"),
            task("only the CA, on the node", ca_file=str(on_node), ca_readable_by="root"),
            task("unrelated CA from a URL", url=registry.url, ca_url=f"{files.url}/other.pem", **creds),
            task("expired", url=registry.url, ca_content=pki.expired_ca.read_text(), **creds),
            task("unreadable", ca_file=str(on_node), ca_readable_by="kubenode-no-such-user"),
            task("nothing to check"),
            task("both", ca_url=f"{files.url}/ca.pem", ca_content=pki.ca.read_text()),
        ])
        downloads = [request.path for request in files.requests]
    result = run.task_results
    for name in ("url", "only the CA", "only the CA, on the node"):
        assert result(name).get("failed", False) is False, (name, result(name).get("msg"))
        assert result(name)["ca_content"] == pki.ca.read_text(), name
    assert result("url")["status"] == 200
    assert result("only the CA")["status"] is None and "url" not in result("only the CA")
    assert downloads.count("/ca.pem") == 2  # once a task
    # "url" only: the unrelated CA stops at the TLS handshake, and the CA alone calls no mirror
    assert [r.path for r in registry.requests] == ["/v2/"]
    failures = {
        "unrelated CA from a URL": "the CA does not match the mirror's certificate",
        "expired": "ca_content: the certificate (CN=kubenode expired CA) expired on ",
        "unreadable": "ca_readable_by: there is no user 'kubenode-no-such-user'",
        "nothing to check": "url: required, unless only a CA is checked",
        "both": "mutually exclusive",
    }
    for name, message in failures.items():
        assert result(name)["failed"] is True, name
        assert message in result(name)["msg"], (name, result(name)["msg"])
        assert "ca_content" not in result(name), name


# --- every distinct mirror of registry_mirrors, with its CA, client certificate, credentials and repo path --------

MIRROR_FIELD = 'registry_mirrors["docker.io"][0]'


@pytest.fixture(scope="module")
def mtls_server(pki):
    """A Harbor-like registry that requires a client certificate pki.client_ca signed, and holds one project."""
    with fake.TlsRegistry(pki, users={USER: PASSWORD}, client_ca=pki.client_ca, projects={"dockerhub-proxy"}) as server:
        yield server


def test_each_mirror_is_called_with_its_tls_material_credentials_and_repo_path(run_playbook, mtls_server, registry,
                                                                               pki):
    mtls_server.clear()
    key = pki.client_key.read_text()
    good = {"url": mtls_server.url, "repo_path": "dockerhub-proxy", "username": USER,
            "password": "{{ mirror_password }}", "ca_content": pki.ca.read_text(),
            "client_cert_content": pki.client.read_text(), "client_key_content": "{{ client_key }}"}
    on_node = {"url": mtls_server.url, "ca_file": str(pki.ca), "client_cert": str(pki.client),
               "client_key": str(pki.client_key), "username": USER, "password": "{{ mirror_password }}"}
    no_client = {key_: value for key_, value in good.items() if not key_.startswith("client_")}
    tasks = [
        task("content, two registries", registry_mirrors={"docker.io": [good], "quay.io": {"mirrors": [good]}}),
        task("node paths, beside the PMK mirror", url=registry.url, ca_file=str(pki.ca), username=USER,
             password="{{ mirror_password }}", registry_mirrors={"*": [on_node]}),
        task("no client certificate", registry_mirrors={"docker.io": [no_client]}),
        task("a client certificate the mirror does not trust", registry_mirrors={"docker.io": [dict(
            good, client_cert_content=pki.other_client.read_text(),
            client_key_content=pki.other_client_key.read_text())]}),
        task("wrong password", registry_mirrors={"docker.io": [dict(good, password="not-it")]}),
        task("missing project", registry_mirrors={"docker.io": [dict(good, repo_path="dockerhub-prox")]}),
        task("wrong CA", registry_mirrors={"docker.io": [dict(good, ca_content=pki.other_ca.read_text())]}),
        task("one good, one bad", registry_mirrors={"docker.io": [good, dict(on_node, password="not-it")]}),
        task("a key without its certificate", registry_mirrors={"docker.io": [dict(
            no_client, client_key_content="{{ client_key }}")]}),
    ]
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD, "client_key": key}, verbosity=3,
                       json_output=False)
    assert all(line not in run.stdout + run.stderr for line in key.splitlines()[1:-1])
    assert_no_secret(run)
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD, "client_key": key})
    assert_no_secret(run)
    result = run.task_results
    v2 = f"{mtls_server.url}/v2/"

    both = result("content, two registries")
    assert both.get("failed", False) is False, both.get("msg")
    assert both["mirrors"] == [{"fields": [MIRROR_FIELD, 'registry_mirrors["quay.io"].mirrors[0]'], "url": v2,
                                "status": 200, "repo_path_status": 404}]  # called once for both registries
    shown = both["invocation"]["module_args"]["registry_mirrors"]["docker.io"][0]
    assert shown["client_key_content"] == shown["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    beside = result("node paths, beside the PMK mirror")
    assert beside.get("failed", False) is False, beside.get("msg")
    assert (beside["status"], beside["url"]) == (200, f"{registry.url}/v2/")
    assert beside["mirrors"] == [{"fields": ['registry_mirrors["*"][0]'], "url": v2, "status": 200,
                                  "repo_path_status": None}]
    # the good mirror's project once for each task that holds it (its two registries are one call), in two runs
    good_calls = [r.path for r in mtls_server.requests if r.header("Authorization") == AUTHORIZATION]
    assert good_calls.count("/v2/dockerhub-proxy/kubenode-preflight-probe/tags/list") == 2 * 2
    failures = {
        "no client certificate": f"{MIRROR_FIELD}.client_cert and {MIRROR_FIELD}.client_key (node paths) or",
        "a client certificate the mirror does not trust":
            f"the mirror does not accept the client certificate of {MIRROR_FIELD}.client_cert_content",
        "wrong password": f"{MIRROR_FIELD}: the mirror rejected the credentials for user '{USER}' at {v2} (HTTP 401",
        "missing project": f"{MIRROR_FIELD}: the mirror does not serve {MIRROR_FIELD}.repo_path 'dockerhub-prox': "
                           f"{v2}dockerhub-prox/kubenode-preflight-probe/tags/list answered HTTP 401: project "
                           "dockerhub-prox not found; check that the project or path exists",
        "wrong CA": f"{MIRROR_FIELD}: TLS verification of {v2} failed: the CA does not match",
        "one good, one bad": "1 of 2 mirrors of registry_mirrors failed the preflight. "
                             "registry_mirrors[\"docker.io\"][1]: the mirror rejected the credentials",
        "a key without its certificate": f"{MIRROR_FIELD}.client_cert_content: {MIRROR_FIELD}.client_cert_content "
                                         f"and {MIRROR_FIELD}.client_key_content must be given together",
    }
    for name, message in failures.items():
        outcome = result(name)
        assert outcome["failed"] is True, name
        assert message in outcome["msg"], (name, outcome["msg"])
        assert outcome["changed"] is False
    assert "mirrors" not in result("a key without its certificate")  # refused on the controller: no module run


@pytest.fixture(scope="module")
def harbor(pki):
    """A Harbor-like registry without client certificates that holds one project."""
    with fake.TlsRegistry(pki, users={USER: PASSWORD}, projects={"infra"}) as server:
        yield server


def test_the_repo_path_of_url_is_checked_as_a_mirrors_is(run_playbook, harbor, pki):
    harbor.clear()
    pmk = {"url": harbor.url, "ca_file": str(pki.ca), "username": USER, "password": "{{ mirror_password }}"}
    run = run_playbook([
        task("served", repo_path="/infra/k8s/", **pmk),
        task("served, pmk name", customRegistryRepoPath="infra/k8s", **pmk),
        task("no repo_path", **pmk),
        task("missing project", repo_path="infr/k8s", **pmk),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)
    result = run.task_results
    v2 = f"{harbor.url}/v2/"
    for name in ("served", "served, pmk name"):
        assert result(name).get("failed", False) is False, (name, result(name).get("msg"))
        assert (result(name)["status"], result(name)["repo_path_status"]) == (200, 404), name
    assert "repo_path_status" not in result("no repo_path")
    missing = result("missing project")
    assert missing["failed"] is True
    assert missing["status"] == 401
    assert missing["msg"].startswith(
        f"the mirror does not serve repo_path 'infr/k8s': {v2}infr/k8s/kubenode-preflight-probe/tags/list answered "
        "HTTP 401: project infr not found")
    # the path as containerd_hosts writes it, normalised once on the controller
    assert [r.path for r in harbor.requests if r.path.endswith("/tags/list")] == [
        "/v2/infra/k8s/kubenode-preflight-probe/tags/list"] * 2 + ["/v2/infr/k8s/kubenode-preflight-probe/tags/list"]


# --- a pinned CA: checked before any request is sent with it --------------------------------------------------------


def openssl_sha256(pem_path):
    line = fake.openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", pem_path, cwd=pem_path.parent).strip()
    return line.partition("=")[2]


@pytest.fixture
def ca_files(pki):
    with fake.FileServer({"ca.pem": pki.ca.read_bytes()}) as files:
        yield files


def test_a_pinned_ca_from_each_source_passes_and_a_wrong_pin_sends_nothing(run_playbook, registry, ca_files, pki):
    right, wrong = openssl_sha256(pki.ca), openssl_sha256(pki.other_ca)
    creds = {"username": USER, "password": "{{ mirror_password }}"}
    url = f"{ca_files.url}/ca.pem"
    sources = {"ca_content": pki.ca.read_text(), "ca_url": url, "ca_file": str(pki.ca)}
    tasks = [task(f"wrong {option}", url=registry.url, ca_sha256=wrong, **{option: value}, **creds)
             for option, value in sources.items()]
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD})
    assert_no_secret(run)
    where = {"ca_content": "ca_content", "ca_url": f"ca_url: {url}", "ca_file": f"ca_file: {pki.ca}"}
    for option in sources:
        result = run.task_results(f"wrong {option}")
        assert result["failed"] is True and result["status"] is None, result
        assert result["msg"] == (f"{ROLE_PIN}: {where[option]} is not the pinned CA: expected the SHA-256 fingerprint "
                                 f"{wrong}, got {right}")
        assert "ca_content" not in result
    assert registry.requests == []  # a wrong pin stops the preflight before it calls the mirror

    tasks = [task(f"right {option}", url=registry.url, ca_sha256=[right.lower()], **{option: value}, **creds)
             for option, value in sources.items()]
    tasks.append(task("unpinned http", url=registry.url, ca_url=url, **creds))
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD})
    for option in sources:
        result = run.task_results(f"right {option}")
        assert result.get("failed", False) is False and result["status"] == 200, result.get("msg")
        assert not [warning for warning in result.get("warnings", []) if "plain http" in warning]
    warnings = run.task_results("unpinned http")["warnings"]
    assert any(warning.startswith(f"ca_url: the CA is fetched over plain http from {url}: anyone on the path")
               and f"set {ROLE_PIN} to the CA's SHA-256 fingerprint" in warning for warning in warnings), warnings


def test_a_mirrors_pin_is_checked_on_its_ca_before_it_is_called(run_playbook, registry, pki):
    right, wrong = openssl_sha256(pki.ca), openssl_sha256(pki.other_ca)
    mirror = {"url": registry.url, "username": USER, "password": "{{ mirror_password }}"}
    tasks = [
        task("file, right", registry_mirrors={"docker.io": [dict(mirror, ca_file=str(pki.ca), ca_sha256=right)]}),
        task("content, right",
             registry_mirrors={"docker.io": [dict(mirror, ca_content=pki.ca.read_text(), ca_sha256=[right])]}),
        task("file, wrong", registry_mirrors={"docker.io": [dict(mirror, ca_file=str(pki.ca), ca_sha256=wrong)]}),
    ]
    run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD})
    assert_no_secret(run)
    for name in ("file, right", "content, right"):
        assert run.task_results(name)["mirrors"][0]["status"] == 200, run.task_results(name)
    calls = len(registry.requests)
    assert calls == 2
    failed = run.task_results("file, wrong")
    assert failed["failed"] is True
    assert (f"{MIRROR_FIELD}: {MIRROR_FIELD}.ca_sha256: {MIRROR_FIELD}.ca_file: {pki.ca} is not the pinned CA: "
            f"expected the SHA-256 fingerprint {wrong}, got {right}") in failed["msg"], failed["msg"]

    # ca_content is the controller's: its pin is checked there, before the node is reached
    run = run_playbook([task("content, wrong", registry_mirrors={"docker.io": [
        dict(mirror, ca_content=pki.ca.read_text(), ca_sha256=wrong)]})], extra_vars={"mirror_password": PASSWORD})
    failed = run.task_results("content, wrong")
    assert failed["msg"] == (f"{MIRROR_FIELD}.ca_sha256: {MIRROR_FIELD}.ca_content is not the pinned CA: expected the "
                             f"SHA-256 fingerprint {wrong}, got {right}")
    assert len(registry.requests) == calls
