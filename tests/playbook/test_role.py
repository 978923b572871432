"""The containerd_mirror role and configure-mirror.yml on localhost (no agents: restart_strategy none)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from fakes import tls_registry as fake
from fakes.containerd_2x import Containerd2x
from fakes.qbert_server import QbertServer
from playbook_runner import write_config_reading

from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import render_hosts_files

# How registry_preflight names the pin of the PMK mirror's CA (the role's variable too).
ROLE_PIN = "ca_sha256 (containerd_mirror_ca_sha256 in the containerd_mirror role)"

ROOT = Path(__file__).resolve().parents[2]
SEED_FILES = yaml.safe_load((ROOT / "tests" / "unit" / "fixtures" / "seed-hosts.yml").read_text())
REPORT = "Record what happened on this node"


def role_vars(tmp_path, **overrides):
    settings = {
        "containerd_mirror_url": "https://10.101.101.100:443",
        "containerd_mirror_repo_path": "infra/k8s",
        "containerd_mirror_config_path": str(tmp_path / "certs.d"),
        "containerd_mirror_containerd_config": str(tmp_path / "config.toml"),
        "containerd_mirror_restart_strategy": "none",
        "containerd_mirror_preflight": False,
        "containerd_mirror_manage_config": False,
        "containerd_mirror_verify_image": "",  # no containerd runs here to pull through
    }
    settings.update(overrides)
    if not settings["containerd_mirror_manage_config"] and not (tmp_path / "config.toml").exists():
        # not managed: the role checks that containerd would read certs.d (containerd config dump)
        write_config_reading(tmp_path / "config.toml", tmp_path / "certs.d")
    return settings


def role_play(settings):
    return [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars": settings,
        "roles": [{"role": "kubenode.registry_mirror.containerd_mirror"}],
    }]


def tree(path):
    path = Path(path)
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_applies_then_changes_nothing(run_playbook, tmp_path):
    settings = role_vars(tmp_path)
    first = run_playbook(role_play(settings))
    assert first.rc == 0, first.stdout
    report = first.task_results(REPORT)["ansible_facts"]["containerd_mirror_report"]
    assert report == {
        "state": "present",
        "changed": ["certs.d"],
        "migrated": [],
        "restarted": "none",
        "health_wait": None,
        "recovered": None,
        "verified": [],
        "verified_with": "none",
        "summary": "changed: certs.d; legacy mirrors migrated: none; restarted: none; pulled: nothing",
    }
    second = run_playbook(role_play(settings))
    assert second.stats["localhost"]["changed"] == 0
    assert second.task_results(REPORT)["ansible_facts"]["containerd_mirror_report"]["changed"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"containerd_mirror_url": ""},
         "containerd_mirror_url or containerd_mirror_registry_mirrors is required when containerd_mirror_state is "
         "present"),
        ({"containerd_mirror_registry_mirrors": {"docker.io": [{"url": "https://h.example", "client_cert": "/c"}]}},
         'containerd_mirror_registry_mirrors[\\"docker.io\\"][0].client_key'),  # as JSON spells it
        ({"containerd_mirror_username": "u"}, "must be given together"),
        ({"containerd_mirror_url": "ftp://mirror"}, "url: scheme 'ftp' is not supported"),
        ({"containerd_mirror_repo_path": "a//b"}, "repo_path: 'a//b' has an empty path segment"),
        ({"containerd_mirror_registries": ["docker.io", "a/b"]}, "registries[1]"),
        ({"containerd_mirror_self_signed_certs": True}, "containerd_mirror_cert_path is required"),
        ({"containerd_mirror_self_signed_certs": True, "containerd_mirror_cert_path": "ca.crt"},
         "must be an http(s) URL or an absolute path"),
        ({"containerd_mirror_self_signed_certs": True, "containerd_mirror_cert_path": "http://x/ca.crt",
          "containerd_mirror_ca_content": "x"}, "need containerd_mirror_self_signed_certs and a node path"),
        ({"containerd_mirror_ca_src": "/nonexistent/ca.crt"}, "is not a file on the controller"),
        ({"containerd_mirror_restart_strategy": "reboot"}, "containerd_mirror_restart_strategy"),
        ({"containerd_mirror_preflight": "sometimes"}, "containerd_mirror_preflight"),
        ({"containerd_mirror_config_path": "~/certs.d"},
         "containerd_mirror_config_path: '~/certs.d' must be an absolute"),
        ({"containerd_mirror_containerd_config": "config.toml"},
         "containerd_mirror_containerd_config: 'config.toml' must be an absolute"),
        ({"containerd_mirror_nodeletd": "$HOME/nodeletd"},
         "containerd_mirror_nodeletd: '$HOME/nodeletd' must be an absolute"),
        ({"containerd_mirror_self_signed_certs": True, "containerd_mirror_cert_path": "/reg-ca.crt",
          "containerd_mirror_ca_sha256": "AB:CD"},
         "containerd_mirror_ca_sha256: 'AB:CD' is not a SHA-256 fingerprint"),
        ({"containerd_mirror_ca_sha256": ["ab" * 32]},
         "containerd_mirror_ca_sha256: pins the CA of containerd_mirror_cert_path: it needs "
         "containerd_mirror_self_signed_certs"),
        ({"containerd_mirror_self_signed_certs": True, "containerd_mirror_cert_path": "/reg-ca.crt",
          "containerd_mirror_ca_content": "{{ lookup('ansible.builtin.file', ca_pem) }}",
          "containerd_mirror_ca_sha256": "ab" * 32},
         "containerd_mirror_ca_sha256: containerd_mirror_ca_content is not the pinned CA: expected the SHA-256 "
         "fingerprint " + ":".join(["AB"] * 32) + ", got "),
        # checked on the controller even where no preflight would read it
        ({"containerd_mirror_token_realms": ["https://auth.example/token"]},
         "containerd_mirror_token_realms[0]: 'https://auth.example/token' is not a valid registry host[:port]"),
        ({"containerd_mirror_registry_mirrors": {"docker.io": [{
            "url": "https://h.example", "ca_content": "{{ lookup('ansible.builtin.file', ca_pem) }}",
            "ca_sha256": "ab" * 32}]}},
         'containerd_mirror_registry_mirrors[\\"docker.io\\"][0].ca_sha256: containerd_mirror_registry_mirrors'
         '[\\"docker.io\\"][0].ca_content is not the pinned CA: expected the SHA-256 fingerprint '
         + ":".join(["AB"] * 32) + ", got "),
    ],
)
def test_bad_settings_fail_clearly_and_touch_nothing(run_playbook, tmp_path, pki, overrides, message):
    run = run_playbook(role_play(role_vars(tmp_path, **overrides, ca_pem=str(pki.ca))))
    assert run.rc != 0
    assert message in run.stdout
    assert not (tmp_path / "certs.d").exists()


HARBOR_DOCKER_IO = """# Managed by kubenode.registry_mirror; local changes are overwritten.
[host."https://harbor.example/v2/dockerhub-proxy"]
capabilities = [
    "pull",
    "resolve",
]
override_path = true
"""


def test_registry_mirrors_serve_their_registries_and_dropping_them_restores_the_seed_files(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    harbor = {"docker.io": [{"url": "https://harbor.example", "repo_path": "dockerhub-proxy"}],
              "ghcr.io": [{"url": "https://harbor.example", "repo_path": "ghcr-proxy"}]}
    settings = role_vars(tmp_path, containerd_mirror_registry_mirrors=harbor)
    first = run_playbook(role_play(settings))
    assert first.rc == 0, first.stdout
    assert first.task_results(REPORT)["ansible_facts"]["containerd_mirror_report"]["changed"] == ["certs.d"]
    written = tree(certs)
    assert written["docker.io/hosts.toml"].decode() == HARBOR_DOCKER_IO
    assert tomllib.loads(written["ghcr.io/hosts.toml"].decode())["host"] == {
        "https://harbor.example/v2/ghcr-proxy": {"capabilities": ["pull", "resolve"], "override_path": True}}
    assert list(tomllib.loads(written["quay.io/hosts.toml"].decode())["host"])[0] == (
        "https://10.101.101.100:443/v2/infra/k8s")  # the PMK mirror keeps serving the rest
    assert run_playbook(role_play(settings)).stats["localhost"]["changed"] == 0

    dropped = run_playbook(role_play(role_vars(tmp_path)))
    assert dropped.rc == 0, dropped.stdout
    assert dropped.task_results(REPORT)["ansible_facts"]["containerd_mirror_report"]["changed"] == ["certs.d"]
    seed = render_hosts_files(url="https://10.101.101.100:443", repo_path="infra/k8s")
    assert tree(certs) == {f"{directory}/hosts.toml": text.encode() for directory, text in seed}  # ghcr.io gone


def test_playbook_takes_a_pmk_cluster_api_body(run_playbook, tmp_path):
    body = {
        "customRegistryUrl": "https://10.101.101.100:443",
        "customRegistryPath": "infra/k8s",  # the seed's other spelling
        "customRegistryUsername": "wXubham",
        "customRegistryPassword": "pf7$",
        "customRegistrySkipTls": "false",  # the upgrade example sends strings
        "customRegistrySelfSignedCerts": False,
    }
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps(body))
    options = role_vars(tmp_path)
    for name in ("containerd_mirror_url", "containerd_mirror_repo_path"):
        del options[name]
    run = run_playbook(None, "-e", f"@{cluster}", playbook=ROOT / "playbooks" / "configure-mirror.yml",
                       extra_vars=options)
    assert run.rc == 0, run.stdout
    assert "pf7$" not in run.stdout and "d1h1YmhhbTpwZjck" not in run.stdout
    for directory, text in SEED_FILES.items():
        written = tomllib.loads((tmp_path / "certs.d" / directory / "hosts.toml").read_text())
        expected = tomllib.loads(text)
        expected["host"]["https://10.101.101.100:443/v2/infra/k8s"].pop("ca")  # no self-signed CA here
        assert written == expected


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"customRegistrySkipTLS": True}, "customRegistrySkipTLS: is not a PMK registry field"),
        ({"customRegistrySelfSignedCerts": "sometimes"}, "customRegistrySelfSignedCerts: must be a boolean, got str"),
        ({"customRegistryUrl": "ftp://10.101.101.100"}, "customRegistryUrl: scheme 'ftp' is not supported"),
    ],
)
def test_playbook_names_a_bad_pmk_field_and_never_shows_the_password(run_playbook, tmp_path, field, message):
    body = {"customRegistryUrl": "https://10.101.101.100:443", "customRegistryUsername": "wXubham",
            "customRegistryPassword": "pf7$-secret", **field}
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps(body))
    options = role_vars(tmp_path)
    del options["containerd_mirror_url"]
    run = run_playbook(None, "-e", f"@{cluster}", playbook=ROOT / "playbooks" / "configure-mirror.yml",
                       extra_vars=options)
    assert run.rc != 0
    assert message in run.task_results("Check the PMK cluster API body")["msg"]
    assert "pf7$-secret" not in run.stdout + run.stderr
    assert not (tmp_path / "certs.d").exists()


def test_playbook_reads_no_pmk_body_without_customregistryurl(run_playbook, tmp_path):
    """As before from_pmk_cluster: without customRegistryUrl the role's variables are used, other fields unread."""
    options = dict(role_vars(tmp_path), customRegistryUsernam="misspelt", customRegistryRepoPath="other/path")
    run = run_playbook(None, playbook=ROOT / "playbooks" / "configure-mirror.yml", extra_vars=options)
    assert run.rc == 0, run.stdout
    written = tomllib.loads((tmp_path / "certs.d" / "docker.io" / "hosts.toml").read_text())
    assert list(written["host"])[0] == "https://10.101.101.100:443/v2/infra/k8s"


