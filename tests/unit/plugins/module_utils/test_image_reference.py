"""_image_reference: distribution/reference's grammar, normalised as containerd's CRI reads a name."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import (
    check_image_references,
    parse_image_reference,
    registry_key,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError

SHA256 = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("given", "domain", "path", "obj", "full"),
    [
        ("pause:3.6", "docker.io", "library/pause", "3.6", "docker.io/library/pause:3.6"),
        ("registry.k8s.io/pause:3.6", "registry.k8s.io", "pause", "3.6", "registry.k8s.io/pause:3.6"),
        ("busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"),
        ("bitnami/redis", "docker.io", "bitnami/redis", "latest", "docker.io/bitnami/redis:latest"),
        ("index.docker.io/busybox:1", "docker.io", "library/busybox", "1", "docker.io/library/busybox:1"),
        ("docker.io/busybox:1", "docker.io", "library/busybox", "1", "docker.io/library/busybox:1"),
        ("localhost/app:v1", "localhost", "app", "v1", "localhost/app:v1"),
        ("localhost:5000/a/b/c:1.0-rc_1", "localhost:5000", "a/b/c", "1.0-rc_1", "localhost:5000/a/b/c:1.0-rc_1"),
        ("10.0.0.1:443/infra/k8s/pause:3.6", "10.0.0.1:443", "infra/k8s/pause", "3.6",
         "10.0.0.1:443/infra/k8s/pause:3.6"),
        ("[fd00::1]:5000/app:1", "[fd00::1]:5000", "app", "1", "[fd00::1]:5000/app:1"),
        ("Registry.Example/app:1", "Registry.Example", "app", "1", "Registry.Example/app:1"),
        ("quay.io/a/b__c.d-e---f:TAG_1", "quay.io", "a/b__c.d-e---f", "TAG_1", "quay.io/a/b__c.d-e---f:TAG_1"),
        (f"quay.io/app@{SHA256}", "quay.io", "app", SHA256, f"quay.io/app@{SHA256}"),
        (f"pause:3.6@{SHA256}", "docker.io", "library/pause", SHA256, f"docker.io/library/pause:3.6@{SHA256}"),
        ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, "docker.io/library/app:" + "t" * 128),
    ],
)
def test_a_valid_reference_is_normalised_as_the_cri_reads_it(given, domain, path, obj, full):
    reference = parse_image_reference(given)
    assert (reference.domain, reference.path, reference.object, str(reference)) == (domain, path, obj, full)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("Pause:3.6", "the repository name 'Pause' must be lowercase"),
        ("docker.io/Library/pause", "must be lowercase"),
        ("a//b", "an empty path component"),
        ("app/", "an empty path component"),
        ("registry.k8s.io/", "the repository name is missing"),
        ("app:", "the tag '' is not"),
        ("app:-x", "the tag '-x' is not"),
        ("app:" + "t" * 129, "the tag"),
        ("app:a/b", "'app:a' is not a registry host[:port]"),  # a colon before a slash is a port
        ("my app", "'my app' is not a repository path component"),
        ("app_:1", "'app_' is not a repository path component"),
        ("-host.io/app", "'-host.io' is not a registry host[:port]"),
        ("host.io:port/app", "'host.io:port' is not a registry host[:port]"),
        ("app@sha256:abc", "the digest 'sha256:abc' is not algorithm:hex"),
        ("app@" + SHA256[:-1], "a sha256 digest is 64 lowercase hex digits"),
        ("app@" + SHA256.upper().replace("SHA", "sha"), "a sha256 digest is 64 lowercase hex digits"),
        ("app@md5:" + "0" * 32, "containerd knows no digest algorithm 'md5'"),
        ("0123456789abcdef" * 4, "a 64-hex-digit image ID is not a name"),
        ("a.io/" + "a" * 251, "longer than 255"),
        ("app:1\n", "the tag"),
    ],
)
def test_an_invalid_reference_is_refused_naming_the_field_and_the_value(given, why):
    with pytest.raises(RegistrySettingError) as raised:
        parse_image_reference(given, "images[2]")
    assert raised.value.field == "images[2]"
    shown = given if len(given) <= 200 else given[:200] + "..."
    assert raised.value.problem.startswith(f"{shown!r} is not a valid image reference: ")
    assert why in raised.value.problem


@pytest.mark.parametrize(("given", "problem"), [("", "must not be empty"), (5, "(a string), got int"),
                                                (None, "(a string), got NoneType")])
def test_not_a_string_or_empty(given, problem):
    with pytest.raises(RegistrySettingError) as raised:
        parse_image_reference(given, "sandbox_image")
    assert raised.value.field == "sandbox_image" and problem in raised.value.problem


@pytest.mark.parametrize("value", ["", [], "pause:3.6", ["pause:3.6", "registry.k8s.io/pause:3.10"]])
def test_a_settings_value_is_one_reference_or_a_list_kept_as_given(value):
    assert check_image_references(value, "containerd_mirror_verify_image") == value


@pytest.mark.parametrize(
    ("value", "field"),
    [("Pause", "v"), (["pause:3.6", "Bad"], "v[1]"), ([""], "v[0]"), ({"image": "x"}, "v"), (3, "v")],
)
def test_a_settings_value_that_is_not_is_named(value, field):
    with pytest.raises(RegistrySettingError) as raised:
        check_image_references(value, "v")
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("domain", "key"),
    [("docker.io", "docker.io"), ("index.docker.io", "docker.io"), ("Registry-1.Docker.io", "docker.io"),
     ("Quay.IO", "quay.io"), ("10.0.0.1:5000", "10.0.0.1:5000")],
)
def test_registry_key(domain, key):
    assert registry_key(domain) == key
