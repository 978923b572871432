# Copyright (c) 2026 kubenode maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way this collection's modules make an HTTP request: ansible-core's open_url, bounded in time,
in size and in where it goes.

ansible.module_utils.urls.Request().open sends each request (proxies from the environment's
http_proxy, https_proxy and no_proxy, as urllib reads them; no .netrc, no decompression). This
module adds only what open_url cannot do:

- Time: one deadline for the whole request. Connecting, the TLS handshake, a proxy tunnel,
  sending, the status line, the headers, the whole body and every redirect followed all
  happen within ``timeout`` seconds (SIGALRM in the main thread; elsewhere each socket call
  waits at most ``timeout``). A server that sends one byte a second is given up on when the
  time is over, not when it stops. (Name resolution is left to the system resolver.)
- Size: the body is read up to ``max_bytes``; a 2xx answer that is larger raises HttpTooLarge
  (or is cut, with ``truncate``); the body of any other status is cut silently.
- Redirects: the caller chooses the policy. Only GET and HEAD are ever redirected: a 3xx
  answer to any other method raises HttpRedirectError, as does a redirect the policy refuses.
  When a redirect leads to another origin, only the Accept and User-Agent headers go along.
- Credentials in URLs: a URL with ``user:password@`` is refused, and no message or exception
  this module makes holds the userinfo of any URL (display_url).

Every failure is an HttpError whose ``reason`` says what happened without the URL, and whose
``url`` is the display form of the URL that failed; the callers word the messages.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import ssl
import threading
import time
import urllib.error
from urllib.parse import unquote, urljoin, urlsplit

from ansible.module_utils.urls import Request

from ansible_collections.kubenode.registry_mirror.plugins.module_utils._registry_url import RegistrySettingError

# Redirect policies.
NO_REDIRECTS = "none"  # a 3xx answer raises HttpRedirectError
SAME_ORIGIN = "same_origin"  # GET and HEAD follow a redirect to the same scheme, host and port only
ANY_ORIGIN = "any"  # GET and HEAD follow a redirect to any http(s) URL, but never from https to http
REDIRECT_POLICIES = (NO_REDIRECTS, SAME_ORIGIN, ANY_ORIGIN)
MAX_REDIRECTS = 10  # as urllib
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_FOLLOWING_METHODS = ("GET", "HEAD")
# The only caller headers that go along to another origin: none of them can be a credential.
_PORTABLE_HEADERS = ("accept", "user-agent")
_SCHEMES = ("http", "https")
_AUTHORITY_END = re.compile(r"[/?#\\]")


class HttpError(Exception):
    """A request that got no usable answer. str() is "METHOD url: reason"."""

    def __init__(self, method, url, reason, elapsed=0.0, cause=None):
        super().__init__(f"{method} {url}: {reason}")
        self.method = method
        self.url = url  # display form: never with userinfo
        self.reason = reason  # what happened, without the URL
        self.elapsed = elapsed  # seconds since the request started
        self.cause = cause  # the underlying exception, when there is one


class HttpTimeout(HttpError):
    """The deadline passed before the whole answer was read."""

    def __init__(self, method, url, timeout, elapsed, phase):
        super().__init__(method, url, f"timed out after {elapsed:.1f} s {phase}", elapsed)
        self.timeout = timeout
        self.phase = phase


class HttpConnectError(HttpError):
    """No connection: the name does not resolve (dns is True), refused, unreachable, proxy tunnel refused."""

    def __init__(self, method, url, reason, elapsed, cause, dns=False):
        super().__init__(method, url, reason, elapsed, cause)
        self.dns = dns


class HttpTlsError(HttpError):
    """The TLS handshake failed; verify is True when the server's certificate did not verify."""

    def __init__(self, method, url, reason, elapsed, cause, verify=False):
        super().__init__(method, url, reason, elapsed, cause)
        self.verify = verify


class HttpProtocolError(HttpError):
    """The server did not answer HTTP, or closed the connection in the middle of the answer."""


class HttpTooLarge(HttpError):
    """A 2xx answer's body is larger than max_bytes."""

    def __init__(self, method, url, limit, elapsed):
        super().__init__(method, url, f"the answer is larger than {limit} bytes", elapsed)
        self.limit = limit


class HttpRedirectError(HttpError):
    """A 3xx answer that was not followed: status, location (display form, absolute) and why not."""

    def __init__(self, method, url, status, location, why, elapsed):
        to = f" to {location}" if location else " without a Location"
        super().__init__(method, url, f"HTTP {status} redirects{to}; not followed: {why}", elapsed)
        self.status = status
        self.location = location
        self.why = why


class Response:
    """A complete answer: status, reason, headers (case-insensitive .get), body (bytes), and more."""

    def __init__(self, status, reason, headers, body, url, elapsed, truncated):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.url = url  # display form of the URL that answered (after redirects)
        self.elapsed = elapsed
        self.truncated = truncated  # the body was cut at max_bytes


# --- URLs ----------------------------------------------------------------


def _authority(url):
    """The host part of url as a reader sees it, with or without a scheme."""
    rest = url.split("://", 1)[1] if "://" in url else url
    return _AUTHORITY_END.split(rest, 1)[0]


