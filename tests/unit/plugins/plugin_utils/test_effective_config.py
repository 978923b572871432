# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containerd's effective configuration: the CRI registry table per config version, the sandbox image, drop-ins.

The dump-1.6-*.toml fixtures are Debian's containerd 1.6 `containerd config dump` output (the path of
config.toml replaced by /etc/containerd/config.toml); the 2.x ones are hand-written in go-toml v2's layout,
as 2.x is not in Debian. Where containerd 1.6 is installed, the drop-in cases are also loaded by it, and
what it does with them must agree with what is said here.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import effective_report
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils import _effective_config as config
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._containerd_config import ensure_config_path

FIXTURES = Path(__file__).parents[2] / "fixtures" / "containerd_config"
OURS = "/etc/containerd/certs.d"
MAIN = "/etc/containerd/config.toml"
CRI = "io.containerd.grpc.v1.cri"
IMAGES = "io.containerd.cri.v1.images"
CRI_SECTION = f'plugins."{CRI}".registry'
IMAGES_SECTION = f'plugins."{IMAGES}".registry'
STOCK = (FIXTURES / "pmk-stock.toml").read_text()
MIGRATED = ensure_config_path(STOCK, OURS)[0]
CONTAINERD = shutil.which("containerd")
needs_containerd = pytest.mark.skipif(CONTAINERD is None, reason="containerd 1.x binary not installed")


def read(path):
    try:
        return {"content": base64.b64encode(Path(path).read_bytes()).decode()}
    except FileNotFoundError:
        return {"error": "does not exist"}


def effective(dump, main_text, major, main=MAIN):
    """The Effective configuration of a dump, its report made as the module makes it, the files read from disk."""
    report = effective_report(f"containerd --config {main} config dump", main, dump, major, read)
    return config.read_effective(report, main, main_text)


def fixture(name):
    return (FIXTURES / name).read_text()


# --- the CRI registry table and the sandbox image, per config version ---------------------------------------------

@pytest.mark.parametrize(
    ("dump", "major", "version", "section", "config_path", "image"),
    [
        ("dump-1.x-v1.toml", 1, 1, "plugins.cri.registry", OURS, "k8s.gcr.io/pause:3.2"),
        ("dump-1.6-pmk-stock.toml", 1, 2, CRI_SECTION, "", "registry.k8s.io/pause:3.6"),
        ("dump-1.6-migrated.toml", 1, 2, CRI_SECTION, OURS, "registry.k8s.io/pause:3.6"),
        ("dump-2.1-v3.toml", 2, 3, IMAGES_SECTION, OURS, "registry.k8s.io/pause:3.10"),
        ("dump-2.2-default-colon-list.toml", 2, 3, IMAGES_SECTION, f"{OURS}:/etc/docker/certs.d",
         "registry.k8s.io/pause:3.10.1"),
        ("dump-2.3-v4.toml", 2, 4, IMAGES_SECTION, OURS, "registry.k8s.io/pause:3.10.1"),
    ],
)
def test_the_registry_table_and_sandbox_image_follow_the_dumps_version(dump, major, version, section, config_path,
                                                                       image):
    result = effective(fixture(dump), MIGRATED, major)
    assert result.summary() == {"config_path": config_path, "section": section, "version": version, "imports": []}
    assert config.sandbox_image(result.settings) == image


@pytest.mark.parametrize(
    ("settings", "image"),
    [
        ({"version": 2, "plugins": {CRI: {}}}, ""),
        ({"version": 3, "plugins": {IMAGES: {"pinned_images": {}}}}, ""),
        ({"version": 3, "plugins": {CRI: {"config.sandbox_image": "ignored-on-2.x"}}}, ""),
        ({"version": 2, "plugins": {IMAGES: {"pinned_images": {"sandbox": "ignored-on-1.x"}}}}, ""),
        ({"version": 4, "plugins": {IMAGES: {"pinned_images": {"sandbox": "example.org/pause:1"}}}},
         "example.org/pause:1"),
        ({}, ""),
    ],
)
def test_no_sandbox_image_is_an_empty_string(settings, image):
    assert config.sandbox_image(settings) == image


