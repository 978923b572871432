"""_certs_d_apply: a certs.d Plan carried out on real files, with check mode and diff; the one CA placement."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import CaError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d import ca_step, plan
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d_apply import (
    NodeDisk,
    apply_ca,
    apply_plan,
    text_diff,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import MARKER, with_kept_record
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import file_arguments

OURS = f"{MARKER}\nserver = 'https://mirror'\n"
FOREIGN = "server = 'https://registry-1.docker.io'\n"
KEY = f"{MARKER}\n-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
CA_TEXT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def make_module(check_mode=False, diff=True, **params):
    args = {"_ansible_check_mode": check_mode, "_ansible_diff": diff, **params}
    with patch_module_args(args):
        return AnsibleModule(argument_spec={"backup": {"type": "bool", "default": False}}, add_file_common_args=True,
                             supports_check_mode=True)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_node_disk(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "dirlink").symlink_to(tmp_path / "dir")
    disk = NodeDisk()
    assert [disk.kind(str(tmp_path / name)) for name in ("dir", "file", "link", "missing")] == [
        "other", "file", "link", None]
    assert sorted(disk.directories(str(tmp_path))) == ["dir"]
    assert sorted(disk.files(str(tmp_path))) == ["file"]
    assert disk.directories(str(tmp_path / "missing")) == disk.files(str(tmp_path / "file")) == []
    assert disk.read(str(tmp_path / "file"), 1) == b"ab" and disk.read(str(tmp_path / "missing")) is None
    assert disk.exists(str(tmp_path / "link")) and not disk.exists(str(tmp_path / "missing"))


def seed(root):
    (root / "quay.io").mkdir(parents=True)
    (root / "quay.io" / "hosts.toml").write_text(FOREIGN)
    (root / "gone.example").mkdir()
    (root / "gone.example" / "hosts.toml").write_text(OURS)


@pytest.mark.parametrize("check_mode", [False, True])
def test_apply_plan(tmp_path, check_mode):
    root = tmp_path / "certs.d"
    seed(root)
    hosts_files = [{"directory": "docker.io", "content": OURS, "tls_files": {"m.client.key": KEY}},
                   {"directory": "quay.io", "content": OURS}]
    module = make_module(check_mode)
    result, failed = apply_plan(module, plan(NodeDisk(), str(root), hosts_files, "present"))
    assert not failed and result["changed"]
    assert [(f["registry"], f["status"]) for f in result["files"]] == [
        ("docker.io", "created"), ("quay.io", "adopted"), ("gone.example", "removed")]
    assert [(f["name"], f["status"]) for f in result["tls_files"]] == [("m.client.key", "created")]
    assert result["_shown_diffs"][0]["after"] == "******** (changed)\n"  # a key is masked
    assert [base64.b64decode(t["after"]).decode() if t["after"] else None for t in result["_texts"]] == [
        OURS, with_kept_record(OURS, FOREIGN.encode()), None]  # ours records the file it keeps aside
    if check_mode:
        assert sorted(p.name for p in root.iterdir()) == ["gone.example", "quay.io"]
        assert (root / "quay.io" / "hosts.toml").read_text() == FOREIGN
        return
    assert sorted(p.name for p in root.iterdir()) == ["docker.io", "quay.io"]
    assert (root / "docker.io" / "hosts.toml").read_text() == OURS and mode(root / "docker.io" / "hosts.toml") == 0o600
    assert mode(root / "docker.io" / "m.client.key") == 0o600
    assert (root / "quay.io" / "hosts.toml.before-kubenode").read_text() == FOREIGN
    again, _failed = apply_plan(make_module(), plan(NodeDisk(), str(root), hosts_files, "present"))
    assert not again["changed"] and {f["status"] for f in again["files"] + again["tls_files"]} == {"unchanged"}
    back, _failed = apply_plan(make_module(), plan(NodeDisk(), str(root), [{"directory": "docker.io"}], "absent"))
    assert [f["status"] for f in back["files"]] == ["removed", "restored"]
    assert [p.name for p in root.iterdir()] == ["quay.io"]
    assert (root / "quay.io" / "hosts.toml").read_text() == FOREIGN


def test_apply_plan_says_what_was_done_before_a_failure(tmp_path):
    root = tmp_path / "certs.d"
    (root / "docker.io").mkdir(parents=True)
    (root / "docker.io" / "hosts.toml").write_text(OURS)
    (root / "docker.io" / "hosts.toml").chmod(0o600)
    hosts_files = [{"directory": name, "content": OURS} for name in ("docker.io", "quay.io", "zz.example")]
    certs_d = plan(NodeDisk(), str(root), hosts_files, "present")
    (root / "quay.io").write_text("a file where a directory goes, since the plan was made")
    result, failed = apply_plan(make_module(diff=False), certs_d)
    assert failed and "_texts" not in result and not result["changed"]
    assert [f["status"] for f in result["files"]] == ["unchanged", "failed", "skipped"]
    assert result["msg"].startswith(f"cannot create directory {root / 'quay.io'}")
    assert result["msg"].endswith("Done before the failure: docker.io unchanged. Not attempted: zz.example. "
                                  "Nothing on the node changed.")


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("before", [None, CA_TEXT, "old"])
def test_apply_plan_places_the_ca_first(tmp_path, check_mode, before):
    path = tmp_path / "pki" / "ca.crt"
    if before is not None:
        path.parent.mkdir()
        path.write_text(before)
        path.chmod(0o644)
    step = ca_step(str(path), CA_TEXT, None if before is None else before.encode(), True, 0o644)
    result, failed = apply_plan(make_module(check_mode), plan(NodeDisk(), str(tmp_path / "certs.d"), [], "present",
                                                              ca=step))
    status = {None: "created", CA_TEXT: "unchanged", "old": "updated"}[before]
    assert not failed and result["ca"] == {"path": str(path), "status": status}
    assert result["changed"] == (before != CA_TEXT)
    assert result["_shown_diffs"] == ([] if before == CA_TEXT else [text_diff(str(path), step.before, CA_TEXT)])
    if not check_mode:
        assert path.read_text() == CA_TEXT and mode(path) == 0o644


def test_apply_plan_only_checks_a_ca_to_check(tmp_path):
    step = ca_step(str(tmp_path / "ca.crt"), CA_TEXT, CA_TEXT.encode(), False, 0o644)
    result, failed = apply_plan(make_module(), plan(NodeDisk(), str(tmp_path), [], "present", ca=step))
    assert (result["ca"], result["changed"], failed) == ({"path": str(tmp_path / "ca.crt"), "status": "checked"},
                                                         False, False)
    assert not (tmp_path / "ca.crt").exists()


def test_a_ca_that_cannot_be_placed_stops_every_hosts_toml(tmp_path):
    (tmp_path / "pki").write_text("a file where a directory goes")
    step = ca_step(str(tmp_path / "pki" / "ca.crt"), CA_TEXT, None, True, 0o644)
    hosts_files = [{"directory": "docker.io", "content": OURS}]
    result, failed = apply_plan(make_module(), plan(NodeDisk(), str(tmp_path / "certs.d"), hosts_files, "present",
                                                    ca=step))
    assert failed and result["msg"].startswith("ca_file: cannot create directory")
    assert result["msg"].endswith("No hosts.toml was written.")
    assert (result["files"], result["changed"]) == ([], False) and not (tmp_path / "certs.d").exists()


@pytest.mark.parametrize("before", [None, "old"])
def test_apply_ca_puts_the_file_back_when_verify_fails(tmp_path, before):
    path = tmp_path / "new" / "ca.crt"
    if before is not None:
        path.parent.mkdir()
        path.write_text(before)
        path.chmod(0o640)
    module = make_module()

    def verify():
        assert path.read_text() == CA_TEXT
        raise CaError("readable_by: no")

    with pytest.raises(CaError, match="^readable_by: no; the file was put back as it was$"):
        apply_ca(module, str(path), CA_TEXT, None if before is None else before.encode(),
                 file_arguments(module, str(path), "0644"), verify=verify)
    if before is None:
        assert not path.parent.exists()
    else:
        assert path.read_text() == before and mode(path) == 0o640
