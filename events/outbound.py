"""One HTTP POST to a subscriber, and the checks around it.

Production refuses targets that are not https:// or that resolve to a loopback,
private, link-local or reserved address (WEBHOOK_REQUIRE_HTTPS,
WEBHOOK_ALLOW_PRIVATE_TARGETS). The address is checked after DNS resolution, at the
moment of sending, and the connection goes to that checked address (the Host header
and TLS certificate still name the host): a DNS answer that changes between the
check and the connection cannot reach the internal network. No redirect is
followed, a POST has WEBHOOK_TIMEOUT_SECONDS in all (connecting, sending, the
answer; the name's resolution has as long again), interim 1xx answers are skipped,
and at most RESPONSE_EXCERPT_BYTES of the answer are read."""

import contextlib
import http.client
import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import idna
import urllib3
import urllib3.connection
from django.conf import settings

RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "omnitron-capture-webhooks/1"
MAX_URL_LENGTH = 2048  # WebhookSubscription.url's column
# An attempt's error and a delivery's last outcome (their columns).
MAX_OUTCOME_LENGTH = 255


class TargetRefused(Exception):
    """The URL may not be called under the current settings."""


class NotResolvedInTime(Exception):
    """The receiver's name did not resolve within WEBHOOK_TIMEOUT_SECONDS."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    response_excerpt: str
    duration_ms: int
    # No answer in time (a connect or read timeout, or the deadline): the receiver hangs.
    timed_out: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def check_url(url: str) -> None:
    """The URL's scheme, host and port, before any DNS lookup (also used to validate
    subscriptions)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError as exc:  # a port out of range, a broken IPv6 literal
        raise TargetRefused(f"not a URL: {exc}") from None
    allowed = {"https"} if settings.WEBHOOK_REQUIRE_HTTPS else {"https", "http"}
    if parts.scheme not in allowed or not parts.hostname:
        raise TargetRefused(f"the URL must be {' or '.join(sorted(allowed))}://host/...")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise TargetRefused("the URL has a space or a control character")
    if parts.username is not None:  # http.client would drop it, and send no credentials
        raise TargetRefused("the URL names a user: send credentials as a header instead")
    if len(normalized_url(url)) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    # An address written in the URL is refused here, not after a day of retries; a
    # name is checked when it is resolved, for each delivery (it may change).
    try:
        ip = ipaddress.ip_address(parts.hostname.split("%")[0])
    except ValueError:
        return
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS and not _is_public(ip):
        raise TargetRefused(f"{parts.hostname} is not a public address")


def normalized_url(url: str) -> str:
    """The URL as a subscription stores it, in one spelling of its scheme and host (a
    URL has one subscription: `HTTP://Example.com/hook#x` was a second one of the same
    receiver, which got every event twice): scheme and host in lower case, a name in
    its ASCII form, an IPv6 address in its short form, no default port, no fragment
    (never sent). For a URL check_url takes."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _authority(parts), parts.path, parts.query, ""))


def ascii_host(hostname: str) -> str:
    """A host name as DNS, the Host header and TLS take it: an international one in its
    ASCII form, as IDNA 2008 spells it (`пример.рф` is `xn--e1afmkfd.xn--p1ai`:
    http.client could not write it, and every POST failed; Python's own codec is IDNA
    2003, which sent `faß.de` to another domain, `fass.de`); an IPv6 address in its
    short form. Refuses a name DNS could not ask for."""
    try:
        address = ipaddress.ip_address(hostname.split("%")[0])
    except ValueError:
        pass
    else:
        return address.compressed + hostname[len(hostname.split("%")[0]) :]
    try:
        name = hostname if hostname.isascii() else idna.encode(hostname, uts46=True).decode()
    except idna.IDNAError:
        name = ""
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(0 < len(label) <= 63 for label in labels):
        raise TargetRefused(f"not a host name: {hostname}"[:MAX_OUTCOME_LENGTH])
    return name


DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(parts) -> str:
    """The host and the port, as the Host header names them: an IPv6 address in
    brackets (`Host: ::1:8080` is no host, and nginx answers it 400), the scheme's
    default port left out."""
    host = ascii_host(parts.hostname)
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    return host if port is None or port == DEFAULT_PORTS.get(parts.scheme) else f"{host}:{port}"


# Headers a subscription may not set: the message's framing and its signature.
RESERVED_HEADERS = {
    "host", "content-length", "transfer-encoding", "content-type", "connection",
    "webhook-id", "webhook-timestamp", "webhook-signature",
}  # fmt: skip
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")


def check_headers(headers) -> None:
    """A subscription's extra headers: {name: value} of strings, names HTTP tokens
    outside RESERVED_HEADERS, values of visible ASCII characters and spaces (no CR, LF
    or NUL: a header must not end early or start another; http.client could not write
    `€`, and every POST failed)."""
    if not isinstance(headers, dict):
        raise TargetRefused("headers must be an object of name: value strings")
    names = [name.lower() for name in headers if isinstance(name, str)]
    if len(set(names)) != len(names):  # names are case-insensitive: both would be sent
        raise TargetRefused("each header once (names are the same in any case)")
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise TargetRefused(f"not a header name: {name!r}"[:MAX_OUTCOME_LENGTH])
        if name.lower() in RESERVED_HEADERS:
            raise TargetRefused(f"the {name} header is set by the sender")
        if (
            not isinstance(value, str)
            or len(value) > 4096
            or not all(char == " " or (char.isprintable() and not char.isspace()) for char in value)
            or not value.isascii()
        ):
            raise TargetRefused(
                f"the {name} header's value must be visible ASCII text"[:MAX_OUTCOME_LENGTH]
            )


def resolve(host: str, port: int) -> str:
    """An address of the host that may be called: every address it resolves to is
    checked, so a name with one public and one private address is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not _is_public(ip):
                raise TargetRefused(f"{host} resolves to a non-public address ({ip})")
    return addresses[0]


