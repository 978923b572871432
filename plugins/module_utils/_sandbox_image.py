# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's sandbox image and the mirrors that will serve it: what registry_preflight asks before any change.

Pure Python with no Ansible imports, standard library only and Python 3.8+. Every new pod sandbox pulls the
sandbox ("pause") image with the node's credentials only; when its registry is served only from mirrors
(upstream_fallback false) and no mirror has it, no new pod can start. So the preflight asks each mirror for
its manifest exactly as containerd's resolver will: HEAD <mirror>/v2/[<repo_path>/]<path>/manifests/<tag or
digest>?ns=<registry>, in the order of hosts.toml, with containerd's Accept header.

The routes come from the controller (plugin_utils/_hosts_toml.py, preflight_routes): one per registry directory
the collection writes, each with its mirrors in containerd's order, or "*" for _default.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_dump import BASIC_ESCAPES
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import registry_key

DUMP_SOURCE = "containerd config dump"
# Where each release keeps the sandbox image: 2.x's CRI images plugin, 1.x's CRI plugin.
SANDBOX_KEYS = (
    (("plugins", "io.containerd.cri.v1.images", "pinned_images"), "sandbox"),
    (("plugins", "io.containerd.grpc.v1.cri"), "sandbox_image"),
)
WILDCARD = "*"
# containerd's resolver sends this Accept with every HEAD of a manifest (remotes/docker/resolver.go).
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "*/*",
))

_KEY_PART = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")
_KEY_VALUE = re.compile(r"""([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:#.*)?$""")
# A basic string's escapes (TOML): \uXXXX, \UXXXXXXXX or one character.
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")


def _unescaped(text):
    """A TOML basic string's text without its escapes (an image name needs none; any is read, not refused)."""

    def one(match):
        short, long, character = match.groups()
        if short or long:
            code = int(short or long, 16)
            return chr(code) if code <= 0x10FFFF else match.group(0)
        return BASIC_ESCAPES.get(character, character)

    return _ESCAPE.sub(one, text)


def _table_path(header):
    """The keys of a [a."b".'c'] table header, or None when it is not one this reader follows."""
    parts, index = [], 0
    while True:
        match = _KEY_PART.match(header, index)
        if match is None:
            return None
        basic, literal, bare = match.groups()
        parts.append(_unescaped(basic) if basic is not None else literal if literal is not None else bare)
        index = match.end()
        if index == len(header):
            return tuple(parts)
        if header[index] != ".":
            return None
        index += 1


def sandbox_image_of(dump):
    """Return (image, where) from `containerd config dump` output, or (None, None) when it names none.

    Read line by line rather than parsed as TOML: the node's Python may predate tomllib (3.11) and a module takes
    no third-party package, and the input is not any TOML but go-toml's own output (v1 on containerd 1.x with "..."
    strings, v2 on 2.x with '...' ones): one table header or one key = value a line, the sandbox image a plain
    string. 2.x's pinned_images.sandbox is preferred over a 1.x sandbox_image.
    """
    found, table = {}, None
    for line in dump.splitlines():
        stripped = line.strip()
        if stripped.startswith("[["):
            table = None  # an array of tables: nothing of ours is in one
        elif stripped.startswith("[") and stripped.endswith("]"):
            table = _table_path(stripped[1:-1])
        elif table is not None:
            match = _KEY_VALUE.match(stripped)
            if match is not None and (table, match.group(1)) in SANDBOX_KEYS:
                basic, literal = match.group(2), match.group(3)
                found[(table, match.group(1))] = _unescaped(basic) if basic is not None else literal
    for table, key in SANDBOX_KEYS:
        if found.get((table, key)):
            where = ".".join([table[0], *(f'"{part}"' for part in table[1:2]), *table[2:], key])
            return found[(table, key)], f"{DUMP_SOURCE}: {where}"
    return None, None


def route_for(routes, reference):
    """The route containerd takes for reference's registry: its own directory's, else *'s; None when neither."""
    key = registry_key(reference.domain)
    own = [route for route in routes if route["registry"] != WILDCARD and registry_key(route["registry"]) == key]
    if own:
        return own[0]
    return next((route for route in routes if route["registry"] == WILDCARD), None)


def eligible_mirrors(route, reference):
    """The mirrors containerd asks: by tag only those that may resolve, by digest those that may pull."""
    needed = {"pull"} if reference.digest else {"pull", "resolve"}
    return [mirror for mirror in route["mirrors"] if needed <= set(mirror["capabilities"])]


def manifest_url(v2_url, repo_path, reference):
    """containerd's HEAD of a manifest on a mirror: v2_url is the mirror's <scheme://host[:port]>/v2/, repo_path
    its override_path (hosts.toml's [host."<url>/v2/<repo_path>"]); ns names the registry, as containerd adds it
    for any host other than the registry itself."""
    prefix = f"{repo_path}/" if repo_path else ""
    return f"{v2_url}{prefix}{reference.path}/manifests/{reference.object}?ns={quote(reference.domain, safe='')}"


def _tried_text(tried):
    return "; ".join(entry["why"] for entry in tried)


def failure_message(image, source, reference, route, tried):
    """The task's message when the registry serves only from mirrors and none of them has the sandbox image."""
    what = (f"Tried, in containerd's order: {_tried_text(tried)}." if tried else
            f"None of its mirrors may {'pull' if reference.digest else 'resolve a tag'} (their capabilities).")
    return (f"The sandbox image {image} ({source}), which every new pod on this node needs, is on none of the "
            f"mirrors of {reference.domain} ({route['field']}), and upstream_fallback is false for it: once containerd "
            f"uses them, no new pod could start on this node. {what} Push {reference} to a mirror (or let it proxy "
            f"{reference.domain}), or allow upstream_fallback for {reference.domain}. Nothing was changed.")


def fallback_warning(image, source, reference, route, tried):
    """The warning when no mirror has the sandbox image but containerd may still go to the registry itself."""
    what = f" Tried: {_tried_text(tried)}." if tried else ""
    return (f"The sandbox image {image} ({source}) is on none of the mirrors of {reference.domain} ({route['field']})."
            f"{what} containerd will pull it from {reference.domain} itself (upstream_fallback), so every new pod on "
            "this node needs that registry reachable; push it to a mirror to serve it from there.")


def unread_message(why, strict_fields):
    """Why the sandbox image could not be read, and what that means: an error when strict_fields (registries
    served only from mirrors) is not empty, else a warning."""
    if strict_fields:
        return (f"sandbox_image: {why}, and {', '.join(strict_fields)} serve only from mirrors (upstream_fallback "
                "false), so the sandbox image every new pod needs must be on them; give sandbox_image")
    return f"sandbox_image: {why}; the sandbox image was not checked on the mirrors"
