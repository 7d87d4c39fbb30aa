"""Reads of the read endpoints from a streaming replica; everything else from the primary.

With DATABASE_REPLICA_URL set, settings add DATABASES["replica"] and this router. A
view that only reads inherits `ReplicaReadsMixin` (the list and retrieve endpoints of
orders, order items and captures, omnitron/api/viewsets.py, and the event feed): its
GET requests run with replica reads allowed, and only then, and only outside a
transaction of the primary, does the router send a read to the replica. The capture
and its Idempotency-Key lookups, login, token authentication (raw SQL on
`django.db.connection`, which is always the primary), the admin, every write and
everything inside `transaction.atomic()` stay on the primary. One request reads from
one database: the first read decides.

The replica lags the primary by its replication delay: a client that captures and
reads at once may not see its capture yet (docs/scaling.md).

The replica being unreachable costs no request: the read goes to the primary. A
failure to reach it, or an error of the replica while a request reads from it (the
request is then run once more, on the primary), logs a warning and keeps the replica
out for DB_REPLICA_RETRY_SECONDS (a circuit breaker, per process), so an outage costs
one failed connection attempt per process every few seconds, not one per request.
Every request that wanted the replica and read from the primary instead calls the
`on_fallback` hooks once (omnitron/metrics.py counts them)."""

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from rest_framework.request import ForcedAuthentication, Request

REPLICA = "replica"
ALIASES = {DEFAULT_DB_ALIAS, REPLICA}
READ_METHODS = ("GET", "HEAD")

logger = logging.getLogger("omnitron.db")

# Called once per request whose reads fell back to the primary (no arguments).
on_fallback: list[Callable[[], None]] = []


@dataclass
class _Reads:
    """One request's reads: allowed on the replica, and where they went."""

    replica_allowed: bool = True
    alias: str | None = None  # decided by the first read
    fell_back: bool = False


_reads: ContextVar[_Reads | None] = ContextVar("replica_reads", default=None)
_down_until = 0.0  # time.monotonic() before which the replica is not tried


def replica_configured() -> bool:
    return REPLICA in connections.settings


def replica_usable() -> bool:
    """Whether the replica is connected: connects when needed. A failure opens the
    breaker. A kept connection found dead by a read's first statement is opened again
    and the statement run again, once, by the backend (omnitron/db/base.py), as for
    the primary: no health check round trip per request."""
    if time.monotonic() < _down_until:
        return False
    replica = connections[REPLICA]
    try:
        replica.ensure_connection()
    except DatabaseError as exc:
        replica_failed(exc)
        return False
    return True


def replica_failed(exc: Exception) -> None:
    """Keep the replica out for DB_REPLICA_RETRY_SECONDS and drop its connection."""
    global _down_until
    seconds = settings.DB_REPLICA_RETRY_SECONDS
    _down_until = time.monotonic() + seconds
    with contextlib.suppress(DatabaseError):
        connections[REPLICA].close()
    logger.warning("Read replica unavailable, reading from the primary for %ss: %s", seconds, exc)


def _fall_back(reads: _Reads) -> None:
    if reads.fell_back:
        return
    reads.fell_back = True
    for hook in on_fallback:
        try:
            hook()
        except Exception:
            logger.exception("A replica fallback hook failed")


class ReplicaRouter:
    """DATABASE_ROUTERS: reads to the replica only where `replica_reads` allows it."""

    def db_for_read(self, model, **hints):
        reads = _reads.get()
        if reads is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        if reads.alias is None:
            if reads.replica_allowed and replica_usable():
                reads.alias = REPLICA
            else:
                reads.alias = DEFAULT_DB_ALIAS
                _fall_back(reads)
        return reads.alias

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS  # also for an object read from the replica

    def allow_relation(self, obj1, obj2, **hints):
        return obj1._state.db in ALIASES and obj2._state.db in ALIASES

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # a physical replica gets the primary's schema


def replica_reads(call: Callable[[], object]):
    """`call()` with its reads allowed on the replica. If the replica fails while it
    reads, `call()` runs once more, reading from the primary. Returns (what `call`
    returned, where its reads went: "replica", "primary_fallback" or None)."""
    reads = _Reads()
    token = _reads.set(reads)
    try:
        try:
            return call(), _where(reads)
        except _ReplicaBroke as broke:
            replica_failed(broke.__cause__)
        reads = _Reads(replica_allowed=False)
        _reads.set(reads)
        _fall_back(reads)
        return call(), _where(reads)
    finally:
        _reads.reset(token)


def _where(reads: _Reads) -> str | None:
    if reads.fell_back:
        return "primary_fallback"
    return REPLICA if reads.alias == REPLICA else None


class _ReplicaBroke(Exception):
    """A database error of the replica during a request reading from it."""


def replica_broke(exc: Exception) -> bool:
    reads = _reads.get()
    return (
        isinstance(exc, DatabaseError)
        and reads is not None
        and reads.alias == REPLICA
        and connections[REPLICA].errors_occurred
    )


class ReplicaReadsMixin:
    """For a DRF view whose GET only reads: with a replica configured, its GET
    requests read from it (the request's log line says `db_reads`: "replica", or
    "primary_fallback" when the replica was out). Other methods are untouched."""

    def dispatch(self, request, *args, **kwargs):
        dispatch = functools.partial(super().dispatch, request, *args, **kwargs)
        if request.method not in READ_METHODS or not replica_configured():
            return dispatch()
        response, where = replica_reads(dispatch)
        if where is not None:
            from omnitron.observability import note  # not at import: metrics may import us

            note(request, db_reads=where)
        return response

    def initialize_request(self, request, *args, **kwargs):
        """Run again on the primary (the replica broke), a request keeps its first run's
        authentication: the token statement ran on the primary, and running it again
        counted the request toward the user's rate limit twice."""
        drf_request = super().initialize_request(request, *args, **kwargs)
        first = self.request  # the Django request, or on a second run the first's
        if isinstance(first, Request) and hasattr(first, "_user"):
            drf_request.authenticators = (ForcedAuthentication(first._user, first._auth),)
        return drf_request

    def handle_exception(self, exc):
        if replica_broke(exc):
            raise _ReplicaBroke from exc  # replica_reads runs the request again
        return super().handle_exception(exc)