def resolve_within(host: str, port: int, seconds: float) -> str:
    """resolve(), waiting `seconds` at most (NotResolvedInTime then): a resolver that
    hangs, with its own timeouts of 5 s an attempt and name server, held every batch of
    the receiver's lanes that long, outside the POST's deadline, recorded as a short
    failure that paused nothing. The lookup's thread ends when the resolver gives up."""
    outcome = {}

    def look_up() -> None:
        try:
            outcome["address"] = resolve(host, port)
        except Exception as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=look_up, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise NotResolvedInTime(f"{host} did not resolve within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["address"]


# Not global, though the ipaddress of Python 3.11.7 takes them as such: local-use NAT64
# (RFC 8215), which reaches the network's own IPv4 addresses, site-local (RFC 3879,
# deprecated, still routed inside some networks), the IETF's protocol assignments
# (192.0.0.0/24, RFC 6890: not forwarded, but for two anycast services no receiver is)
# and SRv6 segment ids (RFC 9602: a network's own routers).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in ("64:ff9b:1::/48", "fec0::/10", "192.0.0.0/24", "5f00::/16")
)


def _is_public(ip) -> bool:
    """A global unicast address, and so is any IPv4 address it carries."""
    return all(
        checked.is_global
        and not checked.is_multicast
        and not any(checked in network for network in NOT_GLOBAL)
        for checked in (ip, *_embedded_ipv4(ip))
    )


NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765)


def _embedded_ipv4(ip) -> list:
    """The IPv4 addresses an IPv6 address carries, which a network with NAT64, SIIT,
    6to4 or IPv4-compatible routing would reach: each must be public too."""
    if ip.version != 6:
        return []
    embedded = [ip.ipv4_mapped, ip.sixtofour]
    # 64:ff9b::a.b.c.d, ::ffff:0:a.b.c.d, ::a.b.c.d
    if ip in NAT64 or ip in SIIT or ip.packed[:12] == bytes(12):
        embedded.append(ipaddress.IPv4Address(ip.packed[12:]))
    return [address for address in embedded if address is not None]


class _KeepsItsConnection:
    """A connection pool of one, that keeps that connection at hand: a POST past its
    deadline is cut by shutting its socket down."""

    connection = None

    def _new_conn(self):
        self.connection = super()._new_conn()
        return self.connection

    def cut(self) -> None:
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # closed meanwhile
                sock.shutdown(socket.SHUT_RDWR)


class _Deadline:
    """A watchdog thread for a Target's POSTs, one after another: `arm` before a POST,
    `disarm` after it (True if the deadline passed and `cut` was called meanwhile).
    One thread per batch: a threading.Timer per POST cost 175 µs of CPU each."""

    def __init__(self, cut):
        self._cut, self._at, self._fired, self._closed = cut, None, False, False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def arm(self, seconds: float) -> None:
        with self._changed:
            self._at, self._fired = time.monotonic() + seconds, False
            self._changed.notify()

    def disarm(self) -> bool:
        with self._changed:
            self._at = None
            return self._fired

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _watch(self) -> None:
        with self._changed:
            while not self._closed:
                if self._at is None:
                    self._changed.wait()
                elif (left := self._at - time.monotonic()) > 0:
                    self._changed.wait(left)
                else:
                    self._at, self._fired = None, True
                    self._cut()


class _FinalResponse(http.client.HTTPResponse):
    """http.client skips an interim 100 Continue only: a receiver (or the CDN in front
    of it) that sent 103 Early Hints or 102 Processing before its 200 had that 1xx
    recorded as its answer, and the delivery was retried for a day and failed. Every
    1xx but 101 is interim (RFC 9110, 15.2): skipped, with its headers. A receiver
    that sends them without end meets the POST's deadline."""

    def _read_status(self):
        while True:
            version, status, reason = super()._read_status()
            if not (100 < status < 200 and status != 101):
                return version, status, reason
            http.client.parse_headers(self.fp)


