"""Whether PostgreSQL runs the hot statements on their cached plans or plans them
again on every run: pg_stat_statements' plans per call, over one short capture-1 run
at concurrency 16 with `pg_stat_statements.track_planning` on (off again after it,
and for every other measurement: tracking has a cost of its own). It is turned on
with ALTER SYSTEM, the only way the app's open connections see it, so a run killed
in between leaves it on until `ALTER SYSTEM RESET pg_stat_statements.track_planning`.

psycopg prepares a statement after its first runs on a connection. PostgreSQL then
plans it for the given values five times more, and from then on keeps one generic
plan only if that plan looks no dearer than those did; when it looks dearer, it plans
the statement on every run. On tables that were never analyzed, the capture's lock
statement was planned on every capture, which cost PostgreSQL more than running it
(docs/performance.md). A statement with more than REPLANNED plans per call is listed
under `replanned`."""

import contextlib

import psycopg

from bench.infra import log
from bench.load import RATIO_CONCURRENCY, Server, wrk

MIN_CALLS = 50  # statements run fewer times are not the capture's
# Planned on every run shows as 1. A connection's first runs of a statement are planned
# too (about 11: unprepared, then custom plans, then the generic one), which a short run
# on fresh connections can show as up to about 0.2.
REPLANNED = 0.5

STATEMENTS = """
    SELECT query, calls, plans, mean_plan_time, mean_exec_time FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND calls >= %(min_calls)s AND query !~* '^\\s*(BEGIN|COMMIT)'
     ORDER BY calls DESC, query"""


def plans_per_call(server: Server, database_url: str, bodies: str, seconds: int) -> dict | None:
    """capture-1 for `seconds`, then each statement it ran: calls, plans per call,
    and the mean planning and execution times. None when the database's role may not
    change the setting (a DATABASE_URL given that is not a superuser's)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            _track_planning(conn, on=True)
        except psycopg.errors.InsufficientPrivilege:
            log("plans per call: not measured (track_planning needs a superuser)")
            with contextlib.suppress(psycopg.Error):
                _track_planning(conn, on=False)
            return None
        try:
            conn.execute("SELECT pg_stat_statements_reset()")
            load = wrk(server.capture_url, connections=RATIO_CONCURRENCY, seconds=seconds,
                       token=server.token, bodies=bodies)  # fmt: skip
            rows = conn.execute(STATEMENTS, {"min_calls": MIN_CALLS}).fetchall()
        finally:
            _track_planning(conn, on=False)
    statements = [
        {
            "statement": " ".join(query.split())[:90],
            "calls": calls,
            "plans_per_call": round(plans / calls, 3),
            "plan_ms": round(plan_ms, 3),
            "exec_ms": round(exec_ms, 3),
        }
        for query, calls, plans, plan_ms, exec_ms in rows
    ]
    return {
        "captures": load["requests"],
        "statements": statements,
        "replanned": [s["statement"] for s in statements if s["plans_per_call"] > REPLANNED],
    }


def _track_planning(conn, *, on: bool) -> None:
    if on:
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
    else:
        conn.execute("ALTER SYSTEM RESET pg_stat_statements.track_planning")
    conn.execute("SELECT pg_reload_conf()")
