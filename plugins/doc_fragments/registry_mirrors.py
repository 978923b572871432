# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of per-registry mirrors (registry_mirrors, upstream_fallback) and the node's containerd_version.

DOCUMENTATION is shared by containerd_hosts and registry_preflight, so it names only options both have (O(url))
and the others by their module; CONTAINERD_VERSION is containerd_hosts' own.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  registry_mirrors:
    description:
      - Mapping of registry (C(docker.io), C(myreg:5000), or C(*) for containerd's C(_default) directory, which serves
        every registry without its own) to its mirrors, tried in the order given. An entry overrides the PMK mirror
        (O(url)) for its registry; the PMK mirror keeps serving the rest of
        O(kubenode.registry_mirror.containerd_hosts#module:registries).
      - A registry's value is the list of its mirrors, or a mapping with C(mirrors) (that list), C(upstream_fallback)
        (this registry's own, default O(upstream_fallback)) and, for C(*) only, C(repo_path_for_all).
      - "A mirror is a mapping: C(url) (required), C(repo_path), C(username) and C(password) (together), C(skip_tls),
        the CA as C(ca_file) (a node path) or C(ca_content) (PEM text) and its pin C(ca_sha256), the client
        certificate and key for mTLS as
        C(client_cert) and C(client_key) (node paths, together) or C(client_cert_content) and C(client_key_content)
        (PEM text, together), C(capabilities) (a list of C(pull), C(resolve) and C(push); default C(pull) and
        C(resolve)) and C(dial_timeout) (a Go duration such as C(3s), written for containerd 2.0.7 and later only,
        see O(kubenode.registry_mirror.containerd_hosts#module:containerd_version)) and C(token_realms) (the
        hosts, C(host) or C(host:port), besides the mirror's own whose token service
        M(kubenode.registry_mirror.registry_preflight) may ask for a token with the mirror's credentials; see
        O(kubenode.registry_mirror.registry_preflight#module:token_realms); not written to C(hosts.toml)). Each follows
        the rules of the option of the same name."
      - C(ca_sha256) is the SHA-256 fingerprint of the mirror's CA certificate, or a list with one for each
        certificate of a bundle, in the forms and with the rule of
        O(kubenode.registry_mirror.containerd_hosts#module:ca_sha256) (the CA holds exactly the pinned certificates).
        It needs C(ca_file) or C(ca_content). A C(ca_content) is checked on the controller, before any node is
        touched; a C(ca_file) on the node, by M(kubenode.registry_mirror.registry_preflight) and by
        M(kubenode.registry_mirror.containerd_hosts) before they send a request with it or write anything (the
        file must then exist). A mismatch fails naming the mirror's C(ca_sha256) and both fingerprints.
      - C(ca_content) and C(client_cert_content) are PEM certificates, none expired (the client certificate first,
        then its chain; the expiry of a certificate that is not a CA, such as a client certificate, is not
        checked); C(client_key_content) is one unencrypted PEM private key (PKCS#8, RSA or EC) that belongs to
        that certificate, as OpenSSL decides when it loads them on the controller. A key without its certificate, or
        the pair given half as node paths and half as text, is refused.
      - "M(kubenode.registry_mirror.containerd_hosts) writes each text in the registry's directory of
        O(kubenode.registry_mirror.containerd_hosts#module:config_path), named after the mirror's C(host[:port]):
        C(<host[:port]>.ca.crt) and C(<host[:port]>.client.cert) (mode C(0644)) and C(<host[:port]>.client.key)
        (mode C(0600)), owned by the user the module runs as (root on a node), in the same run as the C(hosts.toml)
        that names them and before it. The first line of each is the collection's marker, a comment line before the
        PEM block, which OpenSSL and containerd skip; the files with that line are removed when their mirror or
        registry goes, and with C(state=absent). Mirrors of one registry on one host share these files, so they must
        give the same texts."
      - A mirror with a C(repo_path) under C(*) serves every registry from that one path, so it needs
        C(repo_path_for_all=true) in the C(*) entry.
      - Each registry is given once (names compared without case; C(docker.io), C(index.docker.io) and
        C(registry-1.docker.io) are one), and a list holds each mirror endpoint once and at least one mirror.
      - A registry is written to the directory containerd reads for it, its name in lower case, and Docker Hub's
        names to C(docker.io) (a pull of C(index.docker.io/x) or of C(x) reads C(docker.io)).
      - Passwords and client keys are never shown in results, logs or diffs.
    type: dict
    default: {}
  upstream_fallback:
    description:
      - Whether a pull may end at the upstream registry when every mirror failed. V(false) makes the first mirror the
        C(server) too (so it is tried again last, never the upstream) and needs
        O(kubenode.registry_mirror.containerd_hosts#module:fallbacks) empty, so no pull leaves the mirrors; for an
        air-gapped site.
      - The default of every registry; an entry of O(registry_mirrors) may set its own.
      - With a C(*) entry without upstream fallback, every registry without an entry of its own is pulled from the
        mirrors of C(*), so M(kubenode.registry_mirror.containerd_hosts) writes C(*)'s C(hosts.toml) into every other
        directory of O(kubenode.registry_mirror.containerd_hosts#module:config_path) too, keeping aside what it
        did not write there, such as the C(platform9.io) file migrated from a stock PMK node's C(config.toml).
    type: bool
    default: true
"""

    CONTAINERD_VERSION = r"""
options:
  containerd_version:
    description:
      - The node's containerd version, for example V(1.7.24) or V(2.1.4), as
        RV(kubenode.registry_mirror.containerd_config#module:containerd_version) returns it. A setting that version
        does not read (C(dial_timeout) before 2.0.7) is left out of the files, with a warning.
      - Not set means unknown, and what every containerd from 1.6 on reads is written (with the same warning).
    type: str
"""
