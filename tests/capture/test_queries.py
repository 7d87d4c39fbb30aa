"""A capture costs a fixed number of SQL statements whatever the item count, and their
plans stay linear in it."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import sql
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

from accounts.authentication import _token_user_statement
from bench.explain import numbered
from capture.lookups import OrderReadLookup
from capture.sql import (
    LOCK_ORDER_AND_ITEMS,
    ORDER_CAPTURED_EVENT,
    SEEN_ITEM_COLUMNS,
    SEEN_ORDER_COLUMNS,
    WRITE_CAPTURE,
    SeenItem,
    SeenOrder,
)
from capture.views import CaptureOrderView
from omnitron.api.throttling import rate_params
from orders.models import OrderItem
from tests.factories import OrderItemFactory, make_order
from tests.helpers import capture

QUERY_BUDGET = 12  # auth included

# Outside a test transaction, as in production: no wrapping savepoints to count.
pytestmark = pytest.mark.django_db(transaction=True)


def order_with(channel, count):
    order = make_order(channel=channel, items=0)
    OrderItem.objects.bulk_create(OrderItemFactory.build_batch(count, order=order))
    return order


@pytest.mark.parametrize("key", [None, "with-key"])
def test_query_count_is_the_same_at_1_10_100_and_1000_items(
    api_client, channel, key, django_assert_max_num_queries, settings
):
    # With the capture rate limit on, as in production (the token statement counts it).
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "capture": "100000/min"},
    }
    counts = {}
    for size in (1, 10, 100, 1000):
        order = order_with(channel, size)
        pks = list(order.items.values_list("pk", flat=True))
        with django_assert_max_num_queries(QUERY_BUDGET), CaptureQueriesContext(connection) as q:
            response = capture(api_client, order, pks, key=f"{key}-{size}" if key else None)
        assert response.status_code == 200
        assert OrderItem.objects.filter(order=order, captured_at__isnull=True).count() == 0
        counts[size] = len(q)
    assert len(set(counts.values())) == 1, counts
    # docs/api.md states these (BEGIN and COMMIT included).
    assert counts[1] == (7 if key else 2)


def test_a_replay_is_one_statement_the_authentication(api_client, channel):
    """The stored answer is read by the authentication statement: no transaction."""
    order = order_with(channel, 3)
    pks = list(order.items.values_list("pk", flat=True))
    assert capture(api_client, order, pks, key="replay-count").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        replay = capture(api_client, order, pks, key="replay-count")
    assert replay["Idempotent-Replayed"] == "true"
    assert len(queries) == 1, [q["sql"][:80] for q in queries]


def test_the_capture_statements_fit_psycopgs_parsed_statement_cache():
    """psycopg parses the placeholders of a longer statement in Python on every run
    (omnitron/db/sql.py): the write, the lock statement and the token statement with
    the capture's lookups stay within its limit."""
    statements = [WRITE_CAPTURE, LOCK_ORDER_AND_ITEMS]
    lookups = tuple(CaptureOrderView.authentication_lookups)
    for variant in (lookups, lookups[:1], lookups[1:]):
        statements.append(_token_user_statement(True, variant)[0])
    longest = max(map(len, statements))
    assert longest <= MAX_CACHED_STATEMENT_LENGTH, f"{longest} characters: shorten it"


def generic_plan(statement: str, params: dict) -> str:
    """The plan PostgreSQL may keep for the statement once psycopg prepares it: made
    without the values of its parameters."""
    prepared, values = numbered(statement, params)
    literals = ", ".join(sql.Literal(v).as_string(connection.connection) for v in values)
    with connection.cursor() as cursor:  # no parameters: the text goes as it is
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE shape AS {prepared}")
        cursor.execute(f"EXPLAIN EXECUTE shape({literals})")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE shape")
        cursor.execute("RESET plan_cache_mode")
    return plan


def test_the_given_items_are_joined_not_searched_item_by_item():
    """In a prepared statement the pks are a parameter, and `id = ANY($n)` searches the
    whole array for each of the order's items: a million comparisons at 1,000 items,
    a third of such a capture's time (docs/performance.md)."""
    pks, now = list(range(1, 1001)), timezone.now()
    read = {"number": "1", "channel": None, "pks": pks}
    token = _token_user_statement(True, (OrderReadLookup(),))[0]
    statements = {
        "lock": (LOCK_ORDER_AND_ITEMS, {**read, "user": 1, "superuser": False}),
        "read": (token, {
            "key": "k", "app_label": "orders", "codename": "capture_order",
            "rate_key_prefix": "p", **rate_params(60, 100), "capture_key": None,
            "capture_key_since": now, **{f"capture_{k}": v for k, v in read.items()},
        }),
        "write": (WRITE_CAPTURE, {
            "now": now, "order": 1, "status": "400", "currency": "try", "user": 1, "amount": Decimal("1.00"),
            "key": None, "request_id": "r", "ids": pks, "versions": ["v"] * len(pks),
            "changes": [None] * len(pks), **ORDER_CAPTURED_EVENT,
        }),
    }  # fmt: skip
    for name, (statement, params) in statements.items():
        plan = generic_plan(statement, params)
        assert not re.search(r"\bid = ANY \(\$\d+\)", plan), (name, plan)


def test_a_reads_columns_are_the_seen_tuples_fields():
    """The reads select SEEN_ORDER_COLUMNS and SEEN_ITEM_COLUMNS, and SeenOrder and
    SeenItem take them by position."""
    assert ("id", *SeenOrder._fields[1:]) == SEEN_ORDER_COLUMNS
    assert tuple(SEEN_ITEM_COLUMNS) == SeenItem._fields