# --- a dump's check ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dump", ["dump-1.6-migrated.toml", "dump-1.x-v1.toml", "dump-2.1-v3.toml", "dump-2.3-v4.toml"])
def test_a_dump_that_reads_our_directory_passes(dump):
    major = 1 if "1." in dump.split("-")[1] else 2
    assert config.dump_problems(effective(fixture(dump), MIGRATED, major), OURS) == ([], [])


def test_the_stock_pmk_dump_fails_naming_config_path_and_the_mirrors():
    result = effective(fixture("dump-1.6-pmk-stock.toml"), STOCK, 1)
    problems, warnings = config.dump_problems(result, OURS)
    assert problems == [
        f"{CRI_SECTION}.config_path is '', not '{OURS}'",
        f"{CRI_SECTION}.mirrors is set for docker.io, platform9.io",
    ]
    assert warnings == []
    message = config.not_used_message(result, OURS, problems, [])
    assert message.startswith(f"{config.NOT_USED}: in containerd's effective configuration "
                              f"(`containerd --config {MAIN} config dump`), ")
    fix = f'Set config_path = "{OURS}" in the [{CRI_SECTION}] table of {MAIN}, and move the legacy registry '
    assert fix in message
    assert "(containerd_config with state=present migrates config.toml's)" in message


def test_a_colon_list_is_not_our_directory_and_says_why():
    dump = fixture("dump-2.2-default-colon-list.toml")
    problems, _warnings = config.dump_problems(effective(dump, MIGRATED, 2), OURS)
    (problem,) = problems
    assert problem.startswith(f"{IMAGES_SECTION}.config_path is '{OURS}:/etc/docker/certs.d', which lists several")
    assert "transfer service, which reads it as one directory" in problem


def test_legacy_entries_active_on_2x_fail_but_tls_there_is_only_a_warning():
    problems, warnings = config.dump_problems(effective(fixture("dump-2.1-legacy.toml"), MIGRATED, 2), OURS)
    assert problems == [
        f"{IMAGES_SECTION}.config_path is '', not '{OURS}'",
        f"{IMAGES_SECTION}.mirrors is set for docker.io",
        f"{IMAGES_SECTION}.auths is set for https://harbor.example",
    ]
    (warning,) = warnings  # 2.x does not use configs.<host>.tls next to config_path (registryHosts)
    assert warning.startswith(f"{IMAGES_SECTION}.configs: tls for harbor.example is deprecated and not used")


@pytest.mark.parametrize(
    ("tls", "active"),
    [
        ('ca_file = ""\ncert_file = ""\ninsecure_skip_verify = false\nkey_file = ""\n', False),  # as 1.6 prints none
        ('ca_file = ""\ncert_file = ""\ninsecure_skip_verify = true\nkey_file = ""\n', True),
    ],
)
def test_tls_on_1x_fails_only_when_it_holds_a_value(tls, active):
    dump = (f'version = 2\nimports = ["{MAIN}"]\n[plugins."{CRI}".registry]\nconfig_path = "{OURS}"\n'
            f'[plugins."{CRI}".registry.configs."r.example".tls]\n{tls}')
    problems, _warnings = config.dump_problems(effective(dump, MIGRATED, 1), OURS)
    assert problems == ([f"{CRI_SECTION}.configs.<host>.tls is set for r.example"] if active else [])


def test_a_version_3_config_toml_on_1x_is_named_as_such():
    result = effective(fixture("dump-1.6-pmk-stock.toml").replace("mirrors.", "unused."), fixture("v3-comments.toml"),
                       1)
    problems, _warnings = config.dump_problems(result, OURS)
    message = config.not_used_message(result, OURS, problems, [])
    assert f"{MAIN} is a config version 3 file, which this containerd (whose dump is version 2) does not" in message


# --- drop-ins ---------------------------------------------------------------------------------------------------

