"""_certs_d: the plan of every file under certs.d, made against a fake disk."""

from __future__ import annotations

import errno
import hashlib
import posixpath

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._certs_d import (
    CA,
    CHECK_CA,
    HOSTS,
    PLACE_CA,
    REMOVE_TLS,
    TLS,
    WRITE_TLS,
    DiskReader,
    PlanError,
    Step,
    ca_step,
    hosts_step,
    our_tls_files,
    plan,
    problem,
    stale_steps,
    tls_step,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    ADOPT,
    CONFLICT,
    KEEP,
    MARKER,
    MIGRATED_MARKER_PREFIX,
    NOTHING,
    REFUSE,
    REMOVE,
    RESTORE,
    WRITE,
    with_kept_record,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._io import FileOperationError

ROOT = "/etc/containerd/certs.d"
OURS = f"{MARKER}\nserver = 'https://mirror'\n".encode()
MIGRATED = f"{MIGRATED_MARKER_PREFIX}docker.io\nserver = 'x'\n".encode()
FOREIGN = b"server = 'https://registry-1.docker.io'\n"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
OUR_PEM = f"{MARKER}\n{PEM}"
DIRECTORY = object()
LINK = object()


class FakeDisk(DiskReader):
    """A node's files: path -> bytes, DIRECTORY or LINK; errors: path -> errno raised when it is read."""

    def __init__(self, files=None, errors=None):
        self.files_, self.errors = dict(files or {}), dict(errors or {})
        for path in list(self.files_):
            parent = posixpath.dirname(path)
            while parent != "/" and parent not in self.files_:
                self.files_[parent] = DIRECTORY
                parent = posixpath.dirname(parent)

    def _raise(self, path, operation="read"):
        if path in self.errors:
            raise FileOperationError(operation, path, "fake failure", self.errors[path])

    def read(self, path, max_bytes=None):
        self._raise(path)
        data = self.files_.get(path)
        if data is DIRECTORY or data is LINK:
            raise FileOperationError("read", path, f"{path} is a directory", errno.EISDIR)
        return data if data is None or max_bytes is None else data[:max_bytes + 1]

    def exists(self, path):
        self._raise(path)
        return path in self.files_

    def kind(self, path):
        data = self.files_.get(path)
        return None if data is None else "link" if data is LINK else "other" if data is DIRECTORY else "file"

    def _children(self, path, wanted):
        self._raise(path, "list")
        return [posixpath.basename(p) for p, data in self.files_.items() if posixpath.dirname(p) == path
                and wanted(data)]

    def directories(self, path):
        return self._children(path, lambda data: data is DIRECTORY)

    def files(self, path):
        return self._children(path, lambda data: isinstance(data, bytes))

    def links(self, path):
        return self._children(path, lambda data: data is LINK)

    def followed(self, path):
        self._raise(path, "look at")
        data = self.files_.get(path)
        return path, None if data is None or data is LINK else "directory" if data is DIRECTORY else "file"


def hosts(registry="docker.io"):
    return f"{ROOT}/{registry}/hosts.toml"


def kept(registry="docker.io"):
    return hosts(registry) + ".before-kubenode"


def recorded(kept_bytes, text=OURS):
    """Our hosts.toml as it records the file it kept aside (issue 23, defect 7)."""
    first, rest = text.decode().split("\n", 1)
    digest = hashlib.sha256(kept_bytes).hexdigest()
    return f"{first}\n# Kept aside as hosts.toml.before-kubenode, sha256 {digest}\n{rest}".encode()


@pytest.mark.parametrize(
    ("files", "foreign_files", "action"),
    [
        ({}, "adopt", WRITE),
        ({hosts(): OURS}, "adopt", WRITE),
        ({hosts(): recorded(FOREIGN), kept(): FOREIGN}, "refuse", WRITE),
        ({hosts(): FOREIGN}, "adopt", ADOPT),
        ({hosts(): FOREIGN}, "refuse", REFUSE),
        ({hosts(): MIGRATED}, "adopt", ADOPT),
        ({hosts(): MIGRATED}, "refuse", ADOPT),  # a migrated file is adopted whatever foreign_files says
        ({hosts(): FOREIGN, kept(): FOREIGN}, "adopt", CONFLICT),
        ({hosts(): MIGRATED, kept(): FOREIGN}, "refuse", CONFLICT),
    ],
)
def test_hosts_step_present(files, foreign_files, action):
    step = hosts_step(FakeDisk(files), ROOT, "docker.io", "ours", "present", foreign_files)
    assert (step.action, step.kind, step.registry, step.path, step.kept) == (
        action, HOSTS, "docker.io", hosts(), kept())
    assert step.before == files.get(hosts())
    assert step.kept_exists == (kept() in files)
    kept_bytes = files[hosts()] if action == ADOPT else files.get(kept()) if action == WRITE else None
    assert step.content == ("ours" if kept_bytes is None else with_kept_record("ours", kept_bytes))
    assert not step.touched
    assert step.reason


@pytest.mark.parametrize(
    ("files", "action"),
    [
        ({}, NOTHING),
        ({hosts(): OURS}, REMOVE),
        ({hosts(): recorded(FOREIGN), kept(): FOREIGN}, RESTORE),
        ({hosts(): FOREIGN}, KEEP),
        ({hosts(): MIGRATED}, KEEP),
        ({hosts(): FOREIGN, kept(): FOREIGN}, KEEP),
    ],
)
def test_hosts_step_absent(files, action):
    assert hosts_step(FakeDisk(files), ROOT, "docker.io", None, "absent").action == action


@pytest.mark.parametrize(("state", "error", "raised"), [
    ("absent", errno.ENOTDIR, False),  # the registry's directory is a file: nothing of ours to remove
    ("present", errno.ENOTDIR, True),
    ("absent", errno.EACCES, True),
])
def test_hosts_step_unreadable(state, error, raised):
    disk = FakeDisk(errors={hosts(): error})
    if raised:
        with pytest.raises(FileOperationError, match="fake failure"):
            hosts_step(disk, ROOT, "docker.io", "ours", state)
    else:
        step = hosts_step(disk, ROOT, "docker.io", None, state)
        assert (step.action, step.before, step.kept_exists) == (NOTHING, None, False)


NAME = "mirror:5000.client.key"
TLS_PATH = f"{ROOT}/docker.io/{NAME}"


@pytest.mark.parametrize(
    ("on_disk", "content", "action", "error"),
    [
        (None, OUR_PEM, WRITE_TLS, None),
        (OUR_PEM.encode(), OUR_PEM, WRITE_TLS, None),
        (OUR_PEM.encode(), None, REMOVE_TLS, None),
        (PEM.encode(), OUR_PEM, None, "was not written by kubenode.registry_mirror; move it away"),
        (PEM.encode(), None, REMOVE_TLS, None),  # only ours are ever planned for removal: by our_tls_files
        (LINK, OUR_PEM, None, "not a regular file"),
        (DIRECTORY, OUR_PEM, None, "not a regular file"),
        (LINK, None, None, "not a regular file"),
    ],
)
def test_tls_step(on_disk, content, action, error):
    disk = FakeDisk({} if on_disk is None else {TLS_PATH: on_disk})
    if error:
        with pytest.raises(FileOperationError, match=error):
            tls_step(disk, ROOT, "docker.io", NAME, content)
        return
    step = tls_step(disk, ROOT, "docker.io", NAME, content)
    assert (step.action, step.kind, step.name, step.mode, step.path) == (action, TLS, NAME, "0600", TLS_PATH)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, []),
        ({f"{ROOT}/docker.io/b.example.ca.crt": OUR_PEM.encode(),
          f"{ROOT}/docker.io/a.example.client.cert": OUR_PEM.encode()},
         ["a.example.client.cert", "b.example.ca.crt"]),
        ({f"{ROOT}/docker.io/a.example.ca.crt": PEM.encode()}, []),  # not ours
        ({f"{ROOT}/docker.io/ca.crt": OUR_PEM.encode()}, []),  # not one of our names
        ({f"{ROOT}/docker.io/.ca.crt": OUR_PEM.encode()}, []),  # a suffix alone is no name of ours
        ({f"{ROOT}/docker.io/a.example.ca.crt": LINK}, []),
        ({hosts(): OURS}, []),
    ],
)
def test_our_tls_files(files, expected):
    assert our_tls_files(FakeDisk(files), ROOT, "docker.io") == expected