def url_credentials(url):
    """The strings to hide when url holds user[:password]@ (empty when it holds none).

    The whole userinfo, the password, and their percent-decoded forms; non-strings hold none.
    """
    if not isinstance(url, str):
        return []
    authority = _authority(url)
    if "@" not in authority:
        return []
    userinfo = authority.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    found = {userinfo, unquote(userinfo), password, unquote(password)}
    return sorted(value for value in found if value)


def display_url(url):
    """url without its user[:password]@, for messages."""
    if not url_credentials(url):
        return url
    authority = _authority(url)
    return url.replace(authority, authority.rpartition("@")[2], 1)


def refuse_url_credentials(module, fields, hint="", **result):
    """Fail the module when one of the URL options fields holds user[:password]@.

    The credentials are added to module.no_log_values first, so that the failure and its
    invocation show the URL masked; the message names the field, never the URL.
    """
    for field in fields:
        secrets = url_credentials(module.params.get(field))
        if secrets:
            module.no_log_values.update(secrets)
            module.fail_json(msg=str(credentials_error(field, hint)), **result)


def credentials_error(field, hint=""):
    return RegistrySettingError(field, f"must not contain credentials (user:password@ before the host){hint}")


def tls_context(verify=True, cadata=None):
    """The ssl context of an https request: verified against the system trust store, or against cadata
    (PEM text) when given; verify=False checks neither the certificate nor the host name."""
    context = ssl.create_default_context(cadata=cadata)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _origin(parts):
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


# --- the deadline ---------------------------------------------------------

# Where a request stood when its time ran out, from the functions of http.client, socket and ssl
# it was in (the first match wins: a handshake or a tunnel is inside a connect, a connect inside a send).
_PHASES = (
    ("do_handshake", "during the TLS handshake"),
    ("_tunnel", "while opening the proxy tunnel"),
    ("create_connection", "while connecting"),
    ("begin", "while waiting for the answer"),
    ("_send_output", "while sending the request"),
)


def _phase_of(frame):
    """The phase of _PHASES that frame (or a caller of it) is in, or None."""
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return next((phase for name, phase in _PHASES if name in names), None)


def _innermost_frame(error):
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return None if trace is None else trace.tb_frame


class _Expired(BaseException):
    """The deadline passed (raised by SIGALRM; a BaseException, so that no except OSError or Exception stops it)."""

    def __init__(self, phase):
        super().__init__(phase)
        self.phase = phase


class _Deadline:
    """The whole request's time: a context manager that interrupts whatever blocks when it is over."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.start = time.monotonic()
        self.phase = "while connecting"  # where the request stands, when no function of _PHASES says
        self._previous = None

    def elapsed(self):
        return time.monotonic() - self.start

    def remaining(self):
        """Seconds left; raises socket.timeout when none are."""
        left = self.timeout - self.elapsed()
        if left <= 0:
            raise socket.timeout("timed out")  # noqa: UP041 (what socket calls raise before Python 3.10)
        return left

    def _expire(self, _signum, frame):
        raise _Expired(_phase_of(frame) or self.phase)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, max(self.timeout, 0.001))
        return self

    def __exit__(self, *_exc_info):
        if self._previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
        return False

    def timed_out(self, method, url, error):
        """The HttpTimeout of error (_Expired or a socket timeout)."""
        phase = error.phase if isinstance(error, _Expired) else _phase_of(_innermost_frame(error)) or self.phase
        return HttpTimeout(method, url, self.timeout, self.elapsed(), phase)


# --- one request ------------------------------------------------------------


def _read_body(response, limit, cut, deadline, method, url):
    """The body, at most limit bytes; raise HttpTooLarge past it unless cut. Returns (body, truncated)."""
    chunks, size = [], 0
    while True:
        deadline.phase = f"while reading the answer ({size} bytes of the body received)"
        chunk = response.read1(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if not cut:
                raise HttpTooLarge(method, url, limit, deadline.elapsed())
            return b"".join(chunks)[:limit], True
    length = getattr(response, "length", None)
    if length:  # read1 ends quietly when the server closes before Content-Length
        raise http.client.IncompleteRead(b"".join(chunks), length)
    return b"".join(chunks), False


def _tls(url, context):
    """The ssl context to hand open_url: the caller's, the default one for https (its trust store is loaded
    only then), or a bare one that an http request never uses (so that open_url does not load a trust store)."""
    if context is not None:
        return context
    if url.lower().startswith("https:"):
        return ssl.create_default_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _send_once(method, url, headers, body, context, deadline, max_bytes, truncate):
    """One request through open_url, no redirect followed; the answer of any status, read whole."""
    deadline.phase = "while connecting"
    try:
        answer = Request().open(
            method, url, data=body, headers=dict(headers), timeout=deadline.remaining(),
            context=_tls(url, context), follow_redirects="none",
            decompress=False, use_netrc=False, force_basic_auth=False,
        )  # fmt: skip
        source = answer
    except urllib.error.HTTPError as error:  # any status but 2xx, 3xx included
        answer, source = error, error.fp
    try:
        status = answer.getcode()
        cut = truncate or not 200 <= status < 300
        data, truncated = _read_body(source, max_bytes, cut, deadline, method, display_url(url))
        return Response(status, answer.reason, answer.headers, data, display_url(url), deadline.elapsed(), truncated)
    finally:
        answer.close()


def _failure(method, url, error, deadline):
    """The HttpError of an exception open_url or the read raised (URLError unwrapped)."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    elapsed = deadline.elapsed()
    if isinstance(error, (_Expired, socket.timeout, TimeoutError)):  # noqa: UP041 (distinct before Python 3.10)
        return deadline.timed_out(method, url, error)
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = f"the TLS certificate does not verify ({error.verify_message or error.reason or error})"
        return HttpTlsError(method, url, reason, elapsed, error, verify=True)
    if isinstance(error, ssl.SSLError):
        return HttpTlsError(method, url, f"the TLS handshake failed ({error.reason or error})", elapsed, error)
    if isinstance(error, http.client.HTTPException):  # before OSError: RemoteDisconnected is both
        reason = f"no valid HTTP answer ({type(error).__name__}: {error})"
        return HttpProtocolError(method, url, reason, elapsed, error)
    if isinstance(error, socket.gaierror):
        reason = f"the name does not resolve ({error.strerror or error})"
        return HttpConnectError(method, url, reason, elapsed, error, dns=True)
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or type(error).__name__
        return HttpConnectError(method, url, reason, elapsed, error)
    return HttpError(method, url, str(error) or type(error).__name__, elapsed, error)


