"""`make bench` / `make bench-smoke`: where a capture's time goes, measured.

Starts PostgreSQL (a throwaway cluster, unless DATABASE_URL is set) and the app
under gunicorn with the production settings and `make run`'s worker count, seeds
orders through `manage.py import_orders`, drives load with wrk from a separate
process (bench/requests.lua gives each request its own order and items), and writes
a report to bench/results/ (Markdown, JSON, PNG). Every figure that matters is a
ratio measured in the same run: this machine is shared and noisy.

Exit status 1 when a scenario had errors, a contended item was captured twice, or
the query count of a capture depends on its number of items."""

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.gen_orders import document  # noqa: E402
from tests.live import Process, free_port, wait_until_ready  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
LUA = str(ROOT / "bench" / "requests.lua")
RESULTS = ROOT / "bench" / "results"
CONCURRENCY = (1, 16)
# Orders seeded per second of load, per scenario and concurrency: about twice what
# this 2-core machine serves, so no request runs out of fresh items.
SEED_RATE = {
    "C1warm": {1: 200, 16: 450},
    "C1run": {1: 200, 16: 450},
    "C10warm": {1: 170, 16: 380},
    "C10run": {1: 170, 16: 380},
    "CT": {1: 200, 16: 450},
    "RATIO": {16: 450},
}
# The capture-1 / baseline throughput ratio at concurrency 16 is also measured in
# rounds that alternate the two, so drift of this shared machine between two runs
# cannot masquerade as a difference: the report gives the median round.
RATIO_ROUNDS = 3
SCALING_SIZES = (1, 10, 100, 1000)


_t0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _t0:5.0f}s] {message}", file=sys.stderr, flush=True)


# Infrastructure