def place(tmp_path, main_text, drop_ins):
    """config.toml importing conf.d/*.toml, and the drop-ins there; returns config.toml's path."""
    (tmp_path / "conf.d").mkdir()
    for name, text in drop_ins.items():
        (tmp_path / "conf.d" / name).write_text(text)
    main = tmp_path / "config.toml"
    main.write_text(main_text.replace("version = 2\n", f'version = 2\nimports = ["{tmp_path}/conf.d/*.toml"]\n', 1))
    return main


def dump_1x(tmp_path, main):
    """What containerd 1.6 lists in imports for them (only the list matters to the drop-in checks)."""
    files = ", ".join(f'"{path}"' for path in [main, *sorted((tmp_path / "conf.d").glob("*.toml"))])
    return fixture("dump-1.6-migrated.toml").replace(f'imports = ["{MAIN}"]', f"imports = [{files}]")


def dump_2x(entries):
    listed = ", ".join(f"'{entry}'" for entry in entries)
    return fixture("dump-2.1-v3.toml").replace("imports = []", f"imports = [{listed}]")


# (drop-in text, what the message must say; None: accepted)
DROP_INS_1X = {
    "legacy-mirrors": (
        f'[plugins."{CRI}".registry.mirrors."docker.io"]\nendpoint = ["https://m.example"]\n',
        [f"sets mirrors (docker.io) in [{CRI_SECTION}]", "Drop-ins are not edited", "hosts.toml files under"],
    ),
    "legacy-tls": (
        f'[plugins."{CRI}".registry.configs."r.example".tls]\ninsecure_skip_verify = true\n',
        ["sets configs.<host>.tls (r.example)"],
    ),
    "legacy-auths": (
        f'[plugins."{CRI}".registry.auths."https://r.example"]\nusername = "u"\n',
        ["sets auths (https://r.example)"],
    ),
    "other-config-path": (
        f'[plugins."{CRI}".registry]\nconfig_path = "/etc/docker/certs.d"\n',
        [f"sets {CRI_SECTION}.config_path = '/etc/docker/certs.d'", "replaces", f'Set config_path = "{OURS}" there'],
    ),
    "cri-section-without-config-path": (
        f'[plugins."{CRI}".containerd]\nsnapshotter = "native"\n',
        [f'has a [plugins."{CRI}"] table without {CRI_SECTION}.config_path', "does not merge them",
         f'Add config_path = "{OURS}" to its [{CRI_SECTION}] table'],
    ),
    "cri-section-with-our-config-path": (
        f'[plugins."{CRI}"]\nsandbox_image = "example.org/pause:1"\n'
        f'[plugins."{CRI}".registry]\nconfig_path = "{OURS}"\n',
        None,
    ),
    "unrelated": ('[debug]\nlevel = "debug"\n[plugins."io.containerd.runtime.v1.linux"]\nshim_debug = true\n', None),
    "images-table-1x-ignores": (f'[plugins."{IMAGES}".registry.mirrors."docker.io"]\nendpoint = ["https://m"]\n', None),
}


def assert_drop_in_verdict(problems, drop_in, words):
    """No problem when words is None; else one problem, for drop_in, holding every one of words."""
    if words is None:
        assert problems == []
        return
    (problem,) = problems
    assert problem.startswith(f"{drop_in}: ")
    for word in words:
        assert word in problem


@pytest.mark.parametrize("case", DROP_INS_1X)
def test_drop_ins_on_1x(tmp_path, case):
    text, words = DROP_INS_1X[case]
    main = place(tmp_path, MIGRATED, {"10-drop-in.toml": f"version = 2\n{text}"})
    result = effective(dump_1x(tmp_path, main), main.read_text(), 1, main=str(main))
    assert result.summary()["imports"] == [f"{tmp_path}/conf.d/10-drop-in.toml"]
    assert_drop_in_verdict(config.drop_in_problems(result, OURS), f"{tmp_path}/conf.d/10-drop-in.toml", words)


