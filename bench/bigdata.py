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

from bench.infra import PYTHON, ROOT, api_token, app_server, log, manage, migrate
from bench.load import RATIO_CONCURRENCY, Server, ratio, wrk
from bench.seeding import Seeds, capture_body, table_columns

# A year of a busy shop.
FULL = {"orders": 2_000_000, "captures": 1_000_000, "keys": 1_000_000, "events": 1_000_000}
ITEMS_PER_ORDER = 3
# Of the past orders, this share is not yet sent to the ERP (the filtered list).
UNSENT = 0.001
READS = ("orders/", "order_items/", "captures/", "events/", "orders/?is_send=false")
# A user of a small channel among the large one: its 20 orders were placed and
# captured before every other, and its items written after, so each list's order
# index reaches them last (docs/performance.md, "A small channel among large ones").
SMALL_CHANNEL = 900_000
SMALL_CHANNEL_ORDERS = 20
SMALL_CHANNEL_READS = ("orders/", "order_items/", "captures/", "events/")
SMALL_CHANNEL_PREFIX = "small channel: "
READ_SCENARIOS = (*READS, *(SMALL_CHANNEL_PREFIX + path for path in SMALL_CHANNEL_READS))
SCENARIOS = ("capture-1", "replay", *READ_SCENARIOS)
REPLAY_KEY = "bigdata-replay"
# make bench's rounds per scenario. A single round's cost ratio has ranged from 0.85
# to 1.27 for the same code on this shared machine; with three rounds, two runs in a
# row gave the orders list a median of 1.198 and 1.213 that five rounds put at 0.919.
ROUNDS = 5


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
    kept = table_columns(cursor, table, leave_out=set(overrides))
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
            INSERT INTO capture_capture (id, order_id, channel_id, user_id, created_at, amount,
                                         currency, idempotency_key, request_id)
            SELECT %(c0)s + g, %(o0)s + g, i.channel_id, %(user)s, {placed} + interval '1 day',
                   i.price, i.price_currency, 'past-' || g, md5(g::text)
              FROM generate_series(1, %(captures)s) g,
                   (SELECT channel_id, price, price_currency FROM orders_orderitem
                     WHERE id = %(first_item)s) i
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
                   %(c0)s + ((g - 1) %% %(captures)s) + 1,
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


def small_channel(env: dict, template: dict) -> str:
    """SMALL_CHANNEL_ORDERS copies of `template`'s order and first item in
    SMALL_CHANNEL, placed before the fill's first order, each captured a day later by
    the channel's own API user, with its order.captured event. Returns that user's
    token."""
    with psycopg.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO orders_channel (id, name) VALUES (%s, 'Small channel') "
                       "ON CONFLICT DO NOTHING", [SMALL_CHANNEL])  # fmt: skip
    token = manage(env, "create_api_user", "small-channel", "--channel", str(SMALL_CHANNEL)).strip()
    params = {"channel": SMALL_CHANNEL, "tpl": template["pk"], "token": token,
              "first_item": template["items"][0]["pk"], "orders": SMALL_CHANNEL_ORDERS}  # fmt: skip
    # (Each step takes the rows the step before wrote: a database can be used twice.)
    mine = ("(SELECT id, date_placed FROM orders_order o WHERE channel_id = %(channel)s "
            "AND NOT EXISTS (SELECT FROM orders_orderitem WHERE order_id = o.id)) o")  # fmt: skip
    with psycopg.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
        _copies(cursor, "orders_order", "id = %(tpl)s", {
            "id": "nextval(pg_get_serial_sequence('orders_order', 'id'))",
            "number": "t.number || '-S' || g", "channel_id": "%(channel)s",
            "date_placed": "'2025-09-01'::timestamptz + g * interval '1 hour'",
        }, "generate_series(1, %(orders)s) g", params)  # fmt: skip
        _copies(cursor, "orders_orderitem", "id = %(first_item)s", {
            "id": "nextval(pg_get_serial_sequence('orders_orderitem', 'id'))",
            "order_id": "o.id", "captured_at": "o.date_placed + interval '1 day'",
        }, mine, params)  # fmt: skip
        cursor.execute("""
            INSERT INTO capture_capture (order_id, user_id, created_at, amount, currency,
                                         request_id)
            SELECT i.order_id, t.user_id, i.captured_at, i.price, i.price_currency, ''
              FROM orders_orderitem i, authtoken_token t
             WHERE i.channel_id = %(channel)s AND t.key = %(token)s AND NOT EXISTS (
                   SELECT FROM capture_capture WHERE order_id = i.order_id)""", params)  # fmt: skip
        cursor.execute("""
            INSERT INTO capture_captureitem (capture_id, order_item_id, price,
                                             attributes_before, attributes_after)
            SELECT c.id, i.id, i.price, i.attributes, i.attributes
              FROM capture_capture c JOIN orders_orderitem i ON i.order_id = c.order_id
             WHERE c.channel_id = %(channel)s AND NOT EXISTS (
                   SELECT FROM capture_captureitem WHERE capture_id = c.id)""", params)  # fmt: skip
        # Their order.captured events, after every event of the fill in the feed's order.
        cursor.execute("""
            INSERT INTO events_event (id, seq, txid, type, created_at, channel_id, object_id,
                                      snapshot)
            SELECT 'evt_' || lpad(to_hex(3), 16, '0') || lpad(to_hex(e.seq), 16, '0'), e.seq,
                   3, 'order.captured', c.created_at, c.channel_id, c.id, to_jsonb(o)
              FROM capture_capture c JOIN orders_order o ON o.id = c.order_id,
                   LATERAL (SELECT nextval('events_event_seq') AS seq) e
             WHERE c.channel_id = %(channel)s AND NOT EXISTS (
                   SELECT FROM events_event WHERE channel_id = c.channel_id
                      AND object_id = c.id)""", params)  # fmt: skip
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ANALYZE orders_order, orders_orderitem, capture_capture, events_event")
    return token


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
    small_channel_token: str


