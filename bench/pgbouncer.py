"""What PgBouncer in transaction mode costs a capture: capture-1 at concurrency 16
through deploy/pgbouncer/pgbouncer.ini (as shipped; only where it listens, the
server and trust logins are set: scripts/live.py) against the same app straight to
PostgreSQL, in rounds that alternate which side goes first, so drift of this shared
machine favours neither. The pooled app runs as production would behind PgBouncer:
DB_PREPARED_STATEMENTS=0, DB_TIMEOUTS_ON_ROLE=1 and a role with the timeouts set on
it. The report gives PgBouncer / direct, the median of the rounds, and, to tell the
pooler from the setting it needs, the same rounds of direct with
DB_PREPARED_STATEMENTS=0 against direct as it runs by default."""

import shutil
import statistics
from contextlib import contextmanager
from urllib.parse import urlsplit

from bench.infra import app_server, log
from bench.load import RATIO_CONCURRENCY, Server, ab_rounds, warm_servers
from bench.seeding import Seeds
from scripts.live import pgbouncer, role_with_timeouts

ROLE = "omnitron_bench_pooled"
SIDES = {"pgbouncer": ("direct", "pgbouncer"), "unprepared": ("prepared", "unprepared")}


def pgbouncer_bodies(seeds: Seeds, rounds: int, seconds: int) -> dict[str, list[dict]]:
    """Per series (SIDES), per round, a bodies file for each side."""
    return {series: seeds.sided_bodies(rounds, seconds, sides) for series, sides in SIDES.items()}


@contextmanager
def pooled_app(env: dict, binary: str):
    """The app under gunicorn through PgBouncer: yields its base URL."""
    url = urlsplit(env["DATABASE_URL"])
    role = role_with_timeouts(env["DATABASE_URL"], ROLE, member_of=url.username,
                              lock_timeout_ms=3000, statement_timeout_ms=15000)  # fmt: skip
    with role as user, pgbouncer(binary, server_port=url.port, users=[user]) as (port, _):
        pooled = {**env, "DATABASE_URL": f"postgres://{user}@127.0.0.1:{port}{url.path}",
                  "DB_PREPARED_STATEMENTS": "0", "DB_TIMEOUTS_ON_ROLE": "1"}  # fmt: skip
        with app_server(pooled) as base:
            yield base


def measure_pgbouncer(direct: Server, env: dict, bodies: dict, seconds: int, *,
                      warmup: int) -> dict | None:  # fmt: skip
    """`bodies`: pgbouncer_bodies()'s; `warmup`: seconds of each fresh server's baseline
    first. None when PgBouncer is not installed (`make bench` installs it)."""
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if binary is None:
        log("pgbouncer is not installed: no PgBouncer rounds")
        return None
    unprepared_env = {**env, "DB_PREPARED_STATEMENTS": "0"}
    with pooled_app(env, binary) as pooled_base, app_server(unprepared_env) as unprepared_base:
        pooled = Server(pooled_base, direct.token)
        unprepared = Server(unprepared_base, direct.token)
        warm_servers((pooled, unprepared), direct.token, warmup)
        against = {"pgbouncer": pooled, "unprepared": unprepared}
        series = {}
        for name, (a, b) in SIDES.items():
            urls = {a: direct.capture_url, b: against[name].capture_url}
            series[name] = ab_rounds(urls, direct.token, bodies[name], seconds, name)
    return {
        "concurrency": RATIO_CONCURRENCY,
        "seconds_per_side": seconds,
        "rounds": series["pgbouncer"],
        "over_direct": statistics.median(r["ratio"] for r in series["pgbouncer"]),
        "unprepared_rounds": series["unprepared"],
        "unprepared_over_prepared": statistics.median(r["ratio"] for r in series["unprepared"]),
        "errors": sum(r["errors"] for rounds in series.values() for r in rounds),
    }
