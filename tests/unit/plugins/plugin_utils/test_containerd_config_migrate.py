"""Moving the legacy CRI registry settings out of config.toml into hosts.toml files (legacy_mirrors=migrate).

Every expected text here is written out by hand from the migration rules
(containerd's legacy resolver: endpoints in order, then the registry's default
host; configs keyed by host[:port]; addDefaultScheme), not taken from the code.
When the containerd 1.x binary is installed, it also loads each result.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import textwrap
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    MIGRATED_MARKER_PREFIX,
    is_managed,
    is_migrated,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import ensure_config_path
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_mask import mask_toml

FIXTURES = Path(__file__).parents[2] / "fixtures" / "containerd_config"
CONFIG = "/etc/containerd/config.toml"
CERTS = "/etc/containerd/certs.d"
CRI = "io.containerd.grpc.v1.cri"
V2_SECTION = f'plugins."{CRI}".registry'
CAPABILITIES = 'capabilities = [\n    "pull",\n    "resolve",\n]\n'

CONTAINERD = shutil.which("containerd")
needs_containerd = pytest.mark.skipif(CONTAINERD is None, reason="containerd 1.x binary not installed")


def marker(section=V2_SECTION, name=CONFIG):
    return f"{MIGRATED_MARKER_PREFIX}{name} ({section}); state=absent keeps it.\n"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def migrate(text, **options):
    return ensure_config_path(text, CERTS, name=CONFIG, **options)


# The stock PMK config.toml (pmk-node-facts.md), as the agent package ships it.
STOCK = (FIXTURES / "pmk-stock.toml").read_text()
STOCK_MIGRATED = """\
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
plugin_dir = ""
disabled_plugins = []
required_plugins = []
oom_score = 0
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"""
STOCK_FILES = {
    "platform9.io": (
        ["https://dockermirror.platform9.io"],
        marker() + 'server = "https://platform9.io"\n\n[host."https://dockermirror.platform9.io"]\n' + CAPABILITIES,
    ),
    "docker.io": (
        ["https://dockermirror.platform9.io", "https://registry-1.docker.io"],
        marker()
        + 'server = "https://registry-1.docker.io"\n\n'
        + '[host."https://dockermirror.platform9.io"]\n'
        + CAPABILITIES
        + '\n[host."https://registry-1.docker.io"]\n'
        + CAPABILITIES,
    ),
}

HARBOR_CLIENT = 'client = [\n    [\n        "/etc/pki/node.pem",\n        "/etc/pki/node-key.pem",\n    ],\n]\n'
V2_CONFIGS = (FIXTURES / "v2-legacy-configs.toml").read_text()
V2_CONFIGS_MIGRATED = """\
# containerd 1.6 with a private registry, configured the legacy way.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"

  # Registry: mirrors and credentials, from before certs.d.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
    [plugins."io.containerd.grpc.v1.cri".registry.configs]
      [plugins."io.containerd.grpc.v1.cri".registry.configs."harbor.example:8443".auth]
        username = "robot$node"
        password = "s3cr3t-Pa55"
      [plugins."io.containerd.grpc.v1.cri".registry.configs."ghcr.io".auth]
        auth = "Z2hjci11c2VyOmdoY3ItcGFzcw=="

  # The runtime.
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
"""
# The credentials stay in config.toml (containerd reads configs.<host>.auth next to config_path); the tls tables
# move. A configs host without endpoints is its own [host]: containerd 1.x reads no hosts.toml without one.
V2_CONFIGS_FILES = {
    "docker.io": (
        ["https://harbor.example:8443", "https://registry-1.docker.io"],
        marker()
        + 'server = "https://registry-1.docker.io"\n\n'
        + '[host."https://harbor.example:8443"]\n'
        + CAPABILITIES
        + 'ca = "/etc/pki/harbor-ca.pem"\n'
        + HARBOR_CLIENT
        + '\n[host."https://registry-1.docker.io"]\n'
        + CAPABILITIES,
    ),
    "quay.io": (
        ["https://harbor.example:8443/v2/quay"],
        marker()
        + 'server = "https://quay.io"\n\n'
        + '[host."https://harbor.example:8443/v2/quay"]\n'
        + CAPABILITIES
        + 'ca = "/etc/pki/harbor-ca.pem"\n'
        + HARBOR_CLIENT
        + "override_path = true\n",
    ),
    "harbor.example:8443": (
        ["https://harbor.example:8443"],
        marker()
        + 'server = "https://harbor.example:8443"\n'
        + 'ca = "/etc/pki/harbor-ca.pem"\n'
        + HARBOR_CLIENT
        + '\n[host."https://harbor.example:8443"]\n'
        + CAPABILITIES
        + 'ca = "/etc/pki/harbor-ca.pem"\n'
        + HARBOR_CLIENT,
    ),
    "insecure.example:5000": (
        ["https://insecure.example:5000"],
        marker()
        + 'server = "https://insecure.example:5000"\nskip_verify = true\n\n'
        + '[host."https://insecure.example:5000"]\n'
        + CAPABILITIES
        + "skip_verify = true\n",
    ),
}

# Version 1 (no version key): plugins.cri.registry. '*' becomes _default; scheme-less endpoints get https://,
# or http:// on localhost and loopback addresses; a path is the API root (override_path).
V1 = """\
# containerd 1.x without a version key
[plugins]
  [plugins.cri]
    sandbox_image = "registry.k8s.io/pause:3.2"
    [plugins.cri.registry]
      [plugins.cri.registry.mirrors."*"]
        endpoint = ["mirror.example"]
      [plugins.cri.registry.mirrors."localhost:5000"]
        endpoint = ["localhost:5000", "127.0.0.1:5001/v2/cache", "[::1]:5002", "http://10.0.0.1:5000/"]
    # the CNI plugins
    [plugins.cri.cni]
      bin_dir = "/opt/cni/bin"
