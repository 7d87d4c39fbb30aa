"""Rate limits shared by every app process and node: one upsert per check into an
unlogged PostgreSQL table (fixed windows). DRF answers a refusal with 429, code
`throttled` and a Retry-After header.

Rates come from settings.API_THROTTLE_RATES ("<count>/<second|minute|hour>", or
None for no limit), overridable by environment variables (see the README)."""

import hashlib
import time

from django.conf import settings
from django.db import connection
from rest_framework.throttling import BaseThrottle

from omnitron.prepared import PreparedStatement

from .models import RateCounter

PERIODS = {"s": 1, "m": 60, "h": 3600}

HIT = PreparedStatement(
    "omnitron_rate_hit",
    f"""
    INSERT INTO {RateCounter._meta.db_table} (key, window_start, hits)
    VALUES (%(key)s, %(window)s, 1)
    ON CONFLICT (key, window_start) DO UPDATE
       SET hits = {RateCounter._meta.db_table}.hits + 1
    RETURNING hits
    """,
)


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """'20/min' -> (20, 60); None, '' or 'off' -> None (no limit)."""
    if not rate or rate.lower() in ("off", "none"):
        return None
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0].lower()]


def rate_hit(key: str, period: int, now: float | None = None) -> tuple[int, float]:
    """Count one request for `key` in the current window: (hits so far, seconds left)."""
    now = time.time() if now is None else now
    window = int(now // period * period)
    with connection.cursor() as cursor:
        HIT.execute(cursor, {"key": key, "window": window})
        (hits,) = cursor.fetchone()
    return hits, window + period - now


class PostgresRateThrottle(BaseThrottle):
    scope = ""

    def identity(self, request) -> str | None:
        """What to count requests by; None: not counted."""
        raise NotImplementedError

    def allow_request(self, request, view):
        limit = parse_rate(settings.API_THROTTLE_RATES.get(self.scope))
        ident = self.identity(request) if limit else None
        if ident is None:
            return True
        count, period = limit
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        hits, self.seconds_left = rate_hit(f"{self.scope}:{digest}", period)
        return hits <= count

    def wait(self):
        return max(1, round(self.seconds_left))


class CaptureUserThrottle(PostgresRateThrottle):
    """Captures per user."""

    scope = "capture_user"

    def identity(self, request):
        return str(request.user.pk) if request.user and request.user.is_authenticated else None


class LoginAddressThrottle(PostgresRateThrottle):
    """Login attempts per client address (X-Forwarded-For behind API_NUM_PROXIES)."""

    scope = "login_address"

    def identity(self, request):
        return self.get_ident(request)


class LoginUsernameThrottle(PostgresRateThrottle):
    """Login attempts per username, whatever the address (slows password guessing)."""

    scope = "login_username"

    def identity(self, request):
        username = request.data.get("username") if isinstance(request.data, dict) else None
        return username if isinstance(username, str) and username else None
