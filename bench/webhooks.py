"""What webhooks cost and how fast they arrive: capture-1 at concurrency 16 with one
active subscription against the same without it (alternating rounds, so drift of
this shared machine favours neither), the delay from a capture to its receipt, and
how long the backlog takes to drain once the load stops.

The receiver is Debian's nginx answering 204 and logging when each webhook-id
arrived: cheap, so the figures are the service's, not a slow receiver's. Three
worker processes deliver, as `docker compose` would run them."""

import os
import shutil
import signal
import statistics
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import psycopg

import scripts.nginx
from bench.infra import PYTHON, log, manage
from bench.load import RATIO_CONCURRENCY, Server, ratio, wrk
from scripts.live import Process, free_port, wait_until_ready, webhook_workers

WORKERS = 3
SIDES = ("without", "with")
# A third side per round: subscribed, the workers paused (SIGSTOP) while it runs, then
# resumed and drained before the next run. It measures what a subscription costs the
# capture itself (its delivery row and lane job), apart from delivering.
PAUSED = "paused"
RECEIVER_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format hook '$msec $http_webhook_id';
    client_body_temp_path {dir}/body;
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log hook;
        location / {{ return 204; }}
    }}
}}
"""


def webhook_env(env: dict) -> dict:
    """The production settings, allowing the receiver on this machine."""
    return {**env, "WEBHOOK_REQUIRE_HTTPS": "0", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1"}


@contextmanager
def receiver():
    """nginx on a free port; yields (URL, path of its log of arrivals)."""
    binary = scripts.nginx.binary() or "nginx"
    workdir = Path(tempfile.mkdtemp(prefix="omnitron-bench-receiver-"))
    workdir.chmod(0o777)
    port = free_port()
    (workdir / "nginx.conf").write_text(RECEIVER_CONF.format(dir=workdir, port=port))
    process = Process([binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf")], env={})
    url = f"http://127.0.0.1:{port}/hook"
    try:
        wait_until_ready(url.replace("/hook", "/ready"), timeout=10, process=process.popen,
                         status=204)  # fmt: skip
        yield url, workdir / "access.log"
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def set_subscription_active(database_url: str, active: bool) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE events_webhooksubscription SET is_active = %s", [active])


@contextmanager
def paused(processes):
    """The processes stopped (SIGSTOP) inside the block, continued after it."""
    for process in processes:
        os.kill(process.popen.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for process in processes:
            os.kill(process.popen.pid, signal.SIGCONT)


def webhook_rounds(server: Server, database_url: str, bodies: list[dict], seconds: int,
                   processes) -> tuple[list, list]:  # fmt: skip
    """Per round: capture-1 throughput with and without the subscription active, and,
    when the round has PAUSED bodies, subscribed with the workers paused. Every side
    starts with no delivery pending, so none pays for the one before's backlog.
    Returns the rounds and the paused sides' time windows (their events wait by
    design: the delivery lag leaves them out)."""
    rounds, windows = [], []
    for number, files in enumerate(bodies, start=1):
        sides = [side for side in (*SIDES, PAUSED) if side in files]
        order = sides if number % 2 else sides[::-1]
        rps = {}
        for side in order:
            set_subscription_active(database_url, side != "without")
            drain_seconds(database_url)
            started = time.time()
            with paused(processes) if side == PAUSED else nullcontext():
                rps[side] = wrk(server.capture_url, connections=RATIO_CONCURRENCY,
                                seconds=seconds, token=server.token,
                                bodies=files[side])["rps"]  # fmt: skip
            if side == PAUSED:
                windows.append((started, time.time()))
        rounds.append({"without_rps": rps["without"], "with_rps": rps["with"],
                       "ratio": ratio(rps["with"], rps["without"]),
                       "paused_rps": rps.get(PAUSED),
                       "paused_ratio": ratio(rps[PAUSED], rps["without"]) if PAUSED in rps
                       else None})  # fmt: skip
        log(f"webhook round {number}: without {rps['without']} rps, with {rps['with']} rps, "
            f"subscribed with the workers paused {rps.get(PAUSED)} rps")  # fmt: skip
    set_subscription_active(database_url, True)
    drain_seconds(database_url)
    return rounds, windows


def drain_seconds(database_url: str, timeout: float = 120) -> float | None:
    """Seconds until no delivery is pending, from now (None: not within the timeout)."""
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() - started < timeout:
            pending = conn.execute(
                "SELECT count(*) FROM events_webhookdelivery WHERE state = 'pending'"
            ).fetchone()[0]
            if pending == 0:
                return round(time.monotonic() - started, 2)
            time.sleep(0.1)
    return None


def delivery_lag(database_url: str, arrivals: Path, leave_out=()) -> dict:
    """How many events had a delivery and how many arrived, and the lag from each
    event's capture time to its first arrival at the receiver, leaving out events
    captured within the `leave_out` time windows (the workers paused)."""
    first = {}
    for line in arrivals.read_text().splitlines():
        at, _, webhook_id = line.partition(" ")
        first.setdefault(webhook_id, float(at))
    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT e.id, extract(epoch FROM e.created_at) FROM events_event e "
            "JOIN events_webhookdelivery d ON d.event_id = e.id"
        ).fetchall()
    timed = [(event_id, float(created)) for event_id, created in events
             if not any(start <= float(created) <= end for start, end in leave_out)]  # fmt: skip
    lags = sorted((first[event_id] - created) * 1000 for event_id, created in timed
                  if event_id in first)  # fmt: skip
    return {
        "events": len(events),
        "received": sum(1 for event_id, _ in events if event_id in first),
        "timed": len(lags),
        "p50_ms": round(statistics.median(lags), 1) if lags else None,
        "p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1) if lags else None,
    }


def cpu_seconds(processes) -> float:
    """User and system CPU the processes have used (/proc/<pid>/stat, all threads)."""
    ticks = 0
    for process in processes:
        fields = Path(f"/proc/{process.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def sustained(server: Server, bodies: str | None, seconds: int) -> dict | None:
    """capture-1 at concurrency 16 for `seconds`, the subscription active."""
    if not bodies:
        return None
    log(f"webhooks: {seconds}s of capture-1 at concurrency {RATIO_CONCURRENCY}, subscribed")
    run = wrk(server.capture_url, connections=RATIO_CONCURRENCY, seconds=seconds,
              token=server.token, bodies=bodies)  # fmt: skip
    return {"seconds": seconds, "rps": run["rps"], "requests": run["requests"],
            "errors": run["errors"]}  # fmt: skip


def measure_webhooks(
    server: Server,
    env: dict,
    bodies: list[dict],
    seconds: int,
    sustained_bodies: str | None = None,
    sustained_seconds: int = 0,
) -> dict:
    """The whole webhook section of the report: alternating rounds, then (full runs)
    a sustained minute with the subscription; then the drain, the lag of every event
    delivered, and whether each arrived, once at least."""
    database_url = env["DATABASE_URL"]
    with (
        receiver() as (url, arrivals),
        webhook_workers(PYTHON, webhook_env(env), count=WORKERS, name="bench-worker") as processes,
    ):
        manage(webhook_env(env), "create_webhook", url)
        cpu_before = cpu_seconds(processes)
        rounds, paused_windows = webhook_rounds(server, database_url, bodies, seconds, processes)
        load = sustained(server, sustained_bodies, sustained_seconds)
        drain = drain_seconds(database_url)
        worker_cpu = cpu_seconds(processes) - cpu_before
        time.sleep(0.5)  # nginx writes its log line after answering
        lag = delivery_lag(database_url, arrivals, leave_out=paused_windows)
        # What runs after this measures captures without webhooks: an active subscription
        # whose workers are gone would have each capture queue a delivery, and at times a
        # job (whose queueing trigger adds a statement to pg_stat_statements' count).
        set_subscription_active(database_url, False)
    result = {
        "rounds": rounds,
        "sustained": load,
        "with_over_without": statistics.median(r["ratio"] for r in rounds) if rounds else None,
        "paused_over_without": statistics.median(
            r["paused_ratio"] for r in rounds if r["paused_ratio"] is not None
        )
        if any(r["paused_ratio"] is not None for r in rounds)
        else None,
        "drain_s": drain,
        "lag": lag,
        "all_delivered": drain is not None and lag["received"] == lag["events"],
        "worker_cpu_ms_per_event": round(worker_cpu * 1000 / lag["events"], 2)
        if lag["events"]
        else None,
    }
    log(f"webhooks: {result['with_over_without']} with/without, drained in {drain} s, "
        f"lag p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms, "
        f"worker CPU {result['worker_cpu_ms_per_event']} ms per event")  # fmt: skip
    return result
