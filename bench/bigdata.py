"""Cost as data grows: the same scenarios against a small database and against one
holding a year of a busy shop, in rounds that alternate which goes first.

The big database is a second database on the same PostgreSQL, migrated like the
first, then filled in SQL with generate_series (not through the API: minutes, not
hours): 2 million orders of 3 items each, 1 million past captures of one item with
their audit rows, 1 million stored Idempotency-Keys of the benchmark's own API user
(the replay lookup searches among them) and 1 million events. Rows are copies of an
order imported through `manage.py import_orders`, so every column holds what the
app writes; `manage.py check_captures` passes on the result.

Each database has its own app server; every scenario runs at concurrency 16 on
both, and the report gives, per scenario, small / big throughput (how much more a
request costs on the big database: the target is <= 1.2) and the EXPLAIN of every
statement the app sends for these requests on the big one (bench/explain.py). The
operators' admin lists are timed on both too (bench/admin_lists.py)."""

import json
import statistics
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests

from bench.infra import PYTHON, ROOT, api_token, app_server, log, migrate
from bench.load import RATIO_CONCURRENCY, Server, ratio, wrk
from bench.seeding import Seeds, capture_body

# A year of a busy shop.
FULL = {"orders": 2_000_000, "captures": 1_000_000, "keys": 1_000_000, "events": 1_000_000}
ITEMS_PER_ORDER = 3
# Of the past orders, this share is not yet sent to the ERP (the filtered list).
UNSENT = 0.001
READS = ("orders/", "order_items/", "captures/", "events/", "orders/?is_send=false")
SCENARIOS = ("capture-1", "replay", *READS)
REPLAY_KEY = "bigdata-replay"