def _redirect(method, url, status, location, policy, deadline):
    """The absolute URL to follow, or raise HttpRedirectError saying why not."""
    shown = display_url(url)
    if not location:
        raise HttpRedirectError(method, shown, status, None, "the answer has no Location", deadline.elapsed())
    target = urljoin(url, location.strip())
    try:
        old, new = urlsplit(url), urlsplit(target)
        _origin(new)  # a bad port raises ValueError
    except ValueError:
        shown_target = display_url(target)
        raise HttpRedirectError(method, shown, status, shown_target, "not a valid URL", deadline.elapsed()) from None
    refused = None
    if method not in _FOLLOWING_METHODS:
        refused = f"a {method} request is never redirected"
    elif policy == NO_REDIRECTS:
        refused = "redirects are not followed"
    elif new.scheme.lower() not in _SCHEMES or not new.hostname:
        refused = "it does not lead to an http:// or https:// URL"
    elif url_credentials(target):
        refused = "it leads to a URL with credentials"
    elif policy == SAME_ORIGIN and _origin(new) != _origin(old):
        refused = "it leads to another scheme, host or port"
    elif old.scheme.lower() == "https" and new.scheme.lower() == "http":
        refused = "it leads from https to http"
    if refused is not None:
        raise HttpRedirectError(method, shown, status, display_url(target), refused, deadline.elapsed())
    return target


def request(
    method,
    url,
    timeout,
    max_bytes,
    headers=None,
    body=None,
    context=None,
    redirects=NO_REDIRECTS,
    truncate=False,
):
    """Send method url and read the whole answer, all within timeout seconds; return a Response.

    headers: dict of request headers; body: bytes or None; context: the ssl.SSLContext for https
    (default: ssl.create_default_context()); redirects: one of REDIRECT_POLICIES; truncate: cut a
    2xx body at max_bytes instead of raising HttpTooLarge.
    Any status is returned except a 3xx of REDIRECT_STATUSES: followed or HttpRedirectError.
    Raises an HttpError subclass for everything else that goes wrong.
    """
    if redirects not in REDIRECT_POLICIES:
        raise ValueError(f"redirects must be one of {', '.join(REDIRECT_POLICIES)}")
    method = method.upper()
    shown = display_url(url)
    if url_credentials(url):
        raise HttpError(method, shown, "the URL must not hold credentials")
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        raise HttpError(method, shown, "not an http:// or https:// URL")
    deadline = _Deadline(timeout)
    headers = dict(headers or {})
    try:
        with deadline:
            for hops in range(MAX_REDIRECTS + 1):
                shown = display_url(url)
                answer = _send_once(method, url, headers, body, context, deadline, max_bytes, truncate)
                if answer.status not in REDIRECT_STATUSES:
                    return answer
                target = _redirect(method, url, answer.status, answer.headers.get("Location"), redirects, deadline)
                if hops == MAX_REDIRECTS:
                    raise HttpRedirectError(
                        method, shown, answer.status, display_url(target), f"more than {MAX_REDIRECTS} redirects",
                        deadline.elapsed(),
                    )
                if _origin(urlsplit(target)) != _origin(urlsplit(url)):
                    headers = {name: value for name, value in headers.items() if name.lower() in _PORTABLE_HEADERS}
                url = target
    except HttpError:
        raise
    except (_Expired, Exception) as error:
        raise _failure(method, shown, error, deadline) from (error if isinstance(error, _Expired) else None)
    raise AssertionError("not reached")  # the loop returns or raises
