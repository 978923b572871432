"""The containerd_hosts action plugin and module, run for real through ansible-playbook."""

from __future__ import annotations

import base64
import stat
import tomllib
from pathlib import Path

import pytest
import yaml
from fakes import tls_registry as fake

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    KEPT_ASIDE_SUFFIX,
    MARKER,
    MIGRATED_MARKER_PREFIX,
)

SEED_FILES = yaml.safe_load((Path(__file__).parents[1] / "unit" / "fixtures" / "seed-hosts.yml").read_text())
SEED_AUTH = "Basic d1h1YmhhbTpwZjck"
SEED_USER, SEED_PASSWORD = base64.b64decode(SEED_AUTH.split()[1]).decode().split(":", 1)
SECRET_PASSWORD = "s3cr3t:pässwörd"
SECRET_AUTH = "Basic " + base64.b64encode(f"mirror-user:{SECRET_PASSWORD}".encode()).decode()
TASK = "write certs.d"


def hosts_task(config_path, **options):
    args = {
        "url": "https://10.101.101.100:443",
        "repo_path": "infra/k8s",
        "username": SEED_USER,
        "password": SEED_PASSWORD,
        "skip_tls": False,
        "ca_file": "/usr/local/share/reg-ca.crt",
        "config_path": str(config_path),
    }
    args.update(options)
    args = {name: value for name, value in args.items() if value is not None}
    return {"name": TASK, "kubenode.registry_mirror.containerd_hosts": args, "register": "result"}


def tree(config_path):
    return {str(p.relative_to(config_path)): p.read_text() for p in sorted(Path(config_path).rglob("*")) if p.is_file()}


def snapshot(config_path):
    """Every file (bytes and mode) and directory (mode) under config_path, to prove nothing changed."""
    root = Path(config_path)
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, stat.S_IMODE(p.lstat().st_mode))
        for p in sorted(root.rglob("*"))
    }


def pmk_task(config_path):
    """The seed's settings under the PMK cluster API names."""
    return hosts_task(
        config_path,
        url=None, repo_path=None, username=None, password=None, skip_tls=None,
        customRegistryUrl="https://10.101.101.100:443",
        customRegistryPath="/infra/k8s/",
        customRegistryUsername=SEED_USER,
        customRegistryPassword=SEED_PASSWORD,
        customRegistrySkipTls=False,
    )


def test_seed_settings_write_the_seed_files_then_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    first = run_playbook([pmk_task(certs)])
    assert first.rc == 0, first.stdout
    result = first.task_results(TASK)
    assert result["changed"] is True
    assert {f["status"] for f in result["files"]} == {"created"}
    expected = {name: tomllib.loads(text) for name, text in SEED_FILES.items()}
    written = {p.parent.name: p for p in certs.glob("*/hosts.toml")}
    assert sorted(written) == sorted(expected)
    for name, path in written.items():
        document = tomllib.loads(path.read_text())
        assert document == expected[name]
        assert list(document["host"]) == list(expected[name]["host"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    second = run_playbook([hosts_task(certs)])  # the same settings under their own names
    result = second.task_results(TASK)
    assert result["changed"] is False
    assert {f["status"] for f in result["files"]} == {"unchanged"}


def test_check_mode_writes_nothing_and_reports_what_it_would_do(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run = run_playbook([hosts_task(certs)], check=True, diff=True)
    assert run.rc == 0, run.stdout
    result = run.task_results(TASK)
    assert result["changed"] is True
    assert {f["status"] for f in result["files"]} == {"created"}
    assert not certs.exists()


def test_check_mode_on_a_configured_node_changes_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs)])
    before = tree(certs)
    run = run_playbook([hosts_task(certs, skip_tls=True)], check=True, diff=True)
    assert run.task_results(TASK)["changed"] is True
    assert tree(certs) == before


