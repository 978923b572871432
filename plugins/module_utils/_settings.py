# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mirror settings: one table of their names, PMK (Qbert) fields, types and defaults, and one validator.

Pure Python (3.8+) with no Ansible imports. Everything else derives from here: the argument specs of
containerd_hosts and pmk_cluster_registry, the Qbert request body, the reading of a PMK cluster body
(the from_pmk_cluster filter) and the checks of the containerd_mirror role (the mirror_settings filter).
Each rule between settings is written once, in check_settings().
"""

from __future__ import annotations

import copy
import datetime
import re
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca_pin import check_sha256, pin_mismatch
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_LEGACY_MIRRORS,
    DEFAULT_PATH,
    LEGACY_MIRRORS,
    NEW_FILE_VERSIONS,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._containerd_config_spec import (
    STATES as CONFIG_STATES,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._cri_pull import (
    DEFAULT_CRICTL,
    DEFAULT_ENDPOINT,
    DEFAULT_HOSTS_DIR,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._image_reference import check_image_references
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import (
    UTC,
    PemError,
    check_key_pair,
    check_private_key,
    check_validity,
    read_certificates,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    check_host_port,
    check_no_space,
    check_password,
    check_username,
    normalize_repo_path,
    normalize_url,
    require_str,
    split_url,
    type_name,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._restart_lock import LOCK_FILE

# The registries PMK routes through the custom registry (seed document).
DEFAULT_REGISTRIES = ("platform9.io", "docker.io", "gcr.io", "quay.io", "registry.k8s.io")
STATES = ("present", "absent")
# What a mirror may do for containerd (hosts.toml capabilities), in the order they are written; by default
# it pulls and resolves tags, as the seed's mirror does. push is for a registry, not a mirror, but allowed.
CAPABILITIES = ("pull", "resolve", "push")
DEFAULT_CAPABILITIES = ("pull", "resolve")
# One part of a Go duration (time.ParseDuration, which containerd reads dial_timeout with): a decimal
# number and its unit. A sign is refused: a timeout is positive.
_DURATION_PART = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")


def check_url(value, field="url"):
    """Return the mirror's scheme://host[:port]."""
    return normalize_url(value, field)[0]


def check_absolute(value, field):
    """Return value when it is an absolute path on the node: the one check, and message, of every node path.

    Node paths are taken literally: ~ and $VARS are not expanded, on the controller or on the node.
    """
    require_str(value, field)
    if not value.startswith("/"):
        raise RegistrySettingError(field, f"{value!r} must be an absolute path on the node")
    return value


def check_node_path(value, field):
    """Return value when it is an absolute path on the node that a TOML or shell line keeps as it is."""
    check_absolute(value, field)
    if any(c in value for c in "\"\\") or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise RegistrySettingError(field, "must not contain quotes, backslashes or control characters")
    return value


def check_cert_path(value, field="cert_path"):
    """Return value when it is where the nodes find the CA: an absolute node path or an http(s) URL."""
    require_str(value, field)
    check_no_space(value, field)
    if "://" in value:
        scheme = split_url(value, field)[0]
        if value.split("://", 1)[0] != scheme:
            raise RegistrySettingError(field, "the URL scheme must be lowercase https or http")
        return value
    if not value.startswith("/"):
        raise RegistrySettingError(field, f"{value!r} must be an http(s) URL or an absolute path on the nodes")
    return check_node_path(value, field)


