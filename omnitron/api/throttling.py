"""Rate limits shared by every app process and node.

DRF's SimpleRateThrottle keeps its history in Django's cache, which is per process
unless a shared cache server is added. These throttles keep DRF's parts (`scope`,
rates from DEFAULT_THROTTLE_RATES as "<count>/<s|m|h|d>", `get_cache_key`,
`wait`, the 429 `throttled` answer with Retry-After) and count instead in an
unlogged PostgreSQL table, one atomic upsert per check.

The window slides: a request is allowed when the requests of the current fixed
window, plus those of the window before weighted by the share of it the last
`duration` seconds still cover, stay within the limit (at 12:00:45, a minute's limit
counts 12:00:00 to 12:00:45 and a quarter of 11:59's). Fixed windows alone let twice
the limit through in a moment across a window's end (10 logins at 11:59:59, 10 more at
12:00:00). A request the limit refuses is not counted, as with DRF's throttles, so a
client that retries too early is not locked out; requests refused for any other
reason are."""

import logging
import math
import time
from typing import NamedTuple

from django.db import Error, connection
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from omnitron.db.pruning import delete_in_batches

from .models import RateCounter
from .pagination import Pagination

logger = logging.getLogger(__name__)

COUNTERS = RateCounter._meta.db_table
clock = time.time  # tests move it


def rate_hit_ctes(key_sql: str) -> str:
    """Two CTEs that count a request for the key (an SQL expression), as `rate_cost`
    requests (one, but for a large page of a list: read_cost), if the limit allows it,
    with rate_params' parameters; `rate_hit` answers `allowed`, `hits` (the requests
    allowed in the current window, this one included when it was) and `previous_hits`
    (in the window before). The rows are one per key and fixed window, as the release
    before wrote them."""
    # A hair over the limit still allows: the sum is floating point, and at the moment
    # Retry-After names it must not round to just above the limit.
    allows = (
        "{hits} + %(rate_cost)s::int + (SELECT hits FROM rate_before) * %(rate_weight)s::float8"
        " <= %(rate_limit)s::int + 1e-9"
    )
    return f"""
        rate_before AS (
            SELECT coalesce(max(hits), 0) AS hits FROM {COUNTERS}
             WHERE key = {key_sql}
               AND window_start = %(rate_window)s::bigint - %(rate_duration)s::int),
        rate_hit AS (
            INSERT INTO {COUNTERS} AS c (key, window_start, hits, allowed)
            SELECT {key_sql}, %(rate_window)s,
                   ({allows.format(hits=0)})::int * %(rate_cost)s::int, {allows.format(hits=0)}
             WHERE {key_sql} IS NOT NULL
            ON CONFLICT (key, window_start) DO UPDATE SET
                hits = c.hits + ({allows.format(hits="c.hits")})::int * %(rate_cost)s::int,
                allowed = {allows.format(hits="c.hits")}
            RETURNING allowed, hits, (SELECT hits FROM rate_before) AS previous_hits)
    """


class RateCount(NamedTuple):
    """What the upsert answered for one request, and when in its window it came."""

    allowed: bool
    hits: int  # in the current window, this request included when allowed
    previous_hits: int  # in the window before
    elapsed: float  # seconds into the current window
    cost: int = 1  # what this request counts as

    def retry_after(self, limit: int, duration: int) -> int:
        """Whole seconds until this request would be allowed, if none comes before."""
        if self.hits + self.cost <= limit and self.previous_hits:
            # In this window, once enough of the one before has slid away.
            share_left = (limit - self.hits - self.cost) / self.previous_hits
            wait = (1 - share_left) * duration - self.elapsed
        elif self.hits and limit:  # in the next window, once enough of this one has
            wait = duration - self.elapsed + (1 - (limit - self.cost) / self.hits) * duration
        else:  # a limit of 0 allows nothing, ever: a period, for a Retry-After
            wait = duration
        return max(1, math.ceil(wait - 1e-6))  # 19.000000000000004 s is 19


RATE_COLUMNS = RateCount._fields[:3]  # what rate_hit answers


def rate_count(columns, params: dict) -> RateCount:
    """The RateCount of rate_hit's RATE_COLUMNS for a request of rate_params' `params`."""
    return RateCount(*columns, params["rate_elapsed"], params["rate_cost"])


HIT = f"WITH {rate_hit_ctes('%(key)s::text')} SELECT {', '.join(RATE_COLUMNS)} FROM rate_hit"
# Count more requests for a key, `extra[i]` in window `windows[i]`, whatever the limit.
COUNT_MORE = f"""
    INSERT INTO {COUNTERS} AS c (key, window_start, hits)
    SELECT %(key)s, window_start, hits
      FROM unnest(%(windows)s::bigint[], %(extra)s::int[]) AS more(window_start, hits)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + EXCLUDED.hits"""