@needs_containerd
@pytest.mark.parametrize("case", DROP_INS_1X)
def test_containerd_1x_agrees_with_each_drop_in_verdict(tmp_path, case):
    """The real binary loads config.toml and the drop-in: what it then runs with reads certs.d alone exactly when
    the drop-in is accepted (tls and auths aside: they do not change config_path or mirrors, only the check)."""
    text, words = DROP_INS_1X[case]
    main = place(tmp_path, MIGRATED, {"10-drop-in.toml": f"version = 2\n{text}"})
    dump = subprocess.run([CONTAINERD, "--config", str(main), "config", "dump"], capture_output=True, text=True,
                          check=True, cwd="/", timeout=60).stdout
    result = effective(dump, main.read_text(), 1, main=str(main))
    problems, _warnings = config.dump_problems(result, OURS)
    assert (problems == []) == (words is None)
    assert bool(config.drop_in_problems(result, OURS)) == (words is not None)


DROP_INS_2X = {
    "legacy-mirrors-v3": (
        f"version = 3\n[plugins.'{IMAGES}'.registry.mirrors.'docker.io']\nendpoint = ['https://m.example']\n",
        [f"sets mirrors (docker.io) in [{IMAGES_SECTION}]"],
    ),
    "legacy-mirrors-v2-migrated-on-load": (
        f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\nendpoint = ["https://m.example"]\n',
        [f"sets mirrors (docker.io) in [{CRI_SECTION}]"],
    ),
    "other-config-path-v3": (
        f"version = 3\n[plugins.'{IMAGES}'.registry]\nconfig_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n",
        [f"sets {IMAGES_SECTION}.config_path = '{OURS}:/etc/docker/certs.d'", "overrides",
         f'Set it to "{OURS}" or remove it'],
    ),
    "images-section-without-config-path-merges": (
        f"version = 3\n[plugins.'{IMAGES}']\nsnapshotter = 'native'\n[plugins.'{IMAGES}'.pinned_images]\n"
        "sandbox = 'example.org/pause:1'\n",
        None,
    ),
    "our-config-path-v4": (f"version = 4\n[plugins.'{IMAGES}'.registry]\nconfig_path = '{OURS}'\n", None),
    "grpc-cri-table-ignored-in-v3": (
        f"version = 3\n[plugins.'{CRI}'.registry.mirrors.'docker.io']\nendpoint = ['https://m']\n", None
    ),
    "unrelated": ("[debug]\nlevel = 'debug'\n", None),
}


@pytest.mark.parametrize("case", DROP_INS_2X)
def test_drop_ins_on_2x(tmp_path, case):
    text, words = DROP_INS_2X[case]
    main = place(tmp_path, MIGRATED, {"10-drop-in.toml": text})
    result = effective(dump_2x([f"{tmp_path}/conf.d/*.toml"]), main.read_text(), 2, main=str(main))
    assert result.summary()["imports"] == [f"{tmp_path}/conf.d/10-drop-in.toml"]
    assert_drop_in_verdict(config.drop_in_problems(result, OURS), f"{tmp_path}/conf.d/10-drop-in.toml", words)


def test_2x_follows_imports_as_it_loads_them_not_as_its_dump_lists_them(tmp_path):
    """2.2's dump lists the default conf.d pattern although a config.toml without it does not load it; nested
    imports (relative to config.toml's directory, or absolute) are followed, each file once."""
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "stray.toml").write_text(f"[plugins.'{IMAGES}'.registry]\nconfig_path = '/elsewhere'\n")
    (tmp_path / "a.toml").write_text(f"imports = ['b.toml', '{tmp_path}/a.toml']\n")
    (tmp_path / "b.toml").write_text("[debug]\nlevel = 'info'\n")
    main = tmp_path / "config.toml"
    main.write_text("version = 3\nimports = ['a.toml']\n")
    dump = dump_2x([f"{tmp_path}/conf.d/*.toml", "a.toml", "b.toml", f"{tmp_path}/a.toml"])
    result = effective(dump, main.read_text(), 2, main=str(main))
    assert result.summary()["imports"] == [f"{tmp_path}/a.toml", f"{tmp_path}/b.toml"]
    assert config.drop_in_problems(result, OURS) == []