def check_capabilities(value, field="capabilities"):
    """Return the capabilities in containerd's order when value is a non-empty list of pull, resolve and push."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise RegistrySettingError(field, f"must be a list of {', '.join(CAPABILITIES)}, got {type_name(value)}")
    for index, capability in enumerate(value):
        if capability not in CAPABILITIES:
            raise RegistrySettingError(f"{field}[{index}]", f"{capability!r} is not one of {', '.join(CAPABILITIES)}")
        if capability in value[:index]:
            raise RegistrySettingError(f"{field}[{index}]", f"{capability!r} is listed twice")
    if not value:
        raise RegistrySettingError(field, f"must list at least one of {', '.join(CAPABILITIES)}")
    return [capability for capability in CAPABILITIES if capability in value]


def check_duration(value, field="dial_timeout"):
    """Return value when it is a positive Go duration containerd reads, e.g. 500ms, 3s or 1m30s."""
    require_str(value, field)
    if not _DURATION.fullmatch(value):
        raise RegistrySettingError(
            field, f"{value[:40]!r} is not a duration like 500ms, 3s or 1m30s (units ns, us, ms, s, m, h)"
        )
    if not any(c in "123456789" for c in value):
        raise RegistrySettingError(field, f"{value!r} must be longer than zero")
    return value


def check_certificates_text(value, field):
    """Return PEM text of X.509 certificates (a CA bundle, or a client certificate and its chain), none expired,
    with a final newline. The expiry of a certificate that is not a CA (a client certificate) is not checked."""
    require_str(value, field)
    text = value if value.endswith("\n") else value + "\n"
    try:
        errors = check_validity(read_certificates(text), datetime.datetime.now(UTC), 0)[0]
    except PemError as error:
        raise RegistrySettingError(field, str(error)) from None
    if errors:
        raise RegistrySettingError(field, "; ".join(errors))
    return text


def check_private_key_text(value, field):
    """Return the PEM text of one unencrypted private key, with a final newline; no message quotes it."""
    require_str(value, field)
    try:
        check_private_key(value)
    except PemError as error:
        raise RegistrySettingError(field, str(error)) from None
    return value if value.endswith("\n") else value + "\n"


def check_token_realms(value, field="token_realms"):
    """The hosts (host or host:port) besides a mirror's own whose token service may be sent its credentials; each
    a registry host[:port], in lower case."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise RegistrySettingError(field, f"must be a list of hosts (host or host:port), got {type_name(value)}")
    return [check_host_port(host, f"{field}[{index}]").lower() for index, host in enumerate(value)]


def check_state(value, field="state"):
    require_str(value, field)
    if value not in STATES:
        raise RegistrySettingError(field, f"{value!r} is not one of {', '.join(STATES)}")
    return value


@dataclass(frozen=True)
class Setting:
    """One mirror setting. pmk is its Qbert API field; legacy_pmk are other spellings read from a PMK body."""

    option: str
    type: str  # the Ansible argument spec type: str, bool, list, dict, or raw (a str or a list)
    pmk: str | None = None
    legacy_pmk: tuple = ()
    default: object = None
    no_log: bool = False
    elements: str | None = None
    check: object = None  # (value, field) -> the normalised value; None: checked where it is used
    blank_is_unset: bool = True  # "" means "not set" (and, in a PMK body, "cleared")
    choices: tuple = ()
    required: bool = False
    env: tuple = ()  # the environment variables the option falls back to when the task does not set it
    log_ok: bool = False  # no_log=False said: the name looks like a secret's (Ansible warns), the value is not one
    options: tuple = ()  # the Settings of each element of a list of dicts (Ansible's suboptions)

    @property
    def node_path(self):
        """Whether the setting is a path on the node, taken literally and checked to be absolute."""
        return self.check in (check_absolute, check_node_path)

    @property
    def aliases(self):
        return ([self.pmk] if self.pmk else []) + list(self.legacy_pmk)


# Every mirror setting, in the seed document's order first. The node paths of containerd_hosts are
# "str", not "path": "path" would expand ~ and $VARS, on the controller in the action plugin.
SETTINGS = (
    Setting("url", "str", pmk="customRegistryUrl", check=check_url),
    # The seed's JFrog example spells the repository path customRegistryPath.
    Setting("repo_path", "str", pmk="customRegistryRepoPath", legacy_pmk=("customRegistryPath",), default="",
            check=normalize_repo_path),
    Setting("username", "str", pmk="customRegistryUsername", check=check_username),
    Setting("password", "str", pmk="customRegistryPassword", no_log=True, check=check_password),
    Setting("skip_tls", "bool", pmk="customRegistrySkipTls", default=False),
    Setting("self_signed_certs", "bool", pmk="customRegistrySelfSignedCerts", default=False),
    Setting("cert_path", "str", pmk="customRegistryCertPath", check=check_cert_path),
    Setting("ca_file", "str", check=check_node_path, blank_is_unset=False),
    Setting("registries", "list", elements="str", default=DEFAULT_REGISTRIES),
    Setting("fallbacks", "dict"),
    Setting("config_path", "str", default="/etc/containerd/certs.d", check=check_node_path, blank_is_unset=False),
    # registry -> its mirrors (plugin_utils/_registry_mirrors.py checks the shape when it reads them).
    Setting("registry_mirrors", "dict", default={}),
    Setting("upstream_fallback", "bool", default=True),
    # The hosts besides the mirror's own whose token realm the preflight asks (and containerd may be sent
    # the mirror's credentials): a Bearer challenge naming any other realm fails the preflight.
    Setting("token_realms", "list", elements="str", default=(), check=check_token_realms, log_ok=True),
)
BY_OPTION = {setting.option: setting for setting in SETTINGS}
PMK_SETTINGS = tuple(setting for setting in SETTINGS if setting.pmk)

