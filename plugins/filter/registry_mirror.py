# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the pure pieces of the collection; documented in the sidecar YAML files."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._settings import from_pmk_body
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._hosts_toml import (
    RegistrySettingError,
    basic_auth,
    check_mirror_settings,
    config_credentials,
    hosts_toml_warnings,
    mirror_endpoint,
    registry_mirror_warnings,
    render_hosts_files_from,
    render_hosts_toml,
)
from ansible_collections.kubenode.registry_mirror.plugins.plugin_utils._toml_dump import MissingDependencyError

# The containerd_mirror role's variables are its settings' names with this prefix.
ROLE_PREFIX = "containerd_mirror_"


def _strict(function):
    """Turn bad input into an AnsibleFilterError that names the filter and the field."""

    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (RegistrySettingError, MissingDependencyError) as error:
            raise AnsibleFilterError(f"{function.__name__}: {error}") from None
        except TypeError as error:
            raise AnsibleFilterError(f"{function.__name__}: {error}") from None

    wrapper.__name__ = function.__name__
    return wrapper


def _warn(filter_name, warnings):
    for warning in warnings:
        Display().warning(f"{filter_name}: {warning}")


def hosts_toml(spec):
    text = render_hosts_toml(spec)
    _warn("hosts_toml", hosts_toml_warnings(spec))
    return text


def hosts_files(settings):
    files = render_hosts_files_from(settings)
    _warn("hosts_files", registry_mirror_warnings(settings.get("registry_mirrors"), settings.get("containerd_version")))
    return files


def mirror_settings(settings, prefix=ROLE_PREFIX):
    return check_mirror_settings(settings, prefix)


def credentials(settings, prefix=ROLE_PREFIX):
    return config_credentials(settings, prefix)


def from_pmk_cluster(body, prefix=ROLE_PREFIX):
    return {prefix + option: value for option, value in from_pmk_body(body).items()}


class FilterModule:
    def filters(self):
        return {
            "basic_auth": _strict(basic_auth),
            "mirror_endpoint": _strict(mirror_endpoint),
            "hosts_toml": _strict(hosts_toml),
            "hosts_files": _strict(hosts_files),
            "mirror_settings": _strict(mirror_settings),
            "from_pmk_cluster": _strict(from_pmk_cluster),
            "config_credentials": _strict(credentials),
        }
