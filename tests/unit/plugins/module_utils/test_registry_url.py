"""_registry_url: the host[:port] grammar every URL and registry option shares (issue 10, point 13)."""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    check_host_port,
    normalize_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import render_hosts_files

LABEL_63 = "a" * 63
HOST_253 = ".".join([LABEL_63] * 3 + ["b" * 61])  # 63*3 + 61 + 3 dots
HOST_329 = ".".join(["a" * 60] * 5 + ["c" * 24])


def test_the_boundaries_are_what_they_claim():
    assert len(HOST_253) == 253
    assert len(HOST_329) == 329


@pytest.mark.parametrize(
    "value",
    [
        "docker.io",
        "registry.k8s.io",
        "localhost",
        "localhost:5000",
        "10.101.101.100:443",
        "0.0.0.0",
        "255.255.255.255:65535",
        "h:1",
        "[fd00::1]:5000",
        "[::1]",
        "a1.b2.c3.d4",  # numeric-looking labels are fine while the last one is not a number
        "1.2.3.4.example",
        "0x.example",
        f"{LABEL_63}.io",
        HOST_253,
        f"{HOST_253}:5000",
        "Mirror.Example.COM",
    ],
)
def test_valid_hosts_are_accepted(value):
    assert check_host_port(value, "url") == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (HOST_329, "329 characters long; a host name has at most 253"),
        (HOST_253 + "c", "254 characters long"),
        (f"{'a' * 64}.io", "64 characters long; a host name label has at most 63"),
        ("999.999.999.999", "must be an IPv4 address of four decimal octets 0-255"),
        ("1.2.3.4.5", "must be an IPv4 address"),
        ("1.2.3", "must be an IPv4 address"),
        ("10.1", "must be an IPv4 address"),
        ("1234", "must be an IPv4 address"),
        ("256.1.1.1", "must be an IPv4 address"),
        ("010.0.0.1", "without leading zeros"),  # octal to some parsers
        ("0x7f.0.0.1", "must be an IPv4 address"),
        ("registry.0x1f", "must be an IPv4 address"),
        ("example.123", "ends in a number"),
        ("h:00443", "port 00443 has a leading zero; write it as 443"),
        ("h:0443", "leading zero"),
        ("h:0", "out of range 1-65535"),
        ("h:65536", "out of range 1-65535"),
        ("h:99999999999", "out of range 1-65535"),
        (":443", "not a valid registry host[:port]"),
        ("-a.io", "not a valid registry host[:port]"),
        ("a-.io", "not a valid registry host[:port]"),
        ("a..io", "not a valid registry host[:port]"),
        ("[fd00::1::2]", "invalid IPv6 address"),
    ],
)
def test_invalid_hosts_are_refused_naming_the_field_and_why(value, words):
    with pytest.raises(RegistrySettingError) as raised:
        check_host_port(value, "registries[3]")
    assert raised.value.field == "registries[3]"
    assert str(raised.value).startswith("registries[3]: ")
    assert words in str(raised.value)


def test_a_long_host_is_not_echoed_whole():
    with pytest.raises(RegistrySettingError) as raised:
        check_host_port("a" * 5000 + ".io", "url")
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize(
    "url", [f"https://{HOST_329}", "https://999.999.999.999", "https://1.2.3.4.5:5000", "https://10.0.0.1:00443"]
)
def test_urls_follow_the_same_grammar(url):
    with pytest.raises(RegistrySettingError) as raised:
        normalize_url(url)
    assert raised.value.field == "url"


def test_a_329_character_mirror_host_is_a_clear_error_not_a_file_name_error():
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files(f"https://{HOST_329}", registries=["docker.io"])
    assert raised.value.field == "url"
    assert "253" in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(url=f"https://{HOST_253}:5000"), "url"),
        (dict(registries=["docker.io", f"{HOST_253}:443"]), "registries[1]"),
    ],
)
def test_a_directory_name_longer_than_255_is_refused(kwargs, field):
    """A 253-character host with a port is a valid host[:port] but no file system takes it as a name."""
    arguments = dict(url="https://10.0.0.1:443", registries=["docker.io"]) | kwargs
    with pytest.raises(RegistrySettingError) as raised:
        render_hosts_files(**arguments)
    assert raised.value.field == field
    assert "at most 255" in str(raised.value)


def test_a_253_character_host_without_port_still_renders():
    rendered = dict(render_hosts_files("https://10.0.0.1:443", registries=[HOST_253]))
    assert HOST_253 in rendered
