"""The HTTP of ca_certificate, registry_preflight and pmk_cluster_registry, as an attacker would probe it.

Real servers on 127.0.0.1 (tests/fakes): redirects to another host (another port is another
host) on GET and on PUT, an http -> https redirect on PUT, servers that send one byte a
second, and credentials in every URL option. Each test failed on the modules as they were
before module_utils/_http.py (see the changelog fragment hardening-http.yml).
"""

from __future__ import annotations

import re
import time

import pytest
from fakes import tls_registry as fake
from fakes.base import Answer
from fakes.qbert_server import QbertServer

CA = "kubenode.registry_mirror.ca_certificate"
PREFLIGHT = "kubenode.registry_mirror.registry_preflight"
PMK = "kubenode.registry_mirror.pmk_cluster_registry"
TOKEN = "tok-Hd4-HARDENSECRET-7301"
PASSWORD = "pw-Rt2-MIRRORSECRET-9043"
USERINFO = "ui-Lm5-USERINFOSECRET-6618"
SECRET_VARS = {"pmk_auth_token": TOKEN, "mirror_password": PASSWORD, "userinfo_password": USERINFO}
PROJECT = "p-hardening"
CLUSTER = "c-hardening"
CLUSTER_PATH = f"/qbert/v4/{PROJECT}/clusters/{CLUSTER}"
TIMEOUT = 2  # the module's timeout in the slow-server tests
# A task that ignored its timeout would run for minutes; ansible stops it here, so that a
# regression fails the test instead of hanging it.
SAFETY_NET = 40
# The deadline is proven from what the module and the server measure, never from the task's wall
# time (which counts ansible-playbook starting the module, seconds on a loaded machine). The
# module stops reading at its deadline; on a busy machine its thread may wake a little late.
MODULE_LATE = 3
# The server notices a closed connection at its next write or the one after (a byte a second),
# and its threads may wake late on a busy machine; a module that ignored its deadline would hold
# the connection until SAFETY_NET.
SERVER_LATE = 12
ELAPSED = re.compile(r"timed out after ([0-9]+\.[0-9]) s")


def task(module, name, **args):
    args = {key: value for key, value in args.items() if value is not None}
    return {"name": name, module: args, "ignore_errors": True, "timeout": SAFETY_NET}


def assert_no_secret(run):
    output = run.stdout + run.stderr
    for secret in (TOKEN, PASSWORD, USERINFO):
        assert secret not in output, f"{secret} shown"
    assert TOKEN[:10] not in output, "the start of the token shown"


def assert_failed_in_time(run, name, url, server):
    """Failed at its deadline, saying which URL and how long it waited; the server saw it hang up.

    The module's own measure (its message) and the server's (how long the client stayed
    connected after its request, and that it left before the answer was complete).
    """
    result = run.task_results(name)
    assert result.get("failed") is True, result
    assert url in result["msg"], result["msg"]
    elapsed = ELAPSED.search(result["msg"])
    assert elapsed is not None, result["msg"]
    assert TIMEOUT <= float(elapsed.group(1)) < TIMEOUT + MODULE_LATE, result["msg"]
    deadline = time.monotonic() + 30  # the playbook may end before the server's next write
    while not server.hangups and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.hangups, f"{name}: the server never saw the client hang up"
    for hangup in server.hangups:
        assert hangup.sent < hangup.size, hangup
        assert hangup.seconds < TIMEOUT + SERVER_LATE, f"{name}: the client stayed connected: {hangup}"
    return result


@pytest.fixture
def qbert():
    with QbertServer(token=TOKEN) as server:
        server.add_cluster(PROJECT, CLUSTER)
        yield server


@pytest.fixture
def elsewhere():
    """Another Qbert API, on another port, that would take the token: nothing may reach it."""
    with QbertServer(token=TOKEN) as server:
        server.add_cluster(PROJECT, CLUSTER)
        yield server


def pmk_task(name, api_url, cluster=CLUSTER, **args):
    return task(PMK, name, api_url=api_url, project_id=PROJECT, cluster_uuid=cluster,
                auth_token="{{ pmk_auth_token }}", **args)


# --- pmk_cluster_registry: the token stays with api_url, a redirected write is an error ---------


def test_pmk_get_follows_a_redirect_to_the_same_origin_only(run_playbook, qbert, elsewhere):
    qbert.redirect("/moved", "")  # same origin: /moved/qbert/... -> /qbert/...
    qbert.redirect("/away", elsewhere.url)  # another port: another host
    tasks = [pmk_task("same origin", f"{qbert.url}/moved"), pmk_task("another host", f"{qbert.url}/away")]
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)

    same = run.task_results("same origin")
    assert same.get("failed", False) is False, same
    assert same["cluster"]["uuid"] == CLUSTER
    assert elsewhere.requests == []  # the token never left api_url's scheme, host and port
    assert [(r.method, r.path, r.header("X-Auth-Token")) for r in qbert.requests] == [
        ("GET", f"/moved{CLUSTER_PATH}", TOKEN), ("GET", CLUSTER_PATH, TOKEN),  # followed
        ("GET", f"/away{CLUSTER_PATH}", TOKEN),  # not followed
    ]
    away = run.task_results("another host")
    assert away["failed"] is True
    redirected = f"GET {qbert.url}/away{CLUSTER_PATH} was redirected to {elsewhere.url}{CLUSTER_PATH} (HTTP 308)"
    assert redirected in away["msg"], away["msg"]
    assert "another scheme, host or port" in away["msg"] and "auth token" in away["msg"]


