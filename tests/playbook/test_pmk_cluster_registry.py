"""pmk_cluster_registry through ansible-playbook against the fake Qbert API (tests/fakes/qbert_server.py)."""

from __future__ import annotations

import socket

import pytest
from fakes.qbert_server import REGISTRY_FIELD_TYPES, QbertServer

MODULE = "kubenode.registry_mirror.pmk_cluster_registry"
TOKEN = "tok-Zq7-PMKSECRET-4411"
PASSWORD = "pw-Hx9-MIRRORSECRET-2288"
# Secrets reach the play as variables, as they would from a vault: ansible-core 2.19 prints the
# playbook lines around a failed task, so a literal secret in a playbook file would show.
SECRET_VARS = {"pmk_auth_token": TOKEN, "mirror_password": PASSWORD}
TOKEN_REF = "{{ pmk_auth_token }}"
PASSWORD_REF = "{{ mirror_password }}"
PROJECT = "3f1b7c0e-project"
CLUSTER = "6c1a3e2e-cluster"

# The seed document's fields and their JSON types, as the stand-in API checks them.
SEED_TYPES = REGISTRY_FIELD_TYPES
# A cluster.json in the API's own form, as a user would keep it.
CLUSTER_JSON = {
    "customRegistryUrl": "https://10.101.101.100:443/",
    "customRegistryRepoPath": "/infra/k8s/",
    "customRegistryUsername": "mirror",
    "customRegistryPassword": PASSWORD,
    "customRegistrySkipTls": False,
    "customRegistrySelfSignedCerts": True,
    "customRegistryCertPath": "/usr/local/share/reg-ca.crt",
}
# What the cluster holds afterwards (normalised, password aside).
STORED = {
    "customRegistryUrl": "https://10.101.101.100:443",
    "customRegistryRepoPath": "infra/k8s",
    "customRegistryUsername": "mirror",
    "customRegistrySkipTls": False,
    "customRegistrySelfSignedCerts": True,
    "customRegistryCertPath": "/usr/local/share/reg-ca.crt",
}
OPTIONS = {  # STORED under the module's own option names
    "url": "https://10.101.101.100:443",
    "repo_path": "infra/k8s",
    "username": "mirror",
    "skip_tls": False,
    "self_signed_certs": True,
    "cert_path": "/usr/local/share/reg-ca.crt",
}


@pytest.fixture
def qbert():
    with QbertServer(token=TOKEN) as server:
        server.add_cluster(PROJECT, CLUSTER)
        yield server


def task(name, server, cluster=CLUSTER, **args):
    """A module task against server; auth_token=None leaves it out (for the OS_TOKEN fallback)."""
    module_args = {"api_url": server.url, "project_id": PROJECT, "cluster_uuid": cluster, "auth_token": TOKEN_REF}
    module_args.update(args)
    module_args = {key: value for key, value in module_args.items() if value is not None}
    return {"name": name, MODULE: module_args}


def assert_no_secret(run):
    for secret in (TOKEN, PASSWORD):
        assert secret not in run.stdout, f"{secret} in stdout"
        assert secret not in run.stderr, f"{secret} in stderr"


