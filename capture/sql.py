"""The capture's SQL: a read of the order and its given items, and one statement that
does every write and reads the order back, whatever the number of items.

The read comes two ways. Folded into the authentication statement (OrderReadLookup in
capture/lookups.py) it takes no lock and costs no round trip of its own; as
LOCK_ORDER_AND_ITEMS, inside a transaction, it locks the rows. The write locks the
order and the items itself and writes only if they are still as read (the order's
status, each item's row version): after an unlocked read it writes nothing when a
row changed in between, and the service reads again under the locks.

Plain SQL rather than the ORM because this is the hot path: the same work through
querysets costs 7 statements and much more Python per capture (docs/performance.md
has the figures). The rules that run between the read and the write live in
capture/services.py. Arrays of items go as binary parameters (`%(name)b`): psycopg
writes a text array in Python, quoting each element, which cost a 1,000-item capture
3 ms.

To read one more thing of the order: a column of the orders table in
SEEN_ORDER_COLUMNS and a field of SeenOrder, in the same place. Of an item: its SQL
in SEEN_ITEM_COLUMNS and a field of SeenItem, in the same place (a numeric one also in
SEEN_ITEM_EXACT). Both reads take those lists; tests/capture/test_queries.py checks
their names against the tuples' fields, and that the statements stay within psycopg's
cache (below)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, models

from events.sql import record_event_ctes, record_event_params
from omnitron import exactjson
from omnitron.db.sql import compact
from orders.models import Order, OrderItem
from orders.selectors import channel_visible_sql

from .models import Capture, CaptureItem

ORDERS = Order._meta.db_table
ITEMS = OrderItem._meta.db_table
CAPTURES = Capture._meta.db_table
CAPTURE_ITEMS = CaptureItem._meta.db_table


_ORDER_FIELDS = Order._meta.concrete_fields
_ORDER_COLUMNS = ", ".join(f'"{field.column}"' for field in _ORDER_FIELDS)
_ORDER_JSON = [isinstance(field, models.JSONField) for field in _ORDER_FIELDS]

ORDER_CAPTURED = "order.captured"
ORDER_CAPTURED_EVENT = record_event_params(ORDER_CAPTURED)


# What a read takes of an order, as SeenOrder (below) holds it, in its fields' order.
SEEN_ORDER_COLUMNS = ("id", "status", "currency")


def _seen_order_columns(table: str) -> str:
    return ", ".join(f"{table}.{column}" for column in SEEN_ORDER_COLUMNS)


def orders_with_number(*, user: str, superuser: str, params: str) -> str:
    """The orders (SEEN_ORDER_COLUMNS) with the number %(<params>number)s in the user's
    channels, and in channel %(<params>channel)s when that is not null: at most two, in
    pk order (one is the order; two make the number ambiguous). `user` and `superuser`
    are SQL expressions."""
    return f"""
        SELECT {", ".join(SEEN_ORDER_COLUMNS)} FROM {ORDERS}
         WHERE number = %({params}number)s
           AND {channel_visible_sql("channel_id", user=user, superuser=superuser)}
           AND (%({params}channel)s::bigint IS NULL OR channel_id = %({params}channel)s::bigint)
         ORDER BY id
         LIMIT 2"""


# An item row's version: the transaction that wrote it (xmin) and where it is (ctid).
# Any change to a row writes a new version of it elsewhere; a later transaction's has
# another xmin, and the same transaction's another ctid (the old one stays until that
# transaction has ended).
_VERSION = "xmin::text || ctid::text"
# What a read takes of an item, as SeenItem (below) holds it, in its fields' order:
# {field: its SQL}.
SEEN_ITEM_COLUMNS = {
    "pk": "id",
    "status": "status",
    "price": "price",
    "currency": "price_currency",
    "captured": "captured_at IS NOT NULL",
    "version": _VERSION,
}
_ITEM_COLUMNS = ", ".join(f"{sql} AS {field}" for field, sql in SEEN_ITEM_COLUMNS.items())
# The same as JSON values. A numeric column goes as text and is read back exactly (a
# JSON number is a float to most readers): name it here.
SEEN_ITEM_EXACT = ("price",)
_ITEM_JSON = ", ".join(
    f"{field}::text" if field in SEEN_ITEM_EXACT else field for field in SEEN_ITEM_COLUMNS
)
_EXACT_AT = [list(SEEN_ITEM_COLUMNS).index(field) for field in SEEN_ITEM_EXACT]


def given_items(*, order: str, pks: str, columns: str = _ITEM_COLUMNS, lock: bool) -> str:
    """The order's items among the pks (`order` and `pks`: SQL expressions). Locked in
    pk order when `lock`: every statement that locks items locks them in this order,
    after their order's row, so captures never deadlock. The pks are joined, not
    searched with `= ANY`: in a prepared statement's plan the array is a parameter,
    searched end to end for each of the order's items (a million comparisons at 1,000
    items)."""
    locking = "ORDER BY id FOR UPDATE" if lock else ""
    return f"""
        SELECT {columns} FROM {ITEMS}
         WHERE order_id = {order} AND id IN (SELECT unnest({pks}::bigint[]))
         {locking}"""


LOCK_ORDER_AND_ITEMS = compact(f"""
    WITH found AS (
        {orders_with_number(user="%(user)s", superuser="%(superuser)s", params="")}
           FOR UPDATE
    )
    SELECT {_seen_order_columns("found")}, item.*
      FROM found
      LEFT JOIN LATERAL (
           {given_items(order="found.id", pks="%(pks)b", lock=True)}
      ) AS item ON true
     ORDER BY found.id, item.pk
    """)

# The same read as one JSON value, for the authentication statement (no lock):
# [[order id, status, currency, [[item id, status, price, currency, captured, version],
# ...]], ...]: an order's SEEN_ORDER_COLUMNS, then its items' SEEN_ITEM_COLUMNS.
_USERS_ORDERS = orders_with_number(
    user="token_user.id", superuser="token_user.is_superuser", params="capture_"
)
READ_ORDER_AND_ITEMS = compact(f"""
    SELECT coalesce(json_agg(json_build_array({_seen_order_columns("found")}, item.rows)
                             ORDER BY found.id), '[]')
      FROM ({_USERS_ORDERS}) AS found,
      LATERAL (
           SELECT coalesce(json_agg(json_build_array({_ITEM_JSON}) ORDER BY pk), '[]') AS rows
             FROM ({given_items(order="found.id", pks="%(capture_pks)b", lock=False)}) AS item
      ) AS item
    """)

_LOCKED_ITEM_VERSIONS = given_items(
    order="locked_order.id", pks="%(ids)b", columns=f"id, {_VERSION} AS version", lock=True
)
# Compacted, the write stays under the 4,096 characters psycopg parses once and keeps
# (omnitron/db/sql.py; tests/capture/test_queries.py holds it there), with little to
# spare (4,050 on 2026-11-30): the order's columns read back at its end are a fifth.
WRITE_CAPTURE = compact(f"""
    WITH given AS (
        SELECT * FROM unnest(%(ids)b::bigint[], %(versions)b::text[], %(changes)b::jsonb[])
               AS given(id, version, changes)
    ),
    -- Lock the order, then its items in pk order, as the lock statement does (every
    -- capture locks in this order: none deadlock), and write only if they are as the
    -- rules saw them: the order's status and currency, each item's row version.
    locked_order AS (
        SELECT id, status, currency FROM {ORDERS} WHERE id = %(order)s FOR UPDATE
    ),
    locked_item AS (
        SELECT item.id, item.version
          FROM locked_order, LATERAL ({_LOCKED_ITEM_VERSIONS}) AS item
    ),
    unchanged AS (
        SELECT (SELECT status = %(status)s AND currency = %(currency)s FROM locked_order) IS TRUE
               AND count(*) = cardinality(%(ids)b::bigint[]) AS yes
          FROM locked_item JOIN given USING (id, version)
    ),
    -- Each write below is gated on (SELECT yes FROM unchanged): all of them or none.
    marked AS (
        UPDATE {ITEMS} AS item
           SET captured_at = %(now)s, modified_date = %(now)s,
               attributes = item.attributes || coalesce(given.changes, '{{}}')
          FROM given
         WHERE item.id = given.id
           AND item.order_id = %(order)s  -- the order's items: an index scan, never the table
           AND (SELECT yes FROM unchanged)
    ),
    capture AS (
        INSERT INTO {CAPTURES} (order_id, user_id, created_at, amount, currency,
                                idempotency_key, request_id)
        SELECT id, %(user)s, %(now)s, %(amount)s, currency, %(key)s, %(request_id)s
          FROM locked_order
         WHERE (SELECT yes FROM unchanged)
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
        -- Never back in time: `now` is taken before the order's lock is waited for, and
        -- a capture that waited behind a later one set an earlier modified_date.
        UPDATE {ORDERS} SET modified_date = greatest(modified_date, %(now)s)
         WHERE id = %(order)s AND (SELECT yes FROM unchanged)
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


# Named tuples, not dataclasses: a 1,000-item capture makes a thousand, and a frozen
# dataclass costs three times as much to make (1.8 against 0.6 ms).
class SeenOrder(NamedTuple):
    """An order as read: SEEN_ORDER_COLUMNS, in this order."""

    pk: int
    status: str
    currency: str


ORDER_PART = len(SEEN_ORDER_COLUMNS)  # a read's row: the order's columns, then the item's


class SeenItem(NamedTuple):
    """An item as read: SEEN_ITEM_COLUMNS, in this order."""

    pk: int
    status: str
    price: Decimal
    currency: str
    captured: bool
    version: str  # the row's version when read (xmin and ctid)


@dataclass(frozen=True)
class Seen:
    """What one read saw of the orders with `number` (in `channel`, when given) and of
    their items among `pks`, in pk order."""

    number: str
    channel: int | None
    pks: frozenset[int]
    orders: list[SeenOrder]
    items: list[SeenItem]

    def is_for(self, number: str, channel: int | None, pks) -> bool:
        return (number, channel, frozenset(pks)) == (self.number, self.channel, self.pks)


def lock_order_and_items(*, user, number: str, channel: int | None, pks: list[int]) -> Seen:
    """Lock, in one statement, the rows of the orders with this number in the user's
    channels (at most two), in pk order, then each order's given items, in pk order.
    Items of other orders are not returned. Call it inside a transaction."""
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
    return Seen(
        number=number,
        channel=channel,
        pks=frozenset(pks),
        orders=list({row[0]: SeenOrder(*row[:ORDER_PART]) for row in rows}.values()),
        items=[SeenItem(*row[ORDER_PART:]) for row in rows if row[ORDER_PART] is not None],
    )


def seen_from_json(value: list, *, number: str, channel: int | None, pks: list[int]) -> Seen:
    """READ_ORDER_AND_ITEMS's value as a Seen."""
    return Seen(
        number=number,
        channel=channel,
        pks=frozenset(pks),
        orders=[SeenOrder(*order) for *order, _ in value],
        items=[_seen_item(item) for *_, items in value for item in items],
    )


def _seen_item(values: list) -> SeenItem:
    """An item of the JSON read (its SEEN_ITEM_COLUMNS' values), numbers made exact."""
    for at in _EXACT_AT:
        values[at] = Decimal(values[at])
    return SeenItem(*values)


def write_capture(
    *,
    order: SeenOrder,
    items: list[SeenItem],
    user_id: int,
    now: datetime,
    amount: Decimal,
    idempotency_key: str | None,
    request_id: str,
    changes: dict[int, dict | None],
) -> Order | None:
    """One statement for every write of a capture, when the order and the items are
    still as seen (else it writes nothing and returns None): mark the items captured,
    merging the given attribute changes into their stored attributes (keys given
    replace, others stay: jsonb's `||`), insert the audit record and its items with
    the attributes before and after, bump the order's modified_date, record the
    order.captured event with its webhook deliveries and their jobs, and read the
    whole order row back."""
    with connection.cursor() as cursor:
        cursor.execute(
            WRITE_CAPTURE,
            {
                "now": now,
                "order": order.pk,
                "status": order.status,
                "currency": order.currency,
                "user": user_id,
                "amount": amount,
                "key": idempotency_key,
                "request_id": request_id,
                "ids": [item.pk for item in items],
                "versions": [item.version for item in items],
                "changes": [
                    exactjson.dumps(c) if (c := changes[item.pk]) else None for item in items
                ],
                **ORDER_CAPTURED_EVENT,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = [_json(v) if is_json else v for v, is_json in zip(row, _ORDER_JSON, strict=True)]
    return Order.from_db(connection.alias, [field.attname for field in _ORDER_FIELDS], values)


def _json(value):
    # Django has psycopg return jsonb as text, and decodes it itself.
    return None if value is None else exactjson.loads(value)
