"""ca_certificate through ansible-playbook, with CAs made by openssl (tests/fakes/tls_registry.py)."""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
import stat

import pytest
from fakes import tls_registry as fake

MODULE = "kubenode.registry_mirror.ca_certificate"


@pytest.fixture(scope="module")
def files(pki):
    served = {
        "ca.pem": pki.ca.read_bytes(),
        "bundle.pem": pki.ca.read_bytes() + pki.other_ca.read_bytes(),
        "garbage.txt": b"<html>not a certificate</html>\n",
    }
    with fake.FileServer(served) as server:
        yield server


def openssl_iso(pem_path, which):
    """notBefore/notAfter as openssl prints it, in the module's ISO 8601 form."""
    out = fake.openssl("x509", "-in", pem_path, "-noout", f"-{which}date", cwd=pem_path.parent).strip()
    value = " ".join(out.split("=", 1)[1].split())
    return datetime.datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").strftime("%Y-%m-%dT%H:%M:%SZ")


def task(name, path, **args):
    args = {key: value for key, value in args.items() if value is not None}
    return {"name": name, MODULE: dict(path=str(path), **args), "ignore_errors": True}


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_place_then_unchanged_then_check_only(run_playbook, pki, tmp_path):
    target = tmp_path / "new" / "dirs" / "reg-ca.crt"
    pem = pki.ca.read_text()
    run = run_playbook([
        task("place", target, content=pem),
        task("again", target, content=pem.rstrip("\n")),  # as lookup('file') gives it: no final newline
        task("check only", target),
    ])
    assert run.rc == 0, run.stdout
    place, again, check_only = (run.task_results(name) for name in ("place", "again", "check only"))
    assert place["changed"] is True, place
    assert again["changed"] is False, again
    assert check_only["changed"] is False, check_only
    assert target.read_text() == pem
    assert mode_of(target) == 0o644
    assert mode_of(target.parent) == 0o755 and mode_of(target.parent.parent) == 0o755
    for result in (place, again, check_only):
        assert result["path"] == str(target)
        assert result["certificates"] == 1
        assert result["not_before"] == openssl_iso(pki.ca, "start")
        assert result["not_after"] == openssl_iso(pki.ca, "end")
        assert result["days_left"] in (89, 90)  # openssl -days 90, a few seconds ago
        assert result["content"] == pem
        assert not result.get("warnings")


def test_a_checked_file_is_left_alone_and_a_placed_one_gets_its_mode(run_playbook, pki, tmp_path):
    target = tmp_path / "ca.crt"
    target.write_bytes(pki.ca.read_bytes().rstrip(b"\n"))  # no final newline: still left as it is
    target.chmod(0o600)
    before = target.read_bytes()
    run = run_playbook([task("check only", target)])
    assert run.task_results("check only")["changed"] is False
    assert mode_of(target) == 0o600
    assert target.read_bytes() == before
    run = run_playbook([task("symbolic", target, content=pki.ca.read_text(), mode="u=rw,g=r,o=")])
    assert run.task_results("symbolic")["changed"] is True
    assert mode_of(target) == 0o640
    assert target.read_bytes() == pki.ca.read_bytes()


def test_check_mode_writes_nothing(run_playbook, pki, tmp_path):
    fresh = tmp_path / "fresh" / "ca.crt"
    existing = tmp_path / "existing.crt"
    shutil.copy(pki.other_ca, existing)
    existing.chmod(0o644)
    run = run_playbook(
        [task("new file", fresh, content=pki.ca.read_text()),
         task("replace", existing, content=pki.ca.read_text())],
        check=True, diff=True,
    )
    assert run.rc == 0, run.stdout
    new_file, replace = run.task_results("new file"), run.task_results("replace")
    assert new_file["changed"] is True and replace["changed"] is True
    assert not fresh.parent.exists()
    assert existing.read_bytes() == pki.other_ca.read_bytes()
    assert replace["diff"][0]["before"] == pki.other_ca.read_text()
    assert replace["diff"][0]["after"] == pki.ca.read_text()
    assert new_file["content"] == pki.ca.read_text()


