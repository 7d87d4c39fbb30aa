"""Whether PostgreSQL runs the hot statements on their cached plans or plans them
again on every run: pg_stat_statements' plans per call, over one short capture-1 run
at concurrency 16 with `pg_stat_statements.track_planning` on (off again after it,
and for every other measurement: tracking has a cost of its own).

psycopg prepares a statement on its fifth run on a connection. PostgreSQL then plans
it for the given values five times more, and from then on keeps one generic plan
only if that plan looks no dearer than those did; when it looks dearer, it plans the
statement on every run. On tables that were never analyzed, the capture's lock
statement was planned on every capture: 0.25 to 0.37 ms of PostgreSQL's CPU, more
than running it (docs/performance.md). A statement with more than REPLANNED plans
per call is listed under `replanned`."""

import psycopg

from bench.load import RATIO_CONCURRENCY, Server, wrk

MIN_CALLS = 50  # statements run fewer times are not the capture's
REPLANNED = 0.1  # a connection's first runs are planned: 5 of 50+ calls each

STATEMENTS = """
    SELECT query, calls, plans, mean_plan_time, mean_exec_time FROM pg_stat_statements
     WHERE calls >= %(min_calls)s AND query !~* '^\\s*(BEGIN|COMMIT)'
     ORDER BY calls DESC, query"""


def plans_per_call(server: Server, database_url: str, bodies: str, seconds: int) -> dict:
    """capture-1 for `seconds`, then each statement it ran: calls, plans per call,
    and the mean planning and execution times."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _track_planning(conn, on=True)
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