@pytest.mark.parametrize(
    ("files", "sealed", "foreign_files", "actions"),
    [
        ({hosts("old.example"): OURS}, None, "adopt", [REMOVE]),
        ({hosts("old.example"): recorded(FOREIGN), kept("old.example"): FOREIGN}, None, "adopt", [RESTORE]),
        ({hosts("old.example"): FOREIGN}, None, "adopt", []),  # not ours: not touched, nor reported
        ({hosts("old.example"): MIGRATED}, None, "adopt", []),
        ({f"{ROOT}/old.example/x.ca.crt": OUR_PEM.encode()}, None, "adopt", [REMOVE_TLS]),
        ({f"{ROOT}/old.example/x.ca.crt": PEM.encode()}, None, "adopt", []),
        ({hosts("old.example"): OURS, f"{ROOT}/old.example/x.ca.crt": OUR_PEM.encode()}, None, "adopt",
         [REMOVE, REMOVE_TLS]),
        ({f"{ROOT}/old.example/x": b""}, "sealed", "adopt", [WRITE]),  # even without a hosts.toml
        ({hosts("old.example"): OURS}, "sealed", "adopt", [WRITE]),
        ({hosts("old.example"): FOREIGN}, "sealed", "adopt", [ADOPT]),
        ({hosts("old.example"): FOREIGN}, "sealed", "refuse", [REFUSE]),
        ({hosts("old.example"): FOREIGN, kept("old.example"): FOREIGN}, "sealed", "adopt", [CONFLICT]),
        ({hosts("docker.io"): OURS}, None, "adopt", []),  # declared: not stale
    ],
)
def test_stale_steps(files, sealed, foreign_files, actions):
    steps, warnings = stale_steps(FakeDisk(files), ROOT, ["docker.io"], sealed, foreign_files)
    assert [step.action for step in steps] == actions
    assert all(step.registry == "old.example" for step in steps)
    assert all(step.sealed == (sealed is not None) for step in steps if step.kind == HOSTS)
    assert all(step.content.split("\n")[0] == sealed for step in steps if step.kind == HOSTS and sealed)
    assert warnings == []


