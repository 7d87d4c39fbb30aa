"""Load from wrk in a separate process: the scenarios of the report's table, and the
alternating ratio rounds.

bench/requests.lua gives each request its own body from a bodies file, and prints
one `WRK_JSON {...}` line that `wrk()` turns into the figures of one run."""

import json
import subprocess
from dataclasses import dataclass
from functools import partial

import psycopg
import requests

from bench.cpu import CpuMeter
from bench.infra import ROOT, log
from bench.seeding import CONCURRENCY, Plan, capture_body

LUA = str(ROOT / "bench" / "requests.lua")
RATIO_CONCURRENCY = 16


@dataclass(frozen=True)
class Server:
    """The running app and the token every request sends."""

    base: str
    token: str

    @property
    def baseline_url(self) -> str:
        """GET: an authenticated request that touches no order, the yardstick."""
        return f"{self.base}/api/v1/active_user/"

    @property
    def capture_url(self) -> str:
        return f"{self.base}/api/v1/capture-order/"


def ratio(a, b):
    return round(a / b, 3) if b else None


# One wrk run


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    token: str,
    bodies: str = "-",
    method: str = "POST",
    key: str = "-",
) -> dict:
    threads = min(connections, 2)
    mode = "repeat" if key != "-" else "once"  # replays send the same body again
    options = ["-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    script = ["-s", LUA, url, "--", bodies, str(threads), token, key, method, mode]
    result = subprocess.run(
        ["wrk", *options, *script], capture_output=True, text=True, timeout=seconds + 60
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    return wrk_figures(json.loads(line.removeprefix("WRK_JSON ")))


def wrk_figures(raw: dict) -> dict:
    # A thread out of seeded bodies sends GET /healthz instead: not a capture, and an
    # error of the run (its requests/s and latencies would not be the captures').
    requests_ = max(0, raw["requests"] - raw["exhausted"])
    return {
        "requests": requests_,
        "rps": round(requests_ / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p95_ms": raw["latency_us"]["p95"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "errors": sum(raw["errors"].values()) + raw["exhausted"],
        "error_detail": {**raw["errors"], "bodies_exhausted": raw["exhausted"]},
    }


# The scenarios of the table


def run_scenario(name, url, *, concurrency, warmup, seconds, token, method="POST",
                 warm_bodies="-", bodies="-", key="-") -> dict:  # fmt: skip
    """A warm-up run (not reported; none for 0 s), then the measured run."""
    log(f"{name} at concurrency {concurrency}: {warmup}s warm-up, {seconds}s measured")
    send = partial(wrk, url, connections=concurrency, token=token, method=method, key=key)
    if warmup:
        send(seconds=warmup, bodies=warm_bodies)
    return {"scenario": name, "concurrency": concurrency, **send(seconds=seconds, bodies=bodies)}


def prime_replay(server: Server, plan: Plan) -> None:
    """The first capture under the replay scenario's Idempotency-Key: what it replays."""
    first = requests.post(
        server.capture_url,
        json=capture_body(plan.replay_order),
        timeout=10,
        headers={"Authorization": f"Token {server.token}", "Idempotency-Key": plan.replay_key},
    )
    if first.status_code != 200:
        raise RuntimeError(f"replay setup failed: {first.text[:300]}")


def run_scenarios(server: Server, plan: Plan, database_url: str, *, warmup: int,
                  seconds: int) -> tuple[list[dict], dict]:  # fmt: skip
    """baseline, capture-1, capture-10, replay and contended at each concurrency.
    Returns their rows and, per concurrency, what the contended run left in the database."""
    prime_replay(server, plan)
    results, contended = [], {}
    for concurrency in CONCURRENCY:
        run = partial(run_scenario, concurrency=concurrency, warmup=warmup, seconds=seconds,
                      token=server.token)  # fmt: skip
        results.append(run("baseline", server.baseline_url, method="GET"))
        for label in ("capture-1", "capture-10"):
            results.append(run(label, server.capture_url, **plan.wrk_bodies(label, concurrency)))
        results.append(run("replay", server.capture_url, warm_bodies=plan.replay_bodies,
                           bodies=plan.replay_bodies, key=plan.replay_key))  # fmt: skip
        results.append(
            run("contended", server.capture_url, **plan.wrk_bodies("contended", concurrency))
        )
        check = contended_check(database_url, plan.contended_prefix[concurrency])
        contended[f"c{concurrency}"] = {
            **check,
            "concurrency": concurrency,
            "successes": results[-1]["requests"] - results[-1]["errors"],
        }
    return results, contended


def contended_check(database_url: str, prefix: str) -> dict:
    """Audit rows, distinct items among them, and items marked captured, for the orders
    numbered `prefix-…`: all three equal when every item was captured exactly once."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(ci.id), count(DISTINCT ci.order_item_id),
                   count(i.id) FILTER (WHERE i.captured_at IS NOT NULL)
              FROM orders_orderitem i
              JOIN orders_order o ON o.id = i.order_id
              LEFT JOIN capture_captureitem ci ON ci.order_item_id = i.id
             WHERE o.number LIKE %s
            """,
            [f"{prefix}-%"],
        )
        audit_rows, distinct_items, captured_items = cursor.fetchone()
    conn.close()
    return {
        "audit_rows": audit_rows,
        "distinct_items": distinct_items,
        "captured_items": captured_items,
    }


# The ratio rounds: capture-1 / baseline throughput at concurrency 16 (and, in full runs,
# replay / baseline), the runs back to back, the order reversing from round to round
# (baseline first in odd rounds, last in even ones) so that drift of this shared
# machine favours neither side.


@dataclass(frozen=True)
class Replay:
    """What the replay side of a round sends: one body again and again, under a key
    whose first capture is done (prime_replay)."""

    bodies: str
    key: str


def ratio_sides(server: Server, bodies: str, replay: Replay | None = None) -> dict:
    """The runs of a round, each waiting for its duration in seconds."""
    common = {"connections": RATIO_CONCURRENCY, "token": server.token}
    sides = {
        "baseline": partial(wrk, server.baseline_url, method="GET", **common),
        "capture-1": partial(wrk, server.capture_url, bodies=bodies, **common),
    }
    if replay is not None:
        sides["replay"] = partial(wrk, server.capture_url, bodies=replay.bodies, key=replay.key,
                                  **common)  # fmt: skip
    return sides


def round_order(number: int, sides=("baseline", "capture-1")) -> list[str]:
    return list(sides) if number % 2 else list(reversed(sides))


def ratio_round(server: Server, number: int, bodies: str, seconds: int,
                replay: Replay | None = None, meter: CpuMeter | None = None) -> dict:  # fmt: skip
    """The sides back to back; their throughput, latency, and (with a meter) the app's
    and PostgreSQL's CPU per request."""
    sides = ratio_sides(server, bodies, replay)
    order = round_order(number, tuple(sides))
    log(f"ratio round {number}: {' then '.join(order)}, concurrency {RATIO_CONCURRENCY}")
    runs, cpu = {}, {}
    for side in order:
        before = meter.read() if meter else None
        runs[side] = sides[side](seconds=seconds)
        if meter:
            cpu[side] = meter.per_request(before, meter.read(), runs[side]["requests"])
    baseline, capture = runs["baseline"], runs["capture-1"]
    result = {
        "first": order[0],
        "baseline_rps": baseline["rps"],
        "capture_1_rps": capture["rps"],
        "capture_1_p50_ms": capture["p50_ms"],
        "capture_1_p99_ms": capture["p99_ms"],
        "errors": sum(run["errors"] for run in runs.values()),
        "ratio": ratio(capture["rps"], baseline["rps"]),
        "tail": ratio(capture["p99_ms"], capture["p50_ms"]),
    }
    if replay is not None:
        result["replay_rps"] = runs["replay"]["rps"]
        result["replay_ratio"] = ratio(runs["replay"]["rps"], baseline["rps"])
    if meter:
        result["cpu_ms_per_request"] = cpu
    extra = f", replay {result['replay_ratio']}" if replay else ""
    extra += f", cpu {cpu}" if cpu else ""
    log(f"ratio round {number}: baseline {baseline['rps']} rps, capture-1 {capture['rps']} rps "
        f"(p50 {capture['p50_ms']:.1f}, p99 {capture['p99_ms']:.1f} ms), ratio {result['ratio']}"
        f"{extra}")  # fmt: skip
    return result


def ratio_rounds(server: Server, bodies_per_round: list[str], seconds: int,
                 replay: Replay | None = None,
                 meter: CpuMeter | None = None) -> list[dict]:  # fmt: skip
    return [
        ratio_round(server, number, bodies, seconds, replay, meter)
        for number, bodies in enumerate(bodies_per_round, start=1)
    ]


def warm_servers(servers, token: str, seconds: int) -> None:
    """The baseline on each of `servers`, unmeasured (none for 0 s): a fresh server's
    first requests are slow."""
    if seconds:
        for server in servers:
            wrk(server.baseline_url, connections=RATIO_CONCURRENCY, seconds=seconds,
                token=token, method="GET")  # fmt: skip


def warm_ratio_sides(server: Server, bodies: str, seconds: int) -> None:
    """Both sides of a round, unmeasured: a fresh server's first requests are slow."""
    log(f"ratio warm-up: {seconds}s of each side")
    for run in ratio_sides(server, bodies).values():
        run(seconds=seconds)


# A/B rounds: capture-1 at concurrency 16 on two servers, which goes first alternating
# from round to round.


def ab_rounds(urls: dict[str, str], token: str, bodies: list[dict], seconds: int,
              label: str) -> list[dict]:  # fmt: skip
    """`urls`: the capture URL of side A and of side B, in that order; `bodies`: per
    round, a bodies file for each side. Per round: each side's rps, the errors, and
    B / A."""
    a, b = urls
    rounds = []
    for number, files in enumerate(bodies, start=1):
        order = (a, b) if number % 2 else (b, a)
        runs = {side: wrk(urls[side], connections=RATIO_CONCURRENCY, seconds=seconds,
                          token=token, bodies=files[side]) for side in order}  # fmt: skip
        rounds.append({"first": order[0], f"{a}_rps": runs[a]["rps"], f"{b}_rps": runs[b]["rps"],
                       "errors": runs[a]["errors"] + runs[b]["errors"],
                       "ratio": ratio(runs[b]["rps"], runs[a]["rps"])})  # fmt: skip
        log(f"{label} round {number}: {a} {runs[a]['rps']} rps, {b} {runs[b]['rps']} rps, "
            f"{b}/{a} {rounds[-1]['ratio']}")  # fmt: skip
    return rounds