CONFIG_FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "containerd_config"
# What the PMK agent package ships (pmk-node-facts.md), as the test bed nodes have it.
STOCK_PMK_CONFIG = ROOT / "testbed" / "node" / "config.toml"


@pytest.mark.parametrize(
    ("fixture", "section"),
    [
        ("containerd-1.6-default.toml", ("plugins", "io.containerd.grpc.v1.cri", "registry")),
        ("v2-comments.toml", ("plugins", "io.containerd.grpc.v1.cri", "registry")),
        ("v3-comments.toml", ("plugins", "io.containerd.cri.v1.images", "registry")),
    ],
)
def test_containerd_reads_certs_d_and_the_rest_of_its_config_stays(run_playbook, tmp_path, fixture, section):
    original = (CONFIG_FIXTURES / fixture).read_text()
    config = tmp_path / "config.toml"
    config.write_text(original)
    settings = role_vars(tmp_path, containerd_mirror_manage_config=True)
    # a version 3 file on a containerd 2.x node (faked): the host's 1.6 does not read one, so it is refused there
    env = Containerd2x(tmp_path / "bin", "2.2.0").environment if "io.containerd.cri.v1.images" in section else None
    first = run_playbook(role_play(settings), env=env)
    assert first.rc == 0, first.stdout
    assert first.task_results(REPORT)["ansible_facts"]["containerd_mirror_report"]["changed"] == [
        "certs.d", "config.toml"]
    edited = config.read_text()
    table = tomllib.loads(edited)
    for key in section:
        table = table[key]
    assert table["config_path"] == str(tmp_path / "certs.d")
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in edited.splitlines() if line.lstrip().startswith("#")] == comments
    assert run_playbook(role_play(settings), env=env).stats["localhost"]["changed"] == 0