def test_url(run_playbook, pki, files, tmp_path):
    fetched = tmp_path / "fetched.crt"
    bundle = tmp_path / "bundle.crt"
    kept = tmp_path / "kept.crt"
    shutil.copy(pki.other_ca, kept)
    missing = f"{files.url}/missing.pem"
    closed = f"http://127.0.0.1:{fake.free_port()}/ca.pem"
    run = run_playbook([
        task("fetch", fetched, url=f"{files.url}/ca.pem"),
        task("fetch again", fetched, url=f"{files.url}/ca.pem"),
        task("bundle", bundle, url=f"{files.url}/bundle.pem"),
        task("404", tmp_path / "absent.crt", url=missing),
        task("404 keeps the old file", kept, url=missing),
        task("refused", tmp_path / "absent.crt", url=closed),
        task("not PEM", kept, url=f"{files.url}/garbage.txt"),
        task("not http", kept, url="file:///etc/passwd"),
        task("both", kept, url=f"{files.url}/ca.pem", content=pki.ca.read_text()),
    ])
    assert run.rc == 0, run.stdout
    result = run.task_results
    assert result("fetch")["changed"] is True and result("fetch again")["changed"] is False
    assert fetched.read_bytes() == pki.ca.read_bytes()
    assert result("bundle")["certificates"] == 2
    assert bundle.read_bytes() == pki.ca.read_bytes() + pki.other_ca.read_bytes()
    assert [request.path for request in files.requests].count("/ca.pem") == 2

    for name in ("404", "404 keeps the old file"):
        assert result(name)["failed"] is True
        assert missing in result(name)["msg"] and "HTTP 404" in result(name)["msg"], result(name)["msg"]
    assert result("refused")["failed"] is True
    assert closed in result("refused")["msg"] and "refused" in result("refused")["msg"].lower()
    assert result("not PEM")["failed"] is True
    assert result("not PEM")["msg"].startswith(f"url: {files.url}/garbage.txt: not PEM")
    assert "must be an http:// or https:// URL" in result("not http")["msg"]
    assert "mutually exclusive" in result("both")["msg"]
    assert not (tmp_path / "absent.crt").exists()
    assert kept.read_bytes() == pki.other_ca.read_bytes()


def test_bad_text_fails_and_leaves_the_old_file(run_playbook, pki, tmp_path):
    target = tmp_path / "ca.crt"
    shutil.copy(pki.ca, target)
    target.chmod(0o644)
    before = target.stat()
    run = run_playbook([
        task("garbage", target, content="definitely not a certificate"),
        task("private key", target, content=pki.ca_key.read_text()),
        task("expired", target, content=pki.expired_ca.read_text()),
        task("expired in a bundle", target, content=pki.ca.read_text() + pki.expired_ca.read_text()),
        task("missing", tmp_path / "missing.crt"),
        task("relative", "relative/ca.crt", content=pki.ca.read_text()),
    ])
    assert run.rc == 0, run.stdout
    result = run.task_results
    assert result("garbage")["msg"] == "content: not PEM: no -----BEGIN CERTIFICATE----- block found"
    assert "is a PRIVATE KEY, not a CERTIFICATE" in result("private key")["msg"]
    assert "BEGIN" not in result("private key")["msg"]  # the key is never echoed
    assert result("expired")["msg"] == (
        f"content: the certificate (CN=kubenode expired CA) expired on {openssl_iso(pki.expired_ca, 'end')}"
    )
    assert "certificate 2 of 2 (CN=kubenode expired CA) expired on" in result("expired in a bundle")["msg"]
    assert result("missing")["msg"].startswith(f"path: {tmp_path / 'missing.crt'} does not exist")
    assert "must be an absolute path" in result("relative")["msg"]
    for name in ("garbage", "private key", "expired", "expired in a bundle", "missing", "relative"):
        assert result(name)["failed"] is True, name
        assert result(name)["changed"] is False, name
    assert target.read_bytes() == pki.ca.read_bytes()
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (tmp_path / "missing.crt").exists()


def test_expiring_soon_warns(run_playbook, pki, tmp_path):
    target = tmp_path / "ca.crt"
    run = run_playbook([
        task("soon", target, content=pki.expiring_ca.read_text()),
        task("quiet", target, content=pki.expiring_ca.read_text(), warn_days=5),
    ])
    assert run.rc == 0, run.stdout
    soon, quiet = run.task_results("soon"), run.task_results("quiet")
    assert soon["changed"] is True
    assert soon["days_left"] in (9, 10)
    assert soon["not_after"] == openssl_iso(pki.expiring_ca, "end")
    expected = f"content: the certificate (CN=kubenode expiring CA) expires on {openssl_iso(pki.expiring_ca, 'end')}"
    assert any(warning.startswith(expected) for warning in soon["warnings"]), soon.get("warnings")
    assert not quiet.get("warnings")
    assert target.read_text() == pki.expiring_ca.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own the files that user nobody cannot read")
