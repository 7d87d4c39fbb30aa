"""What a round trip to PostgreSQL costs the app's CPU, by how long the server takes
to answer: `python -m bench.roundtrip DATABASE_URL`.

Runs `SELECT pg_sleep(t)` (and `SELECT 1` for t = 0) on one psycopg connection, 200
times per round, five rounds, and prints the median CPU time (user + system) of this
process per statement. The statement's own work in the client is the same whatever
t is; what changes is whether the process had to sleep for the answer and wake up
again (docs/performance.md: why a capture costs the app more than its statements)."""

import json
import statistics
import subprocess
import sys
import time

import psycopg

SERVER_MS = (0, 0.2, 0.5, 1, 2, 5)
STATEMENTS = 200
ROUNDS = 5


def cpu_per_round_trip(conn, server_ms: float) -> float:
    """Microseconds of this process's CPU per statement, median of ROUNDS."""
    query = f"SELECT pg_sleep({server_ms / 1000})" if server_ms else "SELECT 1"
    for _ in range(20):  # warm
        conn.execute(query).fetchone()
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(STATEMENTS):
            conn.execute(query).fetchone()
        rounds.append((time.process_time() - started) / STATEMENTS * 1e6)
    return round(statistics.median(rounds), 1)


def measure_roundtrip(database_url: str) -> dict:
    """This module in a process of its own (nothing else running in it); its JSON."""
    from bench.infra import PYTHON, ROOT

    result = subprocess.run([PYTHON, "-m", "bench.roundtrip", database_url], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    return json.loads(result.stdout)


def main() -> None:
    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        result = {str(ms): cpu_per_round_trip(conn, ms) for ms in SERVER_MS}
    print(json.dumps({"client_cpu_us_per_round_trip_by_server_ms": result}))


if __name__ == "__main__":
    main()
