# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep mirror credentials in config.toml's legacy configs."<host>".auth, where containerd 1.x reads them.

Controller-side, pure Python with no Ansible imports; _containerd_config.py applies it after
config_path is set. containerd 1.6 sends a hosts.toml [header] authorization to the registry but not
on to its token service, so a token-auth registry's private repositories only pull with
configs."<host>".auth {username, password}, which containerd reads next to config_path on every release
(and sends in its OAuth2 password grant). containerd 2.x sends the header to the token service too, so
config versions 3 and 4 get none.

The tables this module writes are recognisable: the comment on their [header] line names
kubenode.registry_mirror (MARKER). Only those are ever changed or removed: an operator's own auth for a
host is left alone when it holds the same credentials, and refused, naming its TOML key, when it does not.
"""

from __future__ import annotations

import base64
import copy
import tomllib

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    check_host_port,
    check_password,
    check_username,
    type_name,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_edit import (
    append_table,
    dotted_key,
    header_comment,
    lookup_table,
    parse,
    remove_header_table,
    set_key,
)

OWNER = "kubenode.registry_mirror"
MARKER = f"# {OWNER}: mirror credentials for containerd 1.x token auth (containerd_config)"
CREDENTIAL_KEYS = ("host", "username", "password")


def check_credentials(credentials, field="credentials"):
    """Return {host: (username, password)} of the credentials option (a list of {host, username, password})."""
    if credentials is None:
        return {}
    if not isinstance(credentials, list):
        raise RegistrySettingError(
            field, f"must be a list of {{host, username, password}}, got {type_name(credentials)}"
        )
    checked = {}
    for index, entry in enumerate(credentials):
        here = f"{field}[{index}]"
        if not isinstance(entry, dict):
            raise RegistrySettingError(
                here, f"must be a mapping of host, username and password, got {type_name(entry)}"
            )
        for key in CREDENTIAL_KEYS:
            if not entry.get(key):
                raise RegistrySettingError(f"{here}.{key}", "is required and must not be empty")
        host = check_host_port(entry["host"], f"{here}.host")
        if host in checked:
            raise RegistrySettingError(f"{here}.host", f"{host!r} is listed twice")
        checked[host] = (check_username(entry["username"], f"{here}.username"),
                         check_password(entry["password"], f"{here}.password"))
    return checked


def _table(data, path):
    """The parsed table at path, None when missing or not a table."""
    node = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _is_ours(document, path):
    comment = header_comment(document, path)
    return comment is not None and OWNER in comment


def owned_hosts(data, document, section):
    """The hosts whose configs."<host>".auth table under section this module wrote."""
    configs = _table(data, (*section, "configs")) or {}
    return [host for host in configs if _table(configs, (host, "auth")) is not None
            and _is_ours(document, (*section, "configs", host, "auth"))]


def _same(auth, username, password):
    """Whether an auth table holds exactly these credentials (as username and password, or as their auth token)."""
    if set(auth) - {"username", "password", "auth"}:
        return False  # an identitytoken, say: containerd would send that instead
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    pair = (auth.get("username"), auth.get("password"))
    return pair == (username, password) or (pair == (None, None) and auth.get("auth") == token)


def _foreign(path, auth, credentials, field):
    """Refuse an operator's own auth table for a host unless it holds these credentials."""
    if _same(auth, *credentials):
        return
    raise RegistrySettingError(
        dotted_key(path),
        f"is this file's own auth for the host of {field}, with other credentials (it carries no {OWNER} comment); "
        "containerd would send only one of them. Delete this table so that the module writes the mirror's "
        "credentials, or give it the same username and password, and run this again; nothing was written",
    )


def _plan(data, document, section, wanted, sections, field):
    """(paths of our tables to remove, {path: credentials} to add, {path: credentials} to update)."""
    remove = []
    for each in sections:
        for host in owned_hosts(data, document, each):
            if each != section or host not in wanted:
                remove.append((*each, "configs", host, "auth"))
    add, update = {}, {}
    for index, (host, credentials) in enumerate(wanted.items()):
        path = (*section, "configs", host, "auth")
        auth = lookup_table(data, path)
        if auth is None:
            add[path] = credentials
        elif not _is_ours(document, path):
            _foreign(path, auth, credentials, f"{field}[{index}]")
        elif auth != {"username": credentials[0], "password": credentials[1]}:
            update[path] = credentials
    return remove, add, update


def _drop_empty(data, path):
    """Delete the table at path when it is empty, and each table above it left empty (configs."<host>", configs,
    and the registry section when removing config_path emptied it too)."""
    for depth in range(len(path), 0, -1):
        node = _table(data, path[:depth])
        if node is None:
            continue  # not there (any more)
        if node:
            return
        del _table(data, path[: depth - 1])[path[depth - 1]]


def _prune(data, path):
    """Delete the table at path from parsed settings, and the tables above it it leaves empty."""
    parent = _table(data, path[:-1])
    if parent is not None:
        parent.pop(path[-1], None)
        _drop_empty(data, path[:-1])


def edit_credentials(text, section, wanted, sections, name="config.toml", field="credentials"):
    """Return text with our configs."<host>".auth tables under section as wanted ({host: (username, password)}).

    sections: every registry section to remove ours from when not wanted there (a node upgraded to
    containerd 2.x keeps none). An operator's own auth is never changed (see _foreign).
    """
    data, document = parse(text, name)
    remove, add, update = _plan(data, document, section, wanted, sections, field)
    if not (remove or add or update):
        return text
    expected = copy.deepcopy(data)
    for path in remove:
        remove_header_table(document, path)
        _prune(expected, path)
    for path, (username, password) in update.items():
        for key, value in (("username", username), ("password", password)):
            set_key(document, path, key, value)
        _table(expected, path).update(username=username, password=password)
    new_text = document.as_string()
    for path, (username, password) in add.items():
        new_text = append_table(new_text, path, {"username": username, "password": password}, MARKER)
        node = expected
        for part in path:
            node = node.setdefault(part, {})
        node.update(username=username, password=password)
    _verify(new_text, expected, [*remove, *add], name)
    return new_text


def _verify(text, expected, paths, name):
    try:
        result = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        where = ", ".join(dotted_key(path[:-2]) for path in paths)
        raise RegistrySettingError(
            name,
            f"the credentials cannot be written as tables of their own under {where}, as the file writes that table "
            "(or one above it) inline; write it as a [table] and run this again; nothing was written",
        ) from None
    for path in paths:  # an explicit [configs."<host>"] header may stay, empty
        for settings in (result, expected):
            _drop_empty(settings, path[:-1])
    if result != expected:
        raise RegistrySettingError(
            name,
            "the edited text does not parse back to the intended settings; nothing was written (please report this)",
        )


def holds_ours(text):
    """Whether config.toml text holds credentials this module wrote (then the file is kept 0600)."""
    return bool(text) and MARKER in text