def test_readable_by(run_playbook, pki, open_dir):
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    private = open_dir / "private.crt"
    shutil.copy(pki.ca, private)
    private.chmod(0o600)
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    unwritten = open_dir / "unwritten.crt"
    run = run_playbook([
        task("root", private, readable_by="root", mode="0600"),
        task("nobody, 0600", private, readable_by="nobody", mode="0600"),
        task("nobody, 0600, new file", unwritten, content=pki.ca.read_text(), readable_by="nobody", mode="0600"),
        task("nobody, closed directory", closed / "ca.crt", content=pki.ca.read_text(), readable_by="nobody"),
        task("nobody, 0644", open_dir / "public" / "ca.crt", content=pki.ca.read_text(), readable_by="nobody"),
        task("no such user", open_dir / "public" / "ca.crt", readable_by="kubenode-no-such-user"),
    ])
    assert run.rc == 0, run.stdout
    result = run.task_results
    assert result("root").get("failed", False) is False and result("root")["changed"] is False
    assert result("nobody, 0644").get("failed", False) is False and result("nobody, 0644")["changed"] is True
    failures = {
        "nobody, 0600": f"readable_by: 'nobody' cannot read {private} (mode 0600, owner root:root)",
        "nobody, 0600, new file": f"readable_by: 'nobody' cannot read {unwritten} (mode 0600",
        "nobody, closed directory": f"readable_by: 'nobody' cannot enter directory {closed} (mode 0700",
        "no such user": "readable_by: there is no user 'kubenode-no-such-user' on this node",
    }
    for name, message in failures.items():
        assert result(name)["failed"] is True, name
        assert result(name)["msg"].startswith(message), (name, result(name)["msg"])
    assert mode_of(private) == 0o600
    assert not unwritten.exists() and not (closed / "ca.crt").exists()
    assert mode_of(open_dir / "public" / "ca.crt") == 0o644