# The settings of one mirror in registry_mirrors: the PMK mirror's (without their PMK names), then what only
# these mirrors have. The CA, the client certificate and its key are node paths, or PEM text that containerd_hosts
# writes beside the registry's hosts.toml.
MIRROR_SETTINGS = (
    *(replace(BY_OPTION[option], pmk=None, legacy_pmk=())
      for option in ("url", "repo_path", "username", "password", "skip_tls", "ca_file")),
    Setting("ca_content", "str", check=check_certificates_text),
    # The pin of the CA of ca_file or ca_content: its certificates' SHA-256 fingerprints (_ca_pin.py).
    Setting("ca_sha256", "list", elements="str", check=check_sha256),
    Setting("client_cert", "str", check=check_node_path, blank_is_unset=False),
    Setting("client_key", "str", check=check_node_path, blank_is_unset=False),
    Setting("client_cert_content", "str", check=check_certificates_text),
    Setting("client_key_content", "str", no_log=True, check=check_private_key_text),
    Setting("capabilities", "list", elements="str", default=DEFAULT_CAPABILITIES, check=check_capabilities),
    Setting("dial_timeout", "str", check=check_duration, blank_is_unset=False),
    BY_OPTION["token_realms"],
)
MIRROR_BY_OPTION = {setting.option: setting for setting in MIRROR_SETTINGS}

# What check_settings() also takes: the rest of the containerd_mirror role's settings.
ROLE_SETTINGS = (
    Setting("state", "str", default="present", check=check_state),
    Setting("ca_src", "str", default=""),  # a file on the controller: checked there (plugin_utils/_hosts_toml.py)
    Setting("ca_content", "str", default=""),
    # The pin of the CA of cert_path, wherever it comes from (ca_src, ca_content, the URL or the node's file).
    Setting("ca_sha256", "list", elements="str", default=(), check=check_sha256),
    Setting("containerd_config", "str", check=check_node_path, blank_is_unset=False),
    Setting("nodeletd", "str", check=check_node_path, blank_is_unset=False),
    # The images the role pulls through the CRI after a change: one reference or a list ("" or [] for none).
    Setting("verify_image", "raw", check=check_image_references),
)
_CHECKED = {setting.option: setting for setting in SETTINGS + ROLE_SETTINGS}


def _shared(*options):
    return tuple(BY_OPTION[option] for option in options)


# The options of the modules, each module's in the order of its documentation. Node paths are "str", not "path":
# "path" would expand ~ and $VARS, on the controller in an action plugin; they are taken literally and must be
# absolute (check_absolute). ca_certificate's path and registry_preflight's ca_file are documented as "path".
#
# The options of containerd_hosts and registry_preflight that get the CA and check it (ca_file is their own).
CA_SETTINGS = (
    Setting("ca_content", "str"),
    Setting("ca_url", "str"),
    Setting("ca_validate_certs", "bool", default=True),
    Setting("ca_readable_by", "str"),
    Setting("ca_sha256", "list", elements="str"),  # the pin, checked by _ca_pin.check_sha256 where it is used
)
# containerd_hosts's own: check the CA at ca_file without writing it.
HOSTS_CA_SETTINGS = (*CA_SETTINGS, Setting("ca_check", "bool", default=False))
# The PMK mirror's own settings, for its registries (containerd_hosts and the hosts_toml filter).
PMK_MIRROR_OPTIONS = ("url", "repo_path", "username", "password", "skip_tls", "ca_file")
# What the hosts.toml files of containerd_hosts are rendered from: the keywords of render_node_files and the keys
# of the hosts_files filter.
RENDER_OPTIONS = (*PMK_MIRROR_OPTIONS, "registries", "fallbacks", "registry_mirrors", "upstream_fallback",
                  "containerd_version", "config_path")
