"""The orders every scenario captures, seeded before the server starts.

The first order of each batch goes in through the project's own import service
(`manage.py import_orders`'s), run by bench/importer.py, one process for all of a
run's batches; the rest of the batch are copies of it made in SQL, so every column
holds what the import writes (importing every order, `make bench-smoke` spent 25 s
migrating and seeding, 12 s now). A scenario reads its capture requests from a bodies
file: one JSON request body per line, each used once (bench/requests.lua)."""

import json
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.infra import PYTHON, ROOT
from scripts.gen_orders import document

CONCURRENCY = (1, 16)
# Orders seeded per second of load, per scenario and concurrency: well above what a
# 2-core machine serves, so no request runs out of fresh items. A third of these
# capped captures at 200 and 450 a second on a machine that served more (2026-11-29):
# running out is now an error of the run (bench/load.py).
SEED_RATE = {
    "C1warm": {1: 600, 16: 1500},
    "C1run": {1: 600, 16: 1500},
    "C10warm": {1: 500, 16: 1200},
    "C10run": {1: 500, 16: 1200},
    "CT": {1: 600, 16: 1500},
    "RATIO": {16: 1500},
}
# The wrk scenarios that capture fresh orders: label, SEED_RATE prefix, items per order.
FRESH_CAPTURES = (("capture-1", "C1", 1), ("capture-10", "C10", 10))
CONTENDED_ORDERS = 16


def capture_body(order: dict, items=None) -> dict:
    return {
        "order": order["number"],
        "order_items": [{"pk": i["pk"]} for i in items or order["items"]],
    }