def test_2x_refuses_a_relative_import_it_cannot_follow(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.toml").write_text("imports = ['b.toml']\n")
    main = tmp_path / "config.toml"
    main.write_text(f"version = 3\nimports = ['{tmp_path}/other/a.toml']\n")
    dump = dump_2x([f"{tmp_path}/other/a.toml", "b.toml"])
    refused = (rf"^{tmp_path}/other/a.toml: imports 'b.toml', relative to {tmp_path}/other, which this module "
               "does not follow; write it")
    with pytest.raises(config.EffectiveConfigError, match=refused):
        effective(dump, main.read_text(), 2, main=str(main))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "containerd imports it, but it does not exist, so it cannot be checked"),
        ("[debug\n", "containerd imports it, but it is not valid TOML"),
        (b"\xff\xfe", "containerd imports it, but it is not UTF-8 text"),
    ],
)
def test_a_drop_in_that_cannot_be_read_is_named(tmp_path, content, reason):
    drop_in = tmp_path / "10.toml"
    if isinstance(content, bytes):
        drop_in.write_bytes(content)
    elif content is not None:
        drop_in.write_text(content)
    main = tmp_path / "config.toml"
    dump = f'version = 2\nimports = ["{main}", "{drop_in}"]\n'
    with pytest.raises(config.EffectiveConfigError, match=f"^{drop_in}: {reason}"):
        effective(dump, MIGRATED, 1, main=str(main))


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"error": "`containerd --config /c config dump` failed (exit 1): boom"}, r"failed \(exit 1\): boom"),
        ({"dump": base64.b64encode(b"not toml").decode()}, "printed text that is not TOML"),
        ({"dump": base64.b64encode(b"version = 9\n").decode()}, "printed config version 9, which this module"),
        ({"dump": base64.b64encode(b"version = 2\nimports = ['/x']\n").decode(), "imports": []},
         r"its imports \['/x'\] were read on the node as \[\] \(please report this\)"),
    ],
)
def test_a_report_that_cannot_be_checked_says_why(report, message):
    full = {"command": "containerd --config /c config dump", "found": True, "error": None,
            "dump": base64.b64encode(b"version = 2\n").decode(), "imports": [], "expanded": {}, "files": {}}
    with pytest.raises(config.EffectiveConfigError, match=message):
        config.read_effective({**full, **report}, "/c", "version = 2\n")


# --- config.toml itself, before it is written ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "containerd_version", "words"),
    [
        (MIGRATED, "1.6.20~ds1", []),
        (fixture("v3-comments.toml"), "1.6.20~ds1", ["config version 3 file, which containerd 1.6.20~ds1 does not"]),
        ("version = 4\n", "1.7.24", ["config version 4 file, which containerd 1.7.24 does not read"]),
        ("version = 4\n", "2.2.0", ["config version 4 file, which containerd 2.2.0 refuses (version 4 needs containerd "
                                    "2.3 or later). Give it version = 3"]),
        ("version = 4\n", "2.3.0", []),
        ("version = 3\n", "2.1.9", []),
        ("version = 3\n", None, []),  # unknown containerd: the write's own dump decides
        (f'version = 2\n[plugins."{CRI}".registry.auths."https://r"]\nusername = "u"\n', "1.6.20",
         [f"sets auths (https://r) in [{CRI_SECTION}], deprecated credentials this module does not migrate"]),
    ],
)
def test_config_toml_is_refused_before_writing_what_containerd_would_not_read(text, containerd_version, words):
    problems = config.main_file_problems(text, MAIN, OURS, containerd_version)
    assert len(problems) == len(words)
    for problem, word in zip(problems, words, strict=True):
        assert problem.startswith(f"{MAIN}: ")
        assert word in problem


def test_every_fixture_dump_parses_as_toml():
    for dump in FIXTURES.glob("dump-*.toml"):
        tomllib.loads(dump.read_text())
