"""_io: who can read a file on the node (permission bits and owners, as the kernel applies them)."""

from __future__ import annotations

import os
import pwd
import shutil

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _io

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates files owned by root for user nobody")


def _nobody():
    try:
        return pwd.getpwnam("nobody").pw_name
    except KeyError:
        pytest.skip("no user nobody")


@needs_root
def test_readable_by(open_dir):
    nobody = _nobody()
    public, private = open_dir / "public.crt", open_dir / "private.crt"
    public.write_text("x")
    public.chmod(0o644)
    private.write_text("x")
    private.chmod(0o600)
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    hidden = closed / "ca.crt"
    hidden.write_text("x")
    hidden.chmod(0o644)

    assert _io.readable_by(str(public), nobody)[0] is True
    ok, reason = _io.readable_by(str(private), nobody)
    assert ok is False and f"cannot read {private} (mode 0600, owner root:root)" in reason
    ok, reason = _io.readable_by(str(hidden), nobody)
    assert ok is False and f"cannot enter directory {closed} (mode 0700" in reason
    assert _io.readable_by(str(private), "root") == (True, "root reads any file")
    assert _io.readable_by(str(public), "no-such-user-kubenode")[0] is False

    # the attributes the file has decide: a new mode, a new owner
    private.chmod(0o644)
    assert _io.readable_by(str(private), nobody)[0] is True
    public.chmod(0o600)
    assert _io.readable_by(str(public), nobody)[0] is False
    private.chmod(0o600)
    os.chown(private, pwd.getpwnam(nobody).pw_uid, 0)
    assert _io.readable_by(str(private), nobody)[0] is True
    os.chown(private, 0, 0)
    public.chmod(0o644)
    # directories not created yet count as enterable (ensure_directory makes them 0755)
    assert _io.enterable_by(str(open_dir / "new" / "dir" / "ca.crt"), nobody)[0] is True
    ok, reason = _io.enterable_by(str(hidden), nobody)
    assert ok is False and f"cannot enter directory {closed} (mode 0700" in reason
    ok, reason = _io.readable_by(str(open_dir / "missing.crt"), nobody)
    assert ok is False and "does not exist" in reason

    # a symlink into the closed directory: the target's directories count
    link = open_dir / "link.crt"
    link.symlink_to(hidden)
    ok, reason = _io.readable_by(str(link), nobody)
    assert ok is False and str(closed) in reason


@needs_root
def test_readable_through_group(open_dir):
    nobody = _nobody()
    account = pwd.getpwnam(nobody)
    shared = open_dir / "group.crt"
    shared.write_text("x")
    shared.chmod(0o640)
    os.chown(shared, 0, account.pw_gid)
    assert _io.readable_by(str(shared), nobody)[0] is True
    os.chown(shared, 0, 0)
    assert _io.readable_by(str(shared), nobody)[0] is False
    # the owner class decides for the owner even when "other" could read
    shared.chmod(0o044)
    os.chown(shared, account.pw_uid, 0)
    assert _io.readable_by(str(shared), nobody)[0] is False


# --- writing and backing up (own temp file, fsync, rename; issue 22) -------------------------------


class FakeModule:
    """What write_file and backup use of AnsibleModule; SELinux off."""

    def __init__(self, unsafe_writes=False, check_mode=False):
        self.params = {"unsafe_writes": unsafe_writes}
        self.check_mode = check_mode

    def selinux_enabled(self):
        return False

    def preserved_copy(self, source, target):
        shutil.copy2(source, target)


@pytest.mark.parametrize(("old_mode", "new_mode"), [(None, 0o600), (0o644, 0o644), (0o640, 0o640)])
def test_write_file_replaces_and_keeps_the_old_mode(tmp_path, old_mode, new_mode):
    path = tmp_path / "hosts.toml"
    if old_mode is not None:
        path.write_bytes(b"old\n")
        path.chmod(old_mode)
    _io.write_file(FakeModule(), str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    assert path.stat().st_mode & 0o777 == new_mode
    assert [entry.name for entry in tmp_path.iterdir()] == ["hosts.toml"]  # no temporary file left


@pytest.mark.parametrize(("unsafe_writes", "written"), [(True, True), (False, False)])
def test_a_refused_rename_writes_in_place_only_with_unsafe_writes(tmp_path, monkeypatch, unsafe_writes, written):
    path = tmp_path / "config.toml"
    path.write_bytes(b"old\n")

    def busy(source, target):
        raise OSError(16, "Device or resource busy")  # EBUSY: a bind-mounted file

    monkeypatch.setattr(_io.os, "rename", busy)
    if written:
        _io.write_file(FakeModule(unsafe_writes=True), str(path), b"new\n")
    else:
        with pytest.raises(_io.FileOperationError, match=f"cannot write {path}: device or resource busy"):
            _io.write_file(FakeModule(unsafe_writes=unsafe_writes), str(path), b"new\n")
    assert path.read_bytes() == (b"new\n" if written else b"old\n")
    assert [entry.name for entry in tmp_path.iterdir()] == ["config.toml"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_backup_is_a_preserved_copy(tmp_path, check_mode):
    path = tmp_path / "config.toml"
    path.write_bytes(b"kept\n")
    path.chmod(0o640)
    copy = _io.backup(FakeModule(check_mode=check_mode), str(path))
    assert copy.startswith(f"{path}.{os.getpid()}.") and copy.endswith("~")
    if check_mode:
        assert not os.path.exists(copy)
    else:
        assert open(copy, "rb").read() == b"kept\n"
        assert os.stat(copy).st_mode & 0o777 == 0o640
    assert _io.backup(FakeModule(), str(tmp_path / "none")) == ""


def test_a_backup_that_cannot_be_written_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_bytes(b"kept\n")
    module = FakeModule()
    monkeypatch.setattr(module, "preserved_copy", lambda source, target: open(f"{tmp_path}/no/such/dir", "wb"))
    with pytest.raises(_io.FileOperationError, match=f"^cannot back up {path}: "):
        _io.backup(module, str(path))