"""
V1_MIGRATED = """\
# containerd 1.x without a version key
[plugins]
  [plugins.cri]
    sandbox_image = "registry.k8s.io/pause:3.2"
    [plugins.cri.registry]
      config_path = "/etc/containerd/certs.d"
    # the CNI plugins
    [plugins.cri.cni]
      bin_dir = "/opt/cni/bin"
"""
V1_FILES = {
    "_default": (
        ["https://mirror.example"],
        marker("plugins.cri.registry") + '[host."https://mirror.example"]\n' + CAPABILITIES,
    ),
    "localhost:5000": (
        ["http://localhost:5000", "http://127.0.0.1:5001/v2/cache", "http://[::1]:5002", "http://10.0.0.1:5000"],
        marker("plugins.cri.registry")
        + 'server = "http://localhost:5000"\n\n'
        + '[host."http://localhost:5000"]\n'
        + CAPABILITIES
        + '\n[host."http://127.0.0.1:5001/v2/cache"]\n'
        + CAPABILITIES
        + "override_path = true\n"
        + '\n[host."http://[::1]:5002"]\n'
        + CAPABILITIES
        + '\n[host."http://10.0.0.1:5000"]\n'
        + CAPABILITIES,
    ),
}

# Version 3 (containerd 2.x): its own images plugin; a configs host that is only an endpoint gets a file too.
V3 = """\
version = 3

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = ''   # empty: no certs.d yet
  [plugins.'io.containerd.cri.v1.images'.registry.mirrors.'registry.k8s.io']
    endpoint = ['https://k8s-mirror.example']
  [plugins.'io.containerd.cri.v1.images'.registry.configs.'k8s-mirror.example'.tls]
    ca_file = '/etc/ssl/mirror.pem'

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
"""
V3_MIGRATED = """\
version = 3

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "/etc/containerd/certs.d"   # empty: no certs.d yet

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
"""
V3_SECTION = 'plugins."io.containerd.cri.v1.images".registry'
V3_FILES = {
    "registry.k8s.io": (
        ["https://k8s-mirror.example"],
        marker(V3_SECTION)
        + 'server = "https://registry.k8s.io"\n\n[host."https://k8s-mirror.example"]\n'
        + CAPABILITIES
        + 'ca = "/etc/ssl/mirror.pem"\n',
    ),
    "k8s-mirror.example": (
        ["https://k8s-mirror.example"],
        marker(V3_SECTION)
        + 'server = "https://k8s-mirror.example"\nca = "/etc/ssl/mirror.pem"\n\n[host."https://k8s-mirror.example"]\n'
        + CAPABILITIES
        + 'ca = "/etc/ssl/mirror.pem"\n',
    ),
}

# The comments and layout stay; a comment at the end of a deleted table introduced the next one and stays too.
COMMENTS = (FIXTURES / "v2-comments.toml").read_text()
COMMENTS_MIGRATED = COMMENTS.replace('config_path = "/etc/docker/certs.d"', f'config_path = "{CERTS}"')
COMMENTS_FILES = {}  # its only legacy setting is configs.<host>.auth, which stays

# (config.toml, expected config.toml, {registry: (hosts, hosts.toml)}, in order)
CASES = {
    "pmk-stock": (STOCK, STOCK_MIGRATED, STOCK_FILES),
    "pmk-stock-crlf": (
        STOCK.replace("\n", "\r\n"),
        STOCK_MIGRATED.replace("\n", "\r\n"),
        STOCK_FILES,
    ),
    "v1-wildcard-localhost-paths": (V1, V1_MIGRATED, V1_FILES),
    "v2-configs-tls-and-auth": (V2_CONFIGS, V2_CONFIGS_MIGRATED, V2_CONFIGS_FILES),
    "v2-comments-kept-auth-stays": (COMMENTS, COMMENTS_MIGRATED, COMMENTS_FILES),
    "v3": (V3, V3_MIGRATED, V3_FILES),
}


@pytest.mark.parametrize("case", CASES)
def test_legacy_settings_move_to_hosts_toml_and_leave_config_toml(case):
    text, expected_text, expected_files = CASES[case]
    new_text, info = migrate(text)

    assert new_text == expected_text
    assert info["legacy_removed"] is bool(expected_files)
    assert [entry["registry"] for entry in info["migrated"]] == list(expected_files)
    for entry in info["migrated"]:
        hosts, content = expected_files[entry["registry"]]
        assert entry["hosts"] == hosts
        assert entry["content"] == content
        assert is_migrated(entry["content"]) and not is_managed(entry["content"])
    assert info["config_path"] == CERTS


def test_the_stock_pmk_file_is_the_one_the_facts_describe():
    facts = Path("/work/shared/spec/pmk-node-facts.md")
    if not facts.exists():
        pytest.skip("the facts document is not here")
    quoted = facts.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    assert textwrap.dedent(quoted).rstrip(" ") == STOCK


def test_crlf_files_get_no_bare_line_feed():
    for text in (STOCK.replace("\n", "\r\n"), V2_CONFIGS.replace("\n", "\r\n"), V1.replace("\n", "\r\n")):
        new_text = migrate(text)[0]
        assert new_text.count("\n") == new_text.count("\r\n")


def test_crlf_kept_when_config_path_joins_a_table_with_keys():
    text = f'version = 2\r\n[plugins."{CRI}".registry]\r\n  x = 1\r\n# next\r\n[grpc]\r\n  uid = 0\r\n'
    new_text = migrate(text)[0]
    assert new_text == (
        f'version = 2\r\n[plugins."{CRI}".registry]\r\n  x = 1\r\n  config_path = "{CERTS}"\r\n'
        "# next\r\n[grpc]\r\n  uid = 0\r\n"
    )


@pytest.mark.parametrize("case", CASES)
def test_a_second_run_changes_nothing_and_migrates_nothing(case):
    once = migrate(CASES[case][0])[0]
    twice, info = migrate(once)
    assert twice == once
    assert info["migrated"] == []
    assert info["legacy_removed"] is False
    assert info["previous_config_path"] == CERTS


@pytest.mark.parametrize("case", CASES)
def test_the_hosts_toml_files_hold_what_legacy_resolved(case):
    """The parsed files, independently of their layout: server, hosts in order, the settings per host."""
    new_files = {entry["registry"]: tomllib.loads(entry["content"]) for entry in migrate(CASES[case][0])[1]["migrated"]}
    for registry, document in new_files.items():
        own = [url for url in document.get("host", {}) if urlsplit(url).netloc == registry]
        if registry == "_default":
            assert "server" not in document
        elif own:  # an endpoint on the registry itself: legacy added no default host after the endpoints
            assert document["server"] == own[0]
        elif registry == "docker.io":
            assert document["server"] == "https://registry-1.docker.io"
        else:
            assert document["server"] == f"https://{registry}"
        for url, host in document.get("host", {}).items():
            assert host["capabilities"] == ["pull", "resolve"]
            assert url.startswith(("https://", "http://"))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            f'version = 2\n[plugins."{CRI}"]\n  sandbox_image = "p"\n'
            '  registry.mirrors."docker.io".endpoint = ["https://m.example"]  # mirror\n'
            '  registry.configs."m.example".auth.username = "u"\n'
            '  registry.configs."m.example".auth.password = "p"\n'
            "  other = 1  # keep\n",
            id="dotted-keys",
        ),
        pytest.param(
            f'version = 2\n[plugins."{CRI}".registry]\n'
            '  mirrors = { "docker.io" = { endpoint = ["https://m.example"] } }\n'
            '  configs = { "m.example" = { auth = { username = "u", password = "p" } } }\n'
            '  headers = { X-Origin = ["node"] }  # keep\n',
            id="inline-tables",
        ),
        pytest.param(
            f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n'
            "# gRPC\n[grpc]\n  uid = 0  # keep\n"
            f'[plugins."{CRI}".registry.mirrors."quay.io"]\n  endpoint = ["https://m.example"]\n'
            f'[plugins."{CRI}".registry.configs."m.example".auth]\n  username = "u"\n  password = "p"\n'
            "# the end\n",
            id="out-of-order-tables",
        ),
        pytest.param(
            f'version = 2\n[plugins."{CRI}".registry]\n  config_path = "{CERTS}"\n'
            f'[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n',
            id="config-path-already-set",
        ),
        pytest.param(
            f'version = 2\n[plugins."{CRI}".registry.configs."m.example"]\n  tls = {{ ca_file = "/ca.pem" }}\n'
            '  unknown = "stays"\n'
            f'[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n',
            id="configs-host-keeps-other-keys",
        ),
    ],
)
def test_any_layout_loses_exactly_the_legacy_settings_and_keeps_its_comments(text):
    new_text, info = migrate(text)
    before, after = tomllib.loads(text), tomllib.loads(new_text)
    registry = before["plugins"][CRI].setdefault("registry", {})
    registry.pop("mirrors")
    for host, config in list(registry.get("configs", {}).items()):
        config.pop("tls", None)
        if not config:
            del registry["configs"][host]
    if registry.get("configs") == {}:
        del registry["configs"]
    registry["config_path"] = CERTS
    assert after == before
    comments = [line.split("#", 1)[1] for line in text.splitlines() if "# keep" in line or line.startswith("#")]
    assert comments == [line.split("#", 1)[1] for line in new_text.splitlines() if "#" in line]
    (docker,) = [entry for entry in info["migrated"] if entry["registry"] == "docker.io"]
    assert docker["hosts"] == ["https://m.example"]
    assert migrate(new_text)[0] == new_text


@pytest.mark.parametrize(
    "registry_lines",
    [
        '  registry.configs."m.example".auth.username = "u"\n  registry.configs."m.example".auth.password = "p"\n',
        '  registry.configs."m.example".auth.username = "u"\n',
    ],
    ids=["two-dotted-keys", "one-dotted-key"],
)
def test_config_path_joins_a_registry_table_made_of_dotted_keys(registry_lines):
    """The credentials that stay can be all that defines the registry table: config_path is one more dotted key
    there (a [registry] header of its own would define the table twice, which TOML forbids)."""
    text = f'version = 2\n[plugins."{CRI}"]\n  sandbox_image = "p"\n{registry_lines}  other = 1\n'
    new_text, _info = migrate(text)
    expected = tomllib.loads(text)
    expected["plugins"][CRI]["registry"]["config_path"] = CERTS
    assert tomllib.loads(new_text) == expected
    assert f'\n  registry.config_path = "{CERTS}"\n' in new_text


def test_a_configs_host_without_mirror_is_still_reached_through_the_wildcard_endpoints():
    text = (
        f'version = 2\n[plugins."{CRI}".registry.mirrors."*"]\n  endpoint = ["https://cache.example"]\n'
        f'[plugins."{CRI}".registry.configs."private.example".tls]\n  insecure_skip_verify = true\n'
    )
    files = {entry["registry"]: entry for entry in migrate(text)[1]["migrated"]}
    assert list(files) == ["_default", "private.example"]
    assert files["private.example"]["hosts"] == ["https://cache.example"]
    assert files["private.example"]["content"] == (
        marker()
        + 'server = "https://private.example"\nskip_verify = true\n\n[host."https://cache.example"]\n'
        + CAPABILITIES
    )


@pytest.mark.parametrize(
    ("registry", "endpoints", "server"),
    [
        # the usual insecure local registry: its own endpoint, and nothing legacy containerd did not try
        ("reg.local:5000", '"http://reg.local:5000"', "http://reg.local:5000"),
        ("reg.local:5000", '"reg.local:5000"', "https://reg.local:5000"),
        ("reg.local:5000", '"http://cache.local", "http://reg.local:5000"', "http://reg.local:5000"),
        # another host: legacy appended the registry's default host, http:// for a loopback one
        ("localhost:5000", '"http://cache.local"', "http://localhost:5000"),
        ("127.0.0.1:5000", '"http://cache.local"', "http://127.0.0.1:5000"),
        ("reg.local:5000", '"http://cache.local"', "https://reg.local:5000"),
    ],
)
def test_the_server_is_what_legacy_containerd_tried_last(registry, endpoints, server):
    text = f'version = 2\n[plugins."{CRI}".registry.mirrors."{registry}"]\n  endpoint = [{endpoints}]\n'
    (document,) = [tomllib.loads(entry["content"]) for entry in migrate(text)[1]["migrated"]]
    assert document["server"] == server
    assert set(document["host"]) <= {"http://cache.local", "http://reg.local:5000", "https://reg.local:5000"}


def test_docker_io_server_takes_the_settings_of_its_default_host():
    text = (
        f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n'
        f'[plugins."{CRI}".registry.configs."registry-1.docker.io".tls]\n  ca_file = "/hub.pem"\n'
    )
    files = {entry["registry"]: tomllib.loads(entry["content"]) for entry in migrate(text)[1]["migrated"]}
    assert files["docker.io"]["ca"] == "/hub.pem"
    assert files["registry-1.docker.io"]["ca"] == "/hub.pem"


@pytest.mark.parametrize(
    "auth",
    [
        '  username = "u"\n  password = "hunter2"\n',
        '  auth = "dTpodW50ZXIy"\n',
        '  identitytoken = "refresh-token-value"\n',  # no hosts.toml equivalent: it works only from here
        '  password = "hunter2"\n',  # containerd's to judge, as before the migration
    ],
    ids=["username-password", "auth", "identitytoken", "password-alone"],
)
def test_legacy_credentials_stay_where_containerd_reads_them(auth):
    """configs.<host>.auth works next to config_path on every release, and is the only form containerd 1.6 sends on
    to a token service (issue 23, defects 1 and 2): it stays byte for byte, and no hosts.toml gets a header."""
    text = configs('"m.example"', "auth", auth)
    new_text, info = migrate(text)
    assert f'[{CONFIGS}."m.example".auth]\n{auth}' in new_text
    assert all("header" not in entry["content"] for entry in info["migrated"])
    assert [entry["registry"] for entry in info["migrated"]] == ["docker.io"]


def test_refuse_mode_gives_todays_error_for_the_stock_file():
    with pytest.raises(RegistrySettingError) as raised:
        migrate(STOCK, legacy_mirrors="refuse")
    assert str(raised.value) == (
        'plugins."io.containerd.grpc.v1.cri".registry.mirrors: sets mirrors for docker.io, platform9.io. '
        "containerd treats `mirrors` together with `config_path` as a fatal error (\"`mirrors` cannot be set "
        'when `config_path` is provided") and then runs without its CRI plugin, so nothing was written. To '
        "migrate, write /etc/containerd/certs.d/<registry>/hosts.toml for each of these registries (the "
        "kubenode.registry_mirror.containerd_hosts module does), delete the entries under "
        'plugins."io.containerd.grpc.v1.cri".registry.mirrors (an empty table may stay), and run this again.'
    )


def test_refuse_mode_leaves_configs_auth_alone():
    new_text, info = migrate(COMMENTS, legacy_mirrors="refuse")
    assert "password" in new_text
    assert info["migrated"] == [] and info["legacy_removed"] is False


def test_an_unknown_mode_is_refused():
    with pytest.raises(RegistrySettingError, match=r"^legacy_mirrors: must be one of migrate, refuse"):
        migrate(STOCK, legacy_mirrors="ignore")


MIRRORS = f'plugins."{CRI}".registry.mirrors'
CONFIGS = f'plugins."{CRI}".registry.configs'


def mirror(endpoints, registry='"docker.io"'):
    return f'version = 2\n[{MIRRORS}.{registry}]\n  endpoint = [{endpoints}]\n'


def configs(host, table, body):
    return mirror('"https://m.example"') + f"[{CONFIGS}.{host}.{table}]\n{body}"


@pytest.mark.parametrize(
    "text, key, words",
    [
        pytest.param(
            mirror('"https://m.example"') + f'[{MIRRORS}."docker.io".rewrite]\n  "^library/(.*)" = "hub/$1"\n',
            f'{MIRRORS}."docker.io".rewrite',
            ["only endpoint"],
            id="rewrite",
        ),
        pytest.param(mirror('"https://m.example"', '"x y"'), f'{MIRRORS}."x y"', ["host[:port]"], id="bad-registry"),
        pytest.param(
            mirror('"https://m.example"', '"a/b"'), f'{MIRRORS}."a/b"', ["host[:port]"], id="registry-with-slash"
        ),
        pytest.param(
            mirror('"https://m.example", "https://user:hunter2@m2.example"'),
            f'{MIRRORS}."docker.io".endpoint[1]',
            ["user information"],
            id="endpoint-userinfo",
        ),
        pytest.param(
            mirror("'https://m.example/a\"b'"), f'{MIRRORS}."docker.io".endpoint[0]', ["quotes"], id="endpoint-quote"
        ),
        pytest.param(
            mirror('"https://m.example/\\u0007"'),
            f'{MIRRORS}."docker.io".endpoint[0]',
            ["control characters"],
            id="endpoint-control-character",
        ),
        pytest.param(
            mirror('"ftp://m.example"'), f'{MIRRORS}."docker.io".endpoint[0]', ["scheme"], id="endpoint-scheme"
        ),
        pytest.param(
            mirror('"https://m.example/?x=1"'), f'{MIRRORS}."docker.io".endpoint[0]', ["query"], id="endpoint-query"
        ),
        pytest.param(mirror('"https://m example"'), f'{MIRRORS}."docker.io".endpoint[0]', [], id="endpoint-space"),
        pytest.param(mirror("1"), f'{MIRRORS}."docker.io".endpoint[0]', ["not a URL"], id="endpoint-not-a-string"),
        pytest.param(
            f'version = 2\n[{MIRRORS}."docker.io"]\n  endpoint = "https://m.example"\n',
            f'{MIRRORS}."docker.io".endpoint',
            ["not an array"],
            id="endpoint-not-a-list",
        ),
        pytest.param(
            configs('"m.example"', "tls", '  key_file = "/k.pem"\n'),
            f'{CONFIGS}."m.example".tls.key_file',
            ["without cert_file"],
            id="key-without-cert",
        ),
        pytest.param(
            configs('"m.example"', "tls", '  ca_file = "ca.pem"\n'),
            f'{CONFIGS}."m.example".tls.ca_file',
            ["absolute"],
            id="relative-ca",
        ),
        pytest.param(
            configs('"m.example"', "tls", '  insecure_skip_verify = "yes"\n'),
            f'{CONFIGS}."m.example".tls.insecure_skip_verify',
            ["boolean"],
            id="skip-verify-not-bool",
        ),
        pytest.param(
            configs('"m.example"', "tls", '  min_version = "1.2"\n'),
            f'{CONFIGS}."m.example".tls.min_version',
            ["cannot be migrated"],
            id="unknown-tls-key",
        ),
        pytest.param(
            configs('"bad host"', "tls", '  ca_file = "/ca.pem"\n'),
            f'{CONFIGS}."bad host"',
            ["host[:port]"],
            id="bad-configs-host",
        ),
        pytest.param(
            f"version = 2\n[plugins.\"{CRI}\".registry]\n  mirrors = ['https://m.example']\n",
            MIRRORS,
            ["not a table"],
            id="mirrors-not-a-table",
        ),
    ],
)
def test_what_cannot_be_migrated_is_refused_naming_the_key(text, key, words):
    with pytest.raises(RegistrySettingError) as raised:
        migrate(text)
    message = str(raised.value)
    assert raised.value.field == key
    assert message.startswith(f"{key}: ")
    assert message.endswith("nothing was written")
    for word in words:
        assert word in message
    assert "hunter2" not in message


def test_a_refused_migration_refuses_the_whole_file_in_refuse_mode_too():
    text = configs('"m.example"', "auth", '  identitytoken = "t"\n')
    with pytest.raises(RegistrySettingError, match=r"registry\.mirrors: sets mirrors for docker\.io"):
        migrate(text, legacy_mirrors="refuse")


MASKED = "********"


@pytest.mark.parametrize(
    "text, secrets, shown",
    [
        pytest.param(
            f'[plugins."{CRI}".registry.configs."a".auth]\n  username = "alice"\n'
            '  password = "hunter2"  # the comment stays\n  auth = "YWxpY2U6aHVudGVyMg=="\n'
            '  identitytoken = "tok-123"\n',
            ["hunter2", "YWxpY2U6aHVudGVyMg==", "tok-123"],
            ["alice", "# the comment stays"],
            id="tables",
        ),
        pytest.param(
            f'[plugins."{CRI}".registry]\n'
            '  configs = { "a" = { auth = { username = "alice", password = "inline-pw" } } }\n',
            ["inline-pw"],
            ["alice"],
            id="inline-table",
        ),
        pytest.param(
            f'[plugins."{CRI}"]\n  registry.configs."a".auth.password = "dotted-pw"\n'
            '  registry.configs."a".auth.username = "alice"\n',
            ["dotted-pw"],
            ["alice"],
            id="dotted-keys",
        ),
        pytest.param(
            f'[plugins."{CRI}".registry.headers]\n  Authorization = ["Bearer abc.def"]\n'
            '[host."https://m.example".header]\n  authorization = "Basic Zm9vOmJhcg=="\n',
            ["Bearer abc.def", "Zm9vOmJhcg=="],
            ["Authorization", "authorization"],
            id="headers",
        ),
        pytest.param(
            f'[plugins."{CRI}".registry.configs."a".auth]\n  password = "split"\n[grpc]\n  uid = 0\n'
            f'[plugins."{CRI}".registry.configs."b".auth]\n  password = "out-of-order"\n',
            ["split", "out-of-order"],
            ["uid = 0"],
            id="out-of-order",
        ),
    ],
)
def test_diffs_show_no_secret_wherever_it_is(text, secrets, shown):
    masked = mask_toml(text)
    for secret in secrets:
        assert secret not in masked
    for visible in shown:
        assert visible in masked
    assert MASKED in masked
    assert mask_toml(masked) == masked
    assert len(masked.splitlines()) == len(text.splitlines())


def test_text_that_cannot_be_parsed_is_not_shown():
    assert "hunter2" not in mask_toml('password = "hunter2"\n[broken\n')
    assert mask_toml("") == ""


def containerd_dump(tmp_path, text, name):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    done = subprocess.run(
        [CONTAINERD, "--config", str(path), "config", "dump"], capture_output=True, text=True, check=True, timeout=60
    )
    return tomllib.loads(done.stdout)


@needs_containerd
@pytest.mark.parametrize("case", [name for name in CASES if name != "v3"])
def test_containerd_1x_reads_config_path_and_no_legacy_settings(case, tmp_path):
    settings = containerd_dump(tmp_path, migrate(CASES[case][0])[0], case)
    registry = settings["plugins"][CRI]["registry"]
    assert registry["config_path"] == CERTS
    assert not registry.get("mirrors")
    assert all("tls" not in config for config in registry.get("configs", {}).values())
    # the credentials stay, and containerd reads them
    plugins = tomllib.loads(CASES[case][0])["plugins"]
    given = (plugins.get(CRI) or plugins["cri"])["registry"].get("configs", {})
    read = registry.get("configs", {})
    assert {host: {key: value for key, value in read[host]["auth"].items() if value} for host in read} == {
        host: config["auth"] for host, config in given.items() if "auth" in config
    }