# The keys of the hosts_toml filter's spec: one registry's, with the PMK mirror's settings or a registry_mirrors
# entry's mirrors (and, for *, repo_path_for_all).
HOSTS_TOML_OPTIONS = ("registry", *PMK_MIRROR_OPTIONS, "fallbacks", "mirrors", "upstream_fallback",
                      "repo_path_for_all", "containerd_version", "config_path")
# The user-facing options of the containerd_hosts action and module, without the CA's: the mirror settings from
# their table (the seed's PMK API names are aliases), then the node's own.
HOSTS_SETTINGS = (
    *_shared(*PMK_MIRROR_OPTIONS, "registries", "fallbacks", "config_path", "registry_mirrors", "upstream_fallback"),
    # The node's containerd version as containerd_config's read returns it; None: unknown.
    Setting("containerd_version", "str"),
    Setting("state", "str", default="present", choices=STATES),
    Setting("backup", "bool", default=False),
    Setting("foreign_files", "str", default="adopt", choices=("adopt", "refuse")),
)
CONTAINERD_CONFIG_SETTINGS = (
    Setting("path", "str", default=DEFAULT_PATH, check=check_absolute),
    Setting("config_path", "str", default=DEFAULT_CONFIG_PATH, check=check_absolute),
    # check: only read, and fail when containerd's effective configuration does not read config_path
    Setting("state", "str", default="present", choices=CONFIG_STATES),
    # None: the node's containerd decides (new_file_version)
    Setting("version", "int", choices=NEW_FILE_VERSIONS),
    Setting("backup", "bool", default=False),
    Setting("legacy_mirrors", "str", default=DEFAULT_LEGACY_MIRRORS, choices=LEGACY_MIRRORS),
    # node_restart's marker: the read reports whether it exists, so one run tells whether a restart is owed
    Setting("pending_marker", "str", check=check_absolute),
    # Each mirror host's credentials, kept in configs."<host>".auth where containerd 1.x reads them for a
    # registry's token service (plugin_utils/_config_credentials.py checks them).
    Setting("credentials", "list", elements="dict", default=(), options=(
        Setting("host", "str", required=True),
        replace(BY_OPTION["username"], pmk=None, legacy_pmk=(), required=True),
        replace(BY_OPTION["password"], pmk=None, legacy_pmk=(), required=True),
    )),
)
PREFLIGHT_SETTINGS = (
    *CA_SETTINGS,
    *_shared("url", "username", "password", "skip_tls"),
    replace(BY_OPTION["ca_file"], type="path", check=check_absolute),
    Setting("timeout", "int", default=10),
    Setting("warn_days", "int", default=30),
    *_shared("registry_mirrors", "upstream_fallback", "repo_path", "registries", "token_realms"),
    Setting("sandbox_image", "str"),
    Setting("containerd_config", "str", default=DEFAULT_PATH),
)
NODE_RESTART_SETTINGS = (
    Setting("strategy", "str", required=True, choices=("pmk", "containerd")),
    Setting("requested", "bool", default=True),
    Setting("wait", "bool", default=True),
    Setting("health_timeout", "int", default=900),
    Setting("health_interval", "int", default=5),
    Setting("lock_timeout", "int", default=1200),
    Setting("lock_file", "str", default=LOCK_FILE, check=check_absolute),
    Setting("pmk_user", "str", default="pf9"),
    Setting("nodeletd", "str", default="/opt/pf9/nodelet/nodeletd", check=check_absolute),
    Setting("kube_status", "str", default="/var/opt/pf9/kube_status", check=check_absolute),
    Setting("etcd_raft_checker", "str", default="/opt/pf9/pf9-kube/bin/etcd_raft_checker", check=check_absolute),
    Setting("pending_marker", "str", default="/var/lib/kubenode-registry-mirror.restart-pending",
            check=check_absolute),
)
CA_CERTIFICATE_SETTINGS = (
    Setting("path", "path", required=True, check=check_absolute),
    Setting("content", "str"),
    Setting("url", "str"),
    Setting("validate_certs", "bool", default=True),
    Setting("timeout", "int", default=10),
    Setting("readable_by", "str"),
    Setting("warn_days", "int", default=30),
    Setting("mode", "raw", default="0644"),
    Setting("sha256", "list", elements="str"),
)
CRI_PULL_SETTINGS = (
    Setting("images", "list", elements="str", required=True),
    Setting("crictl", "str", default=DEFAULT_CRICTL),
    Setting("runtime_endpoint", "str", default=DEFAULT_ENDPOINT),
    Setting("timeout", "int", default=300),
    Setting("ctr_hosts_dir", "str", default=DEFAULT_HOSTS_DIR),
)
UPDATE_PASSWORD_CHOICES = ("always", "on_change_of_other_fields")
# pmk_cluster_registry's mirror settings have no defaults: a field the task does not set is never sent.
PMK_REGISTRY_SETTINGS = (
    *(replace(setting, default=None) for setting in PMK_SETTINGS),
    Setting("update_password", "str", default="on_change_of_other_fields", choices=UPDATE_PASSWORD_CHOICES,
            log_ok=True),
)
PMK_CLUSTER_SETTINGS = (
    Setting("api_url", "str", required=True),
    Setting("project_id", "str", required=True),
    Setting("cluster_uuid", "str", required=True),
    Setting("auth_token", "str", required=True, no_log=True, env=("OS_TOKEN",)),
    Setting("validate_certs", "bool", default=True),
    Setting("timeout", "int", default=30),
    Setting("operation", "str", default="update", choices=("update", "upgrade")),
    Setting("upgrade_type", "str"),
    Setting("force", "bool", default=False),
    *PMK_REGISTRY_SETTINGS,
)
# What the containerd_hosts action hands on to its module, beside the files it rendered (and the file arguments).
HOSTS_NODE_OPTIONS = ("config_path", "state", "backup", "foreign_files", "ca_file",
                      *(setting.option for setting in HOSTS_CA_SETTINGS))