def test_stale_steps_warn_about_a_directory_they_cannot_read():
    disk = FakeDisk({hosts("a.example"): OURS, hosts("b.example"): OURS}, errors={hosts("a.example"): errno.EACCES})
    steps, warnings = stale_steps(disk, ROOT, [])
    assert [step.registry for step in steps] == ["b.example"]
    assert warnings == [f"cannot read {hosts('a.example')}: fake failure; left as it is (a file of ours there would "
                        "be stale)."]


@pytest.mark.parametrize(
    ("action", "sealed", "expected"),
    [
        (WRITE, False, None),
        (ADOPT, False, None),
        (REMOVE, False, None),
        (REFUSE, False, "and foreign_files=refuse: move it away, or set foreign_files=adopt to keep it as"),
        (REFUSE, True, "and it would route old.example around the mirrors of * without upstream fallback"),
        (CONFLICT, False, "already holds the file kept aside when the mirror was applied"),
    ],
)
def test_problem(action, sealed, expected):
    step = Step(action, hosts("old.example"), "why", registry="old.example", kept=kept("old.example"), sealed=sealed)
    sentence = problem(step)
    if expected is None:
        assert sentence is None
    else:
        assert expected in sentence and sentence.startswith(hosts("old.example"))


@pytest.mark.parametrize(
    ("place", "before", "action"),
    [(True, None, PLACE_CA), (True, PEM.encode(), PLACE_CA), (True, b"old", PLACE_CA), (False, PEM.encode(), CHECK_CA)],
)
def test_ca_step(place, before, action):
    step = ca_step("/usr/local/share/reg-ca.crt", PEM, before, place, 0o644)
    assert (step.action, step.kind, step.content, step.before, step.mode) == (action, CA, PEM, before, 0o644)
    assert step.reason


def test_step_refuses_unknown_fields():
    with pytest.raises(TypeError, match="unknown fields"):
        Step(WRITE, hosts(), "why", colour="red")


def declared(registry, content="ours", **tls_files):
    return {"directory": registry, "content": content, "tls_files": tls_files}


def test_plan_orders_ca_pem_files_hosts_toml_then_stale():
    files = {
        f"{ROOT}/docker.io/old.example.ca.crt": OUR_PEM.encode(),
        hosts("gone.example"): OURS,
        hosts("quay.io"): FOREIGN,
    }
    ca = ca_step("/ca.crt", PEM, None, True, 0o644)
    result = plan(FakeDisk(files), ROOT, [declared("docker.io", **{"mirror.ca.crt": OUR_PEM}), declared("quay.io")],
                  "present", ca=ca)
    assert [(step.action, step.path) for step in result.steps] == [
        (PLACE_CA, "/ca.crt"),
        (WRITE_TLS, f"{ROOT}/docker.io/mirror.ca.crt"),
        (WRITE, hosts("docker.io")),
        (REMOVE_TLS, f"{ROOT}/docker.io/old.example.ca.crt"),
        (ADOPT, hosts("quay.io")),
        (REMOVE, hosts("gone.example")),
    ]
    assert (result.problems, result.warnings) == ([], [])