def test_pmk_a_redirected_write_is_an_error(run_playbook, qbert, elsewhere):
    for uuid in ("c-https", "c-307", "c-post"):
        qbert.add_cluster(PROJECT, uuid)
    qbert.redirect("/moved", "")  # the GET follows it, the PUT must not
    https_location = f"https://127.0.0.1:{fake.free_port()}/qbert/v4/{PROJECT}/clusters/c-https"
    qbert.fail_next(301, headers={"Location": https_location}, method="PUT", cluster="c-https")
    away_location = f"{elsewhere.url}/qbert/v4/{PROJECT}/clusters/c-307"
    qbert.fail_next(307, headers={"Location": away_location}, method="PUT", cluster="c-307")
    qbert.fail_next(302, headers={"Location": "/upgraded"}, method="POST", cluster="c-post")
    url = "https://10.101.101.100:443"
    tasks = [
        pmk_task("PUT, same origin", f"{qbert.url}/moved", url=url),
        pmk_task("PUT, http to https", qbert.url, cluster="c-https", url=url),
        pmk_task("PUT, another host", qbert.url, cluster="c-307", url=url, password="{{ mirror_password }}"),
        pmk_task("POST, redirected", qbert.url, cluster="c-post", url=url, operation="upgrade", upgrade_type="minor"),
    ]
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)

    clusters = f"{qbert.url}/qbert/v4/{PROJECT}/clusters"
    expected = {
        "PUT, same origin": (f"PUT {qbert.url}/moved{CLUSTER_PATH}", f"to {qbert.url}{CLUSTER_PATH} (HTTP 308)"),
        "PUT, http to https": (f"PUT {clusters}/c-https", f"to {https_location} (HTTP 301)"),
        "PUT, another host": (f"PUT {clusters}/c-307", f"to {away_location} (HTTP 307)"),
        "POST, redirected": (f"POST {clusters}/c-post/upgrade?type=minor&force=false",
                             f"to {qbert.url}/upgraded (HTTP 302)"),
    }
    for name, fragments in expected.items():
        outcome = run.task_results(name)
        assert outcome.get("failed") is True, (name, outcome)
        assert outcome.get("changed", False) is False, (name, outcome)
        for fragment in (*fragments, "nothing was written"):
            assert fragment in outcome["msg"], (name, fragment, outcome["msg"])
    assert "use https:// in api_url" in run.task_results("PUT, http to https")["msg"]
    assert [(r.method, r.path) for r in qbert.writes()] == [
        ("PUT", f"/moved{CLUSTER_PATH}"),
        ("PUT", f"/qbert/v4/{PROJECT}/clusters/c-https"),
        ("PUT", f"/qbert/v4/{PROJECT}/clusters/c-307"),
        ("POST", f"/qbert/v4/{PROJECT}/clusters/c-post/upgrade"),
    ]  # each sent once, never again to the Location
    assert elsewhere.requests == []
    for uuid in (CLUSTER, "c-https", "c-307", "c-post"):
        assert "customRegistryUrl" not in qbert.cluster(PROJECT, uuid), uuid  # nothing was written anywhere


def test_pmk_slow_api(run_playbook, qbert):
    qbert.add_cluster(PROJECT, "c-trickle")
    qbert.fail_next(trickle=1.0, cluster="c-trickle")  # the real answer, one byte a second
    run = run_playbook([pmk_task("slow", qbert.url, cluster="c-trickle", timeout=TIMEOUT)], extra_vars=SECRET_VARS)
    url = f"{qbert.url}/qbert/v4/{PROJECT}/clusters/c-trickle"
    result = assert_failed_in_time(run, "slow", url, qbert)
    assert f"did not answer GET {url} within {TIMEOUT} seconds" in result["msg"]
    assert_no_secret(run)


def test_pmk_refuses_credentials_in_every_url_option(run_playbook, qbert):
    with_creds = "https://mirror:{{ userinfo_password }}@10.0.0.9"
    tasks = [
        pmk_task("api_url", f"http://admin:{{{{ userinfo_password }}}}@127.0.0.1:{qbert.port}"),
        pmk_task("url", qbert.url, url=with_creds),
        pmk_task("cert_path", qbert.url, cert_path=f"{with_creds}/ca.crt"),
    ]
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert_no_secret(run)
    for field in ("api_url", "url", "cert_path"):
        result = run.task_results(field)
        assert result["failed"] is True
        assert result["msg"].startswith(f"{field}: must not contain credentials"), result["msg"]
    assert qbert.requests == []


# --- ca_certificate -------------------------------------------------------------------


