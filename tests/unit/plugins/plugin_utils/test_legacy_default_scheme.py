"""A legacy endpoint without a scheme gets the scheme containerd's addDefaultScheme gave it (issue 23, defect 13).

containerd 1.6 (pkg/cri/server/image_pull.go) parses "dummy://" + endpoint and gives http only when
docker.IsLocalhost(u.Host): net.SplitHostPort strips a port when there is one (an error leaves the host as it is,
brackets included), then the host is "localhost" (exactly) or net.ParseIP says it is a loopback address, IPv4-mapped
ones included. "[::1]" without a port keeps its brackets, which ParseIP does not read: containerd used https there.
Written out by hand from that code, not taken from ours.
"""

from __future__ import annotations

import pytest

from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._legacy_registry import parse_endpoint


@pytest.mark.parametrize(("endpoint", "url"), [
    ("[::1]", "https://[::1]"),  # SplitHostPort fails (no port); ParseIP("[::1]") is nil
    ("[::1]/v2/cache", "https://[::1]/v2/cache"),
    ("[::1]:5000", "http://[::1]:5000"),
    ("[0:0:0:0:0:0:0:1]:5000", "http://[0:0:0:0:0:0:0:1]:5000"),
    ("[::ffff:127.0.0.1]:5000", "http://[::ffff:127.0.0.1]:5000"),  # Go's IsLoopback reads the IPv4 in it
    ("[::2]:5000", "https://[::2]:5000"),
    ("localhost", "http://localhost"),
    ("localhost:5000", "http://localhost:5000"),
    ("localhost:5000/v2/cache", "http://localhost:5000/v2/cache"),
    ("LOCALHOST:5000", "https://LOCALHOST:5000"),  # compared exactly
    ("localhost.localdomain:5000", "https://localhost.localdomain:5000"),
    ("127.0.0.1", "http://127.0.0.1"),
    ("127.0.0.2:5000", "http://127.0.0.2:5000"),
    ("10.0.0.1:5000", "https://10.0.0.1:5000"),
    ("reg.local:5000", "https://reg.local:5000"),
    ("http://[::1]", "http://[::1]"),  # a scheme given is kept
])
def test_an_endpoint_without_a_scheme_gets_containerds_default(endpoint, url):
    assert parse_endpoint(endpoint, "mirrors.x.endpoint[0]").url == url
