# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The customRegistry* fields of a Platform9 (PMK) cluster, as the Qbert API holds them.

Pure Python (3.8+) with no Ansible imports, so it is unit-testable alone: field
validation, the comparison with what the API returned, the request body, the
diff and the error messages. The pmk_cluster_registry module does the HTTP.

The URL and repository path grammar is containerd_hosts' own (module_utils/_registry_url.py).
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    SECRET_MASK,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    check_no_space,
    normalize_url,
    require_str,
    split_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    BY_OPTION,
    PMK_REGISTRY_SETTINGS,
    PMK_SETTINGS,
    UPDATE_PASSWORD_CHOICES,
    argument_spec,
    check_value,
    pmk_body,
    pmk_bool,
)

# (option name, Qbert API field, JSON type), in the seed document's order.
FIELDS = tuple((setting.option, setting.pmk, bool if setting.type == "bool" else str) for setting in PMK_SETTINGS)
API_FIELDS = tuple(field[1] for field in FIELDS)
FIELD_TYPES = {field[1]: field[2] for field in FIELDS}
PASSWORD_FIELD = BY_OPTION["password"].pmk
REPO_PATH_FIELD = BY_OPTION["repo_path"].pmk
# Shown in a diff instead of the password the API never returns.
PASSWORD_UNKNOWN = "(not returned by the API)"

# The registry options. No defaults: a field the task does not set is never sent.
REGISTRY_ARGUMENT_SPEC = argument_spec(PMK_REGISTRY_SETTINGS)


def wanted_fields(params):
    """Return {API field: value} for the registry options the task sets, validated and normalised.

    params holds the option names (url, repo_path, ...); None means not set.
    An empty string is kept as is: it clears that field on the cluster.
    """
    options = (setting.option for setting in PMK_SETTINGS)
    return pmk_body({option: check_value(option, params.get(option)) for option in options})