@pytest.mark.parametrize("content", [True, False])
def test_a_file_where_a_directory_goes_is_named(run_playbook, pki, tmp_path, content):
    (tmp_path / "in-the-way").write_text("a file")
    target = tmp_path / "in-the-way" / "certs" / "ca.crt"
    run = run_playbook([task("blocked", target, content=pki.ca.read_text() if content else None)])
    result = run.task_results("blocked")
    assert result["failed"]
    assert result["msg"] == f"path: cannot read {target}: {tmp_path / 'in-the-way'} is not a directory"
    assert "Errno" not in result["msg"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own the files that user nobody cannot read")
def test_a_written_file_the_user_cannot_read_is_put_back(run_playbook, pki, open_dir):
    """readable_by is checked on the file as written, mode and owner applied; when it fails, the old file is back."""
    target = open_dir / "ca.crt"
    shutil.copy(pki.other_ca, target)
    target.chmod(0o644)
    closing = task("0600", target, content=pki.ca.read_text(), readable_by="nobody", mode="0600")
    checked = run_playbook([closing], check=True).task_results("0600")
    assert checked.get("failed", False) is False and checked["changed"] is True
    assert not checked.get("warnings")  # check mode checks the file as it is, which nobody can read
    result = run_playbook([closing]).task_results("0600")
    assert result["failed"] is True
    assert result["msg"] == (f"readable_by: 'nobody' cannot read {target} (mode 0600, owner root:root); "
                             "the file was put back as it was")
    assert target.read_bytes() == pki.other_ca.read_bytes() and mode_of(target) == 0o644

    target.chmod(0o600)  # now nobody cannot read it, and check mode cannot tell what the new mode will do
    opening = task("0644", target, content=pki.ca.read_text(), readable_by="nobody", mode="0644")
    checked = run_playbook([opening], check=True).task_results("0644")
    assert checked.get("failed", False) is False
    assert any(warning.startswith(f"readable_by: 'nobody' cannot read {target} (mode 0600") and
               "check mode changes nothing" in warning for warning in checked["warnings"]), checked.get("warnings")
    assert run_playbook([opening]).task_results("0644")["changed"] is True
    assert mode_of(target) == 0o644


def openssl_sha256(pem_path):
    """openssl's own fingerprint line for a certificate, and the fingerprint after its =."""
    line = fake.openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", pem_path, cwd=pem_path.parent).strip()
    return line, line.partition("=")[2]


def snapshot(path):
    """The file's bytes, mode and modification time: what a task that changes nothing leaves as it was."""
    status = os.stat(path)
    return path.read_bytes(), stat.S_IMODE(status.st_mode), status.st_mtime_ns


@pytest.mark.parametrize("source", ["content", "url", "file"])
def test_a_pin_passes_the_right_ca_and_a_wrong_one_changes_nothing(run_playbook, pki, files, tmp_path, source):
    target = tmp_path / "ca.crt"
    # content and url would replace the file: it holds another CA; the file source is the CA itself
    target.write_bytes((pki.ca if source == "file" else pki.other_ca).read_bytes())
    line, right = openssl_sha256(pki.ca)
    wrong = openssl_sha256(pki.other_ca)[1]
    given = {"content": {"content": pki.ca.read_text()}, "url": {"url": f"{files.url}/ca.pem"}, "file": {}}[source]
    before = snapshot(target)
    run = run_playbook([task("wrong", target, sha256=[wrong], **given),
                        dict(task("wrong in check mode", target, sha256=wrong, **given), check_mode=True)])
    where = {"content": "content", "url": f"url: {files.url}/ca.pem", "file": f"path: {target}"}[source]
    for name in ("wrong", "wrong in check mode"):
        result = run.task_results(name)
        assert result["failed"] is True and result.get("changed", False) is False, result
        assert result["msg"] == (f"sha256: {where} is not the pinned CA: expected the SHA-256 fingerprint {wrong}, "
                                 f"got {right}")
    assert snapshot(target) == before

    run = run_playbook([task("right", target, sha256=line, **given)])  # openssl's whole line, as copied
    result = run.task_results("right")
    assert result.get("failed", False) is False, result.get("msg")
    assert result["changed"] is (source != "file")
    assert result["sha256"] == [right]
    assert not result.get("warnings")  # pinned: a CA over http is not warned about
    assert target.read_bytes() == pki.ca.read_bytes()


def test_a_bundle_pins_each_certificate_and_a_bad_pin_is_refused(run_playbook, pki, files, tmp_path):
    ca, other = openssl_sha256(pki.ca)[1], openssl_sha256(pki.other_ca)[1]
    url = f"{files.url}/bundle.pem"
    run = run_playbook([
        task("both, other order", tmp_path / "both.crt", url=url, sha256=[other, ca.replace(":", "").lower()]),
        task("one of two", tmp_path / "one.crt", url=url, sha256=[ca]),
        task("one too many", tmp_path / "many.crt", content=pki.ca.read_text(), sha256=[ca, other]),
        task("sha1", tmp_path / "sha1.crt", content=pki.ca.read_text(), sha256=ca[:59]),
    ])
    result = run.task_results
    assert result("both, other order")["sha256"] == [ca, other] and result("both, other order")["changed"] is True
    assert result("one of two")["msg"] == (
        f"sha256: url: {url} is not the pinned CA: expected the SHA-256 fingerprint {ca}, got {ca}, {other} "
        f"(certificate 2 of 2 ({other}) is not pinned)")
    assert result("one too many")["msg"] == (
        f"sha256: content is not the pinned CA: expected the SHA-256 fingerprints {ca}, {other}, got {ca} "
        f"(no certificate has the pinned {other})")
    assert result("sha1")["msg"].startswith(f"sha256: '{ca[:59]}' looks like a SHA-1 fingerprint (40 hex digits)")
    assert sorted(path.name for path in tmp_path.glob("*.crt")) == ["both.crt"]


def test_a_ca_over_http_without_a_pin_warns(run_playbook, pki, files, tmp_path):
    run = run_playbook([task("unpinned", tmp_path / "ca.crt", url=f"{files.url}/ca.pem")])
    warnings = run.task_results("unpinned")["warnings"]
    assert any(warning.startswith(f"url: the CA is fetched over plain http from {files.url}/ca.pem: anyone on the "
                                  "path between the node and that server can hand the node a CA of their choosing")
               and "set sha256 to the CA's SHA-256 fingerprint" in warning for warning in warnings), warnings
