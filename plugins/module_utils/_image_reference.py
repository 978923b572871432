# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references as containerd's CRI reads them: the grammar of distribution/reference, normalised as
ParseNormalizedNamed does (pause:3.6 is docker.io/library/pause:3.6).

Pure Python with no Ansible imports, standard library only and Python 3.8+: the node-side modules (cri_pull,
registry_preflight) and the role's settings check (_settings.py) share this one definition. A reference that
does not fit is refused before anything runs, naming the setting and the value.

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path-component ["/" path-component]*
    domain           := host [":" port]      host: a DNS name, an IPv4 address or [IPv6]
    path-component   := [a-z0-9]+ (separator [a-z0-9]+)*     separator: . _ __ or one or more -
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := algorithm ":" hex    (sha256: 64 lowercase hex digits, sha384: 96, sha512: 128)
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Sequence

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    type_name,
)

# Docker Hub: a name without a domain is on it, its one-word names under library/; containerd's hosts
# directory for it is docker.io, which index.docker.io (the legacy name) and registry-1.docker.io (its API
# host) also mean.
DOCKER_HUB = "docker.io"
DOCKER_HUB_NAMES = (DOCKER_HUB, "index.docker.io", "registry-1.docker.io")
_LEGACY_DOCKER_HUB = "index.docker.io"
_OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
# distribution/reference's NameTotalLengthMax: the name, domain included.
MAX_NAME_LENGTH = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):(?P<hex>[0-9a-fA-F]{32,})")
# The algorithms go-digest knows, and the length of their hex: containerd refuses any other.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
# An image ID (64 hex digits) is not a reference: ParseNormalizedNamed refuses it rather than read a name.
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
EXAMPLE = "for example registry.k8s.io/pause:3.6, pause:3.6 or quay.io/org/app@sha256:<64 hex digits>"


class ImageReference(namedtuple("ImageReference", ["domain", "path", "tag", "digest"])):
    """A checked reference, normalised: domain docker.io for Docker Hub (its one-word paths under library/);
    tag and digest None when not given."""

    __slots__ = ()

    @property
    def name(self):
        return f"{self.domain}/{self.path}"

    @property
    def object(self):
        """What containerd asks /manifests/ for: the digest when there is one, else the tag (latest by default)."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self):
        """The fully qualified reference, as ctr needs it (ctr does not normalise docker.io names)."""
        tag = self.tag or (None if self.digest else DEFAULT_TAG)
        return self.name + (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")


def registry_key(domain):
    """The name two spellings of one registry share: without case; Docker Hub's names as docker.io."""
    name = domain.lower()
    return DOCKER_HUB if name in DOCKER_HUB_NAMES else name


def _split_domain(name):
    """(domain, rest) as distribution's splitDockerDomain: the first component is a domain when it holds a . or
    a :, is localhost, or has an uppercase letter (a path never does)."""
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        return DOCKER_HUB, name
    return first, rest


def _refuse(value, field, why):
    shown = value if len(value) <= 200 else value[:200] + "..."
    raise RegistrySettingError(field, f"{shown!r} is not a valid image reference: {why} ({EXAMPLE})")


def parse_image_reference(value, field="image"):
    """Return the ImageReference of value; raise RegistrySettingError naming field and the value otherwise."""
    if not isinstance(value, str):
        raise RegistrySettingError(field, f"must be an image reference (a string), got {type_name(value)}")
    if value == "":
        raise RegistrySettingError(field, f"must not be empty ({EXAMPLE})")
    if _IDENTIFIER.fullmatch(value):
        _refuse(value, field, "a 64-hex-digit image ID is not a name")
    rest, at, digest = value.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        _refuse(value, field, f"the digest {digest!r} is not algorithm:hex (at least 32 hex digits)")
    if at:
        algorithm, _colon, hex_digits = digest.partition(":")
        length = _DIGEST_HEX_LENGTHS.get(algorithm)
        if length is None:
            _refuse(value, field, f"containerd knows no digest algorithm {algorithm!r} (sha256, sha384, sha512)")
        if len(hex_digits) != length or hex_digits.lower() != hex_digits:
            _refuse(value, field, f"a {algorithm} digest is {length} lowercase hex digits")
    # The tag follows the last colon after the last slash: a colon before a slash is a domain's port.
    name, tag = rest, None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            _refuse(value, field, f"the tag {tag!r} is not letters, digits, _ . - (at most 128, not starting with . -)")
    domain, path = _split_domain(name)
    if not _DOMAIN.fullmatch(domain):
        _refuse(value, field, f"{domain!r} is not a registry host[:port]")
    if path == "":
        _refuse(value, field, "the repository name is missing")
    if path.lower() != path:
        _refuse(value, field, f"the repository name {path!r} must be lowercase")
    for component in path.split("/"):
        if component == "":
            _refuse(value, field, "the repository name has an empty path component (// or a / at an end)")
        if not _PATH_COMPONENT.fullmatch(component):
            _refuse(value, field, f"{component!r} is not a repository path component: lowercase letters and digits, "
                                  "separated by . _ __ or -")
    if domain == _LEGACY_DOCKER_HUB:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"{_OFFICIAL_NAMESPACE}/{path}"
    if len(f"{domain}/{path}") > MAX_NAME_LENGTH:
        _refuse(value, field, f"the name is longer than {MAX_NAME_LENGTH} characters")
    return ImageReference(domain, path, tag, digest or None)


def check_image_references(value, field):
    """Return value when it is an image reference or a list of them ("" or [] mean none: checked, kept as given).

    The role's verify_image setting: an error names field, or field[index] for an element of a list.
    """
    if isinstance(value, str):
        if value != "":
            parse_image_reference(value, field)
        return value
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Sequence):
        raise RegistrySettingError(field, f"must be an image reference or a list of them, got {type_name(value)}")
    for index, image in enumerate(value):
        parse_image_reference(image, f"{field}[{index}]")
    return value