def test_legacy_mirrors_are_refused_before_anything_is_written(run_playbook, tmp_path):
    original = (CONFIG_FIXTURES / "v2-legacy-mirrors.toml").read_bytes()
    config = tmp_path / "config.toml"
    config.write_bytes(original)
    settings = role_vars(tmp_path, containerd_mirror_manage_config=True, containerd_mirror_legacy_mirrors="refuse")
    run = run_playbook(role_play(settings))
    assert run.rc != 0
    assert "mirrors" in run.task_results("Make containerd read certs.d")["msg"]
    assert config.read_bytes() == original
    assert not (tmp_path / "certs.d").exists()


def test_stock_pmk_config_is_migrated_and_state_absent_gives_the_legacy_mirrors_back(run_playbook, tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes(STOCK_PMK_CONFIG.read_bytes())
    certs = tmp_path / "certs.d"
    settings = role_vars(tmp_path, containerd_mirror_manage_config=True)
    first = run_playbook(role_play(settings))
    assert first.rc == 0, first.stdout
    report = first.task_results(REPORT)["ansible_facts"]["containerd_mirror_report"]
    assert sorted(report["migrated"]) == ["docker.io", "platform9.io"]
    assert report["changed"] == ["certs.d", "config.toml"]
    assert "legacy mirrors migrated: " in report["summary"]
    data = tomllib.loads(config.read_text())
    registry = data["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry == {"config_path": str(certs)}
    assert len(list(tmp_path.glob("config.toml.*~"))) == 1  # the backup
    # Ours serve docker.io and platform9.io; the migrated files are kept aside for state=absent.
    migrated = {}
    for registry_name in ("docker.io", "platform9.io"):
        ours = tomllib.loads((certs / registry_name / "hosts.toml").read_text())
        assert list(ours["host"]) == list(tomllib.loads(SEED_FILES[registry_name])["host"])
        migrated[registry_name] = (certs / registry_name / "hosts.toml.before-kubenode").read_bytes()
    assert tomllib.loads(migrated["docker.io"].decode())["host"] == {
        "https://dockermirror.platform9.io": {"capabilities": ["pull", "resolve"]},
        "https://registry-1.docker.io": {"capabilities": ["pull", "resolve"]},
    }
    assert run_playbook(role_play(settings)).stats["localhost"]["changed"] == 0

    removed = run_playbook(role_play(dict(settings, containerd_mirror_state="absent")))
    assert removed.rc == 0, removed.stdout
    assert tree(certs) == {f"{name}/hosts.toml": text for name, text in migrated.items()}


def test_pmk_upgrade_leaves_the_nodes_to_pmk(run_playbook, tmp_path):
    playbook = ROOT / "playbooks" / "configure-mirror.yml"
    run = run_playbook(None, playbook=playbook, extra_vars=dict(role_vars(tmp_path), pmk_operation="upgrade"),
                       json_output=False)
    assert run.rc == 0, run.stdout
    assert "PMK applies these settings on each node during its upgrade" in run.stdout
    assert not (tmp_path / "certs.d").exists()


def test_playbook_sets_the_pmk_cluster_object_before_the_nodes(run_playbook, tmp_path):
    body = {"customRegistryUrl": "https://10.101.101.100:443", "customRegistryRepoPath": "infra/k8s",
            "customRegistryUsername": "wXubham", "customRegistryPassword": "pf7$"}
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps(body))
    options = role_vars(tmp_path)
    del options["containerd_mirror_url"], options["containerd_mirror_repo_path"]
    with QbertServer(token="t0ken-SECRET") as qbert:
        qbert.add_cluster("project", "cluster")
        options.update(pmk_api_url=qbert.url, pmk_project_id="project", pmk_cluster_uuid="cluster",
                       pmk_auth_token="t0ken-SECRET")
        playbook = ROOT / "playbooks" / "configure-mirror.yml"
        first = run_playbook(None, "-e", f"@{cluster}", playbook=playbook, extra_vars=options)
        assert first.rc == 0, first.stdout
        put = qbert.writes()
        assert [request.method for request in put] == ["PUT"]
        assert {key: put[0].body[key] for key in body} == body
        second = run_playbook(None, "-e", f"@{cluster}", playbook=playbook, extra_vars=options)
        assert second.rc == 0 and len(qbert.writes()) == 1  # nothing changed: only read
    for run in (first, second):
        for secret in ("t0ken-SECRET", "pf7$"):
            assert secret not in run.stdout + run.stderr
    assert (tmp_path / "certs.d" / "docker.io" / "hosts.toml").is_file()


def test_a_boolean_given_as_a_string_is_read_as_the_boolean(run_playbook, tmp_path):
    """-e containerd_mirror_manage_config=false arrives as the string 'false': config.toml is then only checked."""
    original = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ""\n'
    (tmp_path / "config.toml").write_text(original)
    settings = role_vars(tmp_path, containerd_mirror_manage_config="false")
    run = run_playbook(role_play(settings))
    assert run.rc != 0
    assert "kubelet's pulls would not use the mirror" in run.stdout + run.stderr
    assert (tmp_path / "config.toml").read_text() == original
    assert not (tmp_path / "certs.d").exists()


# --- a pinned CA: a wrong pin stops the node before anything changes or restarts ---------------------------------

_MODULE_RUN = re.compile(r"EXEC /bin/sh -c '\S*python\S* \S+/AnsiballZ_(\w+)\.py")
STOCK_PMK_CONFIG = ROOT / "testbed" / "node" / "config.toml"


def _fingerprint(pem_path):
    line = fake.openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", pem_path, cwd=pem_path.parent).strip()
    return line.partition("=")[2]


def test_a_pinned_ca_url_passes_and_a_wrong_pin_changes_and_restarts_nothing(run_playbook, tmp_path, pki):
    node = tmp_path / "node"
    node.mkdir()
    config = node / "config.toml"
    config.write_bytes(STOCK_PMK_CONFIG.read_bytes())  # stock PMK: the role would migrate it, then restart
    marker = node / "restart-pending"
    right, wrong = _fingerprint(pki.ca), _fingerprint(pki.other_ca)
    with fake.TlsRegistry(pki) as registry, fake.FileServer({"ca.pem": pki.ca.read_bytes()}) as files:
        settings = {  # the seed's: a CA from a plain http URL, config.toml managed, PMK restarts, preflight on
            "containerd_mirror_url": registry.url,
            "containerd_mirror_self_signed_certs": True,
            "containerd_mirror_cert_path": f"{files.url}/ca.pem",
            "containerd_mirror_config_path": str(node / "certs.d"),
            "containerd_mirror_containerd_config": str(config),
            "containerd_mirror_restart_strategy": "pmk",
            "containerd_mirror_preflight": True,
            "containerd_mirror_manage_config": True,
            "containerd_mirror_verify_image": "",
            "_containerd_mirror_restart_marker": str(marker),
        }
        before = tree(node)
        failed = run_playbook(role_play({}), extra_vars=dict(settings, containerd_mirror_ca_sha256=[wrong]),
                              json_output=False, verbosity=3)
        assert failed.rc != 0
        # the preflight, the first module run, fails; nothing after it runs: no write, no restart
        assert _MODULE_RUN.findall(failed.stdout) == ["registry_preflight"]
        assert tree(node) == before and not marker.exists()
        assert registry.requests == []  # nor is the mirror called with that CA
        assert (f"{ROLE_PIN}: ca_url: {files.url}/ca.pem is not the pinned CA: expected the SHA-256 fingerprint "
                f"{wrong}, got {right}") in failed.stdout

        # the right pin (no restart here: a real one would run Platform9's sequence on this machine)
        settings["containerd_mirror_restart_strategy"] = "none"
        passed = run_playbook(role_play({}), extra_vars=dict(settings, containerd_mirror_ca_sha256=right),
                              json_output=False)
        assert passed.rc == 0, passed.stdout[-3000:]
        assert "plain http" not in passed.stdout
        assert (node / "certs.d" / registry.url.split("://")[1] / "ca.crt").read_bytes() == pki.ca.read_bytes()

        unpinned = run_playbook(role_play({}), extra_vars=settings, json_output=False)
    assert unpinned.rc == 0, unpinned.stdout[-3000:]
    warning = " ".join((unpinned.stdout + unpinned.stderr).split())  # as printed, its lines joined
    assert f"ca_url: the CA is fetched over plain http from {files.url}/ca.pem: anyone on the path" in warning
    assert f"set {ROLE_PIN} to the CA's SHA-256 fingerprint" in warning


def test_the_role_keeps_each_mirrors_credentials_in_config_toml_for_containerd_1x(run_playbook, tmp_path):
    """Issue 24, item 2: the PMK mirror's and each registry_mirrors mirror's credentials reach config.toml."""
    config = tmp_path / "config.toml"
    config.write_text((CONFIG_FIXTURES / "containerd-1.6-default.toml").read_text())
    config.chmod(0o644)
    harbor = {"url": "https://harbor.example:8443", "repo_path": "quay-proxy", "username": "robot$quay",
              "password": "Harbor-Pw-8812"}
    settings = role_vars(
        tmp_path, containerd_mirror_manage_config=True, containerd_mirror_username="pmk",
        containerd_mirror_password="Pmk-Pw-5521",
        containerd_mirror_registry_mirrors={"quay.io": [harbor, {"url": "https://open.example"}]},
    )
    first = run_playbook(role_play(settings))
    assert first.rc == 0, first.stdout
    configs = tomllib.loads(config.read_text())["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]
    assert {host: tables["auth"] for host, tables in configs.items()} == {
        "10.101.101.100:443": {"username": "pmk", "password": "Pmk-Pw-5521"},
        "harbor.example:8443": {"username": "robot$quay", "password": "Harbor-Pw-8812"},
    }
    assert config.stat().st_mode & 0o777 == 0o600
    assert "Pmk-Pw-5521" not in first.stdout + first.stderr and "Harbor-Pw-8812" not in first.stdout + first.stderr
    assert run_playbook(role_play(settings)).stats["localhost"]["changed"] == 0
    # the Harbor mirror dropped: its credentials go with it, the PMK mirror's stay
    dropped = run_playbook(role_play(dict(settings, containerd_mirror_registry_mirrors={})))
    assert dropped.rc == 0, dropped.stdout
    configs = tomllib.loads(config.read_text())["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]
    assert list(configs) == ["10.101.101.100:443"]
    # state=absent: the credentials go, config_path stays (the restored certs.d files are read through it)
    absent = dict(settings, containerd_mirror_state="absent")
    removed = run_playbook(role_play(absent))
    assert removed.rc == 0, removed.stdout
    registry = tomllib.loads(config.read_text())["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert not registry["configs"] and registry["config_path"] == settings["containerd_mirror_config_path"]
    assert "Pmk-Pw-5521" not in removed.stdout + removed.stderr
    assert run_playbook(role_play(absent)).stats["localhost"]["changed"] == 0
