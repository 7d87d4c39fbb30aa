"""What one capture costs, request by request: its latency and SQL statement count by
number of items (pg_stat_statements counts what the server received), a profile, and
what each fast path saves."""

import json
import statistics
import subprocess
import time

import psycopg
import requests

from bench.infra import PYTHON, ROOT, log
from bench.load import Server
from bench.seeding import Seeds, capture_body

SCALING_SIZES = (1, 10, 100, 1000)


def count_statements(database_url: str, action) -> int:
    """How many statements the app sent PostgreSQL while `action()` ran."""
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_stat_statements_reset()")
            action()
            cursor.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT ILIKE '%%pg_stat_statements%%' "
                # Foreign key checks run inside PostgreSQL, one per inserted row: not
                # statements the app sends.
                "AND query NOT LIKE '%%FOR KEY SHARE OF x' "
                # Nor the time zone Django sets on a worker's new connection (every
                # CONN_MAX_AGE seconds): not the capture's.
                "AND query NOT LIKE 'SELECT set_config(%%'"
            )
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


class TimedCaptures:
    """Captures of whole orders, one at a time, each returning its latency in ms."""

    def __init__(self, server: Server):
        self.url = server.capture_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {server.token}"

    def __call__(self, order: dict) -> float:
        started = time.perf_counter()
        response = self.session.post(self.url, json=capture_body(order))
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"items-scaling capture failed: {response.text[:300]}")
        return elapsed


def items_scaling(server: Server, seeds: Seeds, database_url: str, repeats: int) -> list[dict]:
    """Per size: `repeats` timed captures (the median is reported) and one more whose
    statements pg_stat_statements counts. The sizes are timed in rounds, the order
    reversed every round, so that a busy moment of this shared machine slows every
    size alike rather than the one timed during it. In a round each size first gets
    an untimed capture, which takes what the size before left behind (a 1,000-item
    capture's WAL and garbage): the timed one is that size's own."""
    capture = TimedCaptures(server)
    orders = {
        size: iter(seeds.orders(f"SCALE{size}", 2 * repeats + 1, size)) for size in SCALING_SIZES
    }
    latencies: dict[int, list[float]] = {size: [] for size in SCALING_SIZES}
    for round_number in range(repeats):
        sizes = SCALING_SIZES if round_number % 2 == 0 else SCALING_SIZES[::-1]
        for size in sizes:
            capture(next(orders[size]))
            latencies[size].append(capture(next(orders[size])))
    rows = []
    for size in SCALING_SIZES:
        counted = next(orders[size])
        queries = count_statements(database_url, lambda order=counted: capture(order))
        rows.append(
            {
                "items": size,
                "latency_ms": round(statistics.median(latencies[size]), 2),
                "queries": queries,
            }
        )
        log(f"items-scaling {size}: {rows[-1]}")
    return rows


def profile(env: dict, bodies: str, token: str) -> str:
    """bench/profile.py: captures of `bodies` in-process under pyinstrument."""
    return _in_process("profile.py", env, bodies, token)


def fast_paths(env: dict, bodies: tuple[str, str], token: str) -> list[dict]:
    """bench/fast_paths.py: what each fast path saves per capture, in-process."""
    log("fast paths: in-process captures with each fast path on and off")
    return json.loads(_in_process("fast_paths.py", env, *bodies, token))


def _in_process(script: str, env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env={**env, "DJANGO_ALLOWED_HOSTS": "testserver"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{result.stderr}")
    return result.stdout
