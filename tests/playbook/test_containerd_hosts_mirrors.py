"""containerd_hosts with registry_mirrors (issue 12), run for real through ansible-playbook: a mirror per registry,
mirrors in order, upstream_fallback, the wildcard, mTLS (node paths, or PEM text written beside hosts.toml),
dial_timeout per containerd version, stale files."""

from __future__ import annotations

import base64
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    KEPT_ASIDE_RECORD,
    KEPT_ASIDE_SUFFIX,
    MIGRATED_MARKER_PREFIX,
)

TASK = "write certs.d"
PASSWORD = "h4rb0r-pässwörd"
AUTH = "Basic " + base64.b64encode(f"robot$quay:{PASSWORD}".encode()).decode()
SITE_AUTH = "Basic " + base64.b64encode(f"node:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, AUTH.split()[1], SITE_AUTH.split()[1])
HARBOR = "https://harbor.example"
MARKER_LINE = "# Managed by kubenode.registry_mirror; local changes are overwritten.\n"
PULL_RESOLVE = 'capabilities = [\n    "pull",\n    "resolve",\n]\n'


def mirrors_task(config_path, **options):
    args = dict(config_path=str(config_path), **options)
    return {"name": TASK, "kubenode.registry_mirror.containerd_hosts": args, "register": "result"}


def snapshot(config_path):
    """Every file (bytes and mode) and directory (mode) under config_path, to prove what changed."""
    root = Path(config_path)
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, stat.S_IMODE(p.lstat().st_mode))
        for p in sorted(root.rglob("*"))
    }


def files_of(config_path):
    return {str(p.relative_to(config_path)): p.read_text() for p in sorted(Path(config_path).rglob("hosts.toml"))}


def statuses(result):
    return {f["registry"]: f["status"] for f in result["files"]}


def place(config_path, registry, data, mode=0o640):
    path = Path(config_path) / registry / "hosts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


# --- Harbor proxy-cache projects, one per upstream registry ----------------------------------------------------

HARBOR_MIRRORS = {
    "docker.io": [{"url": HARBOR, "repo_path": "dockerhub-proxy"}],
    "quay.io": [{"url": HARBOR, "repo_path": "quay-proxy", "username": "robot$quay", "password": PASSWORD}],
    "ghcr.io": {"mirrors": [{"url": HARBOR, "repo_path": "ghcr-proxy"}], "upstream_fallback": False},
}
HARBOR_FILES = {
    "docker.io/hosts.toml": MARKER_LINE + f"""[host."{HARBOR}/v2/dockerhub-proxy"]
{PULL_RESOLVE}override_path = true
""",
    "quay.io/hosts.toml": MARKER_LINE + f"""[host."{HARBOR}/v2/quay-proxy"]
{PULL_RESOLVE}override_path = true

[host."{HARBOR}/v2/quay-proxy".header]
authorization = "{AUTH}"
""",
    # upstream_fallback false: the first mirror is the server too, so containerd's last try is not ghcr.io
    "ghcr.io/hosts.toml": MARKER_LINE + f"""server = "{HARBOR}/v2/ghcr-proxy"
{PULL_RESOLVE}override_path = true

[host."{HARBOR}/v2/ghcr-proxy"]
{PULL_RESOLVE}override_path = true
""",
}