def _comparable_str(api, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        return None
    if api == BY_OPTION["url"].pmk and value:
        try:
            return normalize_url(value)[0]
        except RegistrySettingError:
            return value.rstrip("/")
    if api == REPO_PATH_FIELD:
        return value.strip("/")
    return value


def same_value(api, current, wanted):
    """True when the value the API returned for a field already is the wanted one."""
    if FIELD_TYPES[api] is bool:
        return pmk_bool(current) is wanted
    return _comparable_str(api, current) == _comparable_str(api, wanted)


def current_fields(cluster):
    """Return {API field: value or None} of the readable customRegistry* fields of a cluster object."""
    if not isinstance(cluster, dict):
        raise RegistrySettingError("cluster", f"the API returned a {type(cluster).__name__}, not a JSON object")
    current = {}
    for setting in PMK_SETTINGS:
        if setting.pmk != PASSWORD_FIELD:
            # The first spelling that holds a value: customRegistryPath when customRegistryRepoPath is null.
            held = (cluster[name] for name in setting.aliases if cluster.get(name) is not None)
            current[setting.pmk] = next(held, None)
    return current


class Plan:
    """What to send: body is empty when the cluster already holds the wanted fields."""

    def __init__(self, current, wanted, changed, body):
        self.current = current
        self.wanted = wanted
        self.changed = changed  # API field names that differ, password last when it is sent
        self.body = body

    def registry_after(self):
        """The readable fields as the cluster holds them after the write (password left out)."""
        after = dict(self.current)
        after.update((api, value) for api, value in self.body.items() if api != PASSWORD_FIELD)
        return after

    def diff(self):
        """Before/after of the fields that change; the password is masked on both sides."""
        before, after = {}, {}
        for api in self.changed:
            if api == PASSWORD_FIELD:
                before[api], after[api] = PASSWORD_UNKNOWN, SECRET_MASK
            else:
                before[api], after[api] = self.current[api], self.body[api]
        return {"before": before, "after": after}


def plan_update(cluster, wanted, update_password="on_change_of_other_fields"):
    """Compare the cluster object with the wanted fields; return a Plan.

    The API never returns the password, so it cannot be compared: with
    update_password=always it is sent whenever it is given, otherwise only
    along with a change of some other field. When anything is sent, the body
    holds every field the task sets (the password per the rule above).
    """
    if update_password not in UPDATE_PASSWORD_CHOICES:
        raise RegistrySettingError("update_password", f"must be one of {', '.join(UPDATE_PASSWORD_CHOICES)}")
    current = current_fields(cluster)
    changed = [
        api
        for api in API_FIELDS
        if api in wanted and api != PASSWORD_FIELD and not same_value(api, current[api], wanted[api])
    ]
    send_password = PASSWORD_FIELD in wanted and (update_password == "always" or bool(changed))
    if send_password:
        changed.append(PASSWORD_FIELD)
    body = {}
    if changed:
        body = {api: wanted[api] for api in API_FIELDS if api in wanted and (api != PASSWORD_FIELD or send_password)}
    return Plan(current, wanted, changed, body)


def sanitize_cluster(cluster):
    """A copy of the cluster object without the password, should the API ever return it."""
    return {key: value for key, value in cluster.items() if key != PASSWORD_FIELD}


def _check_id(value, field):
    require_str(value, field)
    if value == "":
        raise RegistrySettingError(field, "must not be empty")
    return check_no_space(value, field)


def api_base(api_url):
    """Return the validated API base URL without a trailing slash (a path prefix is kept)."""
    if isinstance(api_url, str) and "://" not in api_url:
        raise RegistrySettingError("api_url", "must start with https:// or http://")
    scheme, parts = split_url(api_url, "api_url")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def cluster_url(api_url, project_id, cluster_uuid):
    """{api_url}/qbert/v4/{project_id}/clusters/{cluster_uuid}, each id quoted as one path segment."""
    project = quote(_check_id(project_id, "project_id"), safe="")
    cluster = quote(_check_id(cluster_uuid, "cluster_uuid"), safe="")
    return f"{api_base(api_url)}/qbert/v4/{project}/clusters/{cluster}"


def upgrade_url(api_url, project_id, cluster_uuid, upgrade_type, force=False):
    """The cluster upgrade URL: .../clusters/{cluster_uuid}/upgrade?type={upgrade_type}&force={force}."""
    _check_id(upgrade_type, "upgrade_type")
    query = urlencode({"type": upgrade_type, "force": "true" if force else "false"})
    return f"{cluster_url(api_url, project_id, cluster_uuid)}/upgrade?{query}"


def _secret_pattern(secret):
    """A regular expression for secret however its whitespace is spaced: runs of it match any run."""
    pieces = secret.split()
    return r"\s+".join(re.escape(piece) for piece in pieces) if pieces else re.escape(secret)


def redact(text, secrets):
    """Replace every non-empty secret in text with the mask, whatever the spacing of its whitespace."""
    patterns = sorted({_secret_pattern(secret) for secret in secrets if secret}, key=len, reverse=True)
    return re.sub("|".join(patterns), SECRET_MASK, text) if patterns else text


_MESSAGE_KEYS = ("message", "msg", "error", "detail", "details", "reason", "description", "title")
_MAX_MESSAGE = 500


def _shorten(text, fold=True):
    """At most _MAX_MESSAGE characters, whitespace folded with fold: only ever applied to redacted text."""
    return (" ".join(text.split()) if fold else text)[:_MAX_MESSAGE]


def api_message(body, secrets=()):
    """The API's own error message from a response body (bytes or str), or None.

    The secrets are masked first, in the body as sent and in the message as decoded, and only
    then is the message folded and shortened: a secret split by either never shows in part.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not body or not body.strip():
        return None
    body = redact(body, secrets)
    try:
        document = json.loads(body)
    except ValueError:
        return None if body.lstrip().startswith("<") else _shorten(body)
    for _depth in range(3):  # {"error": {"message": "..."}} and the like
        if isinstance(document, str):
            return _shorten(redact(document, secrets), fold=False) or None
        if not isinstance(document, dict):
            return None
        found = next((document[key] for key in _MESSAGE_KEYS if document.get(key)), None)
        if found is None:
            return None
        document = found
    return None


def http_error_message(method, url, status, body, project_id, cluster_uuid, secrets=()):
    """A message for an HTTP error status of the Qbert API, without any secret."""
    message = api_message(body, secrets)
    suffix = f": {message}" if message else ""
    if status in (401, 403):
        text = (
            f"the Qbert API rejected the auth token (HTTP {status} for {method} {url}); "
            f"check auth_token (or OS_TOKEN): it may have expired or lack access to the project{suffix}"
        )
    elif status == 404:
        text = f"project {project_id!r} or cluster {cluster_uuid!r} was not found (HTTP 404 for {method} {url}){suffix}"
    else:
        text = f"{method} {url} failed with HTTP {status}{suffix or ' and no message'}"
    return redact(text, secrets)


def connection_error_message(method, url, reason, timeout, secrets=()):
    """A message for a request that got no HTTP answer (timeout, refused, TLS, DNS)."""
    reason = str(reason or "no reason given")
    if "timed out" in reason.lower():
        text = f"the Qbert API did not answer {method} {url} within {timeout} seconds (timeout): {reason}"
    else:
        text = f"could not reach the Qbert API for {method} {url}: {reason}"
    return redact(text, secrets)


def redirect_error_message(method, url, status, location, why, secrets=()):
    """A message for a redirect the module does not follow: a write, or a read sent to another origin.

    A redirected write wrote nothing; a read is followed to the same scheme, host and port only,
    so that the auth token never goes anywhere else.
    """
    to = f" to {location}" if location else ""
    if method in ("GET", "HEAD"):
        what = (
            f"{method} {url} was redirected{to} (HTTP {status}); not followed: {why}. The auth token is only "
            "sent to the scheme, host and port of api_url"
        )
    else:
        what = (
            f"{method} {url} was answered with a redirect{to} (HTTP {status}); nothing was written: "
            "a redirected write is not followed"
        )
    hint = "; point api_url at the API itself"
    if location and url.startswith("http://") and location.startswith("https://"):
        hint = "; the API redirects http to https: use https:// in api_url"
    return redact(what + hint, secrets)
