"""The capture's SQL: two statements, whatever the number of items. One locks the
order and its items, the other does every write and reads the order back.

Plain SQL rather than the ORM because this is the hot path: the same work through
querysets costs 7 statements and much more Python per capture (docs/performance.md
has the figures). The rules that run between the two statements live in
capture/services.py."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, models

from events.sql import record_event_ctes
from events.tasks import WEBHOOK_QUEUE, deliver_lane
from omnitron import exactjson
from omnitron.db.sql import compact
from orders.models import ChannelMembership, Order, OrderItem

from .models import Capture, CaptureItem

ORDERS = Order._meta.db_table
ITEMS = OrderItem._meta.db_table
MEMBERSHIPS = ChannelMembership._meta.db_table
CAPTURES = Capture._meta.db_table
CAPTURE_ITEMS = CaptureItem._meta.db_table


_ORDER_FIELDS = Order._meta.concrete_fields
_ORDER_COLUMNS = ", ".join(f'"{field.column}"' for field in _ORDER_FIELDS)
_ORDER_JSON = [isinstance(field, models.JSONField) for field in _ORDER_FIELDS]

ORDER_CAPTURED = "order.captured"
ORDER_CAPTURED_EVENT = {
    "event_type": ORDER_CAPTURED,
    "queue": WEBHOOK_QUEUE,
    "task": deliver_lane.name,
}


LOCK_ORDER_AND_ITEMS = compact(f"""
    WITH found AS (
        SELECT id, status, currency FROM {ORDERS}
         WHERE number = %(number)s
           AND (%(superuser)s OR channel_id IN (
                SELECT channel_id FROM {MEMBERSHIPS} WHERE user_id = %(user)s))
           AND (%(channel)s::bigint IS NULL OR channel_id = %(channel)s::bigint)
         ORDER BY id
         LIMIT 2
           FOR UPDATE
    )
    SELECT found.id, found.status, found.currency,
           item.id, item.status, item.price, item.captured_at
      FROM found
      LEFT JOIN LATERAL (
           SELECT id, status, price, captured_at FROM {ITEMS}
            WHERE order_id = found.id AND id = ANY(%(pks)s::bigint[])
            ORDER BY id
              FOR UPDATE
      ) AS item ON true
     ORDER BY found.id, item.id
    """)

WRITE_CAPTURE = compact(f"""
    WITH given AS (
        SELECT * FROM unnest(%(ids)s::bigint[], %(changes)s::jsonb[]) AS given(id, changes)
    ),
    marked AS (
        UPDATE {ITEMS} AS item
           SET captured_at = %(now)s, modified_date = %(now)s,
               attributes = item.attributes || coalesce(given.changes, '{{}}')
          FROM given
         WHERE item.id = given.id
           AND item.order_id = %(order)s  -- the order's items: an index scan, never the table
    ),
    capture AS (
        INSERT INTO {CAPTURES} (order_id, user_id, created_at, amount, currency,
                                idempotency_key, request_id)
        VALUES (%(order)s, %(user)s, %(now)s, %(amount)s, %(currency)s,
                %(key)s, %(request_id)s)
        RETURNING id
    ),
    audit AS (
        -- Every part of the statement sees the items as they were before it.
        INSERT INTO {CAPTURE_ITEMS}
               (capture_id, order_item_id, price, attributes_before, attributes_after)
        SELECT capture.id, item.id, item.price, item.attributes,
               item.attributes || coalesce(given.changes, '{{}}')
          FROM capture, given
          JOIN {ITEMS} AS item ON item.id = given.id AND item.order_id = %(order)s
    ),
    updated AS (
        UPDATE {ORDERS} SET modified_date = %(now)s
         WHERE id = %(order)s
        RETURNING *
    ),
    -- The order.captured event: about the capture, with the order as answered.
    captured AS (
        SELECT updated.channel_id, capture.id AS object_id, to_jsonb(updated) AS snapshot
          FROM updated, capture
    ),
    {record_event_ctes("captured")}
    SELECT {_ORDER_COLUMNS} FROM updated
    """)


@dataclass(frozen=True)
class LockedOrder:
    pk: int
    status: str
    currency: str


@dataclass(frozen=True)
class LockedItem:
    pk: int
    status: str
    price: Decimal
    captured_at: datetime | None


def lock_order_and_items(
    *, user, number: str, channel: int | None, pks: list[int]
) -> tuple[list[LockedOrder], list[LockedItem]]:
    """Lock, in one statement, the rows of the orders with this number in the user's
    channels (at most two: one is the order, two make the number ambiguous), in pk
    order, then each order's given items, in pk order. Items of other orders are not
    returned."""
    with connection.cursor() as cursor:
        cursor.execute(
            LOCK_ORDER_AND_ITEMS,
            {
                "number": number,
                "superuser": user.is_superuser,
                "user": user.pk,
                "channel": channel,
                "pks": pks,
            },
        )
        rows = cursor.fetchall()
    orders = list({row[0]: LockedOrder(*row[:3]) for row in rows}.values())
    items = [LockedItem(*row[3:]) for row in rows if row[3] is not None]
    return orders, items


def write_capture(
    *,
    order: LockedOrder,
    user_id: int,
    now: datetime,
    amount: Decimal,
    idempotency_key: str | None,
    request_id: str,
    changes: dict[int, dict | None],
) -> Order:
    """One statement for every write of a capture: mark the items captured, merging
    the given attribute changes into their stored attributes (keys given replace,
    others stay: jsonb's `||`), insert the audit record and its items with the
    attributes before and after, bump the order's modified_date, record the
    order.captured event with its webhook deliveries and their jobs, and read the
    whole order row back."""
    with connection.cursor() as cursor:
        cursor.execute(
            WRITE_CAPTURE,
            {
                "now": now,
                "order": order.pk,
                "user": user_id,
                "amount": amount,
                "currency": order.currency,
                "key": idempotency_key,
                "request_id": request_id,
                "ids": list(changes),
                "changes": [exactjson.dumps(c) if c else None for c in changes.values()],
                **ORDER_CAPTURED_EVENT,
            },
        )
        row = cursor.fetchone()
    values = [_json(v) if is_json else v for v, is_json in zip(row, _ORDER_JSON, strict=True)]
    return Order.from_db(connection.alias, [field.attname for field in _ORDER_FIELDS], values)


def _json(value):
    # Django has psycopg return jsonb as text, and decodes it itself.
    return None if value is None else exactjson.loads(value)
