"""registry_preflight follows the registry token flow as containerd does (issue 24, Build item 1).

Against tests/fakes/token_registry.py: a registry that answers only to Bearer tokens of its token service, with a
public project anyone may pull from and a private one for a robot account, and a second token service on another
address (127.0.0.2) for the realm the preflight must refuse. containerd is kept off the module's PATH, as in
test_registry_preflight.py, so that no case reads this machine's containerd configuration.
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from fakes import token_registry as fake
from fakes.node_programs import path_without

MODULE = "kubenode.registry_mirror.registry_preflight"
ROBOT = "robot$pull"
PASSWORD = "tökén-Qx7-TOKENSECRET-8812"
BASIC = base64.b64encode(f"{ROBOT}:{PASSWORD}".encode()).decode("ascii")
PUBLIC, PRIVATE = "library-proxy", "private-proxy"
MIRROR_FIELD = 'registry_mirrors["docker.io"][0]'


@pytest.fixture(scope="module")
def without_containerd(tmp_path_factory):
    return str(path_without(tmp_path_factory.mktemp("path"), ("containerd",)))


@pytest.fixture
def run_playbook(run_playbook, without_containerd):
    def run(*args, env=None, **kwargs):
        return run_playbook(*args, env=dict({"PATH": without_containerd}, **(env or {})), **kwargs)

    return run


@pytest.fixture(scope="module")
def servers():
    """The token service on the registry's host, the registry, and a token service on another host (127.0.0.2)."""
    users = {ROBOT: PASSWORD}
    with fake.TokenServer(users, public={PUBLIC}, private={PRIVATE: {ROBOT}}) as tokens, \
            fake.TokenServer(users, public={PUBLIC}, private={PRIVATE: {ROBOT}}, host="127.0.0.2") as foreign, \
            fake.TokenRegistry(tokens) as registry:
        registry.other_token_servers = (foreign,)  # it takes the foreign service's tokens: only realm says which
        yield tokens, foreign, registry


@pytest.fixture
def token_bed(servers):
    tokens, foreign, registry = servers
    for server in servers:
        server.clear()
    tokens.post_status = foreign.post_status = None
    tokens.echo = registry.echo = False
    registry.realm = None
    yield tokens, foreign, registry
    registry.realm = None
    tokens.post_status = None


def task(name, **args):
    return {"name": name, MODULE: {key: value for key, value in args.items() if value is not None},
            "ignore_errors": True}


def assert_no_secret(run, tokens=()):
    output = run.stdout + run.stderr
    assert PASSWORD not in output
    assert BASIC not in output
    for token in tokens:
        assert token not in output


def probe_scope(project):
    return f"repository:{project}/kubenode-preflight-probe:pull"


def test_anonymous_public_project_passes_and_private_fails_by_name(run_playbook, token_bed):
    tokens, _foreign, registry = token_bed
    run = run_playbook([
        task("public", url=registry.url, repo_path=PUBLIC),
        task("private", url=registry.url, repo_path=PRIVATE),
        task("private mirror", registry_mirrors={"docker.io": [{"url": registry.url, "repo_path": PRIVATE}]}),
    ])
    assert run.rc == 0, run.stdout + run.stderr
    public = run.task_results("public")
    assert public.get("failed", False) is False, public.get("msg")
    assert (public["status"], public["repo_path_status"]) == (200, 404)
    private = run.task_results("private")
    assert private["failed"] is True
    assert private["status"] == 401
    v2 = f"{registry.url}/v2/"
    assert private["msg"].startswith(
        f"the mirror requires credentials for repo_path '{PRIVATE}': {v2}{PRIVATE}/kubenode-preflight-probe/tags/list "
        "answered HTTP 401")
    assert "set username and password" in private["msg"]
    mirror = run.task_results("private mirror")
    assert mirror["failed"] is True
    assert f"{MIRROR_FIELD}: the mirror requires credentials for {MIRROR_FIELD}.repo_path '{PRIVATE}'" in mirror["msg"]
    assert f"set {MIRROR_FIELD}.username and {MIRROR_FIELD}.password" in mirror["msg"]
    # every token was asked anonymously, with GET, for the probe's scope (the challenge's none for /v2/)
    assert {entry["form"] for entry in tokens.log} == {"get-anonymous"}
    assert {(entry["service"], entry["scope"]) for entry in tokens.log} == {
        (fake.SERVICE, None), (fake.SERVICE, probe_scope(PUBLIC)), (fake.SERVICE, probe_scope(PRIVATE))}
    # the registry saw each request first without a token, then with one
    v2_auth = [r.header("Authorization") for r in registry.requests if r.path == "/v2/"]
    assert v2_auth == [None, "Bearer <redacted>"] * 3