def test_harbor_projects_per_registry_written_once_then_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    task = mirrors_task(certs, registry_mirrors=HARBOR_MIRRORS)

    check = run_playbook([task], check=True, diff=True)
    assert check.rc == 0, check.stdout
    result = check.task_results(TASK)
    assert result["changed"] is True
    assert statuses(result) == {"docker.io": "created", "quay.io": "created", "ghcr.io": "created"}
    assert not certs.exists()

    first = run_playbook([task], diff=True, verbosity=3, json_output=False)
    assert first.rc == 0, first.stdout
    assert files_of(certs) == HARBOR_FILES  # no file for the PMK registries: there is no url
    assert {stat.S_IMODE(p.stat().st_mode) for p in certs.rglob("hosts.toml")} == {0o600}
    assert '+authorization = "******** (changed)"' in first.stdout  # the diff is there, masked

    again = run_playbook([task], diff=True)
    assert again.rc == 0, again.stdout
    result = again.task_results(TASK)
    assert result["changed"] is False
    assert set(statuses(result).values()) == {"unchanged"}
    shown = result["invocation"]["module_args"]["registry_mirrors"]
    assert shown["quay.io"][0] == dict(HARBOR_MIRRORS["quay.io"][0], password="VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    for run in (check, first, again):
        for secret in SECRETS:
            assert secret not in run.stdout + run.stderr


# --- air-gapped: fallback false, a wildcard, mTLS, dial_timeout per containerd version ------------------------

SITE_MIRRORS = {
    "docker.io": [
        {"url": "https://registry.site.internal:5443", "repo_path": "dockerhub-proxy", "username": "node",
         "password": PASSWORD, "ca_file": "/etc/pki/site/ca.crt", "client_cert": "/etc/pki/site/node.crt",
         "client_key": "/etc/pki/site/node.key", "dial_timeout": "3s"},
        {"url": "https://backup.site.internal:5000"},
    ],
    "*": {"mirrors": [{"url": "https://registry.site.internal:5443", "repo_path": "all-upstreams"}],
          "repo_path_for_all": True},
}
SITE = "https://registry.site.internal:5443"
SITE_TLS = """ca = "/etc/pki/site/ca.crt"
client = [
    [
        "/etc/pki/site/node.crt",
        "/etc/pki/site/node.key",
    ],
]
override_path = true
"""


def site_files(dial_timeout):
    timeout = 'dial_timeout = "3s"\n' if dial_timeout else ""
    return {
        "_default/hosts.toml": MARKER_LINE + f"""server = "{SITE}/v2/all-upstreams"
{PULL_RESOLVE}override_path = true

[host."{SITE}/v2/all-upstreams"]
{PULL_RESOLVE}override_path = true
""",
        "docker.io/hosts.toml": MARKER_LINE + f"""server = "{SITE}/v2/dockerhub-proxy"
{PULL_RESOLVE}{SITE_TLS}{timeout}
[header]
authorization = "{SITE_AUTH}"

[host."{SITE}/v2/dockerhub-proxy"]
{PULL_RESOLVE}{SITE_TLS}{timeout}
[host."{SITE}/v2/dockerhub-proxy".header]
authorization = "{SITE_AUTH}"

[host."https://backup.site.internal:5000"]
{PULL_RESOLVE}""",
    }


@pytest.mark.parametrize(
    ("containerd_version", "warning"),
    [
        ("2.1.4", None),
        ("v2.0.7", None),
        ("1.7.24~ds1-1", "containerd 1.7.24~ds1-1 does not read it (2.0.7 and later do)"),
        (None, "the containerd version is unknown, and releases before 2.0.7 do not read it"),
    ],
)
def test_air_gapped_mtls_and_a_wildcard_with_dial_timeout_where_containerd_reads_it(
    run_playbook, tmp_path, containerd_version, warning
):
    certs = tmp_path / "certs.d"
    options = {"registry_mirrors": SITE_MIRRORS, "upstream_fallback": False}
    if containerd_version:
        options["containerd_version"] = containerd_version
    run = run_playbook([mirrors_task(certs, **options)], diff=True)
    assert run.rc == 0, run.stdout
    result = run.task_results(TASK)
    assert files_of(certs) == site_files(dial_timeout=warning is None)
    ours = [w for w in result.get("warnings", []) if "dial_timeout" in w]
    if warning is None:
        assert not ours
    else:
        assert ours == [f'registry_mirrors["docker.io"][0].dial_timeout: left out of hosts.toml: {warning}']
    diff = "".join(entry["after"] for entry in result["diff"])
    assert "\n[header]\nauthorization = \"******** (changed)\"" in diff  # the root header too
    for secret in SECRETS:
        assert secret not in run.stdout + run.stderr


# --- stale files: a registry dropped from the settings ---------------------------------------------------------

FOREIGN = b'server = "https://quay.io"\n# the operator\'s own\n'
MIGRATED = f'{MIGRATED_MARKER_PREFIX}myreg:5000\nserver = "https://myreg:5000"\n'.encode()


def test_files_of_a_dropped_registry_are_removed_and_no_other(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    quay = place(certs, "quay.io", FOREIGN)  # adopted, then given back when quay.io is dropped
    place(certs, "ghcr.io", FOREIGN)  # never declared: never touched
    place(certs, "myreg:5000", MIGRATED, mode=0o644)
    (certs / "gcr.io").mkdir()
    (certs / "gcr.io" / "ca.crt").write_text("a CA the operator placed\n")
    all_three = dict(HARBOR_MIRRORS, **{"gcr.io": [{"url": HARBOR, "repo_path": "gcr-proxy", "username": "node",
                                                    "password": PASSWORD}]})
    del all_three["ghcr.io"]
    first = run_playbook([mirrors_task(certs, registry_mirrors=all_three)])
    assert statuses(first.task_results(TASK)) == {"docker.io": "created", "quay.io": "adopted", "gcr.io": "created"}
    applied = snapshot(certs)

    only_docker = {"docker.io": HARBOR_MIRRORS["docker.io"]}
    task = mirrors_task(certs, registry_mirrors=only_docker)
    check = run_playbook([task], check=True, diff=True)
    assert check.rc == 0, check.stdout
    assert check.task_results(TASK)["changed"] is True
    assert statuses(check.task_results(TASK)) == {"docker.io": "unchanged", "gcr.io": "removed", "quay.io": "restored"}
    assert snapshot(certs) == applied

    dropped = run_playbook([task], diff=True, verbosity=3, json_output=False)
    assert dropped.rc == 0, dropped.stdout
    assert f"--- before: {certs / 'gcr.io' / 'hosts.toml'}" in dropped.stdout  # the removal, in the diff
    assert '-authorization = "********"' in dropped.stdout
    assert files_of(certs) == {
        "docker.io/hosts.toml": HARBOR_FILES["docker.io/hosts.toml"],
        "ghcr.io/hosts.toml": FOREIGN.decode(),
        "myreg:5000/hosts.toml": MIGRATED.decode(),
        "quay.io/hosts.toml": FOREIGN.decode(),
    }
    assert stat.S_IMODE(quay.stat().st_mode) == 0o640 and not Path(f"{quay}{KEPT_ASIDE_SUFFIX}").exists()
    assert (certs / "gcr.io" / "ca.crt").exists()  # the directory stays for what else is in it

    again = run_playbook([task])
    result = again.task_results(TASK)
    assert result["changed"] is False
    assert statuses(result) == {"docker.io": "unchanged"}  # files not ours are not even listed

    absent = run_playbook([mirrors_task(certs, registry_mirrors=only_docker, registries=[], state="absent")])
    assert statuses(absent.task_results(TASK)) == {"docker.io": "removed"}
    assert sorted(files_of(certs)) == ["ghcr.io/hosts.toml", "myreg:5000/hosts.toml", "quay.io/hosts.toml"]
    for run in (first, check, dropped, again):
        for secret in SECRETS:
            assert secret not in run.stdout + run.stderr


# --- a * entry without upstream fallback: no other hosts.toml may route around it ---------------------------------

PLATFORM9 = f'{MIGRATED_MARKER_PREFIX}/etc/containerd/config.toml\nserver = "https://platform9.io"\n'.encode()


def test_a_wildcard_without_fallback_serves_every_other_directory_too(run_playbook, tmp_path):
    """containerd takes a registry's own directory over _default whenever it exists. A stock PMK node's migrated
    platform9.io file, an operator's own file, a file of ours from a registry since dropped, and a directory of
    certificates alone would each send their registry elsewhere than the mirrors of *: each directory gets
    _default's file, what we did not write kept aside (state=absent puts it back). With fallback allowed they
    stay where they are."""
    certs = tmp_path / "certs.d"
    platform9 = place(certs, "platform9.io", PLATFORM9, mode=0o644)
    own = place(certs, "myreg:5000", FOREIGN)
    (certs / "docker-style:5000").mkdir()
    (certs / "docker-style:5000" / "ca.crt").write_text("a CA the operator placed\n")
    run_playbook([mirrors_task(certs, registry_mirrors={"quay.io": HARBOR_MIRRORS["quay.io"]})])
    assert (certs / "quay.io" / "hosts.toml").read_text().startswith(MARKER_LINE)

    fallback = run_playbook([mirrors_task(certs, registry_mirrors={"*": SITE_MIRRORS["*"]})])
    assert statuses(fallback.task_results(TASK)) == {"_default": "created", "quay.io": "removed"}
    assert sorted(files_of(certs)) == ["_default/hosts.toml", "myreg:5000/hosts.toml", "platform9.io/hosts.toml"]

    place(certs, "quay.io", FOREIGN)
    sealed = mirrors_task(certs, registry_mirrors={"*": SITE_MIRRORS["*"]}, upstream_fallback=False)
    before = snapshot(certs)
    check = run_playbook([sealed], check=True, diff=True)
    assert check.rc == 0, check.stdout
    expected = {"_default": "updated", "docker-style:5000": "created", "myreg:5000": "adopted",
                "platform9.io": "adopted", "quay.io": "adopted"}
    assert statuses(check.task_results(TASK)) == expected
    assert snapshot(certs) == before

    args = sealed["kubenode.registry_mirror.containerd_hosts"]
    refused = run_playbook([dict(sealed, **{"kubenode.registry_mirror.containerd_hosts": dict(
        args, foreign_files="refuse")})])
    message = refused.task_results(TASK)["msg"]
    assert refused.rc != 0 and message.startswith("Nothing was written.")
    assert f"{own} was not written by kubenode.registry_mirror and foreign_files=refuse, and it would route " \
           "myreg:5000 around the mirrors of * without upstream fallback" in message
    assert "platform9.io" not in message  # a migrated file is adopted under both choices
    assert snapshot(certs) == before

    applied = run_playbook([sealed])
    result = applied.task_results(TASK)
    assert statuses(result) == expected
    default = (certs / "_default" / "hosts.toml").read_text()
    # each file that kept one aside records it (its hash), so that state=absent restores only what it kept
    records = {path: text for path, text in files_of(certs).items() if KEPT_ASIDE_RECORD in text}
    assert sorted(records) == ["myreg:5000/hosts.toml", "platform9.io/hosts.toml", "quay.io/hosts.toml"]
    assert {path: re.sub(f"^{re.escape(KEPT_ASIDE_RECORD)}[0-9a-f]{{64}}\n", "", text, flags=re.MULTILINE)
            for path, text in files_of(certs).items()} == {f"{d}/hosts.toml": default for d in expected}
    assert Path(f"{platform9}{KEPT_ASIDE_SUFFIX}").read_bytes() == PLATFORM9
    assert stat.S_IMODE(Path(f"{own}{KEPT_ASIDE_SUFFIX}").stat().st_mode) == 0o640
    assert (certs / "docker-style:5000" / "ca.crt").exists()

    again = run_playbook([sealed])
    assert again.task_results(TASK)["changed"] is False

    absent = run_playbook([dict(sealed, **{"kubenode.registry_mirror.containerd_hosts": dict(
        args, state="absent", registries=[])})])
    assert statuses(absent.task_results(TASK)) == {
        "_default": "removed", "docker-style:5000": "removed", "myreg:5000": "restored", "platform9.io": "restored",
        "quay.io": "restored"}
    assert files_of(certs) == {"myreg:5000/hosts.toml": FOREIGN.decode(), "platform9.io/hosts.toml": PLATFORM9.decode(),
                               "quay.io/hosts.toml": FOREIGN.decode()}


# --- bad input ---------------------------------------------------------------------------------------------------


def test_a_bad_entry_names_its_field_and_writes_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([mirrors_task(certs, registry_mirrors=HARBOR_MIRRORS)])
    before = snapshot(certs)
    bad = {"docker.io": [{"url": HARBOR, "client_cert": "/etc/pki/node.crt"}], "gcr.io": [{"url": HARBOR}]}
    for options, message in (
        ({"registry_mirrors": bad},
         'registry_mirrors["docker.io"][0].client_key: registry_mirrors["docker.io"][0].client_cert and '
         'registry_mirrors["docker.io"][0].client_key must be given together'),
        ({}, "url: url or registry_mirrors is required when state is present"),
    ):
        run = run_playbook([mirrors_task(certs, **options)])
        assert run.rc != 0
        result = run.task_results(TASK)
        assert result["failed"] is True
        assert result["msg"] == message
        assert snapshot(certs) == before


# --- the CA and the client pair as PEM text: written beside hosts.toml in the same run (issue 12) ---------------

SITE_HOST = "registry.site.internal:5443"
NO_LOG = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def tls_statuses(result):
    return {f"{f['registry']}/{f['name']}": f["status"] for f in result["tls_files"]}


def test_pem_texts_are_written_with_their_modes_masked_idempotent_and_removed(run_playbook, tmp_path, pki):
    certs = tmp_path / "certs.d"
    ca, cert, key = pki.ca.read_text(), pki.client.read_text(), pki.client_key.read_text()
    key_lines = key.splitlines()[1:-1]
    mtls = {"url": f"https://{SITE_HOST}", "repo_path": "dockerhub-proxy", "ca_content": ca,
            "client_cert_content": cert, "client_key_content": "{{ client_key }}"}
    mirrors = {"docker.io": [mtls], "quay.io": [dict(mtls, repo_path="quay-proxy")]}
    task = mirrors_task(certs, registry_mirrors=mirrors)
    extra = {"client_key": key}
    names = {f"{registry}/{SITE_HOST}{suffix}" for registry in ("docker.io", "quay.io")
             for suffix in (".ca.crt", ".client.cert", ".client.key")}

    def assert_no_key(run):
        output = run.stdout + run.stderr
        assert all(line not in output for line in key_lines)

    check = run_playbook([task], extra_vars=extra, check=True, diff=True)
    assert check.rc == 0, check.stdout
    result = check.task_results(TASK)
    assert result["changed"] is True and set(tls_statuses(result).values()) == {"created"}
    assert not certs.exists()

    first = run_playbook([task], extra_vars=extra, diff=True, verbosity=3, json_output=False)
    assert first.rc == 0, first.stdout
    written = {str(p.relative_to(certs)): p for p in certs.rglob("*") if p.is_file() and p.name != "hosts.toml"}
    assert set(written) == names
    for name, path in written.items():
        expected = {".ca.crt": (ca, 0o644), ".client.cert": (cert, 0o644), ".client.key": (key, 0o600)}
        text, mode = next(value for suffix, value in expected.items() if name.endswith(suffix))
        assert path.read_text() == MARKER_LINE + text, name
        assert stat.S_IMODE(path.stat().st_mode) == mode, name
        assert path.stat().st_uid == os.geteuid()  # the module's user: root on a node
    docker = tomllib.loads(files_of(certs)["docker.io/hosts.toml"])["host"][f"https://{SITE_HOST}/v2/dockerhub-proxy"]
    base = f"{certs}/docker.io/{SITE_HOST}"
    assert docker["ca"] == f"{base}.ca.crt"
    assert docker["client"] == [[f"{base}.client.cert", f"{base}.client.key"]]
    assert "+-----BEGIN CERTIFICATE-----" in first.stdout  # the certificates are public: shown in the diff
    assert f"+++ after: {base}.client.key\n@@ -0,0 +1 @@\n+******** (changed)" in first.stdout
    assert_no_key(first)
    assert_no_key(check)

    (certs / "docker.io" / f"{SITE_HOST}.client.key").chmod(0o644)  # someone loosened it
    again = run_playbook([task], extra_vars=extra, diff=True)
    result = again.task_results(TASK)
    assert result["changed"] is True
    assert tls_statuses(result)[f"docker.io/{SITE_HOST}.client.key"] == "updated"
    assert stat.S_IMODE((certs / "docker.io" / f"{SITE_HOST}.client.key").stat().st_mode) == 0o600
    shown = result["invocation"]["module_args"]["registry_mirrors"]["docker.io"][0]
    assert shown["client_key_content"] == NO_LOG and shown["client_cert_content"] == cert
    assert "diff" not in result or all("client.key" not in d["after_header"] for d in result["diff"])

    unchanged = run_playbook([task], extra_vars=extra)
    result = unchanged.task_results(TASK)
    assert result["changed"] is False and set(tls_statuses(result).values()) == {"unchanged"}

    # docker.io keeps its CA and drops the client pair; quay.io is dropped: its files go, ours only
    (certs / "quay.io" / "ca.crt").write_text("the operator's own\n")
    only_ca = {"docker.io": [dict(mtls, client_cert_content="", client_key_content="")]}
    dropped = run_playbook([mirrors_task(certs, registry_mirrors=only_ca)], diff=True)
    assert dropped.rc == 0, dropped.stdout
    result = dropped.task_results(TASK)
    assert tls_statuses(result) == {
        f"docker.io/{SITE_HOST}.ca.crt": "unchanged", f"docker.io/{SITE_HOST}.client.cert": "removed",
        f"docker.io/{SITE_HOST}.client.key": "removed", f"quay.io/{SITE_HOST}.ca.crt": "removed",
        f"quay.io/{SITE_HOST}.client.cert": "removed", f"quay.io/{SITE_HOST}.client.key": "removed"}
    assert {str(p.relative_to(certs)) for p in certs.rglob("*") if p.is_file()} == {
        f"docker.io/{SITE_HOST}.ca.crt", "docker.io/hosts.toml", "quay.io/ca.crt"}
    assert "client" not in files_of(certs)["docker.io/hosts.toml"]
    key_diff = next(d for d in result["diff"] if d["before_header"] == f"{certs}/quay.io/{SITE_HOST}.client.key")
    assert (key_diff["before"], key_diff["after"]) == ("********\n", "")
    assert_no_key(dropped)

    absent = run_playbook([mirrors_task(certs, registry_mirrors=only_ca, registries=[], state="absent")])
    assert set(tls_statuses(absent.task_results(TASK)).values()) == {"removed"}
    assert not (certs / "docker.io").exists()


def test_a_foreign_file_where_a_pem_file_goes_stops_the_task_and_a_bad_key_is_not_shown(run_playbook, tmp_path, pki):
    certs = tmp_path / "certs.d"
    theirs = certs / "docker.io" / f"{SITE_HOST}.ca.crt"
    theirs.parent.mkdir(parents=True)
    theirs.write_text(pki.other_ca.read_text())
    mtls = {"url": f"https://{SITE_HOST}", "ca_content": pki.ca.read_text()}
    run = run_playbook([mirrors_task(certs, registry_mirrors={"docker.io": [mtls]})])
    result = run.task_results(TASK)
    assert result["failed"] is True and result["msg"].startswith("Nothing was written. ")
    assert f"cannot write {theirs}: it was not written by kubenode.registry_mirror; move it away" in result["msg"]
    assert theirs.read_text() == pki.other_ca.read_text() and sorted(certs.rglob("*")) == [theirs.parent, theirs]

    wrong = dict(mtls, client_cert_content=pki.client.read_text(), client_key_content="{{ other_key }}")
    key = pki.other_client_key.read_text()
    run = run_playbook([mirrors_task(certs, registry_mirrors={"docker.io": [wrong]})], extra_vars={"other_key": key},
                       verbosity=3, json_output=False)
    assert run.rc != 0
    assert 'registry_mirrors["docker.io"][0].client_key_content: the key does not belong to the certificate' \
        in run.stdout
    assert all(line not in run.stdout + run.stderr for line in key.splitlines()[1:-1])