# The options that name a CA's file, text, URL and reader (the fields of _ca.CaFields): the CA options of
# containerd_hosts and registry_preflight, and ca_certificate's own.
CA_OPTIONS = ("ca_file", *(setting.option for setting in CA_SETTINGS if setting.option != "ca_validate_certs"))
CA_CERTIFICATE_CA_OPTIONS = ("path", "content", "url", "readable_by", "sha256")
# pmk_cluster_registry's options that hold a URL: user:password@ in any of them is refused.
PMK_URL_OPTIONS = ("api_url", "url", "cert_path")
MODULE_SETTINGS = {
    "ca_certificate": CA_CERTIFICATE_SETTINGS,
    "containerd_config": CONTAINERD_CONFIG_SETTINGS,
    "containerd_hosts": (*HOSTS_SETTINGS, *HOSTS_CA_SETTINGS),
    "cri_pull": CRI_PULL_SETTINGS,
    "node_restart": NODE_RESTART_SETTINGS,
    "pmk_cluster_registry": PMK_CLUSTER_SETTINGS,
    "registry_preflight": PREFLIGHT_SETTINGS,
}

# The rules between settings. The argument specs take them as Ansible's required_together and
# required_if; check_settings() applies them to settings from anywhere else.
TOGETHER_RULES = (("username", "password"), ("client_cert", "client_key"))
# (setting, value, needed): when the setting has the value, one of needed is required. A rule names the first
# of needed, and the others that the settings checked hold (a caller without registry_mirrors is not told of it).
REQUIRED_IF_RULES = (
    ("state", "present", ("url", "registry_mirrors")),
    ("self_signed_certs", True, ("cert_path",)),
)
# The settings of the first rule (state present needs url or registry_mirrors): Ansible's required_if counts
# registry_mirrors' default {} as given, so containerd_hosts checks this rule itself.
STATE_RULE_OPTIONS = (REQUIRED_IF_RULES[0][0], *REQUIRED_IF_RULES[0][2])
# Each rule: groups of settings of which only one group may be given.
EXCLUSIVE_RULES = ((("ca_src",), ("ca_content",)),)