@contextmanager
def second_database(database_url: str, suffix: str = "_big"):
    """A new database next to `database_url`'s, dropped afterwards: yields its URL."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") + suffix
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Filling


def _columns(cursor, table: str, *, leave_out: set[str]) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall() if row[0] not in leave_out]


def _max_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
    return cursor.fetchone()[0]


def _rows(cursor, sql: str, params: dict) -> int:
    cursor.execute(sql, params)
    return cursor.rowcount


def _copies(cursor, table: str, template_where: str, overrides: dict[str, str],
            source: str, params: dict) -> int:  # fmt: skip
    """INSERT INTO table a row per row of `source`, each a copy of the template row
    with the `overrides` (column: SQL expression)."""
    kept = _columns(cursor, table, leave_out=set(overrides))
    columns = ", ".join([*overrides, *kept])
    values = ", ".join([*overrides.values(), *(f"t.{c}" for c in kept)])
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {values} FROM {source}, "
        f"(SELECT * FROM {table} WHERE {template_where}) t",
        params,
    )
    return cursor.rowcount


def fill(database_url: str, *, template: dict, user_id: int, scale: float = 1.0) -> dict:
    """Past orders, items, captures, Idempotency-Keys and events, copied from the
    `template` order (imported, with ITEMS_PER_ORDER items). Returns the row counts
    and how long each table took."""
    n = {name: max(1, int(count * scale)) for name, count in FULL.items()}
    timings = {}
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        # Generated rows reference each other by construction: skip the per-row
        # foreign key triggers, and flush WAL lazily (this is a fixture, not a capture).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        base = {t: _max_id(cursor, t) for t in ("orders_order", "orders_orderitem",
                "capture_capture", "capture_captureitem")}  # fmt: skip
        cursor.execute("SELECT coalesce(max(seq), 0) FROM events_event")
        seq0 = cursor.fetchone()[0]
        params = {
            "orders": n["orders"], "captures": n["captures"], "keys": n["keys"],
            "events": n["events"], "per": ITEMS_PER_ORDER, "user": user_id,
            "o0": base["orders_order"], "i0": base["orders_orderitem"],
            "c0": base["capture_capture"], "ci0": base["capture_captureitem"], "s0": seq0,
            "sent": n["orders"] - int(n["orders"] * UNSENT), "tpl": template["pk"],
            "first_item": template["items"][0]["pk"],
            # a year of orders, the newest placed a month ago; captured a day later
            "start": "2025-10-01T00:00:00Z", "step": f"{365 * 86400 / n['orders']} seconds",
        }  # fmt: skip
        placed = "(%(start)s::timestamptz + g * %(step)s::interval)"

        def timed(name, run):
            t0 = time.monotonic()
            rows = run()
            conn.commit()
            timings[name] = {"rows": rows, "seconds": round(time.monotonic() - t0, 1)}
            log(f"bigdata fill: {rows} {name} in {timings[name]['seconds']}s")

        timed("orders", lambda: _copies(cursor, "orders_order", "id = %(tpl)s", {
            "id": "%(o0)s + g", "number": "'PAST-' || lpad(g::text, 8, '0')",
            "date_placed": placed, "created_date": placed, "modified_date": placed,
            "is_send": "g <= %(sent)s",
        }, "generate_series(1, %(orders)s) g", params))  # fmt: skip
        timed("order items", lambda: _copies(cursor, "orders_orderitem", "id = %(first_item)s", {
            "id": "%(i0)s + (g - 1) * %(per)s + j", "order_id": "%(o0)s + g",
            "product_sku": "'SKU-' || (g %% 5000)",
            "created_date": placed, "modified_date": placed,
            "captured_at": f"CASE WHEN j = 1 AND g <= %(captures)s "
                           f"THEN {placed} + interval '1 day' END",
        }, "generate_series(1, %(orders)s) g, generate_series(1, %(per)s) j", params))  # fmt: skip
        timed("captures", lambda: _rows(cursor, f"""
            INSERT INTO capture_capture (id, order_id, user_id, created_at, amount, currency,
                                         idempotency_key, request_id)
            SELECT %(c0)s + g, %(o0)s + g, %(user)s, {placed} + interval '1 day', i.price,
                   i.price_currency, 'past-' || g, md5(g::text)
              FROM generate_series(1, %(captures)s) g,
                   (SELECT price, price_currency FROM orders_orderitem WHERE id = %(first_item)s) i
            """, params))  # fmt: skip
        timed("capture items", lambda: _rows(cursor, """
            INSERT INTO capture_captureitem (id, capture_id, order_item_id, price,
                                             attributes_before, attributes_after)
            SELECT %(ci0)s + g, %(c0)s + g, %(i0)s + (g - 1) * %(per)s + 1, i.price,
                   i.attributes, i.attributes
              FROM generate_series(1, %(captures)s) g,
                   (SELECT price, attributes FROM orders_orderitem WHERE id = %(first_item)s) i
            """, params))  # fmt: skip
        # Keys of the last day (they are replayable for 24 hours), one per capture.
        timed("idempotency keys", lambda: _rows(cursor, """
            INSERT INTO capture_idempotencyrecord (key, request_fingerprint, status_code,
                                                   response_body, created_at, user_id, order_id)
            SELECT 'past-' || g, encode(sha256(g::text::bytea), 'hex'), 200,
                   '{"number":"PAST-' || lpad(g::text, 8, '0') || '","padding":"'
                       || repeat(md5(g::text), 24) || '"}',
                   now() - (%(keys)s - g) * interval '60 ms', %(user)s, %(o0)s + g
              FROM generate_series(1, %(keys)s) g
            """, params))  # fmt: skip
        # Events of long-finished transactions (txid 3 is the first normal one).
        timed("events", lambda: _rows(cursor, f"""
            INSERT INTO events_event (id, seq, txid, type, created_at, channel_id, object_id,
                                      snapshot)
            SELECT 'evt_' || lpad(to_hex(3), 16, '0') || lpad(to_hex(%(s0)s + g), 16, '0'),
                   %(s0)s + g, 3, 'order.captured', {placed} + interval '1 day', t.channel_id,
                   %(o0)s + ((g - 1) %% %(captures)s) + 1,
                   jsonb_set(t.snapshot, '{{number}}', to_jsonb('PAST-' || lpad(g::text, 8, '0')))
              FROM generate_series(1, %(events)s) g,
                   (SELECT channel_id, to_jsonb(o) AS snapshot FROM orders_order o
                     WHERE id = %(tpl)s) t
            """, params))  # fmt: skip
        for table in ("orders_order", "orders_orderitem", "capture_capture",
                      "capture_captureitem", "capture_idempotencyrecord"):  # fmt: skip
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("SELECT setval('events_event_seq', (SELECT max(seq) FROM events_event))")
        conn.commit()
    t0 = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")  # visibility map and statistics, as autovacuum would
    timings["vacuum analyze"] = {"rows": None, "seconds": round(time.monotonic() - t0, 1)}
    log(f"bigdata fill: VACUUM (ANALYZE) in {timings['vacuum analyze']['seconds']}s")
    return timings


def table_sizes(database_url: str) -> dict:
    """Rows (as the statistics estimate them) and total size of the tables of more
    than 10,000 rows."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("""
            SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples > 10000
             ORDER BY c.relname""").fetchall()  # fmt: skip
    return {name: {"rows": count, "mb": round(size / 2**20)} for name, count, size in rows}


# Measuring


@dataclass(frozen=True)
class Side:
    """One database's app server, its token, and its bodies files."""

    name: str
    server: Server
    capture_bodies: list[str]  # one file per round
    replay_body: str