# Named as urllib3's: an attempt's error names the connection's class
# ("NewConnectionError: HTTPConnection(host=...): ... Connection refused").
class HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _FinalResponse


class HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _FinalResponse


class _HTTPPool(_KeepsItsConnection, urllib3.HTTPConnectionPool):
    ConnectionCls = HTTPConnection


class _HTTPSPool(_KeepsItsConnection, urllib3.HTTPSConnectionPool):
    ConnectionCls = HTTPSConnection


class Target:
    """A subscriber's URL and extra headers, checked and resolved once, then POSTed to
    as often as needed over one kept-alive connection (a batch of deliveries to one
    receiver). One that fails its checks is refused: each POST's outcome says why.

    The timeouts bound each step of a POST (connecting, each read); a deadline bounds
    the whole: a receiver that sent its answer a byte at a time, each within the read
    timeout, held its delivery, and the worker's slot, for as long as it liked."""

    def __init__(self, url: str, headers=None):
        self.url = url
        self.headers = headers or {}
        # The sender's User-Agent, unless the subscription sets one (in any case: a
        # `user-agent` of its own was sent after the sender's, which receivers read).
        own = {name.lower() for name in self.headers if isinstance(name, str)}
        self.defaults = {} if "user-agent" in own else {"User-Agent": USER_AGENT}
        self.pool = self.deadline = None
        self.refused, self.refused_timed_out = "", False
        try:
            self._open()
        except NotResolvedInTime as exc:  # as a receiver that hangs: its subscription pauses
            self.refused, self.refused_timed_out = str(exc), True
        except (TargetRefused, ValueError) as exc:
            self.refused = f"refused: {exc}"

    def _open(self) -> None:
        check_url(self.url)
        check_headers(self.headers)
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        hostname = ascii_host(parts.hostname)
        seconds = settings.WEBHOOK_TIMEOUT_SECONDS
        address = resolve_within(hostname, port, seconds)
        options = {"port": port, "retries": False, "maxsize": 1,
                   "timeout": urllib3.Timeout(connect=seconds, read=seconds)}  # fmt: skip
        if parts.scheme == "https":
            self.pool = _HTTPSPool(
                address, server_hostname=hostname, assert_hostname=hostname, **options
            )
        else:
            self.pool = _HTTPPool(address, **options)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host = _authority(parts)

    def post(self, body: bytes, headers: dict[str, str]) -> Outcome:
        started = time.monotonic()
        if self.pool is None:
            return _outcome(started, error=self.refused, timed_out=self.refused_timed_out)
        seconds = settings.WEBHOOK_TIMEOUT_SECONDS
        if self.deadline is None:
            self.deadline = _Deadline(self.pool.cut)
        self.deadline.arm(seconds)
        try:
            response = self.pool.urlopen(
                "POST", self.path, body=body, redirect=False, preload_content=False,
                headers={**self.defaults, **self.headers, **headers, "Host": self.host,
                         "Content-Type": "application/json"},
            )  # fmt: skip
            try:
                excerpt = response.read(RESPONSE_EXCERPT_BYTES, decode_content=False)
                if len(excerpt) == RESPONSE_EXCERPT_BYTES:
                    # More may follow, unread: on a connection used again, it was read
                    # as the next POST's answer. The next POST opens a new one.
                    response.close()
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            error, timed_out = _describe(exc), _is_timeout(exc)
        except (OSError, ValueError, TypeError) as exc:  # e.g. a header http.client refuses
            error, timed_out = f"{type(exc).__name__}: {exc}", isinstance(exc, TimeoutError)
        else:
            error, timed_out = "", False
        finally:
            cut = self.deadline.disarm()
        if cut:  # whatever error it caused, or an answer that came just in time
            return _outcome(started, error=f"no whole answer within {seconds:g} s",
                            timed_out=True)  # fmt: skip
        if error:
            return _outcome(started, error=error, timed_out=timed_out)
        return _outcome(
            started, status_code=response.status, excerpt=excerpt.decode("utf-8", "replace")
        )

    def close(self) -> None:
        if self.deadline is not None:
            self.deadline.close()
        if self.pool is not None:
            self.pool.close()


def _is_timeout(exc: urllib3.exceptions.HTTPError) -> bool:
    # urllib3's NewConnectionError (a refused or unreachable connection) is a
    # ConnectTimeoutError, for compatibility: a refusal is no timeout, it fails at once.
    return isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    )


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}"[:MAX_OUTCOME_LENGTH]


def _outcome(started: float, *, status_code=None, error="", excerpt="",
             timed_out=False) -> Outcome:  # fmt: skip
    duration = round((time.monotonic() - started) * 1000)
    # PostgreSQL's text holds no NUL: a receiver's answer with one could not be
    # recorded, and its delivery was sent again every second.
    return Outcome(
        status_code, _text(error)[:MAX_OUTCOME_LENGTH], _text(excerpt), duration, timed_out
    )


def _text(value: str) -> str:
    return value.replace("\x00", "\ufffd")