def test_update_sends_the_seed_fields_once_and_check_mode_writes_nothing(run_playbook, qbert):
    # cluster.json in the API's form, passed with the API names (the aliases).
    from_json = {name: f"{{{{ cluster.{name} }}}}" for name in CLUSTER_JSON}
    tasks = [
        dict(task("check", qbert, **from_json), check_mode=True, diff=True),
        task("apply", qbert, **from_json),
        task("again", qbert, **from_json),
        task("read", qbert),
    ]
    run = run_playbook(tasks, extra_vars={"cluster": CLUSTER_JSON, **SECRET_VARS})
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)

    assert qbert.methods() == ["GET", "GET", "PUT", "GET", "GET"]  # check: GET only; again and read: GET only
    put = qbert.writes()[0]
    assert put.path == f"/qbert/v4/{PROJECT}/clusters/{CLUSTER}"
    assert put.header("X-Auth-Token") == TOKEN
    assert put.header("Content-Type") == "application/json"
    assert set(put.body) == set(SEED_TYPES)
    for name, value in put.body.items():
        assert isinstance(value, SEED_TYPES[name]), f"{name} is {type(value).__name__}"
    assert put.body == dict(STORED, customRegistryPassword=PASSWORD)
    assert all(request.header("X-Auth-Token") == TOKEN for request in qbert.requests)

    check, apply, again, read = (run.task_results(name) for name in ("check", "apply", "again", "read"))
    assert check["changed"] is True and apply["changed"] is True
    # An unset boolean is the API's default, false: not a change, but still sent with the rest.
    # The password comes last: it is sent because the others differ.
    differing = [name for name in SEED_TYPES if name not in ("customRegistrySkipTls", "customRegistryPassword")]
    assert check["changed_fields"] == [*differing, "customRegistryPassword"]
    assert apply["changed_fields"] == check["changed_fields"]
    assert check["request"] == {"method": "PUT", "url": f"{qbert.url}/qbert/v4/{PROJECT}/clusters/{CLUSTER}"}
    diff_after = {key: value for key, value in STORED.items() if key != "customRegistrySkipTls"}
    assert check["diff"]["after"] == dict(diff_after, customRegistryPassword="********")
    assert check["diff"]["before"]["customRegistryUrl"] is None
    assert again["changed"] is False and again["changed_fields"] == []
    assert "request" not in again
    assert again["registry"] == STORED
    assert read["changed"] is False
    assert {key: read["cluster"][key] for key in STORED} == STORED
    assert "customRegistryPassword" not in read["cluster"]
    assert qbert.cluster(PROJECT, CLUSTER)["customRegistryPassword"] == PASSWORD


def test_update_password(run_playbook, qbert):
    qbert.add_cluster(PROJECT, CLUSTER, **STORED)  # password unknown to the API reader
    new_url = "https://10.101.101.200:443"
    tasks = [
        task("password alone, on change", qbert, password=PASSWORD_REF, **OPTIONS),
        task("password alone, always", qbert, password=PASSWORD_REF, update_password="always", **OPTIONS),
        task("url and password, on change", qbert, password=PASSWORD_REF, **{**OPTIONS, "url": new_url}),
        task("skip_tls, no password given", qbert, skip_tls=True, update_password="always"),
    ]
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)

    results = [run.task_results(entry["name"]) for entry in tasks]
    assert [result["changed"] for result in results] == [False, True, True, True]
    assert qbert.methods() == ["GET", "GET", "PUT", "GET", "PUT", "GET", "PUT"]
    always, url_change, skip_tls = (request.body for request in qbert.writes())
    assert always == dict(STORED, customRegistryPassword=PASSWORD)
    assert url_change == dict(STORED, customRegistryUrl=new_url, customRegistryPassword=PASSWORD)
    assert skip_tls == {"customRegistrySkipTls": True}
    assert results[1]["changed_fields"] == ["customRegistryPassword"]
    assert results[2]["changed_fields"] == ["customRegistryUrl", "customRegistryPassword"]


