# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mask the secrets of a TOML file (hosts.toml, config.toml) for a diff.

Controller-side, pure Python with no Ansible imports. Masking works on the
parsed document (tomlkit, which keeps comments and layout), never on text
shapes, so a secret is masked however TOML spells it: a [table], an inline
table, a dotted key, a multi-line or literal string, a table header with
spaces, a comment after the table line. The result is then checked: parsed
again, every secret must read as the mask, and no secret may be left in the
text (a comment that repeats it, say). Text that cannot be parsed, or that
fails the check, is not shown at all, only that it changed.

Secrets are the values of every key under a table named header or headers
(hosts.toml's [header] and [host."...".header], config.toml's registry
headers) and of every key named password, auth or identitytoken (config.toml's
configs."<host>".auth), wherever they are. Names are compared without case,
as containerd's TOML decoder matches them.
"""

from __future__ import annotations

import tomllib

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import SECRET_MASK
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_edit import have_tomlkit, rewrite

SECRET_KEYS = frozenset(("password", "auth", "identitytoken"))
HEADER_TABLES = frozenset(("header", "headers"))
CHANGED_MASK = f"{SECRET_MASK} (changed)"
_MASKS = (SECRET_MASK, CHANGED_MASK)
NOT_PARSED = "not shown: the file could not be parsed to mask its secrets"
NOT_CERTAIN = "not shown: its secrets could not be masked with certainty"
# A secret at least this long must not appear anywhere in masked text; shorter ones ("1", "true")
# could be any other value of the file.
_LEAK_CHECK_LENGTH = 6


def _is_header(key):
    return isinstance(key, str) and key.lower() in HEADER_TABLES


def _is_secret(key):
    return isinstance(key, str) and key.lower() in SECRET_KEYS


def _secrets(node, masked, path, found):
    """Collect {key path: value} of every secret under a parsed (tomllib or tomlkit) table."""
    for key, value in node.items():
        here = (*path, key)
        if isinstance(value, dict):
            _secrets(value, masked or _is_header(key), here, found)
        elif masked or _is_secret(key) or _is_header(key):
            found[here] = value
        elif isinstance(value, list):
            for index, element in enumerate(value):
                if isinstance(element, dict):
                    _secrets(element, False, (*here, index), found)
    return found


def secret_values(text):
    """Return {key path: value} of every secret in TOML text; None when the text does not parse."""
    try:
        return _secrets(tomllib.loads(text), False, (), {})
    except (tomllib.TOMLDecodeError, ValueError, TypeError):
        return None


def holds_secrets(text):
    """Whether a diff of TOML text masks anything: a secret in it, or text that does not parse (never shown)."""
    if not text:
        return False
    secrets = secret_values(text)
    return secrets is None or bool(secrets)


def _strings(value):
    """Every string inside a secret value (a string, an array of them, a table...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def secret_strings(text):
    """Return every string inside the secrets of TOML text (see secret_values); empty when it does not parse."""
    return {secret for value in (secret_values(text) or {}).values() for secret in _strings(value)}


def _mask_document(node, masked, label):
    """Replace every secret under a tomlkit container with label, in place."""
    for key in list(node.keys()):
        value = node[key]
        if isinstance(value, dict):
            _mask_document(value, masked or _is_header(key), label)
        elif masked or _is_secret(key) or _is_header(key):
            node[key] = label
        elif isinstance(value, list):
            for element in value:
                if isinstance(element, dict):
                    _mask_document(element, False, label)


def not_shown(changed=False, reason=NOT_PARSED):
    """The whole text shown for a file whose secrets cannot be masked safely."""
    return f"{SECRET_MASK} ({'changed; ' if changed else ''}{reason})\n"


def mask_toml(text, label=SECRET_MASK):
    """Return TOML text with every secret replaced by label; not_shown() when that cannot be done safely.

    Comments and layout stay, so that a diff of two masked texts shows what else changed.
    """
    if not text:
        return text or ""
    secrets = secret_values(text)
    if secrets is None:
        return not_shown()
    if not secrets:
        return text
    if not have_tomlkit():  # reported when masking, so that documentation tools work without it
        return not_shown(reason=f"{NOT_CERTAIN}: tomlkit is not installed on the controller")
    try:
        document = rewrite(text)
        _mask_document(document, False, label)
        masked = document.as_string()
        check = secret_values(masked)
    except Exception:  # never fall back to the text itself: it holds secrets
        return not_shown()
    # Both parsers must agree on where the secrets are, and none may survive anywhere in the text.
    if check is None or set(check) != set(secrets) or any(value != label for value in check.values()):
        return not_shown(reason=NOT_CERTAIN)
    for value in secrets.values():
        for secret in _strings(value):
            if len(secret) >= _LEAK_CHECK_LENGTH and secret not in _MASKS and secret in masked:
                return not_shown(reason=NOT_CERTAIN)
    return masked


def mask_diff(before, after):
    """Return (before, after) TOML texts for a diff, every secret masked.

    When any secret differs (or cannot be compared), after's secrets read
    "******** (changed)", so that a diff whose only change is a password still
    shows one. None stands for no file.
    """
    before, after = before or "", after or ""
    old, new = secret_values(before), secret_values(after)
    changed = old is None or new is None or old != new
    masked_before = mask_toml(before)
    masked_after = mask_toml(after, CHANGED_MASK if changed else SECRET_MASK)
    if masked_before == masked_after and before != after:  # neither could be shown
        masked_after = not_shown(changed=True, reason=masked_after.rstrip("\n").split(" (", 1)[-1][:-1])
    return masked_before, masked_after