Rules = namedtuple("Rules", ["together", "required_if", "exclusive", "ca_text"])
"""The rules check_rules() applies; ca_text: the role's ca_src and ca_content need a node path to go to."""
SETTINGS_RULES = Rules(TOGETHER_RULES, REQUIRED_IF_RULES, EXCLUSIVE_RULES, True)
# A mirror of registry_mirrors: the CA, and the client certificate with its key, each as node paths or as text.
MIRROR_RULES = Rules(
    together=(*TOGETHER_RULES, ("client_cert_content", "client_key_content")),
    required_if=(),
    exclusive=((("ca_file",), ("ca_content",)),
               (("client_cert", "client_key"), ("client_cert_content", "client_key_content"))),
    ca_text=False,
)


def _setting(option):
    return option if isinstance(option, Setting) else BY_OPTION[option]


def option_spec(setting, defaults=True, env_fallback=None):
    """The Ansible argument spec entry of one setting; env_fallback is Ansible's, for a setting with env."""
    entry = {"type": setting.type}
    if setting.elements:
        entry["elements"] = setting.elements
    if setting.required:
        entry["required"] = True
    if defaults and setting.default is not None:
        entry["default"] = list(setting.default) if isinstance(setting.default, tuple) else setting.default
    if setting.choices:
        entry["choices"] = list(setting.choices)
    if setting.no_log or setting.log_ok:
        entry["no_log"] = setting.no_log
    if setting.aliases:
        entry["aliases"] = setting.aliases
    if setting.env and env_fallback is not None:
        entry["fallback"] = (env_fallback, list(setting.env))
    if setting.options:
        entry["options"] = argument_spec(setting.options, defaults, env_fallback)
    return entry


def argument_spec(options, defaults=True, env_fallback=None):
    """The Ansible argument spec of these settings (option names of SETTINGS, or Setting); without defaults, an
    option not set stays None. env_fallback: Ansible's, for the settings read from the environment."""
    return {
        setting.option: option_spec(setting, defaults, env_fallback) for setting in map(_setting, options)
    }


def module_argument_spec(module, env_fallback=None):
    """The argument spec of a module of this collection (a key of MODULE_SETTINGS)."""
    return argument_spec(MODULE_SETTINGS[module], env_fallback=env_fallback)


def node_path_options(module):
    """The options of a module that are node paths, in the table's order."""
    return tuple(setting.option for setting in MODULE_SETTINGS[module] if setting.node_path)


def check_node_paths(module, params):
    """Check every node path option of a module that is set; raise RegistrySettingError on the first bad one."""
    for setting in MODULE_SETTINGS[module]:
        if setting.node_path and params.get(setting.option) is not None:
            setting.check(params[setting.option], setting.option)


def required_together(options):
    """Ansible's required_together for the rules among options."""
    return [list(group) for group in TOGETHER_RULES if set(group) <= set(options)]


def required_if(options):
    """Ansible's required_if for the rules among options (with is_one_of when more than one option is needed)."""
    rules = []
    for key, value, needed in REQUIRED_IF_RULES:
        among = [option for option in needed if option in options]
        if key in options and needed[0] in options:
            rules.append([key, value, among] + ([True] if len(among) > 1 else []))
    return rules


# The rules between each module's options, as the keywords of Ansible's AnsibleModule (module_rules()).
MODULE_RULES = {
    "ca_certificate": {"mutually_exclusive": [["content", "url"]]},
    # the action plugin also checks required_if(): the module is not given url
    "containerd_hosts": {
        "required_together": required_together(PMK_MIRROR_OPTIONS),
        "mutually_exclusive": [["ca_content", "ca_url"]],
    },
    "pmk_cluster_registry": {"required_if": [["operation", "upgrade", ["upgrade_type"]]]},
    "registry_preflight": {
        "required_together": required_together(PMK_MIRROR_OPTIONS),
        "mutually_exclusive": [["ca_content", "ca_file", "ca_url"]],
        "required_by": {"ca_readable_by": "ca_file"},
    },
}


def module_rules(module):
    """The rules between a module's options: keywords for AnsibleModule (or validate_argument_spec), a fresh copy."""
    return copy.deepcopy(MODULE_RULES.get(module, {}))