def test_upgrade_posts_the_body_with_type_and_force(run_playbook, qbert):
    tasks = [
        task("upgrade", qbert, auth_token=None, operation="upgrade", upgrade_type="minor", force=True, **OPTIONS),
        task("upgrade again", qbert, auth_token=None, operation="upgrade", upgrade_type="minor", **OPTIONS),
    ]
    run = run_playbook(tasks, extra_vars=SECRET_VARS, env={"OS_TOKEN": TOKEN})  # the token from the environment
    assert run.rc == 0, run.stdout + run.stderr
    assert_no_secret(run)

    assert qbert.methods() == ["GET", "POST", "GET"]
    post = qbert.writes()[0]
    assert post.path == f"/qbert/v4/{PROJECT}/clusters/{CLUSTER}/upgrade"
    assert post.query == {"type": ["minor"], "force": ["true"]}
    assert post.header("X-Auth-Token") == TOKEN
    assert post.body == STORED
    assert run.task_results("upgrade")["request"]["method"] == "POST"
    assert run.task_results("upgrade again")["changed"] is False


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_errors_name_the_cause(run_playbook, qbert):
    for uuid in ("c-403", "c-400", "c-500", "c-slow"):
        qbert.add_cluster(PROJECT, uuid)
    qbert.fail_next(403, "Forbidden", cluster="c-403")
    qbert.fail_next(400, "customRegistryUrl is not reachable", cluster="c-400", method="PUT")
    qbert.fail_next(500, f"database down while handling token {TOKEN} and {PASSWORD}", cluster="c-500")
    qbert.fail_next(delay=3, cluster="c-slow")
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    cases = {
        "wrong token": (
            dict(auth_token="not-the-token"),
            ["rejected the auth token", "HTTP 401"],
        ),
        "forbidden": (dict(cluster="c-403"), ["rejected the auth token", "HTTP 403"]),
        "unknown cluster": (dict(cluster="no-such-cluster"), [PROJECT, "no-such-cluster", "not found", "HTTP 404"]),
        "unknown project": (
            dict(project_id="no-such-project"),
            ["no-such-project", CLUSTER, "not found", "HTTP 404"],
        ),
        "bad request on write": (
            dict(cluster="c-400", url="https://10.0.0.9"),
            ["PUT ", "/clusters/c-400", "HTTP 400", "customRegistryUrl is not reachable"],
        ),
        "server error": (dict(cluster="c-500", password=PASSWORD_REF), ["HTTP 500", "database down"]),
        "timeout": (dict(cluster="c-slow", timeout=1), ["did not answer GET", "/clusters/c-slow", "within 1 seconds"]),
        "unreachable": (dict(api_url=unreachable), ["could not reach", unreachable + "/qbert/v4/"]),
        "bad url": (dict(url="https://10.0.0.9/v2/infra"), ["url: must not contain a path"]),
        "upgrade without type": (dict(operation="upgrade"), ["upgrade_type"]),
    }
    tasks = []
    for name, (args, _fragments) in cases.items():
        args = dict(args)
        cluster = args.pop("cluster", CLUSTER)
        tasks.append(dict(task(name, qbert, cluster=cluster, **args), ignore_errors=True))
    run = run_playbook(tasks, extra_vars=SECRET_VARS)
    assert_no_secret(run)

    problems = []
    for name, (_args, fragments) in cases.items():
        result = run.task_results(name)
        message = result.get("msg", "")
        if not result.get("failed"):
            problems.append(f"{name}: did not fail: {result}")
        problems += [f"{name}: {fragment!r} not in {message!r}" for fragment in fragments if fragment not in message]
    assert not problems, "\n".join(problems)
    assert qbert.writes() and all(write.path.endswith("/c-400") for write in qbert.writes())


def test_secrets_never_shown_at_vvv_with_diff(run_playbook, qbert):
    qbert.add_cluster(PROJECT, "c-500")
    qbert.fail_next(500, f"echo {TOKEN} {PASSWORD}", cluster="c-500")
    tasks = [
        task("write", qbert, password=PASSWORD_REF, update_password="always", **OPTIONS),
        dict(task("check", qbert, password=PASSWORD_REF, update_password="always", **OPTIONS), check_mode=True),
        dict(task("fails", qbert, cluster="c-500", password=PASSWORD_REF), ignore_errors=True),
        dict(task("bad password", qbert, password=PASSWORD_REF + "\tx"), ignore_errors=True),
    ]
    run = run_playbook(tasks, extra_vars=SECRET_VARS, json_output=False, diff=True, verbosity=3)
    assert run.rc == 0, run.stdout + run.stderr
    # The secrets were in play: the API got them, and the diff was shown.
    assert qbert.writes()[0].header("X-Auth-Token") == TOKEN
    assert qbert.writes()[0].body["customRegistryPassword"] == PASSWORD
    assert '"customRegistryPassword": "********"' in run.stdout
    assert "HTTP 500" in run.stdout
    assert "password: must not contain control characters" in run.stdout
    assert_no_secret(run)
