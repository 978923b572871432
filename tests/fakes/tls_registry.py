"""A stand-in registry mirror over HTTPS, a plain HTTP file server, and the openssl-made PKI they use.

    make_pki(directory)      CAs, a server certificate and client certificates made with the openssl CLI (see Pki)
    TlsRegistry(pki, ...)    GET /v2/ -> 200 when the Basic credentials match, 401 otherwise; optionally mTLS
                             (client_ca), Harbor-like projects for GET /v2/<name>/tags/list, and manifests
                             for HEAD or GET /v2/<name>/manifests/<tag or digest>
    FileServer({...})        GET /<name> -> the bytes given for it (or an Answer), 404 otherwise (a CA to download)

Both servers are tests/fakes/base.py's FakeServer: they listen on 127.0.0.1 on a
free port, serve from threads, record every request and are context managers.
TLS handshakes happen in the request threads, so a client that gives up on the
certificate never blocks the server.

For demos: python tests/fakes/tls_registry.py --dir /tmp/pki --user u --password p
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

try:
    from fakes.base import Answer, FakeServer
except ImportError:  # run as a script: python tests/fakes/tls_registry.py
    from base import Answer, FakeServer

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_SERVER_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_CLIENT_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

# HEAD or GET /v2/<name>/manifests/<tag or digest>
_MANIFEST_PATH = re.compile(r"/v2/(.+)/manifests/([^/]+)")
CA_NAME = "kubenode test mirror CA"
OTHER_CA_NAME = "kubenode unrelated CA"


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files make_pki wrote."""

    directory: Path
    ca: Path  # signs server; valid 90 days; UTCTime
    ca_key: Path
    other_ca: Path  # unrelated to server: provokes a TLS verification failure
    server: Path  # for IP:127.0.0.1 only (not "localhost"), signed by ca
    server_key: Path
    expiring_ca: Path  # valid 10 days
    expired_ca: Path  # notAfter one day before its notBefore (openssl x509 -days -1)
    long_ca: Path  # valid 100 years: notAfter past 2049, so a GeneralizedTime
    ca_csr: Path  # a CERTIFICATE REQUEST block, not a certificate
    client_ca: Path  # signs client: what an mTLS registry trusts
    client: Path  # a node's client certificate (clientAuth), signed by client_ca
    client_key: Path  # its key (PKCS #8, EC P-256)
    other_client: Path  # a client certificate client_ca did not sign (self-signed)
    other_client_key: Path