@pytest.mark.parametrize("verbosity", [0, 3])
def test_secrets_never_shown(run_playbook, tmp_path, verbosity):
    certs = tmp_path / "certs.d"
    options = {"username": "mirror-user", "password": SECRET_PASSWORD}
    runs = [
        run_playbook([hosts_task(certs, **options)], diff=True, verbosity=verbosity, json_output=False),
        run_playbook([hosts_task(certs, **options)], diff=True, verbosity=verbosity),  # json
        # a password change: the diff must say so without showing either header
        run_playbook([hosts_task(certs, password="an0ther")], diff=True, verbosity=verbosity,
                     json_output=False),
    ]
    old_auth = SECRET_AUTH
    new_auth = "Basic " + base64.b64encode(f"{SEED_USER}:an0ther".encode()).decode()
    for run in runs:
        assert run.rc == 0, run.stdout
        output = run.stdout + run.stderr
        for secret in (SECRET_PASSWORD, old_auth.split()[1], "an0ther", new_auth.split()[1]):
            assert secret not in output
    assert "******** (changed)" in runs[2].stdout
    assert "authorization" in runs[0].stdout  # the diff is there, masked
    assert new_auth in (certs / "docker.io" / "hosts.toml").read_text()


def test_absent_removes_only_our_files(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io", "quay.io"])])
    foreign = certs / "ghcr.io" / "hosts.toml"
    foreign.parent.mkdir()
    foreign.write_text('server = "https://ghcr.io"\n')
    hijacked = certs / "quay.io" / "hosts.toml"
    hijacked.write_text('server = "https://quay.io"\n')  # someone replaced ours
    neighbour = certs / "docker.io" / "ca.crt"
    neighbour.write_text("not ours\n")

    run = run_playbook([hosts_task(certs, state="absent", registries=["docker.io", "quay.io", "ghcr.io"])])
    assert run.rc == 0, run.stdout
    statuses = {f["registry"]: f["status"] for f in run.task_results(TASK)["files"]}
    assert statuses == {"10.101.101.100:443": "removed", "docker.io": "removed", "quay.io": "foreign",
                        "ghcr.io": "foreign"}
    assert tree(certs) == {
        "docker.io/ca.crt": "not ours\n",
        "ghcr.io/hosts.toml": 'server = "https://ghcr.io"\n',
        "quay.io/hosts.toml": 'server = "https://quay.io"\n',
    }
    assert not (certs / "10.101.101.100:443").exists()  # emptied directory removed

    again = run_playbook([hosts_task(certs, state="absent", registries=["docker.io", "quay.io", "ghcr.io"])])
    assert again.task_results(TASK)["changed"] is False


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"url": "ftp://10.0.0.1"}, "url"),
        ({"url": "https://10.0.0.1/v2/infra"}, "url"),
        ({"password": None}, "username"),
        ({"registries": ["docker.io", "../../etc"]}, "registries[1]"),
        ({"repo_path": 'infra"\n[host."https://evil"]'}, "repo_path"),
        # issue 10, point 13: the host grammar
        ({"url": "https://" + ".".join(["a" * 60] * 5 + ["c" * 24])}, "url"),  # 329 characters
        ({"url": "https://999.999.999.999"}, "url"),
        ({"registries": ["docker.io", "1.2.3.4.5"]}, "registries[1]"),
        ({"url": "https://10.101.101.100:00443"}, "url"),
        ({"registries": ["quay.io:0443"]}, "registries[0]"),
        ({"registries": ["a" * 64 + ".io"]}, "registries[0]"),
        # issue 10, point 12: node paths are taken literally and must be absolute
        ({"ca_file": "~/ca.crt"}, "ca_file"),
    ],
)
def test_bad_input_fails_clearly_and_leaves_the_node_as_it_was(run_playbook, tmp_path, options, field):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs)])
    before = tree(certs)
    run = run_playbook([hosts_task(certs, **options)])
    assert run.rc != 0
    result = run.task_results(TASK)
    assert result["failed"] is True
    assert field in result["msg"]
    assert tree(certs) == before


