"""Three app servers, one PostgreSQL: a few hundred concurrent captures of
overlapping items (with and without Idempotency-Key) capture each item exactly once.
The app keeps no state in process; PostgreSQL's row locks make captures exactly-once.

The same runs twice: straight to PostgreSQL, and through PgBouncer in transaction mode
(deploy/pgbouncer/pgbouncer.ini) with DB_PREPARED_STATEMENTS=0, the timeouts on the
role, persistent app connections and fewer server connections than app workers, so
every server connection serves several workers' transactions in turn."""

import contextlib
import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from capture.models import CaptureItem
from orders.models import OrderItem
from tests.live import POOLED_ROLE, gunicorn, pgbouncer, server_env
from tests.reliability.helpers import assert_captures_add_up, seed, token_for

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_LOSSES = {"already_captured", "order_locked", "idempotency_key_in_use"}
SERVERS, WORKERS = 3, 2
POOL_SIZE = 4  # server connections for the 3 x 2 gunicorn workers
RESERVE = 5  # pgbouncer.ini reserve_pool_size


@contextlib.contextmanager
def app_database(route: str):
    """server_env for the app, and a function returning the PgBouncer's transaction
    count (None when the app goes straight to PostgreSQL)."""
    if route == "direct":
        yield server_env(), lambda: None
        return
    with pgbouncer(pool_size=POOL_SIZE) as (overrides, _):
        admin = overrides["DATABASE_URL"].rsplit("/", 1)[0] + "/pgbouncer"

        def transactions() -> int:
            with psycopg.connect(admin, autocommit=True, prepare_threshold=None) as conn:
                stats = conn.cursor().execute("SHOW STATS").fetchall()
            return sum(row[1] for row in stats if row[0] != "pgbouncer")

        yield server_env(**overrides, DJANGO_CONN_MAX_AGE=60), transactions


def server_connections() -> int:
    """The pooled role's connections to PostgreSQL, as PostgreSQL counts them."""
    with psycopg.connect(server_env()["DATABASE_URL"], autocommit=True) as conn:
        cursor = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                              [POOLED_ROLE])  # fmt: skip
        return cursor.fetchone()[0]


@pytest.mark.parametrize("route", ["direct", "pgbouncer"])
def test_three_servers_capture_every_item_exactly_once(route):
    orders = seed(orders=4, items=24, prefix="SCALE")
    token = token_for("wms", all_channels=True)
    rng = random.Random(20261127)
    # Overlapping windows of 1 to 4 items; a third of them carry a key, and every
    # keyed capture is sent twice or three times, as a client retrying would.
    attempts = []
    for index in range(210):
        order = rng.choice(orders)
        start = rng.randrange(len(order["items"]))
        pks = [item["pk"] for item in order["items"][start : start + rng.randint(1, 4)]]
        body = {"order": order["number"], "order_items": [{"pk": pk} for pk in pks]}
        if index % 3 == 0:
            attempts += [(body, f"key-{index}")] * rng.randint(2, 3)
        else:
            attempts.append((body, None))
    rng.shuffle(attempts)

    with (
        app_database(route) as (env, pooled_transactions),
        gunicorn(workers=WORKERS, env=env) as (a, _),
        gunicorn(workers=WORKERS, env=env) as (b, _),
        gunicorn(workers=WORKERS, env=env) as (c, _),
    ):
        servers = itertools.cycle([a, b, c])

        def send(args):
            (body, key), base = args
            headers = {"Authorization": f"Token {token}"}
            if key:
                headers["Idempotency-Key"] = key
            response = requests.post(f"{base}/api/v1/capture-order/", json=body,
                                     headers=headers, timeout=60)  # fmt: skip
            return body, key, response

        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(send, zip(attempts, servers, strict=False)))
        if route == "pgbouncer":
            # Every request went through PgBouncer, over at most its pool (and reserve).
            assert pooled_transactions() >= len(results)
            assert 0 < server_connections() <= POOL_SIZE + RESERVE

    assert len(results) >= 300
    statuses = [response.status_code for _, _, response in results]
    assert all(status < 500 for status in statuses), statuses
    captured_by = {}
    first_answer = {}
    for body, key, response in results:
        pks = [item["pk"] for item in body["order_items"]]
        if response.status_code == 200:
            if response.headers.get("Idempotent-Replayed") == "true":
                continue
            for pk in pks:
                assert pk not in captured_by, f"item {pk} captured by two requests"
                captured_by[pk] = key
            if key:
                first_answer[key] = response.content
        else:
            assert 400 <= response.status_code < 500
            assert response.json()["code"] in ALLOWED_LOSSES, response.json()
    # A replay answers byte for byte what the first request with its key got.
    for _body, key, response in results:
        if response.headers.get("Idempotent-Replayed") == "true" and response.status_code == 200:
            assert response.content == first_answer[key]
    in_database = set(
        OrderItem.objects.filter(captured_at__isnull=False).values_list("pk", flat=True)
    )
    assert set(captured_by) == in_database
    assert CaptureItem.objects.count() == len(in_database)
    assert len(in_database) > 30  # the race really captured things
    assert_captures_add_up()
