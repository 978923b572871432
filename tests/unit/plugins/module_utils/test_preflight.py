"""_preflight: what a repo_path answer means, and the client certificate in the TLS context."""

from __future__ import annotations

import pytest
from fakes import tls_registry as fake

from ansible_collections.kubenode.registry_mirror.plugins.module_utils import _preflight
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca import get_ca

PREFIX = 'registry_mirrors["docker.io"][0].'


@pytest.fixture(scope="module")
def server(pki):
    with fake.TlsRegistry(pki) as registry:
        yield registry


def target(pki, server, client=None):
    ca = get_ca(content=pki.ca.read_text())
    return _preflight.Target(f"{server.url}/v2/", "robot", None, _preflight.tls_context(False, ca, client, PREFIX), ca,
                             PREFIX, None)


@pytest.mark.parametrize(
    ("status", "passes"),
    [(200, True), (404, True), (401, False), (403, False), (400, False), (500, False)],
)
def test_a_repo_path_passes_on_200_or_404_only(pki, server, status, passes):
    server.force_status = status
    try:
        if passes:
            assert _preflight.check_repo_path(target(pki, server), "dockerhub-proxy", 5) == status
        else:
            with pytest.raises(_preflight.PreflightError) as raised:
                _preflight.check_repo_path(target(pki, server), "dockerhub-proxy", 5)
            assert raised.value.status == status
            assert str(raised.value).startswith(f"the mirror does not serve {PREFIX}repo_path 'dockerhub-proxy': ")
            assert "user 'robot' may pull from it" in str(raised.value)
    finally:
        server.force_status = None
    assert server.requests[-1].path == "/v2/dockerhub-proxy/kubenode-preflight-probe/tags/list"


def test_harbors_message_for_a_missing_project_is_passed_on(pki):
    with fake.TlsRegistry(pki, projects={"dockerhub-proxy"}) as harbor:
        assert _preflight.check_repo_path(target(pki, harbor), "dockerhub-proxy", 5) == 404
        with pytest.raises(_preflight.PreflightError) as raised:
            _preflight.check_repo_path(target(pki, harbor), "quay-proxy", 5)
    assert "answered HTTP 401: project quay-proxy not found" in str(raised.value)


@pytest.mark.parametrize("form", ["paths", "content"])
def test_a_client_certificate_that_does_not_load_names_its_settings(pki, form):
    if form == "paths":
        cert, other_key = str(pki.client), str(pki.other_client_key)
    else:
        cert, other_key = pki.client.read_text(), pki.other_client_key.read_text()
    with pytest.raises(_preflight.PreflightError) as raised:
        _preflight.tls_context(False, None, (form, cert, other_key), PREFIX)
    fields = ("client_cert", "client_key") if form == "paths" else ("client_cert_content", "client_key_content")
    assert str(raised.value).startswith(f"{PREFIX}{fields[0]} and {PREFIX}{fields[1]}: the key does not belong")