def scenario_request(side: Side, scenario: str, number: int) -> dict:
    """wrk's arguments for a scenario on a side."""
    server = side.server
    if scenario == "capture-1":
        return {"url": server.capture_url, "bodies": side.capture_bodies[number],
                "token": server.token}  # fmt: skip
    if scenario == "replay":
        return {"url": server.capture_url, "bodies": side.replay_body, "key": REPLAY_KEY,
                "token": server.token}  # fmt: skip
    if scenario.startswith(SMALL_CHANNEL_PREFIX):
        path = scenario.removeprefix(SMALL_CHANNEL_PREFIX)
        return {"url": f"{server.base}/api/v1/{path}", "method": "GET",
                "token": side.small_channel_token}  # fmt: skip
    return {"url": f"{server.base}/api/v1/{scenario}", "method": "GET", "token": server.token}


def prepare_side(name: str, env: dict, seeds: Seeds, rounds: int, seconds: int,
                 base: str, token: str) -> Side:  # fmt: skip
    """Fresh orders for capture-1, the capture the replay scenario replays, and the
    small channel."""
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
    return Side(name, Server(base, token), files, replay, small_channel(env, order))


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
                                    **wrk_args)  # fmt: skip
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


def explain(env: dict, token: str, body: dict, small_channel_token: str) -> list[dict]:
    """bench/explain.py against a database: the plans of the statements it records."""
    result = subprocess.run(
        [PYTHON, "-m", "bench.explain", token, json.dumps(body), small_channel_token],
        cwd=ROOT, env=env,
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
        with Seeds(big_env, small_seeds.workdir) as big_seeds:
            return _measure_bigdata(env, big_env, small_seeds, big_seeds, small,
                                    rounds=rounds, seconds=seconds, scale=scale)  # fmt: skip


def _measure_bigdata(
    env: dict, big_env: dict, small_seeds: Seeds, big_seeds: Seeds, small: Server,
    *, rounds: int, seconds: int, scale: float,
) -> dict:  # fmt: skip
    big_url = big_env["DATABASE_URL"]
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
            for scenario in READ_SCENARIOS:
                wrk_args = scenario_request(side, scenario, 0)
                wrk(wrk_args.pop("url"), connections=RATIO_CONCURRENCY, seconds=1,
                    **wrk_args)  # fmt: skip
        results = alternate(sides, rounds, seconds)
    explained = big_seeds.orders(f"EXPLAIN{big_seeds.run_id}", 1, 1)[0]
    plans = explain(big_env, token, capture_body(explained),
                    sides["big"].small_channel_token)  # fmt: skip
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
