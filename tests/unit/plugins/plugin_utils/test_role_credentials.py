"""config_credentials: the containerd_config credentials the containerd_mirror role passes (issue 24, item 2)."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import config_credentials
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import read_registry_mirrors

PMK = {"url": "https://10.0.0.1:443", "username": "pmk", "password": "Pmk-Pw-1"}
# The host as written in its url: the certs.d directory name and the [host] URL containerd takes it from.
HARBOR = {"url": "https://Harbor.example:8443/", "repo_path": "quay-proxy", "username": "robot", "password": "H-Pw-2"}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (PMK, [{"host": "10.0.0.1:443", "username": "pmk", "password": "Pmk-Pw-1"}]),
        ({"url": "https://10.0.0.1"}, []),
        ({"registry_mirrors": {"quay.io": [HARBOR, {"url": "https://open.example"}]}},
         [{"host": "Harbor.example:8443", "username": "robot", "password": "H-Pw-2"}]),
        (dict(PMK, registry_mirrors={"quay.io": [HARBOR], "docker.io": [dict(HARBOR, repo_path="hub-proxy")]}),
         [{"host": "10.0.0.1:443", "username": "pmk", "password": "Pmk-Pw-1"},
          {"host": "Harbor.example:8443", "username": "robot", "password": "H-Pw-2"}]),  # one host, once
        (dict(PMK, registry_mirrors={"quay.io": [dict(PMK, repo_path="q")]}),
         [{"host": "10.0.0.1:443", "username": "pmk", "password": "Pmk-Pw-1"}]),
    ],
    ids=["pmk", "no-credentials", "registry-mirrors", "one-host-twice", "pmk-host-in-registry-mirrors"],
)
def test_each_mirror_host_with_credentials_once_the_pmk_mirror_first(settings, expected):
    assert config_credentials(settings, "containerd_mirror_") == expected


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (dict(PMK, registry_mirrors={"quay.io": [dict(PMK, password="other")]}),
         'containerd_mirror_registry_mirrors["quay.io"][0].username'),
        ({"registry_mirrors": {"quay.io": [HARBOR], "docker.io": [dict(HARBOR, username="robot2")]}},
         'containerd_mirror_registry_mirrors["docker.io"][0].username'),
    ],
)
def test_two_sets_of_credentials_for_one_host_are_refused_naming_the_second(settings, field):
    with pytest.raises(RegistrySettingError) as error:
        config_credentials(settings, "containerd_mirror_")
    assert str(error.value).startswith(f"{field}: and its password differ from ")
    assert "Pmk-Pw-1" not in str(error.value) and "other" not in str(error.value)


def test_a_mirror_never_shows_its_password():
    mirror = read_registry_mirrors({"quay.io": [HARBOR]})[0].mirrors[0]
    assert mirror.credentials() == {"host": "Harbor.example:8443", "username": "robot", "password": "H-Pw-2"}
    assert "H-Pw-2" not in repr(mirror)