def scenario_request(side: Side, scenario: str, number: int) -> dict:
    """wrk's arguments for a scenario on a side."""
    server = side.server
    if scenario == "capture-1":
        return {"url": server.capture_url, "bodies": side.capture_bodies[number]}
    if scenario == "replay":
        return {"url": server.capture_url, "bodies": side.replay_body, "key": REPLAY_KEY}
    return {"url": f"{server.base}/api/v1/{scenario}", "method": "GET"}


def prepare_side(name: str, env: dict, seeds: Seeds, rounds: int, seconds: int,
                 base: str, token: str) -> Side:  # fmt: skip
    """Fresh orders for capture-1 and the capture the replay scenario replays."""
    files = [seeds.capture_bodies("RATIO", 16, 1, seconds, tag=f"big{name}{n}")
             for n in range(rounds)]  # fmt: skip
    order = seeds.orders(f"BIGREPLAY{name}{seeds.run_id}", 1, 1)[0]
    body = capture_body(order)
    first = requests.post(f"{base}/api/v1/capture-order/", json=body, timeout=10,
                          headers={"Authorization": f"Token {token}",
                                   "Idempotency-Key": REPLAY_KEY})  # fmt: skip
    if first.status_code != 200:
        raise RuntimeError(f"bigdata replay setup failed: {first.text[:300]}")
    replay = seeds.bodies_file(f"bigreplay-{name}", [body])
    return Side(name, Server(base, token), files, replay)