def test_plan_collects_every_problem_before_anything_is_written():
    files = {hosts("quay.io"): FOREIGN, f"{ROOT}/docker.io/m.ca.crt": PEM.encode()}
    result = plan(FakeDisk(files), ROOT, [declared("docker.io", **{"m.ca.crt": OUR_PEM}), declared("quay.io")],
                  "present", "refuse")
    assert len(result.problems) == 2
    assert result.problems[0].startswith(f"cannot write {ROOT}/docker.io/m.ca.crt: it was not written")
    assert result.problems[1].startswith(f"{hosts('quay.io')} was not written by kubenode.registry_mirror and "
                                         "foreign_files=refuse")


def test_plan_absent_ignores_sealed_and_restores_everywhere():
    files = {hosts("docker.io"): recorded(FOREIGN), kept("docker.io"): FOREIGN, hosts("old.example"): OURS}
    result = plan(FakeDisk(files), ROOT, [{"directory": "docker.io"}], "absent", sealed="sealed")
    assert [(step.action, step.registry) for step in result.steps] == [(RESTORE, "docker.io"), (REMOVE, "old.example")]


def test_plan_reports_a_config_path_it_cannot_list():
    result = plan(FakeDisk(errors={ROOT: errno.EACCES}), ROOT, [], "present")
    assert result.problems == [f"cannot list {ROOT}: fake failure."]


@pytest.mark.parametrize(
    ("hosts_file", "message"),
    [
        ({"directory": ""}, "'' is not a registry directory name"),
        ({"directory": ".."}, "'..' is not a registry directory name"),
        ({"directory": "a/b"}, "'a/b' is not a registry directory name"),
        (declared("docker.io", **{"ca.crt": OUR_PEM}), "'ca.crt' in docker.io is not one of our PEM files"),
        (declared("docker.io", **{"m.ca.crt": PEM}), "'m.ca.crt' in docker.io is not one of our PEM files"),
        (declared("docker.io", **{"m.ca.crt": 1}), "'m.ca.crt' in docker.io is not one of our PEM files"),
    ],
)
def test_plan_refuses_what_the_action_plugin_cannot_have_rendered(hosts_file, message):
    with pytest.raises(PlanError, match=message.replace(".", r"\.")):
        plan(FakeDisk(), ROOT, [declared("quay.io"), hosts_file], "present")


@pytest.mark.parametrize(
    ("files", "action", "stray"),
    [
        ({kept(): FOREIGN}, NOTHING, True),  # no file of ours records it
        ({hosts(): OURS, kept(): FOREIGN}, REMOVE, True),
        ({hosts(): recorded(b"another file"), kept(): FOREIGN}, REMOVE, True),
        ({hosts(): recorded(FOREIGN), kept(): FOREIGN}, RESTORE, False),
        ({hosts(): FOREIGN, kept(): FOREIGN}, KEEP, False),  # not ours: both left alone, as before
    ],
)
def test_absent_restores_only_the_file_we_kept_aside(files, action, stray):
    step = hosts_step(FakeDisk(files), ROOT, "docker.io", None, "absent")
    assert step.action == action
    assert (step.warning is not None and kept() in step.warning) == stray


@pytest.mark.parametrize("before", [FOREIGN, MIGRATED])
def test_present_records_the_file_it_keeps_aside(before):
    adopted = hosts_step(FakeDisk({hosts(): before}), ROOT, "docker.io", OURS.decode(), "present")
    assert (adopted.action, adopted.content.encode()) == (ADOPT, recorded(before))
    disk = FakeDisk({hosts(): adopted.content.encode(), kept(): before})
    again = hosts_step(disk, ROOT, "docker.io", OURS.decode(), "present")
    assert (again.action, again.content, again.warning) == (WRITE, adopted.content, None)  # unchanged
    assert hosts_step(disk, ROOT, "docker.io", None, "absent").action == RESTORE


@pytest.mark.parametrize("files", [{kept(): FOREIGN}, {hosts(): OURS, kept(): FOREIGN}])
def test_present_warns_about_a_stray_kept_aside_file(files):
    step = hosts_step(FakeDisk(files), ROOT, "docker.io", OURS.decode(), "present")
    assert (step.action, step.content) == (WRITE, OURS.decode())
    assert step.warning.startswith(f"{kept()} was not kept aside by kubenode.registry_mirror")
    result = plan(FakeDisk(files), ROOT, [declared("docker.io", OURS.decode())], "present")
    assert result.warnings == [step.warning]
