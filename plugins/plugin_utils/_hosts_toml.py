# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate registry mirror settings and render containerd hosts.toml files.

Controller-side, pure Python with no Ansible imports: the containerd_hosts
action plugin and the filters share it. Every input is checked against a
strict grammar and refused when it does not fit, rather than escaped, so no
value can change the meaning of the TOML that containerd reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._ca_pin import pin_mismatch
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._hosts_files import (
    DEFAULT_FALLBACKS,
    MARKER,
    tls_file_text,
    unread_keys,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._pem import MAX_BYTES, PemError
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry import Registry, hosts_document
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import (
    RegistrySettingError,
    basic_auth,
    check_host_port,
    normalize_repo_path,
    normalize_url,
)
from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import (
    DEFAULT_CAPABILITIES,
    DEFAULT_REGISTRIES,
    HOSTS_TOML_OPTIONS,
    PMK_MIRROR_OPTIONS,
    RENDER_OPTIONS,
    check_settings,
    check_value,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._registry_mirrors import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DIRECTORY,
    ENTRY_KEYS,
    WILDCARD,
    check_directory_name,
    make_mirror,
    preflight_target_key,
    read_entry,
    read_registry_mirrors,
    same_registry,
    unread_warnings,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import dump_checked

# What the seed's hosts may do: a fallback host pulls and resolves, as the PMK mirror does.
CAPABILITIES = DEFAULT_CAPABILITIES

# The public names, basic_auth, normalize_url and RegistrySettingError among them for the containerd_hosts
# action plugin, which takes them from here.
__all__ = [
    "CAPABILITIES", "DEFAULT_DIRECTORY", "HOSTS_FILES_SETTINGS_KEYS", "HOSTS_TOML_SPEC_KEYS", "RegistrySettingError",
    "basic_auth", "check_mirror_settings", "config_credentials", "dump_hosts_toml", "hosts_directories",
    "hosts_toml_warnings", "mirror_endpoint", "normalize_repo_path", "normalize_url", "parse_mirror",
    "plan_node_files", "pmk_registry", "preflight_routes", "registry_mirror_warnings", "render_hosts_files",
    "render_hosts_files_from", "render_hosts_toml", "render_node_files",
]


def mirror_endpoint(url, repo_path=None):
    """Return the host URL containerd pulls from, e.g. https://10.0.0.1:443/v2/infra/k8s."""
    return parse_mirror(url, repo_path).endpoint


def parse_mirror(url, repo_path=None, username=None, password=None, skip_tls=False, ca_file=None):
    """Validate the PMK mirror's settings; return a Mirror."""
    settings = check_settings(
        dict(state="present", url=url, repo_path=repo_path, username=username, password=password,
             skip_tls=skip_tls, ca_file=ca_file)
    )
    return make_mirror(settings)


def _check_fallbacks(hosts, mirror, field):
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise RegistrySettingError(field, "must be a list of registry URLs")
    seen = {mirror.endpoint}
    result = []
    for index, host in enumerate(hosts):
        server = normalize_url(host, f"{field}[{index}]")[0]
        if server in seen:
            raise RegistrySettingError(f"{field}[{index}]", f"{server} is listed twice")
        seen.add(server)
        result.append(server)
    return result


def pmk_registry(directory, mirror, fallbacks=(), upstream_fallback=True):
    """Return the Registry the PMK mirror serves directory as, fallbacks (host URLs) after it.

    Its own directory names the mirror as server, whatever upstream_fallback says: containerd reaches the mirror
    itself there. Another registry's names the registry (_default: none); without upstream_fallback (and so
    without fallbacks) the mirror is its server too.
    """
    if directory == mirror.directory:
        return Registry(directory, (mirror,), True, tuple(fallbacks), server=mirror.server, field="url")
    server = None if directory == DEFAULT_DIRECTORY else f"https://{directory}"
    return Registry(directory, (mirror,), upstream_fallback is not False, tuple(fallbacks), server=server, field="url")


def dump_hosts_toml(document):
    """Serialise a hosts document with our marker; refuse text that does not parse back equal."""
    return dump_checked(document, MARKER)


def _check_registry(registry, field):
    if registry == DEFAULT_DIRECTORY:
        return registry
    return check_directory_name(check_host_port(registry, field), field)


def _directory_plan(mirror_directory, registries, entries):
    """Return [(directory, Registry of registry_mirrors, or None for the PMK mirror)]: the mirror's own directory (when
    known) first, then each registry, served by its registry_mirrors entry when it has one, then the
    other entries."""
    if isinstance(registries, (str, bytes)) or not isinstance(registries, Sequence):
        raise RegistrySettingError("registries", "must be a list of registry host[:port] names")
    plan = [] if mirror_directory is None else [(check_directory_name(mirror_directory, "url"), None)]
    for index, registry in enumerate(registries):
        _check_registry(registry, f"registries[{index}]")
        if registry == mirror_directory:
            raise RegistrySettingError(
                f"registries[{index}]", f"{registry!r} is the mirror itself; its directory is always written"
            )
        if any(registry == directory for directory, _entry in plan):
            raise RegistrySettingError(f"registries[{index}]", f"{registry!r} is listed twice")
        plan.append((registry, None))
    for entry in entries:
        spelt = [directory for directory, _entry in plan if same_registry(directory) == same_registry(entry.directory)]
        if spelt and spelt[0] == mirror_directory:
            raise RegistrySettingError(entry.field, "is the mirror of url itself; its directory is written from url")
        if spelt and spelt[0] != entry.directory:
            raise RegistrySettingError(
                entry.field,
                f"is the same registry as {spelt[0]!r} of registries; spell it {spelt[0]!r} to serve it here",
            )
        if spelt:
            plan[[directory for directory, _entry in plan].index(entry.directory)] = (entry.directory, entry)
        else:
            plan.append((entry.directory, entry))
    return plan


def hosts_directories(mirror_directory, registries, registry_mirrors=None):
    """Return every certs.d directory the settings manage: the mirror's own (when known) first, each registry,
    then each other registry of registry_mirrors (* as _default). Ours by the marker and not in this list: stale."""
    entries = read_registry_mirrors(registry_mirrors)
    return [directory for directory, _entry in _directory_plan(mirror_directory, registries, entries)]


def preflight_routes(entries, targets, mirror=None, registries=DEFAULT_REGISTRIES, upstream_fallback=True):
    """Return how containerd will reach each registry the settings write a directory for, in the form
    registry_preflight checks the node's sandbox image by (module_utils/_sandbox_image.py).

    entries: read_registry_mirrors' for the settings; targets: preflight_targets' of them, which the routes index.
    mirror: the PMK mirror of url, parse_mirror's (None: none); registries: its registries; upstream_fallback: the
    global setting, which its registries take. Each route is {"registry": its directory, or * for _default; "field":
    how the settings name it; "upstream_fallback": whether containerd may go on to the registry itself; "mirrors": what
    hosts.toml lists, in containerd's order: {"target": the index in targets, or None for the PMK mirror of url,
    "repo_path", "capabilities", "field"}}. The PMK mirror's own directory is a route without mirrors: containerd
    pulls from that host itself, as it did before.
    """
    index = {json.dumps({key: value for key, value in target.items() if key != "fields"}, sort_keys=True): number
             for number, target in enumerate(targets)}
    mirror_directory = pmk_repo_path = None
    if mirror is not None:
        mirror_directory, pmk_repo_path = mirror.directory, mirror.repo_path or None
    plan = _directory_plan(mirror_directory, registries if mirror_directory else (), entries)
    routes = []
    for directory, entry in plan:
        registry = WILDCARD if directory == DEFAULT_DIRECTORY else directory
        if entry is not None:
            mirrors = [{"target": index[preflight_target_key(mirror)], "repo_path": mirror.repo_path or None,
                        "capabilities": list(mirror.capabilities), "field": mirror.field} for mirror in entry.mirrors]
            routes.append({"registry": registry, "field": entry.field, "upstream_fallback": entry.upstream_fallback,
                           "mirrors": mirrors})
        elif directory == mirror_directory:
            routes.append({"registry": registry, "field": "url", "upstream_fallback": True, "mirrors": []})
        else:
            mirrors = [{"target": None, "repo_path": pmk_repo_path, "capabilities": list(CAPABILITIES), "field": "url"}]
            routes.append({"registry": registry, "field": "url", "upstream_fallback": upstream_fallback is not False,
                           "mirrors": mirrors})
    return routes


def render_hosts_files(*args, **kwargs):
    """Return [(directory, hosts.toml text)] in hosts_directories' order; the arguments of render_node_files."""
    return [(directory, text) for directory, text, _files in render_node_files(*args, **kwargs)]


def render_node_files(*args, **kwargs):
    """Return [(directory, hosts.toml text, {PEM file name: text})] in hosts_directories' order; the arguments of
    plan_node_files, which checks them."""
    unread, planned = plan_node_files(*args, **kwargs)
    return [(registry.directory, dump_hosts_toml(hosts_document(registry, unread)), files)
            for registry, files in planned]


def plan_node_files(url=None, repo_path=None, username=None, password=None, skip_tls=False, ca_file=None,
                    registries=DEFAULT_REGISTRIES, fallbacks=None, registry_mirrors=None, upstream_fallback=True,
                    containerd_version=None, config_path=None):
    """Check the settings of a node's certs.d; return (unread, [(Registry, {PEM file name: text})]): the keys
    containerd_version does not read, and each registry in hosts_directories' order with the PEM files of its
    directory. Everything render_node_files refuses is refused here, before a file is rendered.

    url and the settings after it are the PMK mirror's, for registries (with fallbacks); registry_mirrors
    serves its registries itself, the PMK mirror's among them. Without registry_mirrors, url is required.
    upstream_fallback false: no pull goes to an upstream (no server line naming it, no fallbacks).
    containerd_version (None: unknown) leaves out what it does not read; see registry_mirror_warnings.
    config_path (None: the default) is the node's certs.d: the PEM files of a registry's mirrors given as
    content (ca_content, client_cert_content, client_key_content) are written in its directory, with our marker.
    """
    upstream_fallback = check_value("upstream_fallback", upstream_fallback) is not False
    if config_path is not None:
        check_value("config_path", config_path)
    entries = read_registry_mirrors(registry_mirrors, upstream_fallback, config_path=config_path)
    unread = unread_keys(containerd_version)
    mirror = None
    if url not in (None, "") or not entries:  # "" is unset, as the role's default
        mirror = parse_mirror(url, repo_path, username, password, skip_tls, ca_file)
    plan = _directory_plan(mirror and mirror.directory, registries if mirror else (), entries)
    served = [directory for directory, entry in plan[1:] if mirror and entry is None]
    if fallbacks is None:
        fallbacks = {name: hosts for name, hosts in DEFAULT_FALLBACKS.items() if name in served and upstream_fallback}
    if not isinstance(fallbacks, Mapping):
        raise RegistrySettingError("fallbacks", "must be a mapping of registry to a list of host URLs")
    for name in fallbacks:
        if name not in served:
            why = "is served by registry_mirrors" if name in dict(plan) else "is not one of the registries"
            raise RegistrySettingError("fallbacks", f"{name!r} {why}")
        if fallbacks[name] and not upstream_fallback:
            raise RegistrySettingError(f"fallbacks[{name}]", "must be empty when upstream_fallback is false")
    planned = []
    for directory, entry in plan:
        if entry is not None:
            planned.append((entry, {name: tls_file_text(text) for name, text in entry.tls_files().items()}))
        else:
            hosts = _check_fallbacks(fallbacks.get(directory, ()), mirror, f"fallbacks[{directory}]")
            planned.append((pmk_registry(directory, mirror, hosts, upstream_fallback), {}))
    return unread, planned


def registry_mirror_warnings(registry_mirrors=None, containerd_version=None):
    """Return a warning for each mirror setting render_hosts_files leaves out for containerd_version."""
    return unread_warnings(read_registry_mirrors(registry_mirrors), containerd_version)


def _check_keys(mapping, known, field):
    if not isinstance(mapping, Mapping):
        raise RegistrySettingError(field, "must be a mapping")
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise RegistrySettingError(field, f"unknown keys {', '.join(unknown)}; known: {', '.join(known)}")


# The PMK mirror's settings, for registries (the hosts_toml filter's spec holds these or mirrors).
PMK_MIRROR_KEYS = (*PMK_MIRROR_OPTIONS, "fallbacks")
HOSTS_FILES_SETTINGS_KEYS = RENDER_OPTIONS


def render_hosts_files_from(settings):
    """Render every file from a mapping of containerd_hosts options (the hosts_files filter).

    A key that is missing or None takes the module's default.
    """
    _check_keys(settings, HOSTS_FILES_SETTINGS_KEYS, "settings")
    given = {name: value for name, value in settings.items() if value is not None}
    return [{"directory": directory, "content": text} for directory, text in render_hosts_files(**given)]


HOSTS_TOML_SPEC_KEYS = HOSTS_TOML_OPTIONS


def _spec_entry(spec):
    """The registry_mirrors entry a hosts_toml spec with mirrors stands for; errors name the spec's keys."""
    entry = {key: spec[key] for key in spec if key in ENTRY_KEYS}
    config_path = spec.get("config_path") or DEFAULT_CONFIG_PATH
    return read_entry(spec["registry"], entry, field="", registry_field="registry",
                      config_path=check_value("config_path", config_path))


def render_hosts_toml(spec):
    """Render one registry's hosts.toml from a mapping (the hosts_toml filter).

    Keys: registry (required); the PMK mirror's url (required), repo_path, username, password, skip_tls,
    ca_file and fallbacks (a list; default: the seed's for that registry), or a registry_mirrors entry's
    mirrors and, for *, repo_path_for_all; upstream_fallback; containerd_version; config_path (where the files of
    the mirrors' PEM texts are named; only containerd_hosts writes them).
    """
    _check_keys(spec, HOSTS_TOML_SPEC_KEYS, "spec")
    if "registry" not in spec:
        raise RegistrySettingError("registry", "is required")
    upstream_fallback = check_value("upstream_fallback", spec.get("upstream_fallback")) is not False
    unread = unread_keys(spec.get("containerd_version"))
    if "mirrors" in spec:
        pmk = [key for key in PMK_MIRROR_KEYS if key in spec]
        if pmk:
            raise RegistrySettingError(pmk[0], "is a setting of the PMK mirror (url); give url or mirrors, not both")
        entry = _spec_entry(spec)
        return dump_hosts_toml(hosts_document(entry, unread))
    for required in ("url",):
        if required not in spec:
            raise RegistrySettingError(required, "is required (or mirrors)")
    if "repo_path_for_all" in spec:
        raise RegistrySettingError("repo_path_for_all", "is only for mirrors under *")
    mirror = parse_mirror(
        spec["url"],
        spec.get("repo_path"),
        spec.get("username"),
        spec.get("password"),
        spec.get("skip_tls", False),
        spec.get("ca_file"),
    )
    registry = _check_registry(spec["registry"], "registry")
    fallbacks = spec.get("fallbacks")
    if fallbacks is None:
        fallbacks = () if registry == mirror.directory or not upstream_fallback else DEFAULT_FALLBACKS.get(registry, ())
    if fallbacks and not upstream_fallback:
        raise RegistrySettingError("fallbacks", "must be empty when upstream_fallback is false")
    hosts = _check_fallbacks(fallbacks, mirror, "fallbacks")
    return dump_hosts_toml(hosts_document(pmk_registry(registry, mirror, hosts, upstream_fallback)))


def hosts_toml_warnings(spec):
    """Return what render_hosts_toml(spec) leaves out for its containerd_version, as warnings."""
    return unread_warnings((_spec_entry(spec),), spec.get("containerd_version")) if "mirrors" in spec else []


def _check_controller_ca_pin(checked, name):
    """Check the pin of a CA the controller holds (ca_content, or the file ca_src), before any node is touched; a CA
    from a URL or a node's file is checked on the node."""
    option = next((option for option in ("ca_content", "ca_src") if checked.get(option)), None)
    if option is None or not checked.get("ca_sha256"):
        return
    source, text = name(option), checked[option]
    try:
        if option == "ca_src":
            source = f"{source} ({text})"
            with open(text, encoding="utf-8") as handle:
                text = handle.read(MAX_BYTES + 1)
        mismatch = pin_mismatch(text, checked["ca_sha256"], source)
    except (OSError, UnicodeDecodeError, PemError) as error:
        raise RegistrySettingError(name(option), f"cannot be read as PEM certificates: {error}") from None
    if mismatch:
        raise RegistrySettingError(name("ca_sha256"), mismatch)


def check_mirror_settings(settings, prefix=""):
    """Check the containerd_mirror role's settings (the mirror_settings filter); return them normalised.

    Errors name prefix + the setting. With state present (the default) the hosts.toml files are also
    planned (plan_node_files), so everything containerd_hosts checks is checked here, before a node is touched;
    containerd_hosts renders the files, once.
    """

    def name(option):
        return prefix + option

    ca_src = settings.get("ca_src") if isinstance(settings, Mapping) else None
    # The one check that needs the controller's file system.
    if isinstance(ca_src, str) and ca_src and not os.path.isfile(ca_src):
        raise RegistrySettingError(name("ca_src"), f"{ca_src} is not a file on the controller")
    checked = check_settings(settings, name)
    _check_controller_ca_pin(checked, name)
    read_registry_mirrors(checked.get("registry_mirrors"), checked.get("upstream_fallback"), name("registry_mirrors"))
    if checked.get("state", "present") == "present":
        try:
            given = {key: checked[key] for key in HOSTS_FILES_SETTINGS_KEYS if checked.get(key) is not None}
            plan_node_files(**given)
        except RegistrySettingError as error:
            if error.field.partition("[")[0] in HOSTS_FILES_SETTINGS_KEYS:
                raise error.renamed(name) from None
            raise
    return checked


def config_credentials(settings, prefix=""):
    """containerd_config's credentials for the containerd_mirror role's settings (the config_credentials filter).

    One {host, username, password} per mirror host with credentials, host its own certs.d directory name
    (host[:port]): the PMK mirror's first, then registry_mirrors' in order. One host given two sets of
    credentials is refused naming the second (config.toml holds one per host). Errors name prefix + the setting.
    """

    def name(option):
        return prefix + option

    checked = check_settings(settings, name)
    mirrors = []
    if checked.get("url"):
        mirrors.append((make_mirror({option: checked.get(option) for option in PMK_MIRROR_OPTIONS}), name("username")))
    entries = read_registry_mirrors(checked.get("registry_mirrors"), checked.get("upstream_fallback") is not False,
                                    name("registry_mirrors"))
    mirrors += [(mirror, f"{mirror.field}.username") for entry in entries for mirror in entry.mirrors]
    found = {}
    for mirror, field in mirrors:
        credentials = mirror.credentials()
        if credentials is None:
            continue
        known, known_field = found.setdefault(mirror.directory, (credentials, field))
        if known != credentials:
            raise RegistrySettingError(
                field,
                f"and its password differ from {known_field}'s for the same host {mirror.directory}; containerd 1.x "
                "reads one set of credentials per host (config.toml's configs auth): give both the same",
            )
    return [credentials for credentials, _field in found.values()]
