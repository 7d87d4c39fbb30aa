"""One HTTP POST to a subscriber, and the checks around it.

Production refuses targets that are not https:// or that resolve to a loopback,
private, link-local or reserved address (WEBHOOK_REQUIRE_HTTPS,
WEBHOOK_ALLOW_PRIVATE_TARGETS). The address is checked after DNS resolution, at the
moment of sending, and the connection goes to that checked address (the Host header
and TLS certificate still name the host): a DNS answer that changes between the
check and the connection cannot reach the internal network. No redirect is
followed, both timeouts are WEBHOOK_TIMEOUT_SECONDS, and at most
RESPONSE_EXCERPT_BYTES of the answer are read."""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

RESPONSE_EXCERPT_BYTES = 1024


class TargetRefused(Exception):
    """The URL may not be called under the current settings."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    response_excerpt: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def check_url(url: str) -> None:
    """The URL's scheme, before any DNS lookup (also used to validate subscriptions)."""
    parts = urlsplit(url)
    allowed = {"https"} if settings.WEBHOOK_REQUIRE_HTTPS else {"https", "http"}
    if parts.scheme not in allowed or not parts.hostname:
        raise TargetRefused(f"the URL must be {' or '.join(sorted(allowed))}://host/...")


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
            if not ip.is_global or ip.is_multicast:
                raise TargetRefused(f"{host} resolves to a non-public address ({ip})")
    return addresses[0]


class Target:
    """A subscriber's URL, checked and resolved once, then POSTed to as often as
    needed over one kept-alive connection (a batch of deliveries to one receiver)."""

    def __init__(self, url: str):
        self.url = url
        self.pool = None
        self.refused = ""
        try:
            self._open()
        except TargetRefused as exc:
            self.refused = f"refused: {exc}"

    def _open(self) -> None:
        check_url(self.url)
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(parts.hostname, port)
        seconds = settings.WEBHOOK_TIMEOUT_SECONDS
        options = {"port": port, "retries": False, "maxsize": 1,
                   "timeout": urllib3.Timeout(connect=seconds, read=seconds)}  # fmt: skip
        if parts.scheme == "https":
            self.pool = urllib3.HTTPSConnectionPool(
                address, server_hostname=parts.hostname, assert_hostname=parts.hostname, **options
            )
        else:
            self.pool = urllib3.HTTPConnectionPool(address, **options)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"

    def post(self, body: bytes, headers: dict[str, str]) -> Outcome:
        started = time.monotonic()
        if self.pool is None:
            return _outcome(started, error=self.refused)
        try:
            response = self.pool.urlopen(
                "POST", self.path, body=body, redirect=False, preload_content=False,
                headers={**headers, "Host": self.host, "Content-Type": "application/json",
                         "User-Agent": "omnitron-capture-webhooks/1"},
            )  # fmt: skip
            try:
                excerpt = response.read(RESPONSE_EXCERPT_BYTES, decode_content=False)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            return _outcome(started, error=_describe(exc))
        except OSError as exc:
            return _outcome(started, error=f"{type(exc).__name__}: {exc}")
        return _outcome(
            started, status_code=response.status, excerpt=excerpt.decode("utf-8", "replace")
        )

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}"[:255]


def _outcome(started: float, *, status_code=None, error="", excerpt="") -> Outcome:
    duration = round((time.monotonic() - started) * 1000)
    return Outcome(status_code, error[:255], excerpt, duration)