class Seeds:
    """Orders imported through the project's import service, and bodies files for wrk.
    Every order number carries this run's id, so runs on one database never collide.
    Use it in a `with` block, or close() it: that ends the importer."""

    def __init__(self, env: dict, workdir: Path):
        self.env, self.workdir = env, workdir
        self.run_id = secrets.token_hex(3).upper()
        self._importer: subprocess.Popen | None = None

    def __enter__(self) -> "Seeds":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """End the importer (it holds no connection between batches)."""
        if self._importer is not None:
            self._importer.stdin.close()
            self._importer.wait(timeout=30)
            self._importer = None

    def orders(self, prefix: str, orders: int, items: int) -> list[dict]:
        """`orders` new orders of `items` items each, numbered `prefix`-0000000 on, as
        the import service answers them ({pk, number, channel, items: [{pk,
        product_sku}]}): the first imported, the others copied from it. The tables are
        analyzed after, as a running shop's are (autovacuum analyzes a table within a
        minute of a bulk load): without statistics PostgreSQL planned the capture's lock
        statement again on every capture, its cached generic plan looking dearer on a
        never-analyzed table (docs/performance.md)."""
        if orders < 1:
            return []
        first = self._imported(prefix, items)
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            copies = _order_copies(conn, first, prefix, orders - 1) if orders > 1 else []
            conn.execute("ANALYZE orders_order, orders_orderitem")
        return [first, *copies]

    def _imported(self, prefix: str, items: int) -> dict:
        """One order imported through the import service."""
        doc = document(orders=1, items=items, prefix=prefix)
        if self._importer is None:
            self._importer = subprocess.Popen(
                [PYTHON, "bench/importer.py"], cwd=ROOT, env=self.env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
        self._importer.stdin.write(json.dumps(doc) + "\n")
        self._importer.stdin.flush()
        answer = self._importer.stdout.readline()
        if not answer:
            raise RuntimeError(
                f"bench/importer.py stopped ({self._importer.wait()}): see its stderr"
            )
        return json.loads(answer)["created"][0]

    def bodies_file(self, name: str, bodies: list[dict]) -> str:
        path = self.workdir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(body) + "\n" for body in bodies))
        return str(path)

    def capture_bodies(self, name: str, concurrency: int, items: int, secs: int, tag="") -> str:
        """A bodies file of fresh orders for `secs` seconds of load (SEED_RATE[name])."""
        count = SEED_RATE[name][concurrency] * secs
        orders = self.orders(f"{name}{tag}{concurrency}{self.run_id}", count, items)
        return self.bodies_file(f"{name}{tag}-{concurrency}", [capture_body(o) for o in orders])

    def contended_bodies(self, phase: str, concurrency: int, secs: int) -> tuple[str, str]:
        """16 orders; each request captures one item of one of them, never the same
        item twice. Returns the bodies file and the order numbers' prefix."""
        n = CONTENDED_ORDERS
        per_order = max(1, SEED_RATE["CT"][concurrency] * secs // n)
        prefix = f"CT{phase}{concurrency}{self.run_id}"
        orders = self.orders(prefix, n, per_order)
        bodies = []
        for k in range(n * per_order):
            order = orders[k % n]
            bodies.append(capture_body(order, [order["items"][k // n]]))
        return self.bodies_file(f"ct-{phase}-{concurrency}", bodies), prefix

    def sided_bodies(self, rounds: int, secs: int, sides: tuple[str, ...]) -> list[dict]:
        """Per A/B round, a bodies file of 1-item orders for each side."""
        return [{side: self.capture_bodies("RATIO", 16, 1, secs, tag=f"{n}{side}")
                 for side in sides} for n in range(rounds)]  # fmt: skip

    def ratio_bodies(self, rounds: int, secs: int) -> list[str]:
        """One bodies file of 1-item orders per ratio round (concurrency 16)."""
        return [self.capture_bodies("RATIO", 16, 1, secs, tag=str(n)) for n in range(rounds)]


def table_columns(cursor, table: str, *, leave_out: set[str]) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall() if row[0] not in leave_out]


def _order_copies(conn, template: dict, prefix: str, count: int) -> list[dict]:
    """`count` copies of the `template` order and its items, in one statement,
    numbered as scripts/gen_orders.py numbers orders (`prefix`-0000001 on)."""
    cursor = conn.cursor()
    orders = table_columns(cursor, "orders_order", leave_out={"id", "number"})
    items = table_columns(cursor, "orders_orderitem", leave_out={"id", "order_id"})
    cursor.execute(
        f"""
        WITH new_orders AS (
            INSERT INTO orders_order (number, {", ".join(orders)})
            SELECT %(prefix)s || '-' || lpad(g::text, 7, '0'), {", ".join(f"t.{c}" for c in orders)}
              FROM orders_order t, generate_series(1, %(count)s) g
             WHERE t.id = %(template)s
            RETURNING id, number, channel_id
        ), new_items AS (
            INSERT INTO orders_orderitem (order_id, {", ".join(items)})
            SELECT o.id, {", ".join(f"i.{c}" for c in items)}
              FROM new_orders o, orders_orderitem i
             WHERE i.order_id = %(template)s
            RETURNING id, order_id, product_sku
        )
        SELECT o.id, o.number, o.channel_id,
               json_agg(json_build_object('pk', i.id, 'product_sku', i.product_sku)
                        ORDER BY i.id)
          FROM new_orders o JOIN new_items i ON i.order_id = o.id
         GROUP BY o.id, o.number, o.channel_id
         ORDER BY o.id
        """,
        {"prefix": prefix, "count": count, "template": template["pk"]},
    )
    return [{"pk": pk, "number": number, "channel": channel, "items": items}
            for pk, number, channel, items in cursor.fetchall()]  # fmt: skip


@dataclass
class Plan:
    """Every bodies file of a full run. `bodies` is keyed by (scenario, concurrency,
    phase), phase "warm" or "run"; `contended_prefix` by concurrency, for the measured
    contended orders."""

    bodies: dict[tuple[str, int, str], str] = field(default_factory=dict)
    contended_prefix: dict[int, str] = field(default_factory=dict)
    ratio: list[str] = field(default_factory=list)
    replay_order: dict | None = None
    replay_bodies: str = ""
    replay_key: str = ""
    profile_bodies: str = ""
    fast_path_bodies: tuple[str, str] = ("", "")  # 1-item and 1,000-item bodies

    def wrk_bodies(self, scenario: str, concurrency: int) -> dict:
        """run_scenario's warm_bodies and bodies for a scenario of fresh orders."""
        return {
            "warm_bodies": self.bodies.get((scenario, concurrency, "warm"), "-"),
            "bodies": self.bodies[(scenario, concurrency, "run")],
        }


def seed_plan(seeds: Seeds, *, seconds: int, warmup: int, ratio_rounds: int,
              ratio_seconds: int, profile_orders: int) -> Plan:  # fmt: skip
    plan = Plan()
    for concurrency in CONCURRENCY:
        for phase, secs in (("warm", warmup), ("run", seconds)):
            if not secs:
                continue  # no warm-up
            for label, name, items in FRESH_CAPTURES:
                plan.bodies[(label, concurrency, phase)] = seeds.capture_bodies(
                    f"{name}{phase}", concurrency, items, secs
                )
            bodies, prefix = seeds.contended_bodies(phase, concurrency, secs)
            plan.bodies[("contended", concurrency, phase)] = bodies
            if phase == "run":
                plan.contended_prefix[concurrency] = prefix
    plan.ratio = seeds.ratio_bodies(ratio_rounds, ratio_seconds)
    plan.replay_order = seeds.orders(f"REPLAY{seeds.run_id}", 1, 1)[0]
    plan.replay_bodies = seeds.bodies_file("replay", [capture_body(plan.replay_order)])
    plan.replay_key = f"bench-replay-{seeds.run_id}"
    orders = seeds.orders(f"PROF{seeds.run_id}", profile_orders, 1)
    plan.profile_bodies = seeds.bodies_file("profile", [capture_body(o) for o in orders])
    return plan


def fast_path_bodies(seeds: Seeds) -> tuple[str, str]:
    """Bodies files for bench/fast_paths.py: 1-item and 1,000-item captures."""
    from bench.fast_paths import BIG_PATHS, PER_BIG_BLOCK, PER_BLOCK, SMALL_PATHS, needed

    files = []
    for name, paths, per_block, items in (("FPS", SMALL_PATHS, PER_BLOCK, 1),
                                          ("FPB", BIG_PATHS, PER_BIG_BLOCK, 1000)):  # fmt: skip
        orders = seeds.orders(f"{name}{seeds.run_id}", needed(paths, per_block), items)
        files.append(seeds.bodies_file(name, [capture_body(o) for o in orders]))
    return files[0], files[1]