def test_mode_backup_and_update(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io"])])
    run = run_playbook([hosts_task(certs, registries=["docker.io"], skip_tls=True, backup=True, mode="0640")])
    result = run.task_results(TASK)
    entry = {f["registry"]: f for f in result["files"]}["docker.io"]
    assert entry["status"] == "updated"
    backup = Path(entry["backup_file"])
    assert "skip_verify" not in backup.read_text()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    path = certs / "docker.io" / "hosts.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert tomllib.loads(path.read_text())["host"]["https://10.101.101.100:443/v2/infra/k8s"]["skip_verify"] is True


def test_a_changed_mode_alone_is_a_change(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io"])])
    (certs / "docker.io" / "hosts.toml").chmod(0o644)
    result = run_playbook([hosts_task(certs, registries=["docker.io"])]).task_results(TASK)
    assert result["changed"] is True
    assert stat.S_IMODE((certs / "docker.io" / "hosts.toml").stat().st_mode) == 0o600


def test_filters_through_jinja(run_playbook):
    tasks = [
        {"name": "filters", "ansible.builtin.set_fact": {
            "auth": "{{ 'wXubham' | kubenode.registry_mirror.basic_auth('pf7$') }}",
            "endpoint": "{{ '10.101.101.100:443/' | kubenode.registry_mirror.mirror_endpoint('/infra/k8s/') }}",
            "text": "{{ {'registry': 'quay.io', 'url': 'https://10.101.101.100:443', 'repo_path': 'infra/k8s',"
                    " 'username': 'wXubham', 'password': 'pf7$', 'ca_file': '/usr/local/share/reg-ca.crt'}"
                    " | kubenode.registry_mirror.hosts_toml }}",
        }},
    ]
    facts = run_playbook(tasks).task_results("filters")["ansible_facts"]
    assert facts["auth"] == SEED_AUTH
    assert facts["endpoint"] == "https://10.101.101.100:443/v2/infra/k8s"
    assert tomllib.loads(facts["text"]) == tomllib.loads(SEED_FILES["quay.io"])


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("'us:er' | kubenode.registry_mirror.basic_auth('x')", "basic_auth: username"),
        ("'ftp://x' | kubenode.registry_mirror.mirror_endpoint('a')", "mirror_endpoint: url"),
        ("{'registry': 'a/b', 'url': 'https://m'} | kubenode.registry_mirror.hosts_toml", "hosts_toml: registry"),
    ],
)
def test_filters_are_strict(run_playbook, expression, message):
    run = run_playbook([{"name": "filter", "ansible.builtin.debug": {"msg": "{{ " + expression + " }}"}}])
    assert run.rc != 0
    assert message in run.task_results("filter")["msg"]


# --- hosts.toml files this collection did not write ----------------------

OLD_PASSWORD = "0ld-pässwörd"
OLD_AUTH = "Basic " + base64.b64encode(f"old-user:{OLD_PASSWORD}".encode()).decode()
# Non-ASCII, no final newline, an odd mode: any rewrite of the file would show.
FOREIGN_BYTES = f"""# the operator's own file, déjà là
server = "https://registry-1.docker.io"

[host."https://old-mirror.example:5000"]
  capabilities = ["pull", "resolve"]
  [host."https://old-mirror.example:5000".header]
    authorization = "{OLD_AUTH}\"""".encode()
FOREIGN_MODE = 0o640


def place(config_path, registry, data, mode=FOREIGN_MODE):
    path = Path(config_path) / registry / "hosts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def statuses(result):
    return {f["registry"]: f["status"] for f in result["files"]}


def entries(result):
    return {f["registry"]: f for f in result["files"]}


def warnings(result):
    return [w for w in result.get("warnings", []) if "kubenode.registry_mirror" in w]


MIRROR = "10.101.101.100:443"