@pytest.mark.parametrize("post_status", [None, 404])
def test_credentials_go_through_the_password_grant_then_get_with_basic(run_playbook, token_bed, post_status):
    tokens, _foreign, registry = token_bed
    tokens.post_status = post_status
    creds = {"username": ROBOT, "password": "{{ mirror_password }}"}
    run = run_playbook([
        task("private", url=registry.url, repo_path=PRIVATE, **creds),
        task("private mirror", registry_mirrors={"docker.io": [dict(url=registry.url, repo_path=PRIVATE, **creds)]}),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    for name in ("private", "private mirror"):
        outcome = run.task_results(name)
        assert outcome.get("failed", False) is False, (name, outcome.get("msg"))
    assert run.task_results("private")["repo_path_status"] == 404
    assert run.task_results("private mirror")["mirrors"][0]["repo_path_status"] == 404
    posts = [entry for entry in tokens.log if entry["method"] == "POST"]
    gets = [entry for entry in tokens.log if entry["method"] == "GET"]
    # /v2/ and the probe, for each of the two tasks: the POST password grant first, as containerd's client
    assert [(p["form"], p["username"], p["client_id"], p["service"]) for p in posts] == [
        ("post-password", ROBOT, "containerd-client", fake.SERVICE)] * 4
    assert [p["scope"] for p in posts] == [None, probe_scope(PRIVATE)] * 2
    if post_status is None:
        assert gets == []
    else:  # a 404 to the POST: GET with Basic, as containerd falls back
        assert [(g["form"], g["username"], g["scope"]) for g in gets] == [
            ("get-basic", ROBOT, None), ("get-basic", ROBOT, probe_scope(PRIVATE))] * 2
    assert_no_secret(run, tokens.tokens)


@pytest.mark.parametrize("post_status", [None, 404])
def test_a_wrong_password_fails_naming_the_setting(run_playbook, token_bed, post_status):
    tokens, _foreign, registry = token_bed
    tokens.post_status = post_status
    wrong = {"username": ROBOT, "password": "{{ wrong_password }}"}
    run = run_playbook([
        task("pmk mirror", url=registry.url, repo_path=PRIVATE, **wrong),
        task("mirror", registry_mirrors={"docker.io": [dict(url=registry.url, repo_path=PRIVATE, **wrong)]}),
    ], extra_vars={"wrong_password": PASSWORD + "-not"})
    assert run.rc == 0, run.stdout + run.stderr
    pmk = run.task_results("pmk mirror")
    assert pmk["failed"] is True
    assert pmk["status"] == 401
    assert f"the token service at {tokens.realm} (for the mirror at {registry.url}/v2/) rejected the credentials " \
           f"for user '{ROBOT}' (HTTP 401" in pmk["msg"]
    assert "check username and password (containerd_mirror_username and containerd_mirror_password" in pmk["msg"]
    mirror = run.task_results("mirror")
    assert mirror["failed"] is True
    assert f"{MIRROR_FIELD}: the token service at {tokens.realm}" in mirror["msg"]
    assert f"check {MIRROR_FIELD}.username and {MIRROR_FIELD}.password" in mirror["msg"]
    # the POST's 401 (or 404) leads to GET with Basic, as containerd; /v2/ fails, so the probe is not asked
    assert [(entry["method"], entry["form"]) for entry in tokens.log] == [
        ("POST", "post-password"), ("GET", "get-basic")] * 2
    assert PASSWORD + "-not" not in run.stdout + run.stderr
    assert_no_secret(run, tokens.tokens)


def test_a_realm_on_another_host_is_refused_before_any_request(run_playbook, token_bed):
    tokens, foreign, registry = token_bed
    registry.realm = foreign.realm
    creds = {"username": ROBOT, "password": "{{ mirror_password }}"}
    run = run_playbook([
        task("with credentials", url=registry.url, repo_path=PRIVATE, **creds),
        task("anonymous", url=registry.url, repo_path=PUBLIC),
        task("mirror", registry_mirrors={"docker.io": [dict(url=registry.url, repo_path=PRIVATE, **creds)]}),
        task("another host listed", url=registry.url, repo_path=PUBLIC, token_realms=["10.0.0.9", "127.0.0.2:1"]),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    for name in ("with credentials", "anonymous", "another host listed"):
        outcome = run.task_results(name)
        assert outcome["failed"] is True, name
        assert f"the mirror names the token realm {foreign.realm}, on another host than the mirror (127.0.0.1)" \
            in outcome["msg"], (name, outcome["msg"])
        assert "list 127.0.0.2 in token_realms (containerd_mirror_token_realms in the containerd_mirror role)" \
            in outcome["msg"], name
        assert outcome["status"] == 401
    mirror = run.task_results("mirror")["msg"]
    assert f"{MIRROR_FIELD}: the mirror names the token realm {foreign.realm}" in mirror
    assert f"list 127.0.0.2 in {MIRROR_FIELD}.token_realms" in mirror
    assert foreign.requests == []  # not even an anonymous request
    assert tokens.requests == []
    assert_no_secret(run)


def test_token_realms_allow_a_realm_on_another_host(run_playbook, token_bed):
    tokens, foreign, registry = token_bed
    registry.realm = foreign.realm
    creds = {"username": ROBOT, "password": "{{ mirror_password }}"}
    run = run_playbook([
        task("pmk mirror", url=registry.url, repo_path=PRIVATE, token_realms=["127.0.0.2"], **creds),
        task("by host:port", url=registry.url, repo_path=PUBLIC, token_realms=[f"127.0.0.2:{foreign.port}"]),
        task("mirror", registry_mirrors={"docker.io": [dict(url=registry.url, repo_path=PRIVATE,
                                                            token_realms=["127.0.0.2"], **creds)]}),
        task("bad entry", url=registry.url, token_realms=["https://127.0.0.2"]),
        task("bad mirror entry", registry_mirrors={"docker.io": [dict(url=registry.url, token_realms="127.0.0.2")]}),
    ], extra_vars={"mirror_password": PASSWORD})
    assert run.rc == 0, run.stdout + run.stderr
    for name in ("pmk mirror", "by host:port", "mirror"):
        outcome = run.task_results(name)
        assert outcome.get("failed", False) is False, (name, outcome.get("msg"))
    assert {(entry["method"], entry["username"]) for entry in foreign.log} == {("POST", ROBOT), ("GET", None)}
    assert tokens.requests == []
    assert "token_realms[0]: 'https://127.0.0.2' is not a valid registry host[:port]" in \
        run.task_results("bad entry")["msg"]
    assert f"{MIRROR_FIELD}.token_realms: must be a list" in run.task_results("bad mirror entry")["msg"]
    assert_no_secret(run, foreign.tokens)


def test_a_basic_challenge_keeps_todays_behaviour(run_playbook, token_bed, pki):
    """A 401 with a Basic challenge is judged as before: no token is asked for anywhere."""
    from fakes import tls_registry

    tokens, _foreign, _registry = token_bed
    with tls_registry.TlsRegistry(pki, users={ROBOT: PASSWORD}) as basic:
        run = run_playbook([task("anonymous", url=basic.url, ca_file=str(pki.ca))])
    outcome = run.task_results("anonymous")
    assert outcome["failed"] is True
    assert outcome["msg"].startswith("the mirror requires credentials:")
    assert [r.path for r in basic.requests] == ["/v2/"]
    assert tokens.requests == []


@pytest.mark.parametrize("verbosity", [0, 3])
def test_no_secret_in_the_output(run_playbook, token_bed, verbosity):
    """At -vvv too, even from servers that repeat what they got (the token, the Basic header, the password)."""
    tokens, _foreign, registry = token_bed
    tokens.echo = registry.echo = True
    creds = {"username": ROBOT, "password": "{{ mirror_password }}"}
    tasks = [
        task("ok", url=registry.url, repo_path=PRIVATE, **creds),
        task("mirror", registry_mirrors={"docker.io": [dict(url=registry.url, repo_path=PRIVATE, **creds)]}),
        task("public token, private project", url=registry.url, repo_path=PRIVATE),
        task("wrong password", url=registry.url, username=ROBOT, password="{{ mirror_password }}-x"),
        task("wrong password, task var", url=registry.url, username=ROBOT, password="{{ other_password }}"),
    ]
    tasks[-1]["vars"] = {"other_password": PASSWORD + "-y"}
    for json_output in (False, True):
        run = run_playbook(tasks, extra_vars={"mirror_password": PASSWORD}, verbosity=verbosity,
                           json_output=json_output)
        assert run.rc == 0, run.stdout + run.stderr
        assert "rejected the credentials" in run.stdout
        assert "(got ********)" in run.stdout  # the echoes were there, masked
        assert_no_secret(run, tokens.tokens)
        for echoed in (PASSWORD + "-x", PASSWORD + "-y"):
            assert echoed not in run.stdout + run.stderr
        if json_output:
            assert json.dumps(PASSWORD)[1:-1] not in run.stdout
    assert len(tokens.tokens) >= 8


def test_the_role_passes_containerd_mirror_token_realms(run_playbook, token_bed, tmp_path):
    """The role's preflight step takes containerd_mirror_token_realms: without it the foreign realm fails the run,
    naming the variable, before anything is written; with it the run goes on."""
    from playbook_runner import write_config_reading

    tokens, foreign, registry = token_bed
    registry.realm = foreign.realm
    certs_d = tmp_path / "certs.d"
    settings = {
        "containerd_mirror_url": registry.url,
        "containerd_mirror_repo_path": PRIVATE,
        "containerd_mirror_username": ROBOT,
        "containerd_mirror_password": PASSWORD,
        "containerd_mirror_config_path": str(certs_d),
        "containerd_mirror_containerd_config": str(write_config_reading(tmp_path / "config.toml", certs_d)),
        "containerd_mirror_restart_strategy": "none",
        "containerd_mirror_manage_config": False,
        "containerd_mirror_verify_image": "",
    }
    play = [{"hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "kubenode.registry_mirror.containerd_mirror"}]}]
    refused = run_playbook(play, extra_vars=settings)
    assert refused.rc != 0
    assert "list 127.0.0.2 in token_realms (containerd_mirror_token_realms in the containerd_mirror role)" \
        in refused.stdout
    assert not certs_d.exists()
    assert foreign.requests == []
    # with this machine's containerd, which the role reads config.toml with (and the sandbox image: its manifest is
    # not on the mirror, a warning, since containerd may go on to the registry itself)
    allowed = run_playbook(play, extra_vars=dict(settings, containerd_mirror_token_realms=["127.0.0.2"]), check=True,
                           env={"PATH": os.environ["PATH"]})
    assert allowed.rc == 0, allowed.stdout + allowed.stderr
    posts = [(entry["method"], entry["username"]) for entry in foreign.log]
    assert len(posts) >= 2  # /v2/ and the repo_path probe, at least
    assert set(posts) == {("POST", ROBOT)}
    assert_no_secret(refused, foreign.tokens)
    assert_no_secret(allowed, foreign.tokens)
    assert tokens.requests == []