def pmk_bool(value):
    """A boolean as the Qbert API may hold it, or None when it is not one. Unset (null) is the seed's false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", ""):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def check_value(option, value, field=None, table=None):
    """Return one setting's value checked and normalised; None stays None, a blank string stays blank.

    field is how an error names the setting (default: its option name); table holds the setting (default:
    the mirror and role settings; MIRROR_BY_OPTION for a mirror of registry_mirrors).
    """
    setting = (table or _CHECKED)[option]
    field = field or option
    if value is None:
        return None
    if setting.type == "bool":
        if not isinstance(value, bool):
            raise RegistrySettingError(field, f"must be a boolean, got {type_name(value)}")
        return value
    if setting.type == "str":
        require_str(value, field)
        if value == "" and setting.blank_is_unset:
            return value
    return setting.check(value, field) if setting.check else value


def _own_name(option):
    return option


def _shown(value):
    return str(value).lower() if isinstance(value, bool) else value


def _given(settings, option):
    return settings.get(option) not in (None, "", {}, [], ())


def check_rules(settings, name=_own_name, rules=SETTINGS_RULES):
    """Raise RegistrySettingError, naming the setting with name(option), when settings break a rule between them.

    A setting that is missing, None or "" is not given. Settings given in two forms are named before a form
    given in part, so that a client_cert beside a client_key_content is told the forms, not the pairs.
    """
    for groups in rules.exclusive:
        given = [options for options in ([o for o in group if _given(settings, o)] for group in groups) if options]
        if len(given) > 1:
            joiner = ", or " if any(len(group) > 1 for group in groups) else " or "
            either = joiner.join(" and ".join(name(option) for option in group) for group in groups)
            raise RegistrySettingError(name(given[-1][0]), f"give {either}, not both")
    for group in rules.together:
        missing = [option for option in group if not _given(settings, option)]
        if missing and len(missing) < len(group):
            raise RegistrySettingError(
                name(missing[0]), f"{' and '.join(name(option) for option in group)} must be given together"
            )
    for key, value, needed in rules.required_if:
        actual = settings.get(key)
        named = [option for option in needed if option == needed[0] or option in settings]
        if actual == value and isinstance(actual, type(value)) and not any(_given(settings, o) for o in named):
            either = " or ".join(name(option) for option in named)
            raise RegistrySettingError(name(named[0]), f"{either} is required when {name(key)} is {_shown(value)}")
    if not rules.ca_text:
        return
    if _given(settings, "ca_sha256") and settings.get("self_signed_certs") is not True:
        raise RegistrySettingError(
            name("ca_sha256"), f"pins the CA of {name('cert_path')}: it needs {name('self_signed_certs')}"
        )
    # The CA text from the controller is written to a node path (the URL form is fetched by each node).
    ca_given = [option for option in ("ca_src", "ca_content") if _given(settings, option)]
    cert_path = settings.get("cert_path")
    if ca_given and not (settings.get("self_signed_certs") is True and isinstance(cert_path, str)
                         and cert_path.startswith("/")):
        raise RegistrySettingError(
            name(ca_given[0]),
            f"{name('ca_src')} and {name('ca_content')} need {name('self_signed_certs')} and a node path "
            f"(not a URL) in {name('cert_path')}",
        )


def check_settings(settings, name=_own_name):
    """Check mirror settings, each and together; return them normalised.

    settings: option name -> value, of SETTINGS and ROLE_SETTINGS; missing, None and "" are not set.
    name(option) is how an error names a setting, e.g. the containerd_mirror role's variable.
    """
    if not isinstance(settings, Mapping):
        raise RegistrySettingError(name("settings"), "must be a mapping")
    unknown = sorted(set(settings) - set(_CHECKED))
    if unknown:
        raise RegistrySettingError(name(unknown[0]), f"is not a mirror setting; known: {', '.join(_CHECKED)}")
    # Missing values first: a check of a derived value (ca_file from cert_path) must not speak before them.
    check_rules(settings, name)
    return {
        option: check_value(option, settings[option], name(option)) for option in _CHECKED if option in settings
    }


def check_mirror(mirror, field):
    """Check one mirror of registry_mirrors; return its settings normalised, unset ones None or their default.

    field names the mirror in errors, e.g. registry_mirrors["docker.io"][1]; a setting is field.option.
    """
    if not isinstance(mirror, Mapping):
        raise RegistrySettingError(
            field, f"must be a mapping of a mirror's settings (url, ...), got {type_name(mirror)}"
        )
    unknown = sorted(str(key) for key in mirror if key not in MIRROR_BY_OPTION)
    if unknown:
        raise RegistrySettingError(
            f"{field}.{unknown[0]}", f"is not a mirror setting; known: {', '.join(MIRROR_BY_OPTION)}"
        )

    def name(option):
        return f"{field}.{option}"

    if not _given(mirror, "url"):
        raise RegistrySettingError(name("url"), "is required")
    check_rules(mirror, name, MIRROR_RULES)
    checked = {}
    for setting in MIRROR_SETTINGS:
        value = check_value(setting.option, mirror.get(setting.option), name(setting.option), MIRROR_BY_OPTION)
        if value in (None, "") and setting.default is not None:
            value = list(setting.default) if isinstance(setting.default, tuple) else setting.default
        checked[setting.option] = None if value in ("", []) else value
    _check_mirror_pin(checked, name)
    if checked["client_cert_content"]:
        try:
            check_key_pair(checked["client_cert_content"], checked["client_key_content"])
        except PemError as error:
            raise RegistrySettingError(name("client_key_content"), str(error)) from None
    return checked


def _check_mirror_pin(checked, name):
    """Refuse a mirror's ca_sha256 without a CA to pin, or that its ca_content does not match (on the controller,
    before any node is touched; a ca_file is checked where it is, on the node)."""
    if not checked["ca_sha256"]:
        return
    if not checked["ca_file"] and not checked["ca_content"]:
        raise RegistrySettingError(name("ca_sha256"), f"pins a CA: give {name('ca_file')} or {name('ca_content')}")
    mismatch = checked["ca_content"] and pin_mismatch(checked["ca_content"], checked["ca_sha256"], name("ca_content"))
    if mismatch:
        raise RegistrySettingError(name("ca_sha256"), mismatch)


def _is_pmk_name(key):
    return isinstance(key, str) and key.lower().startswith("customregistry")


def from_pmk_body(body):
    """Return {option: value} for the customRegistry* fields of a PMK cluster API body, checked.

    Other keys of a cluster object are ignored; an unknown customRegistry* key is refused. A null field
    is the seed's default ("" or false). customRegistryPath is read when customRegistryRepoPath is absent.
    Errors name the PMK field.
    """
    if not isinstance(body, Mapping):
        raise RegistrySettingError("body", f"must be a mapping of PMK cluster fields, got {type_name(body)}")
    known = {name: setting for setting in PMK_SETTINGS for name in setting.aliases}
    unknown = sorted(key for key in body if _is_pmk_name(key) and key not in known)
    if unknown:
        raise RegistrySettingError(unknown[0], f"is not a PMK registry field; known: {', '.join(known)}")
    settings = {}
    for setting in PMK_SETTINGS:
        present = [name for name in setting.aliases if name in body]
        if not present:
            continue
        values = {name: _pmk_value(setting, name, body[name]) for name in present if body[name] is not None}
        if len(set(values.values())) > 1:
            first, second = list(values)[:2]
            raise RegistrySettingError(first, f"{body[first]!r} differs from {second} {body[second]!r}; "
                                              "both name one setting: keep one, or give both the same value")
        field = next(iter(values), present[0])
        settings[setting.option] = values.get(field, _pmk_value(setting, field, None))
    return settings


def _pmk_value(setting, field, value):
    """The checked option value of one PMK field (null is the seed's default)."""
    if setting.type == "bool":
        checked = pmk_bool(value)
        if checked is None:
            raise RegistrySettingError(field, f"must be a boolean, got {type_name(value)}")
        return checked
    return check_value(setting.option, "" if value is None else value, field)


def pmk_body(settings):
    """The Qbert request body of the settings that are set (not None): {customRegistry* field: value}."""
    return {
        setting.pmk: settings[setting.option] for setting in PMK_SETTINGS if settings.get(setting.option) is not None
    }