def openssl(*args, cwd):
    """Run the openssl CLI with our minimal config; return its stdout (text)."""
    config = Path(cwd) / "openssl.cnf"
    if not config.exists():
        config.write_text(_OPENSSL_CONFIG)
    done = subprocess.run(
        ["openssl", *map(str, args)],
        cwd=cwd,
        env=dict(os.environ, OPENSSL_CONF=str(config)),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {done.stderr}")
    return done.stdout


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")


def _self_signed(directory, name, common_name, days):
    openssl("req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-subj", f"/CN={common_name}", "-days", days, cwd=directory)
    return directory / f"{name}.pem"


def make_pki(directory):
    """Write the files of a Pki into directory (created) and return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = _self_signed(directory, "ca", CA_NAME, 90)
    other_ca = _self_signed(directory, "other-ca", OTHER_CA_NAME, 30)
    expiring_ca = _self_signed(directory, "expiring-ca", "kubenode expiring CA", 10)
    long_ca = _self_signed(directory, "long-ca", "kubenode long CA", 36500)

    openssl("req", "-new", *_EC, "-keyout", "expired-ca.key", "-out", "expired-ca.csr",
            "-subj", "/CN=kubenode expired CA", cwd=directory)
    (directory / "v3_ca.ext").write_text(_OPENSSL_CONFIG.split("[v3_ca]\n", 1)[1])
    openssl("x509", "-req", "-in", "expired-ca.csr", "-signkey", "expired-ca.key", "-days", "-1",
            "-extfile", "v3_ca.ext", "-out", "expired-ca.pem", cwd=directory)

    (directory / "server.ext").write_text(_SERVER_EXTENSIONS)
    openssl("req", "-new", *_EC, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
            cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "4242",
            "-days", "30", "-extfile", "server.ext", "-out", "server.pem", cwd=directory)

    client_ca = _self_signed(directory, "client-ca", "kubenode test client CA", 90)
    (directory / "client.ext").write_text(_CLIENT_EXTENSIONS)
    openssl("req", "-new", *_EC, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=kubenode node",
            cwd=directory)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "client-ca.pem", "-CAkey", "client-ca.key",
            "-set_serial", "4343", "-days", "30", "-extfile", "client.ext", "-out", "client.pem", cwd=directory)
    other_client = _self_signed(directory, "other-client", "kubenode stranger", 30)
    return Pki(
        directory=directory,
        ca=ca,
        ca_key=directory / "ca.key",
        other_ca=other_ca,
        server=directory / "server.pem",
        server_key=directory / "server.key",
        expiring_ca=expiring_ca,
        expired_ca=directory / "expired-ca.pem",
        long_ca=long_ca,
        ca_csr=directory / "server.csr",
        client_ca=client_ca,
        client=directory / "client.pem",
        client_key=directory / "client.key",
        other_client=other_client,
        other_client_key=directory / "other-client.key",
    )


def free_port():
    """A port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_context(pki, client_ca=None):
    """A server-side TLS context with the certificate for IP:127.0.0.1 that pki.ca signed; with client_ca (a PEM
    path), a client certificate it signed is required, as the registry's http.tls.clientcas does."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server), str(pki.server_key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


class TlsRegistry(FakeServer):
    """GET /v2/ as a registry answers it, and GET /v2/<name>/tags/list as registry:2 or Harbor answers it.

    users: {name: password}. With no users, every request gets 200. A request
    whose Basic credentials match gets 200 (403 when the user is in forbidden),
    any other 401 with a Basic challenge. force_status answers every request
    with that status instead (a Location header comes with 3xx: force_location,
    by default another host). trickle sends every answer one byte every trickle seconds.
    client_ca: only clients with a certificate it signed get through the TLS handshake.
    projects: None answers every tags/list 404 NAME_UNKNOWN, as registry:2 does for a repository it does not
    hold; a set of Harbor project names answers 404 NOT_FOUND for a repository under one of them and, as Harbor's
    v2 authorisation does for any other, 401 UNAUTHORIZED "project <name> not found".
    manifests: the "<name>:<tag or digest>" it holds (name with any repo path, e.g. k8s-proxy/pause:3.6); HEAD or
    GET of one answers 200 with an OCI index's headers, of any other 404 MANIFEST_UNKNOWN (under projects, a
    name outside them 401 as above). The set may be changed while it runs.
    """

    def __init__(self, pki, users=None, forbidden=(), client_ca=None, projects=None, manifests=()):
        super().__init__(tls_context=server_context(pki, client_ca))
        self.users = dict(users or {})
        self.forbidden = set(forbidden)
        self.projects = None if projects is None else set(projects)
        self.manifests = set(manifests)
        self.force_status = None
        self.force_location = "https://elsewhere.invalid/v2/"
        self.trickle = None

    def _user(self, authorization):
        """The user whose credentials authorization holds, or None."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            name, password = base64.b64decode(authorization[6:], validate=True).decode("utf-8").split(":", 1)
        except ValueError:
            return None
        return name if self.users.get(name) == password else None

    def answer(self, request):
        status, body, headers = self._answer(request.method, request.path, request.header("Authorization"))
        return Answer(status, body, dict({"Content-Type": "application/json"}, **headers), self.trickle)

    def _answer(self, method, path, authorization):
        if self.force_status is not None:
            extra = {"Location": self.force_location} if 300 <= self.force_status < 400 else {}
            return self.force_status, b"{}", extra
        name = path[len("/v2/"):-len("/tags/list")] if path.startswith("/v2/") and path.endswith("/tags/list") else None
        manifest = _MANIFEST_PATH.fullmatch(path)
        if path != "/v2/" and not name and not manifest:
            return 404, b'{"errors":[{"code":"NOT_FOUND"}]}', {}
        if method != "GET" and not (manifest and method == "HEAD"):
            return 405, b"{}", {}
        if self.users:
            user = self._user(authorization)
            if user is None:
                challenge = {"WWW-Authenticate": 'Basic realm="kubenode-fake-registry"'}
                return 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', challenge
            if user in self.forbidden:
                return 403, b'{"errors":[{"code":"DENIED"}]}', {}
        if manifest:
            return self._manifest(*manifest.groups())
        if name is None:
            return 200, b"{}", {"Docker-Distribution-API-Version": "registry/2.0"}
        return self._tags(name)

    def _manifest(self, name, reference):
        if self.projects is not None and name.split("/", 1)[0] not in self.projects:
            message = f"project {name.split('/', 1)[0]} not found"
            return 401, f'{{"errors":[{{"code":"UNAUTHORIZED","message":"{message}"}}]}}'.encode(), {}
        if f"{name}:{reference}" not in self.manifests:
            return 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', {}
        body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return 200, body, {"Content-Type": "application/vnd.oci.image.index.v1+json", "Docker-Content-Digest": digest}

    def _tags(self, name):
        if self.projects is None:
            return 404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}', {}
        project = name.split("/", 1)[0]
        if project in self.projects and "/" in name:
            return 404, f'{{"errors":[{{"code":"NOT_FOUND","message":"repository {name} not found"}}]}}'.encode(), {}
        message = f"project {project} not found"
        return 401, f'{{"errors":[{{"code":"UNAUTHORIZED","message":"{message}"}}]}}'.encode(), {}


class FileServer(FakeServer):
    """GET /<name> answers files[name]: bytes (HTTP 200), or an Answer as it is; 404 otherwise.

    Plain HTTP; over TLS with pki (the certificate for IP:127.0.0.1 that pki.ca signed).
    """

    def __init__(self, files, pki=None):
        super().__init__(tls_context=server_context(pki) if pki is not None else None)
        self.files = dict(files)

    def answer(self, request):
        found = self.files.get(request.path.lstrip("/"))
        if request.method != "GET" or found is None:
            return Answer(404, b"not found\n")
        if isinstance(found, Answer):
            return found
        return Answer(200, found, {"Content-Type": "application/x-pem-file"})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write the PKI (default: a temporary directory)")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    args = parser.parse_args(argv)
    directory = Path(args.dir or tempfile.mkdtemp(prefix="kubenode-pki-"))
    pki = make_pki(directory)
    users = {args.user: args.password} if args.user else None
    with TlsRegistry(pki, users=users) as registry, FileServer({"ca.pem": pki.ca.read_bytes()}) as files:
        print(f"registry: {registry.url}/v2/ (CA {pki.ca})")
        print(f"CA over HTTP: {files.url}/ca.pem")
        threading.Event().wait()


if __name__ == "__main__":
    main()
