"""Rate limits shared by every app process and node.

DRF's SimpleRateThrottle keeps its history in Django's cache, which is per process
unless a shared cache server is added. These throttles keep DRF's parts (`scope`,
rates from DEFAULT_THROTTLE_RATES as "<count>/<s|m|h|d>", `get_cache_key`,
`wait`, the 429 `throttled` answer with Retry-After) and count instead in an
unlogged PostgreSQL table, one atomic upsert per check (fixed windows)."""

import time

from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from .models import RateCounter

COUNTERS = RateCounter._meta.db_table


def rate_hit_sql(key_sql: str) -> str:
    """Count one request for the key (an SQL expression) in window %(window)s."""
    return f"""
        INSERT INTO {COUNTERS} (key, window_start, hits)
        SELECT {key_sql}, %(window)s, 1 WHERE {key_sql} IS NOT NULL
        ON CONFLICT (key, window_start) DO UPDATE SET hits = {COUNTERS}.hits + 1
        RETURNING hits
    """


HIT = rate_hit_sql("%(key)s::text")


# The longest rate window is a day; counters of older windows can go.
KEEP_SECONDS = 24 * 3600


def rate_counters_prune(*, now: float | None = None) -> int:
    """Delete the counters of windows older than a day; returns how many."""
    cutoff = (time.time() if now is None else now) - KEEP_SECONDS
    deleted, _ = RateCounter.objects.filter(window_start__lt=cutoff).delete()
    return deleted


def rate_window(duration: int, now: float | None = None) -> tuple[int, float]:
    """(start of the current window, seconds left in it)."""
    now = time.time() if now is None else now
    window = int(now // duration * duration)
    return window, window + duration - now


class PostgresRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        # Read at each request (DRF reads its class attribute once, at import).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        counted = getattr(request.user, "rate_hits", None)
        if counted is None or counted[0] != self.key:
            counted = (self.key, *self.hit())
        _, hits, self.seconds_left = counted
        return hits <= self.num_requests

    def hit(self) -> tuple[int, float]:
        """Count this request in the current window: (hits so far, seconds left)."""
        window, seconds_left = rate_window(self.duration)
        with connection.cursor() as cursor:
            cursor.execute(HIT, {"key": self.key, "window": window})
            (hits,) = cursor.fetchone()
        return hits, seconds_left

    def wait(self):
        return max(1, round(self.seconds_left))


class UserScopedRateThrottle(PostgresRateThrottle, ScopedRateThrottle):
    """DRF's ScopedRateThrottle: the view's `throttle_scope`, per authenticated user
    (per address for anonymous requests). accounts' TokenAuthentication counts the
    request in its own statement on such views, and this reads that count."""

    def allow_request(self, request, view):
        # ScopedRateThrottle sets its scope and rate from the view here.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return PostgresRateThrottle.allow_request(self, request, view)

    @classmethod
    def window_seconds(cls, scope: str) -> int | None:
        """The scope's window length, or None when its rate is off."""
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        return None if rate is None else cls().parse_rate(rate)[1]

    @classmethod
    def user_key_prefix(cls, scope: str) -> str:
        """get_cache_key's key for a user, less the user id at its end."""
        return cls.cache_format % {"scope": scope, "ident": ""}