@pytest.fixture
def files(pki):
    served = {
        "ca.pem": pki.ca.read_bytes(),
        "slow.pem": Answer(200, pki.ca.read_bytes(), trickle=1.0, trickle_head=False),
    }
    with fake.FileServer(served) as server:
        yield server


def test_ca_slow_server(run_playbook, files, tmp_path):
    target = tmp_path / "ca.crt"
    url = f"{files.url}/slow.pem"
    run = run_playbook([task(CA, "slow", path=str(target), url=url, timeout=TIMEOUT)])
    result = assert_failed_in_time(run, "slow", url, files)
    assert result["msg"].startswith(f"url: fetching {url} failed: no complete answer within {TIMEOUT} seconds")
    assert "bytes of the body received" in result["msg"]
    assert not target.exists()


def test_ca_redirects(run_playbook, pki, files, tmp_path):
    location = f"http://copy:{USERINFO}@127.0.0.1:{files.port}/ca.pem"
    moves = {
        "moved.pem": Answer(302, b"", {"Location": f"{files.url}/ca.pem"}),  # another port: followed, as before
        "creds.pem": Answer(302, b"", {"Location": location}),
    }
    downgrade = {"down.pem": Answer(302, b"", {"Location": f"{files.url}/ca.pem"})}
    with fake.FileServer(moves) as mover, fake.FileServer(downgrade, pki=pki) as secure:
        tasks = [
            task(CA, "moved", path=str(tmp_path / "moved.crt"), url=f"{mover.url}/moved.pem"),
            task(CA, "https to http", path=str(tmp_path / "down.crt"), url=f"{secure.url}/down.pem",
                 validate_certs=False),
            task(CA, "credentials", path=str(tmp_path / "creds.crt"), url=f"{mover.url}/creds.pem"),
        ]
        run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)
    result = run.task_results
    assert result("moved")["changed"] is True
    assert (tmp_path / "moved.crt").read_bytes() == pki.ca.read_bytes()
    down = result("https to http")
    assert down["failed"] is True
    assert f"{secure.url}/down.pem" in down["msg"] and "from https to http" in down["msg"], down["msg"]
    creds = result("credentials")
    assert creds["failed"] is True and "it leads to a URL with credentials" in creds["msg"], creds["msg"]
    assert [request.path for request in files.requests] == ["/ca.pem"]  # only the followed redirect
    assert not (tmp_path / "down.crt").exists() and not (tmp_path / "creds.crt").exists()


def test_ca_refuses_credentials_in_url(run_playbook, files, tmp_path):
    url = f"http://admin:{{{{ userinfo_password }}}}@127.0.0.1:{files.port}/ca.pem"
    tasks = [task(CA, "credentials", path=str(tmp_path / "ca.crt"), url=url)]
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert_no_secret(run)
    result = run.task_results("credentials")
    assert result["failed"] is True
    assert result["msg"].startswith("url: must not contain credentials"), result["msg"]
    run = run_playbook(tasks, extra_vars=SECRET_VARS, json_output=False, verbosity=3)  # the invocation shown
    assert_no_secret(run)
    assert "url: must not contain credentials" in run.stdout
    assert files.requests == []


# --- registry_preflight -----------------------------------------------------------------


@pytest.fixture
def registries(pki):
    with fake.TlsRegistry(pki) as registry, fake.TlsRegistry(pki) as other:
        yield registry, other


def test_preflight_slow_registry(run_playbook, registries, pki):
    registry, _other = registries
    registry.trickle = 1.0
    run = run_playbook([task(PREFLIGHT, "slow", url=registry.url, ca_file=str(pki.ca), timeout=TIMEOUT)])
    result = assert_failed_in_time(run, "slow", f"{registry.url}/v2/", registry)
    assert f"is too slow: no complete answer within {TIMEOUT} seconds" in result["msg"]


def test_preflight_redirect_to_another_host(run_playbook, registries, pki):
    registry, other = registries
    registry.force_status, registry.force_location = 302, f"{other.url}/v2/"
    run = run_playbook([task(PREFLIGHT, "redirect", url=registry.url, ca_file=str(pki.ca), username="u",
                             password="{{ mirror_password }}")], extra_vars=SECRET_VARS)
    result = run.task_results("redirect")
    assert result["failed"] is True and result["status"] == 302
    assert f"redirects to {other.url}/v2/ (HTTP 302)" in result["msg"]
    assert other.requests == []
    assert_no_secret(run)


def test_preflight_refuses_credentials_in_url(run_playbook, registries, pki):
    registry, _other = registries
    tasks = [
        task(PREFLIGHT, "with scheme", url=f"https://u:{{{{ userinfo_password }}}}@127.0.0.1:{registry.port}"),
        task(PREFLIGHT, "without scheme", url=f"u:{{{{ userinfo_password }}}}@127.0.0.1:{registry.port}"),
    ]
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert_no_secret(run)
    for name in ("with scheme", "without scheme"):
        result = run.task_results(name)
        assert result["failed"] is True
        assert result["msg"].startswith("url: must not contain credentials"), result["msg"]
    assert registry.requests == []