@contextmanager
def database():
    """A DATABASE_URL: the given one, or a throwaway durable cluster (removed after)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    data_dir = Path(tempfile.mkdtemp(prefix="omnitron-bench-pg-"))
    data_dir.chmod(0o755)  # as root, the postgres user must reach it
    env = {**os.environ, "PG_DATA_DIR": str(data_dir / "data"), "PG_PORT": str(free_port())}
    subprocess.run([str(ROOT / "scripts" / "pg.sh"), "start"], env=env, check=True)
    try:
        url = subprocess.run(
            [str(ROOT / "scripts" / "pg.sh"), "url"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        yield url
    finally:
        subprocess.run([str(ROOT / "scripts" / "pg.sh"), "destroy"], env=env, check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


def app_env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        # One user sends every request: keep the capture rate limit on (its counter
        # statement is part of a capture's cost) but far above what this machine serves.
        "THROTTLE_CAPTURE_RATE": "10000000/min",
    }


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@contextmanager
def app_server(env: dict):
    """gunicorn as `make run` starts it (gunicorn.conf.py: 2 x CPUs + 1 workers)."""
    port = free_port()
    process = Process([GUNICORN, "omnitron.wsgi"], env={**env, "PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/readyz", timeout=60, process=process.popen)
        yield base
    finally:
        process.stop()


# Data


class Seeds:
    """Orders for every scenario, imported through the project's own import command.
    Bodies are JSON request bodies, one per line, each used once."""

    def __init__(self, env: dict, workdir: Path):
        self.env, self.workdir = env, workdir

    def orders(self, prefix: str, orders: int, items: int) -> list[dict]:
        doc = document(orders=orders, items=items, prefix=prefix)
        created = json.loads(manage(self.env, "import_orders", "-", stdin=json.dumps(doc)))
        return created["created"]

    def bodies_file(self, name: str, bodies: list[dict]) -> str:
        path = self.workdir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(body) + "\n" for body in bodies))
        return str(path)


def capture_body(order: dict, items=None) -> dict:
    return {
        "order": order["number"],
        "order_items": [{"pk": i["pk"]} for i in items or order["items"]],
    }


# Load


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
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            LUA,
            url,
            "--",
            bodies,
            str(threads),
            token,
            key,
            method,
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(raw["errors"].values())
    seconds_run = raw["duration_us"] / 1e6
    return {
        # A thread out of seeded bodies sends GET /healthz instead: not a capture.
        "requests": max(0, raw["requests"] - raw["exhausted"]),
        "rps": round(max(0, raw["requests"] - raw["exhausted"]) / seconds_run, 1),
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p95_ms": raw["latency_us"]["p95"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "errors": errors,
        "error_detail": {**raw["errors"], "bodies_exhausted": raw["exhausted"]},
    }


def run_scenario(
    name,
    url,
    *,
    concurrency,
    warmup,
    seconds,
    token,
    method="POST",
    warm_bodies="-",
    bodies="-",
    key="-",
) -> dict:
    log(f"{name} at concurrency {concurrency}: {warmup}s warm-up, {seconds}s measured")
    wrk(
        url,
        connections=concurrency,
        seconds=warmup,
        token=token,
        bodies=warm_bodies,
        method=method,
        key=key,
    )
    result = wrk(
        url,
        connections=concurrency,
        seconds=seconds,
        token=token,
        bodies=bodies,
        method=method,
        key=key,
    )
    return {"scenario": name, "concurrency": concurrency, **result}


# Server-side query counts: pg_stat_statements


def count_statements(database_url: str, action) -> int:
    conn = psycopg2.connect(database_url)
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
                "AND query NOT LIKE '%%FOR KEY SHARE OF x'"
            )
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


def items_scaling(base, token, seeds: Seeds, database_url: str, repeats: int) -> list[dict]:
    """Per size: one capture to warm up, `repeats` timed captures (the median is
    reported), and one more whose statements pg_stat_statements counts."""
    rows = []
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"

    def capture(order) -> float:
        started = time.perf_counter()
        response = session.post(f"{base}/api/v1/capture-order/", json=capture_body(order))
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"items-scaling capture failed: {response.text[:300]}")
        return elapsed

    for size in SCALING_SIZES:
        warm, *timed, counted = seeds.orders(f"SCALE{size}", repeats + 2, size)
        capture(warm)
        latencies = [capture(order) for order in timed]
        queries = count_statements(database_url, lambda order=counted: capture(order))
        rows.append(
            {
                "items": size,
                "latency_ms": round(statistics.median(latencies), 2),
                "queries": queries,
            }
        )
        log(f"items-scaling {size}: {rows[-1]}")
    return rows


def contended_check(database_url: str, prefix: str) -> dict:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
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


# Profile


def profile(env: dict, bodies: str, token: str) -> str:
    result = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "profile.py"), bodies, token],
        cwd=ROOT,
        env={**env, "DJANGO_ALLOWED_HOSTS": "testserver"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"profile failed:\n{result.stderr}")
    return result.stdout


# Report


def ratio(a, b):
    return round(a / b, 3) if b else None


def summarize(results: list[dict], scaling: list[dict], contended: dict, rounds: list) -> dict:
    by = {(r["scenario"], r["concurrency"]): r for r in results}
    lat = {row["items"]: row for row in scaling}
    return {
        "capture_1_over_baseline_c16": statistics.median(r["ratio"] for r in rounds)
        if rounds
        else ratio(by[("capture-1", 16)]["rps"], by[("baseline", 16)]["rps"]),
        "capture_1_over_baseline_c16_rounds": [r["ratio"] for r in rounds],
        "capture_1_over_baseline_c16_table": ratio(
            by[("capture-1", 16)]["rps"], by[("baseline", 16)]["rps"]
        ),
        "capture_1_over_baseline_c1": ratio(
            by[("capture-1", 1)]["rps"], by[("baseline", 1)]["rps"]
        ),
        "replay_over_baseline_c16": ratio(by[("replay", 16)]["rps"], by[("baseline", 16)]["rps"]),
        "latency_1000_over_1": ratio(lat[1000]["latency_ms"], lat[1]["latency_ms"]),
        "queries_identical": len({row["queries"] for row in scaling}) == 1,
        "errors": sum(r["errors"] for r in results) + sum(r["errors"] for r in rounds),
        "contended_exactly_once": contended["c16"]["audit_rows"]
        == contended["c16"]["distinct_items"]
        == contended["c16"]["captured_items"]
        and contended["c1"]["audit_rows"]
        == contended["c1"]["distinct_items"]
        == contended["c1"]["captured_items"],
        "contended_matches_successes": all(
            c["successes"] <= c["captured_items"] <= c["successes"] + c["concurrency"]
            for c in contended.values()
        ),
    }


def targets(summary: dict) -> list[tuple[str, bool, str]]:
    return [
        (
            "capture-1 throughput at concurrency 16 >= 0.5 x baseline",
            (summary["capture_1_over_baseline_c16"] or 0) >= 0.5,
            str(summary["capture_1_over_baseline_c16"]),
        ),
        (
            "latency(1,000 items) / latency(1 item) <= 10",
            (summary["latency_1000_over_1"] or 99) <= 10,
            str(summary["latency_1000_over_1"]),
        ),
        ("SQL query count identical at 1, 10, 100, 1,000 items", summary["queries_identical"], ""),
        ("zero errors in every scenario", summary["errors"] == 0, str(summary["errors"])),
        (
            "contended: every item captured exactly once",
            summary["contended_exactly_once"] and summary["contended_matches_successes"],
            "",
        ),
    ]


def markdown(report: dict) -> str:
    lines = [
        f"# Benchmark {report['started']}",
        "",
        f"`{report['command']}` on {report['machine']['cpus']} CPUs, "
        f"{report['machine']['platform']}; gunicorn {report['machine']['workers']} sync workers, "
        f"production settings; wrk {report['settings']['seconds']} s per scenario after a "
        f"{report['settings']['warmup']} s warm-up; {report['duration_s']} s in all.",
        "",
        "| scenario | concurrency | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["scenarios"]:
        lines.append(
            f"| {r['scenario']} | {r['concurrency']} | {r['rps']} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
        )
    lines += [
        "",
        "| items-scaling: items | latency ms (median) | SQL statements |",
        "|---:|---:|---:|",
    ]
    for row in report["items_scaling"]:
        lines.append(f"| {row['items']} | {row['latency_ms']} | {row['queries']} |")
    s = report["summary"]
    lines += [
        "",
        "- capture-1 / baseline throughput at concurrency 16: "
        f"**{s['capture_1_over_baseline_c16']}** (median of the alternating rounds "
        f"{', '.join(str(r) for r in s['capture_1_over_baseline_c16_rounds'])}; "
        f"the table's runs: {s['capture_1_over_baseline_c16_table']}); "
        f"at concurrency 1: {s['capture_1_over_baseline_c1']}",
        f"- replay / baseline throughput at concurrency 16: {s['replay_over_baseline_c16']}",
        f"- latency(1,000 items) / latency(1 item): **{s['latency_1000_over_1']}**",
        f"- contended: {json.dumps(report['contended'])}",
        "",
        "| target | met | value |",
        "|---|---|---|",
    ]
    for name, met, value in report["targets"]:
        lines.append(f"| {name} | {'yes' if met else '**no**'} | {value} |")
    short = [f"{r['scenario']} at {r['concurrency']}" for r in report["scenarios"]
             if r["error_detail"]["bodies_exhausted"]]  # fmt: skip
    if short:
        lines += ["", f"Ran out of seeded orders (requests/s understated): {', '.join(short)}."]
    if report.get("profile"):
        lines += [
            "",
            "## Profile (pyinstrument, in-process captures)",
            "",
            "```",
            report["profile"].rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["scenario"] for r in report["scenarios"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.38
    for offset, concurrency in zip((-width / 2, width / 2), CONCURRENCY, strict=True):
        rows = {r["scenario"]: r for r in report["scenarios"] if r["concurrency"] == concurrency}
        left.bar(
            [i + offset for i in range(len(names))],
            [rows[n]["rps"] for n in names],
            width,
            label=f"concurrency {concurrency}",
        )
    left.set_xticks(range(len(names)), names, rotation=20)
    left.set_ylabel("requests/s")
    left.set_title("Throughput")
    left.legend()
    sizes = [row["items"] for row in report["items_scaling"]]
    right.plot(sizes, [row["latency_ms"] for row in report["items_scaling"]], marker="o")
    right.set_xscale("log")
    right.set_xlabel("items in one capture")
    right.set_ylabel("latency ms (median)")
    right.set_title("One capture, by item count")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# Main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--seconds", type=int, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per scenario")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    smoke = args.smoke
    seconds = args.seconds or (1 if smoke else 8)
    warmup = args.warmup or (1 if smoke else 2)
    rounds_wanted = 0 if smoke else RATIO_ROUNDS
    repeats = 1 if smoke else 9
    if shutil.which("wrk") is None:
        log("wrk is not installed: `make bench` installs it (Debian: apt-get install wrk)")
        return 2

    started = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="omnitron-bench-")))
        database_url = stack.enter_context(database())
        env = app_env(database_url)
        log("migrating and seeding")
        manage(env, "migrate", "--noinput", "-v", "0")
        with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.close()
        seeds = Seeds(env, workdir)
        run_id = secrets.token_hex(3).upper()

        def capture_bodies(name, concurrency, items, secs, tag=""):
            count = SEED_RATE[name][concurrency] * secs
            orders = seeds.orders(f"{name}{tag}{concurrency}{run_id}", count, items)
            return seeds.bodies_file(
                f"{name}{tag}-{concurrency}", [capture_body(o) for o in orders]
            )

        plan = {}
        for concurrency in CONCURRENCY:
            for phase, secs in (("warm", warmup), ("run", seconds)):
                for name, items in (("C1", 1), ("C10", 10)):
                    plan[(name, concurrency, phase)] = capture_bodies(
                        f"{name}{phase}", concurrency, items, secs
                    )
                # contended: 16 orders; each request one item of one of them, never twice.
                per_order = max(1, SEED_RATE["CT"][concurrency] * secs // 16)
                prefix = f"CT{phase}{concurrency}{run_id}"
                orders = seeds.orders(prefix, 16, per_order)
                bodies = [
                    capture_body(orders[k % 16], [orders[k % 16]["items"][k // 16]])
                    for k in range(16 * per_order)
                ]
                plan[("CT", concurrency, phase)] = seeds.bodies_file(
                    f"ct-{phase}-{concurrency}", bodies
                )
                plan[("CT", concurrency, f"{phase}-prefix")] = prefix
        ratio_bodies = [
            capture_bodies("RATIO", 16, 1, seconds // 2, tag=str(n)) for n in range(rounds_wanted)
        ]
        replay_order = seeds.orders(f"REPLAY{run_id}", 1, 1)[0]
        replay_body = seeds.bodies_file("replay", [capture_body(replay_order)])
        profile_orders = seeds.orders(f"PROF{run_id}", 40 if smoke else 300, 1)
        profile_bodies = seeds.bodies_file("profile", [capture_body(o) for o in profile_orders])

        # After the seeds: --all-channels grants the channels that exist now.
        token = manage(env, "create_api_user", "bench", "--all-channels").strip()
        base = stack.enter_context(app_server(env))
        workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() * 2 + 1))
        capture_url = f"{base}/api/v1/capture-order/"
        replay_key = f"bench-replay-{run_id}"
        first = requests.post(
            capture_url,
            json=capture_body(replay_order),
            timeout=10,
            headers={"Authorization": f"Token {token}", "Idempotency-Key": replay_key},
        )
        if first.status_code != 200:
            raise RuntimeError(f"replay setup failed: {first.text[:300]}")

        results, contended = [], {}
        common = {"warmup": warmup, "seconds": seconds, "token": token}
        for concurrency in CONCURRENCY:
            results.append(
                run_scenario(
                    "baseline",
                    f"{base}/api/v1/active_user/",
                    concurrency=concurrency,
                    method="GET",
                    **common,
                )
            )
            for name, label in (("C1", "capture-1"), ("C10", "capture-10")):
                results.append(
                    run_scenario(
                        label,
                        capture_url,
                        concurrency=concurrency,
                        warm_bodies=plan[(name, concurrency, "warm")],
                        bodies=plan[(name, concurrency, "run")],
                        **common,
                    )
                )
            results.append(
                run_scenario(
                    "replay",
                    capture_url,
                    concurrency=concurrency,
                    warm_bodies=replay_body,
                    bodies=replay_body,
                    key=replay_key,
                    **common,
                )
            )
            contended_run = run_scenario(
                "contended",
                capture_url,
                concurrency=concurrency,
                warm_bodies=plan[("CT", concurrency, "warm")],
                bodies=plan[("CT", concurrency, "run")],
                **common,
            )
            results.append(contended_run)
            check = contended_check(database_url, plan[("CT", concurrency, "run-prefix")])
            contended[f"c{concurrency}"] = {
                **check,
                "concurrency": concurrency,
                "successes": contended_run["requests"] - contended_run["errors"],
            }

        rounds = []
        for round_, bodies in enumerate(ratio_bodies, start=1):
            log(f"ratio round {round_}: baseline then capture-1, concurrency 16")
            base_run = wrk(f"{base}/api/v1/active_user/", connections=16,
                           seconds=seconds // 2, token=token, method="GET")  # fmt: skip
            capture_run = wrk(capture_url, connections=16, seconds=seconds // 2, token=token,
                              bodies=bodies)  # fmt: skip
            rounds.append({"baseline_rps": base_run["rps"], "capture_1_rps": capture_run["rps"],
                           "errors": base_run["errors"] + capture_run["errors"],
                           "ratio": ratio(capture_run["rps"], base_run["rps"])})  # fmt: skip

        scaling = items_scaling(base, token, seeds, database_url, repeats)
        profile_text = "" if smoke else profile(env, profile_bodies, token)

    summary = summarize(results, scaling, contended, rounds)
    report = {
        "started": started,
        "command": "make bench-smoke" if smoke else "make bench",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "workers": workers},
        "settings": {"seconds": seconds, "warmup": warmup},
        "scenarios": results,
        "items_scaling": scaling,
        "contended": contended,
        "summary": summary,
        "targets": targets(summary),
        "profile": profile_text,
        "ratio_rounds": rounds,
        "duration_s": round(time.monotonic() - _t0),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if smoke else "latest"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    if not smoke:
        chart(report, args.out / f"{stem}.png")
        shutil.copy(args.out / f"{stem}.md", args.out / f"{started}.md")
    print(markdown(report))
    hard_failures = (
        summary["errors"] != 0
        or not summary["queries_identical"]
        or not summary["contended_exactly_once"]
    )
    return 1 if hard_failures else 0


if __name__ == "__main__":
    sys.exit(main())