def test_a_foreign_file_is_kept_aside_then_put_back(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    theirs = place(certs, "docker.io", FOREIGN_BYTES)
    kept = Path(f"{theirs}{KEPT_ASIDE_SUFFIX}")
    original = snapshot(certs)
    registries = ["docker.io", "quay.io"]

    first = run_playbook([hosts_task(certs, registries=registries)])
    assert first.rc == 0, first.stdout
    result = first.task_results(TASK)
    assert result["changed"] is True
    assert statuses(result) == {MIRROR: "created", "docker.io": "adopted", "quay.io": "created"}
    assert entries(result)["docker.io"]["kept_aside"] == str(kept)
    assert [w for w in warnings(result) if str(theirs) in w and str(kept) in w and "state=absent" in w]
    assert kept.read_bytes() == FOREIGN_BYTES
    assert stat.S_IMODE(kept.stat().st_mode) == FOREIGN_MODE
    ours = theirs.read_text()
    assert ours.split("\n", 1)[0] == MARKER
    assert "https://10.101.101.100:443/v2/infra/k8s" in tomllib.loads(ours)["host"]
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o600

    second = run_playbook([hosts_task(certs, registries=registries)])
    result = second.task_results(TASK)
    assert result["changed"] is False
    assert set(statuses(result).values()) == {"unchanged"}
    assert entries(result)["docker.io"]["kept_aside"] == str(kept)
    assert not warnings(result)
    assert kept.read_bytes() == FOREIGN_BYTES

    absent = run_playbook([hosts_task(certs, registries=registries, state="absent")])
    assert absent.rc == 0, absent.stdout
    result = absent.task_results(TASK)
    assert result["changed"] is True
    assert statuses(result) == {MIRROR: "removed", "docker.io": "restored", "quay.io": "removed"}
    assert snapshot(certs) == original  # theirs back, byte for byte, mode and all; ours gone

    again = run_playbook([hosts_task(certs, registries=registries, state="absent")])
    result = again.task_results(TASK)
    assert result["changed"] is False
    assert statuses(result) == {MIRROR: "unchanged", "docker.io": "foreign", "quay.io": "unchanged"}
    assert snapshot(certs) == original


@pytest.mark.parametrize("foreign_files", ["adopt", "refuse"])
def test_migrated_files_are_adopted_silently_and_come_back(run_playbook, tmp_path, foreign_files):
    certs = tmp_path / "certs.d"
    migrated = {
        registry: f'{MIGRATED_MARKER_PREFIX}x\nserver = "https://{registry}"\n'.encode()
        for registry in ("docker.io", "platform9.io")
    }
    for registry, data in migrated.items():
        place(certs, registry, data, mode=0o644)
    original = snapshot(certs)

    run = run_playbook([hosts_task(certs, foreign_files=foreign_files, mode="0640")])
    assert run.rc == 0, run.stdout
    result = run.task_results(TASK)
    assert statuses(result)["docker.io"] == statuses(result)["platform9.io"] == "adopted"
    assert not warnings(result)
    for registry, data in migrated.items():
        kept = certs / registry / f"hosts.toml{KEPT_ASIDE_SUFFIX}"
        assert kept.read_bytes() == data
        assert stat.S_IMODE(kept.stat().st_mode) == 0o644
        ours = certs / registry / "hosts.toml"
        assert ours.read_text().startswith(MARKER + "\n")
        assert stat.S_IMODE(ours.stat().st_mode) == 0o640  # the task's attributes, not the old file's

    absent = run_playbook([hosts_task(certs, state="absent")])
    result = absent.task_results(TASK)
    assert statuses(result)["docker.io"] == statuses(result)["platform9.io"] == "restored"
    assert snapshot(certs) == original


def test_refuse_fails_naming_the_file_and_writes_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["quay.io"])])  # ours, which the failing run would update
    theirs = place(certs, "docker.io", FOREIGN_BYTES)
    place(certs, "platform9.io", f"{MIGRATED_MARKER_PREFIX}platform9.io\n".encode())  # would be adopted
    before = snapshot(certs)

    run = run_playbook([hosts_task(certs, skip_tls=True, foreign_files="refuse")])
    assert run.rc != 0
    result = run.task_results(TASK)
    assert result["failed"] is True
    assert str(theirs) in result["msg"]
    assert "foreign_files=refuse" in result["msg"]
    assert "platform9.io" not in result["msg"]
    assert snapshot(certs) == before  # no file updated, adopted or created, no directory made


