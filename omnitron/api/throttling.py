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

COUNTERS = RateCounter._meta.db_table


def rate_hit_sql(key_sql: str) -> str:
    """Count one request for the key (an SQL expression) in window %(window)s."""
    return f"""
        INSERT INTO {COUNTERS} (key, window_start, hits)
        SELECT {key_sql}, %(window)s, 1 WHERE {key_sql} IS NOT NULL
        ON CONFLICT (key, window_start) DO UPDATE SET hits = {COUNTERS}.hits + 1
        RETURNING hits
    """


HIT = PreparedStatement("omnitron_rate_hit", rate_hit_sql("%(key)s::text"))


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """'20/min' -> (20, 60); None, '' or 'off' -> None (no limit)."""
    if not rate or rate.lower() in ("off", "none"):
        return None
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0].lower()]


def rate_limit(scope: str) -> tuple[int, int] | None:
    """The (count, period) of a scope's limit, or None when it is off."""
    return parse_rate(settings.API_THROTTLE_RATES.get(scope))


def rate_window(period: int, now: float | None = None) -> tuple[int, float]:
    """(start of the current window, seconds left in it)."""
    now = time.time() if now is None else now
    window = int(now // period * period)
    return window, window + period - now


def rate_hit(key: str, period: int) -> tuple[int, float]:
    """Count one request for `key` in the current window: (hits so far, seconds left)."""
    window, seconds_left = rate_window(period)
    with connection.cursor() as cursor:
        HIT.execute(cursor, {"key": key, "window": window})
        (hits,) = cursor.fetchone()
    return hits, seconds_left


class PostgresRateThrottle(BaseThrottle):
    scope = ""

    def identity(self, request) -> str | None:
        """What to count requests by; None: not counted."""
        raise NotImplementedError

    def counter_key(self, ident: str) -> str:
        # Hashed: addresses and usernames are not stored, and keys stay short.
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.scope}:{digest[:40]}"

    def allow_request(self, request, view):
        limit = rate_limit(self.scope)
        if limit is None:
            return True
        counted = getattr(request.user, "rate_hits", {}).get(self.scope)
        if counted is None:
            ident = self.identity(request)
            if ident is None:
                return True
            counted = rate_hit(self.counter_key(ident), limit[1])
        hits, self.seconds_left = counted
        return hits <= limit[0]

    def wait(self):
        return max(1, round(self.seconds_left))


class CaptureUserThrottle(PostgresRateThrottle):
    """Captures per user. CaptureTokenAuthentication counts the request in its own
    statement; this reads the count (or counts itself for other authentication)."""

    scope = "capture_user"

    def identity(self, request):
        return str(request.user.pk) if request.user and request.user.is_authenticated else None

    def counter_key(self, ident: str) -> str:
        return f"{self.scope}:{ident}"  # the user id, as the authentication statement keys it


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
