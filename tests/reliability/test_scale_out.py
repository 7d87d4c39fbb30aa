"""Three app servers, one PostgreSQL: a few hundred concurrent captures of
overlapping items (with and without Idempotency-Key) capture each item exactly once.
The app keeps no state in process; PostgreSQL's row locks make captures exactly-once."""

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from capture.models import CaptureItem
from orders.models import OrderItem
from tests.live import gunicorn
from tests.reliability.helpers import assert_captures_add_up, seed, token_for

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_LOSSES = {"already_captured", "order_locked", "idempotency_key_in_use"}


def test_three_servers_capture_every_item_exactly_once():
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
        gunicorn(workers=2) as (a, _),
        gunicorn(workers=2) as (b, _),
        gunicorn(workers=2) as (c, _),
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
