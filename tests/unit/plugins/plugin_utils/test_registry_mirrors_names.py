"""A registry_mirrors key is written to the certs.d directory containerd reads for it (issue 23, defect 6).

containerd looks a pull up in certs.d under the image's registry host as its reference names it, after
distribution's normalisation: index.docker.io/x and x are docker.io/... (normalize.go, splitDockerDomain), so
Docker Hub is read from certs.d/docker.io only, and a directory whose name has upper case is read by no
normalised pull. Docker Hub's names are written to docker.io, and every other name in lower case; two keys
that are then one directory are refused, naming both.
"""

from __future__ import annotations

import tomllib

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    RegistrySettingError,
    hosts_directories,
    render_hosts_files,
)

MIRROR = {"url": "https://harbor.example", "repo_path": "dockerhub-proxy"}


@pytest.mark.parametrize(("key", "directory"), [
    ("docker.io", "docker.io"),
    ("index.docker.io", "docker.io"),
    ("Docker.IO", "docker.io"),
    ("INDEX.docker.io", "docker.io"),
    ("registry-1.docker.io", "docker.io"),
    ("Quay.IO", "quay.io"),
    ("Registry.Example:5000", "registry.example:5000"),
    ("quay.io", "quay.io"),
])
def test_a_registry_is_written_where_containerd_reads_it(key, directory):
    entries = {key: {"mirrors": [MIRROR], "upstream_fallback": False}}
    ((written, text),) = render_hosts_files(registry_mirrors=entries)
    assert written == directory
    assert hosts_directories(None, [], entries) == [directory]
    assert tomllib.loads(text)["server"] == "https://harbor.example/v2/dockerhub-proxy"


@pytest.mark.parametrize(("keys", "field", "first"), [
    (["docker.io", "Docker.IO"], 'registry_mirrors["Docker.IO"]', "'docker.io'"),
    (["index.docker.io", "docker.io"], 'registry_mirrors["docker.io"]', "'index.docker.io'"),
    (["Quay.IO", "quay.io"], 'registry_mirrors["quay.io"]', "'Quay.IO'"),
    (["reg.example:5000", "REG.example:5000"], 'registry_mirrors["REG.example:5000"]', "'reg.example:5000'"),
])
def test_two_keys_of_one_directory_are_refused_naming_both(keys, field, first):
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files(registry_mirrors={key: [MIRROR] for key in keys})
    assert raised.value.field == field
    assert f"is the same registry as {first}" in raised.value.problem


@pytest.mark.parametrize(("key", "directory"), [("index.docker.io", "docker.io"), ("Quay.io", "quay.io")])
def test_a_registry_of_url_is_served_by_its_key_in_any_spelling(key, directory):
    """url's registries name docker.io and quay.io; a registry_mirrors key spelt otherwise is that directory, served
    by it (it was refused: "spell it 'quay.io'")."""
    files = dict(render_hosts_files(url="https://10.0.0.1:443", registries=["docker.io", "quay.io"],
                                    registry_mirrors={key: [MIRROR]}))
    assert list(files) == ["10.0.0.1:443", "docker.io", "quay.io"]
    assert "https://harbor.example/v2/dockerhub-proxy" in tomllib.loads(files[directory])["host"]
    other = "quay.io" if directory == "docker.io" else "docker.io"
    assert "https://harbor.example/v2/dockerhub-proxy" not in tomllib.loads(files[other])["host"]