def alternate(sides: dict[str, Side], rounds: int, seconds: int) -> dict:
    """Every scenario on both sides, `rounds` times, which side goes first alternating.
    Per scenario: each round's figures and the median small / big throughput."""
    results = {}
    for scenario in SCENARIOS:
        runs = []
        for number in range(rounds):
            order = ("small", "big") if number % 2 == 0 else ("big", "small")
            figures = {}
            for name in order:
                side = sides[name]
                wrk_args = scenario_request(side, scenario, number)
                url = wrk_args.pop("url")
                figures[name] = wrk(url, connections=RATIO_CONCURRENCY, seconds=seconds,
                                    token=side.server.token, **wrk_args)  # fmt: skip
            runs.append({
                "small_rps": figures["small"]["rps"], "big_rps": figures["big"]["rps"],
                "small_p50_ms": figures["small"]["p50_ms"], "big_p50_ms": figures["big"]["p50_ms"],
                "errors": figures["small"]["errors"] + figures["big"]["errors"],
                "cost_ratio": ratio(figures["small"]["rps"], figures["big"]["rps"]),
            })  # fmt: skip
            log(f"bigdata {scenario} round {number + 1}: small {figures['small']['rps']} rps, "
                f"big {figures['big']['rps']} rps")  # fmt: skip
        results[scenario] = {
            "rounds": runs,
            "cost_ratio": statistics.median(r["cost_ratio"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
        }
    return results


def explain(env: dict, token: str, body: dict) -> list[dict]:
    """bench/explain.py against a database: the plans of the statements it records."""
    result = subprocess.run(
        [PYTHON, "-m", "bench.explain", token, json.dumps(body)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"bench/explain.py failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def admin_lists(env: dict) -> list[dict]:
    """bench/admin_lists.py against a database: what each admin list costs."""
    result = subprocess.run(
        [PYTHON, "-m", "bench.admin_lists"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"bench/admin_lists.py failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def admin_comparison(small: list[dict], big: list[dict]) -> list[dict]:
    """Per admin page and user: the small and big database's figures side by side."""
    on_small = {(row["user"], row["page"]): row for row in small}
    return [
        {**row, "small_ms": on_small[(row["user"], row["page"])]["ms"], "big_ms": row["ms"],
         "cost_ratio": ratio(row["ms"], on_small[(row["user"], row["page"])]["ms"])}
        for row in big
    ]  # fmt: skip


def measure_bigdata(env: dict, small_seeds: Seeds, small: Server, *, rounds: int,
                    seconds: int, scale: float = 1.0) -> dict:  # fmt: skip
    """Fill a second database, serve it, and run SCENARIOS on both alternately."""
    with second_database(env["DATABASE_URL"]) as big_url:
        big_env = {**env, "DATABASE_URL": big_url}
        migrate(big_env)
        big_seeds = Seeds(big_env, small_seeds.workdir)
        template = big_seeds.orders(f"TEMPLATE{big_seeds.run_id}", 1, ITEMS_PER_ORDER)[0]
        token = api_token(big_env)
        with psycopg.connect(big_url) as conn:
            user_id = conn.execute(
                "SELECT user_id FROM authtoken_token WHERE key = %s", [token]
            ).fetchone()[0]
        log(f"bigdata: filling a second database (scale {scale})")
        timings = fill(big_url, template=template, user_id=user_id, scale=scale)
        with app_server(big_env) as big_base:
            sides = {
                "small": prepare_side("small", env, small_seeds, rounds, seconds,
                                      small.base, small.token),
                "big": prepare_side("big", big_env, big_seeds, rounds, seconds, big_base, token),
            }  # fmt: skip
            # A fresh server's first requests are slow: warm both on every scenario.
            for side in sides.values():
                for scenario in READS:
                    wrk(f"{side.server.base}/api/v1/{scenario}", connections=RATIO_CONCURRENCY,
                        seconds=1, token=side.server.token, method="GET")  # fmt: skip
            results = alternate(sides, rounds, seconds)
        explained = big_seeds.orders(f"EXPLAIN{big_seeds.run_id}", 1, 1)[0]
        plans = explain(big_env, token, capture_body(explained))
        log("bigdata: the admin lists on both databases")
        admin = admin_comparison(admin_lists(env), admin_lists(big_env))
        sizes = table_sizes(big_url)
    scanned = {table for plan in plans for table in plan["seq_scan_tables"]}
    return {
        "scale": scale,
        "fill": timings,
        "tables": sizes,
        "concurrency": RATIO_CONCURRENCY,
        "seconds_per_side": seconds,
        "scenarios": results,
        "plans": plans,
        "admin": admin,
        # A sequential scan of a table that grows is what must not happen; configuration
        # tables (users, tokens, permissions, memberships, subscriptions) hold a few
        # rows, and reading those whole is the right plan.
        "seq_scans": sorted(scanned & set(sizes)),
        "small_table_seq_scans": sorted(scanned - set(sizes)),
        "worst_cost_ratio": max(r["cost_ratio"] for r in results.values()),
    }
