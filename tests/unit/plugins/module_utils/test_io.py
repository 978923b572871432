"""_io: who can read a file on the node (permission bits and owners, as the kernel applies them)."""

from __future__ import annotations

import os
import pwd

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