def test_a_file_replaced_after_adoption_stops_the_task(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    theirs = place(certs, "docker.io", FOREIGN_BYTES)
    kept = Path(f"{theirs}{KEPT_ASIDE_SUFFIX}")
    run_playbook([hosts_task(certs, registries=["docker.io", "quay.io"])])
    assert kept.read_bytes() == FOREIGN_BYTES
    place(certs, "docker.io", b'server = "https://someone-else.example"\n')  # replaces ours
    before = snapshot(certs)

    run = run_playbook([hosts_task(certs, skip_tls=True)])  # would update quay.io, create the others
    assert run.rc != 0
    result = run.task_results(TASK)
    assert str(theirs) in result["msg"]
    assert str(kept) in result["msg"]
    assert snapshot(certs) == before

    absent = run_playbook([hosts_task(certs, registries=["docker.io", "quay.io"], state="absent")])
    assert absent.rc == 0, absent.stdout
    result = absent.task_results(TASK)
    assert statuses(result) == {MIRROR: "removed", "docker.io": "foreign", "quay.io": "removed"}
    assert entries(result)["docker.io"]["kept_aside"] == str(kept)
    assert [w for w in warnings(result) if str(theirs) in w and str(kept) in w]
    assert theirs.read_bytes() == b'server = "https://someone-else.example"\n'
    assert kept.read_bytes() == FOREIGN_BYTES


def test_a_kept_aside_file_no_file_of_ours_records_stays(run_playbook, tmp_path):
    # issue 23, defect 7: only a kept-aside file that our hosts.toml records (its sha256) is put back
    certs = tmp_path / "certs.d"
    theirs = place(certs, "docker.io", FOREIGN_BYTES)
    kept = Path(f"{theirs}{KEPT_ASIDE_SUFFIX}")
    run_playbook([hosts_task(certs, registries=["docker.io"])])
    theirs.unlink()  # ours, removed by hand: nothing records the kept-aside file any more

    again = run_playbook([hosts_task(certs, registries=["docker.io"])]).task_results(TASK)
    assert statuses(again)["docker.io"] == "created"
    assert "kept_aside" not in entries(again)["docker.io"]
    assert [w for w in warnings(again) if str(kept) in w and "not kept aside by" in w]

    result = run_playbook([hosts_task(certs, registries=["docker.io"], state="absent")]).task_results(TASK)
    assert statuses(result)["docker.io"] == "removed"
    assert [w for w in warnings(result) if str(kept) in w and "not kept aside by" in w]
    assert kept.read_bytes() == FOREIGN_BYTES and not theirs.exists()


def test_check_mode_with_a_foreign_file_writes_nothing(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    theirs = place(certs, "docker.io", FOREIGN_BYTES)
    registries = ["docker.io", "quay.io"]
    before = snapshot(certs)

    check = run_playbook([hosts_task(certs, registries=registries)], check=True, diff=True)
    assert check.rc == 0, check.stdout
    result = check.task_results(TASK)
    assert result["changed"] is True
    assert statuses(result) == {MIRROR: "created", "docker.io": "adopted", "quay.io": "created"}
    assert entries(result)["docker.io"]["kept_aside"] == f"{theirs}{KEPT_ASIDE_SUFFIX}"
    assert [w for w in warnings(result) if str(theirs) in w]
    assert snapshot(certs) == before

    run_playbook([hosts_task(certs, registries=registries)])
    applied = snapshot(certs)
    check = run_playbook([hosts_task(certs, registries=registries, state="absent")], check=True, diff=True)
    result = check.task_results(TASK)
    assert result["changed"] is True
    assert statuses(result) == {MIRROR: "removed", "docker.io": "restored", "quay.io": "removed"}
    assert snapshot(certs) == applied

    check = run_playbook([hosts_task(certs, registries=registries)], check=True)
    assert check.task_results(TASK)["changed"] is False


def test_diff_of_an_adopted_file_never_shows_a_secret(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    place(certs, "docker.io", FOREIGN_BYTES)
    options = {"registries": ["docker.io"], "username": "mirror-user", "password": SECRET_PASSWORD}
    runs = [
        run_playbook([hosts_task(certs, **options)], diff=True, verbosity=3, json_output=False),
        run_playbook([hosts_task(certs, state="absent", **options)], diff=True, verbosity=3, json_output=False),
    ]
    for run in runs:
        assert run.rc == 0, run.stdout
        output = run.stdout + run.stderr
        assert "old-mirror.example" in output  # the old file is in the diff...
        assert "********" in output  # ...masked
        for secret in (OLD_PASSWORD, OLD_AUTH.split()[1], SECRET_PASSWORD, SECRET_AUTH.split()[1]):
            assert secret not in output
    assert (certs / "docker.io" / "hosts.toml").read_bytes() == FOREIGN_BYTES


# --- issue 10: host grammar, literal node paths, masked diffs ------------------------------------


def test_a_329_character_host_is_refused_naming_the_field(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    host = ".".join(["a" * 60] * 5 + ["c" * 24])
    run = run_playbook([hosts_task(certs, url=f"https://{host}")])
    result = run.task_results(TASK)
    assert result["failed"] is True
    assert result["msg"].startswith("url: ")
    assert "329 characters long; a host name has at most 253" in result["msg"]
    assert "File name too long" not in result["msg"]
    assert not certs.exists()


def test_node_paths_are_taken_literally(run_playbook, tmp_path):
    certs = tmp_path / "certs.d"
    refused = run_playbook([hosts_task(certs, ca_file="~/ca.crt")]).task_results(TASK)
    assert refused["failed"] is True
    assert refused["msg"].startswith("ca_file: '~/ca.crt'")
    assert "/root" not in refused["msg"]
    assert not certs.exists()  # never written as /root/ca.crt

    # $VARS are not expanded either (a node path with a '$' is unusual, but it is the user's)
    run = run_playbook([hosts_task(certs, ca_file="/opt/$HOME/ca.crt", registries=["docker.io"])])
    assert run.rc == 0, run.stdout
    document = tomllib.loads((certs / "docker.io" / "hosts.toml").read_text())
    assert document["host"]["https://10.101.101.100:443/v2/infra/k8s"]["ca"] == "/opt/$HOME/ca.crt"

    for config_path in ("~/certs.d", "$HOME/certs.d", "certs.d"):
        for state in ("present", "absent"):
            task = hosts_task(certs, state=state)
            task["kubenode.registry_mirror.containerd_hosts"]["config_path"] = config_path
            result = run_playbook([task]).task_results(TASK)
            assert result["failed"] is True
            assert result["msg"].startswith(f"config_path: {config_path!r} must be an absolute path")
    assert (certs / "docker.io" / "hosts.toml").exists()


# A hosts.toml we did not write, its credential spelt in each way TOML allows. The old one's Basic
# value must never show in a diff, whatever the spelling.
LEAKED = "Basic " + base64.b64encode("old-user:l3aked-pässwörd!".encode()).decode()  # no "=" padding
LEAKED_TOKEN = LEAKED.split()[1]
SPELLINGS = {
    "table": f'[host."https://old.example".header]\n  authorization = "{LEAKED}"\n',
    "inline-table": f'[host."https://old.example"]\n  header = {{ authorization = "{LEAKED}" }}\n',
    "dotted-key": f'[host."https://old.example"]\n  capabilities = ["pull"]\n  header.authorization = "{LEAKED}"\n',
    "dotted-key-top": f'host."https://old.example".header.authorization = "{LEAKED}"\n',
    "comment-after-table": f'[host."https://old.example".header]  # credentials\n  authorization = "{LEAKED}"\n',
    "spaces-in-header": f'[ host . "https://old.example" . header ]\n  authorization = "{LEAKED}"\n',
    "multi-line-basic": f'[host."https://old.example".header]\n  authorization = """\n{LEAKED}"""\n',
    "multi-line-literal": f"[host.\"https://old.example\".header]\n  authorization = '''\n{LEAKED}'''\n",
    "literal": f"[host.\"https://old.example\".header]\n  authorization = '{LEAKED}'\n",
    "array": f'[host."https://old.example".header]\n  authorization = ["{LEAKED}", "x"]\n',
    "top-level-header": f'server = "https://registry-1.docker.io"\n[header]\n  authorization = "{LEAKED}"\n',
    "top-level-inline": f'server = "https://registry-1.docker.io"\nheader = {{ authorization = "{LEAKED}" }}\n',
    "capitalised": f'[host."https://old.example".Header]\n  Authorization = "{LEAKED}"\n',
    "crlf": f'[host."https://old.example".header]\r\n  authorization = "{LEAKED}"\r\n',
    "does-not-parse": f'[host."https://old.example".header]\n  authorization = "{LEAKED}"\n[broken\n',
    "secret-repeated-in-a-comment": f'[host."https://old.example".header]\n  authorization = "{LEAKED}"  # {LEAKED}\n',
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_diff_masks_every_header_value_however_it_is_spelt(run_playbook, tmp_path, spelling):
    certs = tmp_path / "certs.d"
    theirs = place(certs, "docker.io", SPELLINGS[spelling].encode())
    options = {"registries": ["docker.io"], "username": "mirror-user", "password": SECRET_PASSWORD}
    runs = [
        run_playbook([hosts_task(certs, **options)], diff=True, verbosity=3, json_output=False),  # adopted
        run_playbook([hosts_task(certs, state="absent", **options)], diff=True, verbosity=3, json_output=False),
    ]
    for run in runs:
        assert run.rc == 0, run.stdout
        output = run.stdout + run.stderr
        for secret in (LEAKED_TOKEN, "l3aked", SECRET_PASSWORD, SECRET_AUTH.split()[1]):
            assert secret not in output, spelling
        assert f"--- before: {theirs}" in output  # a diff is there...
        assert "********" in output  # ...masked
    if spelling in ("does-not-parse", "secret-repeated-in-a-comment"):
        assert "(not shown:" in runs[0].stdout  # only that it changed
    else:
        assert "old.example" in runs[0].stdout or "registry-1.docker.io" in runs[0].stdout
    assert "******** (changed)" in runs[0].stdout  # the new header differs from the old
    assert theirs.read_bytes() == SPELLINGS[spelling].encode()  # restored, byte for byte


def test_diff_of_a_password_change_alone_shows_a_change(run_playbook, tmp_path):
    """Our own file, whose only change is the header: both values masked, the new one marked changed."""
    certs = tmp_path / "certs.d"
    run_playbook([hosts_task(certs, registries=["docker.io"])])
    run = run_playbook([hosts_task(certs, registries=["docker.io"], password="n3w-pässwörd")], diff=True,
                       verbosity=3, json_output=False)
    assert run.rc == 0, run.stdout
    assert '-authorization = "********"' in run.stdout
    assert '+authorization = "******** (changed)"' in run.stdout
    assert SEED_AUTH.split()[1] not in run.stdout + run.stderr
    options = {"registries": ["docker.io"], "password": "n3w-pässwörd", "skip_tls": True}
    again = run_playbook([hosts_task(certs, **options)], diff=True, json_output=False)
    assert "(changed)" not in again.stdout  # the header did not change this time
    assert "+skip_verify = true" in again.stdout


def test_the_ca_is_checked_and_written_with_the_files(run_playbook, tmp_path, pki):
    """ca_content and ca_url write ca_file (0644, directories 0755) in the same run; ca_check only checks it."""
    certs = tmp_path / "certs.d"
    ca_file = certs / "10.101.101.100:443" / "ca.crt"
    with fake.FileServer({"ca.pem": pki.ca.read_bytes()}) as files:
        first = run_playbook([hosts_task(certs, ca_file=str(ca_file), ca_url=f"{files.url}/ca.pem")], diff=True)
        again = run_playbook([hosts_task(certs, ca_file=str(ca_file), ca_content=pki.ca.read_text())])
    result = first.task_results(TASK)
    assert result["changed"] is True and result["ca"]["status"] == "created", result
    assert result["ca"]["certificates"] == 1 and result["ca"]["path"] == str(ca_file)
    assert ca_file.read_bytes() == pki.ca.read_bytes()
    assert stat.S_IMODE(ca_file.stat().st_mode) == 0o644 and stat.S_IMODE(ca_file.parent.stat().st_mode) == 0o755
    assert result["diff"][0] == {"before_header": str(ca_file), "after_header": str(ca_file), "before": "",
                                 "after": pki.ca.read_text()}  # a CA is public
    assert tomllib.loads((certs / "docker.io" / "hosts.toml").read_text())["host"][
        "https://10.101.101.100:443/v2/infra/k8s"]["ca"] == str(ca_file)
    assert again.task_results(TASK)["changed"] is False
    assert again.task_results(TASK)["ca"]["status"] == "unchanged"

    ca_file.chmod(0o600)
    checked = run_playbook([hosts_task(certs, ca_file=str(ca_file), ca_check=True, ca_readable_by="root")])
    assert checked.task_results(TASK)["changed"] is False
    assert checked.task_results(TASK)["ca"]["status"] == "checked"
    assert stat.S_IMODE(ca_file.stat().st_mode) == 0o600  # only checked: the node's own file is left as it is


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ca_check": True, "ca_file": "/nonexistent/reg-ca.crt"}, "ca_file: /nonexistent/reg-ca.crt does not exist"),
        ({"ca_content": "not a certificate"}, "ca_content: not PEM"),
        ({"ca_content": "expired"}, "ca_content: the certificate (CN=kubenode expired CA) expired"),
        ({"ca_content": "key"}, "ca_content: the PEM block is a PRIVATE KEY"),
        ({"ca_content": "ca", "ca_file": None}, "ca_file: required with ca_content, ca_url or ca_check"),
        ({"ca_content": "ca", "ca_readable_by": "kubenode-no-such-user"},
         "ca_readable_by: there is no user 'kubenode-no-such-user'"),
    ],
)
def test_a_bad_ca_writes_nothing(run_playbook, tmp_path, pki, options, message):
    certs = tmp_path / "certs.d"
    texts = {"expired": pki.expired_ca.read_text(), "key": pki.ca_key.read_text(), "ca": pki.ca.read_text()}
    options = dict({"ca_file": str(tmp_path / "ca.crt")}, **options)
    if "ca_content" in options:
        options["ca_content"] = texts.get(options["ca_content"], options["ca_content"])
    result = run_playbook([hosts_task(certs, **options)]).task_results(TASK)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(f"Nothing was written. {message}"), result["msg"]
    assert "PRIVATE KEY-----" not in result["msg"]  # a key is never echoed
    assert not certs.exists() and not (tmp_path / "ca.crt").exists()


def _fingerprint(pem_path):
    line = fake.openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", pem_path, cwd=pem_path.parent).strip()
    return line.partition("=")[2]


@pytest.mark.parametrize("source", ["ca_content", "ca_url", "ca_check", "mirror ca_file"])
def test_a_wrong_pin_writes_nothing_and_the_right_one_passes(run_playbook, tmp_path, pki, source):
    node = tmp_path / "node"
    certs = node / "certs.d"
    certs.mkdir(parents=True)
    (certs / "docker.io").mkdir()
    (certs / "docker.io" / "hosts.toml").write_text('server = "https://registry-1.docker.io"\n')  # a node's own
    ca_file = node / "ca.crt"
    ca_file.write_bytes(pki.other_ca.read_bytes() if source in ("ca_content", "ca_url") else pki.ca.read_bytes())
    right, wrong = _fingerprint(pki.ca), _fingerprint(pki.other_ca)
    with fake.FileServer({"ca.pem": pki.ca.read_bytes()}) as files:
        given = {"ca_content": {"ca_content": pki.ca.read_text()}, "ca_url": {"ca_url": f"{files.url}/ca.pem"},
                 "ca_check": {"ca_check": True}, "mirror ca_file": {}}[source]

        def options(pin):
            if source != "mirror ca_file":
                return dict(given, ca_file=str(ca_file), ca_sha256=pin)
            return {"registry_mirrors": {"docker.io": [{"url": "https://harbor.example", "ca_file": str(ca_file),
                                                        "ca_sha256": pin}]}}

        before = snapshot(node)
        failed = run_playbook([hosts_task(certs, **options(wrong))]).task_results(TASK)
        assert snapshot(node) == before
        passed = run_playbook([hosts_task(certs, **options([right]))]).task_results(TASK)
    field, where = "ca_sha256", {"ca_content": "ca_content", "ca_url": f"ca_url: {files.url}/ca.pem",
                                 "ca_check": f"ca_file: {ca_file}"}.get(source)
    if source == "mirror ca_file":
        mirror = 'registry_mirrors["docker.io"][0]'
        field, where = f"{mirror}.ca_sha256", f"{mirror}.ca_file: {ca_file}"
    assert failed["failed"] is True and failed["changed"] is False
    assert failed["msg"] == (f"Nothing was written. {field}: {where} is not the pinned CA: expected the SHA-256 "
                             f"fingerprint {wrong}, got {right}.")
    assert passed.get("failed", False) is False and passed["changed"] is True, passed.get("msg")
    assert not [warning for warning in passed.get("warnings", []) if "plain http" in warning]
    if source != "mirror ca_file":
        assert passed["ca"]["sha256"] == [right]
    assert ca_file.read_bytes() == pki.ca.read_bytes()