def rate_params(duration: int, limit: int, now: float | None = None, cost: int = 1) -> dict:
    """The parameters of rate_hit_ctes for a request now, counted as `cost` requests
    (at most the limit: a request that counts more is allowed once the window is
    empty; a limit of 0 allows nothing)."""
    now = clock() if now is None else now
    window = int(now // duration * duration)
    elapsed = now - window
    return {"rate_window": window, "rate_duration": duration, "rate_limit": limit,
            "rate_weight": 1 - elapsed / duration, "rate_elapsed": elapsed,
            "rate_cost": max(1, min(cost, limit))}  # fmt: skip


# A list counts toward the `read` limit as one request per this many rows its page may
# hold (its page size: 1 for the default 50, 10 for 500); a detail as one. Counted by
# requests only, one token's 128 pages of 500 events at once kept every worker busy.
READ_ROWS_PER_REQUEST = 50


def read_cost(page_size: str | None, pages=Pagination) -> int:
    """What a list request counts as toward `read`: by the rows its page may hold, its
    page size as sent but at most the most a page of `pages` holds (a size of 10,001
    is served 500 rows, and counted as 500), or its default when absent or not a
    number (validation refuses it later)."""
    if page_size and page_size.isascii() and page_size.isdigit():
        size = pages.max_page_size if len(page_size) > 6 else int(page_size)
    else:
        size = pages.page_size
    return reads_for_rows(min(size, pages.max_page_size))


def reads_for_rows(rows: int) -> int:
    """The reads a page that may hold `rows` rows counts as (one at least)."""
    return max(1, math.ceil(rows / READ_ROWS_PER_REQUEST))


# A read's answer counts, once rendered, at least one read per this many bytes it holds:
# the detail of a capture of 1,000 items with 4 KB of attributes each is 4 MB (16
# reads), with 16 KB before and after 32 MB; counted as one, twenty of them at once a
# second kept every worker busy. A page of 50 rows of a real shop is a few dozen KB.
READ_BYTES_PER_REQUEST = 256 * 1024


def reads_for_bytes(size: int) -> int:
    """The reads an answer of `size` bytes counts as (one at least)."""
    return max(1, math.ceil(size / READ_BYTES_PER_REQUEST))


class AnswerSizeMixin:
    """For a read view (the `read` scope): its answer counts, once rendered, as a read
    per READ_BYTES_PER_REQUEST it holds when that is more than the request counted as
    (the next reads wait longer; one larger than the limit fills the windows after the
    current one too: count_more). The throttle that counted the request left itself on
    the view (`counted_by`)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        throttle = getattr(self, "counted_by", None)  # PostgresRateThrottle sets it
        if (isinstance(response, Response) and response.status_code == 200
                and throttle is not None and throttle.scope == READ_SCOPE):  # fmt: skip
            response.add_post_render_callback(lambda answer: _count_by_size(throttle, answer))
        return response


def _count_by_size(throttle, answer) -> None:
    """Count a rendered answer by its size. The answer is made: a database that fails
    now loses the count (logged), not the answer."""
    try:
        throttle.count_more(reads_for_bytes(len(answer.content)))
    except Error:  # DatabaseError, or InterfaceError (a connection closed)
        logger.warning("A read's answer was not counted by its size.", exc_info=True)


def throttle_cost(view) -> int:
    """What a request counts as toward its view's limit (`throttle_cost`, else 1)."""
    return getattr(view, "throttle_cost", 1) if view is not None else 1


# The longest rate window is a day, and the window before it counts too: counters
# untouched for two days can go, and those of a scope's shorter windows once two of
# them have passed (a user reading all day under a limit per second writes a counter
# a second: 172,800 kept for two days).
KEEP_SECONDS = 2 * 24 * 3600


def rate_counters_prune() -> int:
    """Delete the counters no limit reads any more; returns how many."""
    now = clock()
    pruned = delete_in_batches(RateCounter.objects.filter(window_start__lt=now - KEEP_SECONDS))
    for scope, limit in _scope_limits().items():
        prefix = UserScopedRateThrottle.user_key_prefix(scope)
        old = now - 2 * limit[1]
        pruned += delete_in_batches(
            RateCounter.objects.filter(key__startswith=prefix, window_start__lt=old)
        )
    return pruned


def _scope_limits() -> dict[str, tuple[int, int]]:
    """Every scope's (requests, window seconds), those with a rate on: the users'
    scopes and the logins' (`login_address`, `login_username`), whose keys have the
    same form (the scope, then the user id or the login's digest)."""
    rates = api_settings.DEFAULT_THROTTLE_RATES
    return {scope: UserScopedRateThrottle.limit(scope) for scope in rates if rates[scope]}


def is_counted(method: str, view) -> bool:
    """Whether a request counts toward its view's rate limits: a method the view
    handles, OPTIONS (its description) aside; without a view (the admin's login, which
    counts its own POSTs) it does. A GET to the POST-only capture endpoint (a probe's,
    answered 405) used up a client's captures and was answered 429."""
    if view is None:
        return True
    return method != "OPTIONS" and hasattr(view, method.lower())


class PostgresRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        # Read at each request (DRF reads its class attribute once, at import).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if self.rate is None or not is_counted(request.method, view):
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        # Counted by the token statement already? (The admin's login passes Django's
        # request, which has no `auth`.)
        counted = getattr(getattr(request, "auth", None), "rate_count", None)
        if counted is None or counted[0] != self.key:
            counted = (self.key, self.hit(throttle_cost(view)))
        self.count = counted[1]
        if view is not None:  # for the view to count its answer by its size
            view.counted_by = self
        return self.count.allowed

    def count_more(self, cost: int) -> None:
        """Count an allowed request as `cost` requests rather than what it counted as:
        it turned out to cost more. The rest is counted now, from the current window
        (an answer that took long to render would have been counted in a window that no
        longer counts), a limit's worth in each window: what one cannot hold goes to
        the windows after it, so the next requests wait for all of it. Counted as the
        limit at most, a 32 MB answer under 20 reads of 256 KB a second was a second's
        worth, and four connections were served 35 MB a second."""
        limit = self.num_requests
        if not self.count.allowed or cost <= self.count.cost or limit < 1:
            return
        extra = [min(limit, cost - start) for start in range(0, cost, limit)]
        extra[0] -= self.count.cost  # counted when the request was let in
        window = rate_params(self.duration, limit)["rate_window"]
        windows = [window + n * self.duration for n in range(len(extra))]
        with connection.cursor() as cursor:
            cursor.execute(COUNT_MORE, {"key": self.key, "windows": windows, "extra": extra})

    def hit(self, cost: int = 1) -> RateCount:
        """Count this request, as `cost` requests, if the limit allows it."""
        params = rate_params(self.duration, self.num_requests, cost=cost)
        with connection.cursor() as cursor:
            cursor.execute(HIT, {"key": self.key, **params})
            allowed, hits, previous_hits = cursor.fetchone()
        return rate_count((allowed, hits, previous_hits), params)

    def wait(self):
        return self.count.retry_after(self.num_requests, self.duration)


def user_scope_wait(request, scope: str) -> int | None:
    """Count a request of `request.user` toward the user's `scope` limit outside DRF
    (a Django request: the admin's export): None when the limit allows it, else the
    seconds until it would."""
    throttle = UserScopedRateThrottle()
    throttle.use_scope(scope)
    return None if PostgresRateThrottle.allow_request(throttle, request, None) else throttle.wait()


# The per-user scopes of the read API (settings' DEFAULT_THROTTLE_RATES): every read
# endpoint counts toward `read`, a CSV export toward `export` instead, and the ERP's
# PATCH marking an order sent toward `mark`.
READ_SCOPE = "read"
EXPORT_SCOPE = "export"
MARK_SCOPE = "mark"  # the ERP's PATCH of an order


class UserScopedRateThrottle(PostgresRateThrottle, ScopedRateThrottle):
    """DRF's ScopedRateThrottle: the view's `throttle_scope`, per authenticated user
    (per address for anonymous requests). accounts' TokenAuthentication counts the
    request in its own statement on such views, and this reads that count."""

    def allow_request(self, request, view):
        # ScopedRateThrottle sets its scope and rate from the view here.
        scope = getattr(view, self.scope_attr, None)
        if not scope:
            return True
        self.use_scope(scope)
        return PostgresRateThrottle.allow_request(self, request, view)

    def use_scope(self, scope: str) -> None:
        """Count toward `scope`'s limit (no limit when its rate is off)."""
        self.scope = scope
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    @classmethod
    def limit(cls, scope: str) -> tuple[int, int] | None:
        """The scope's (requests, window seconds), or None when its rate is off."""
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        return None if rate is None else cls().parse_rate(rate)

    @classmethod
    def user_key_prefix(cls, scope: str) -> str:
        """get_cache_key's key for a user, less the user id at its end."""
        return cls.cache_format % {"scope": scope, "ident": ""}
