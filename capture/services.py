"""Capture: the rules and the transaction that marks order items captured.

One transaction per request, in this order (Saleor's actions): lock the order row,
lock the items by pk, check every rule under the locks, write the items, the audit
rows and the order's modified_date with bulk statements, read the order back. The
number of SQL statements does not depend on the number of items."""

import json
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import psycopg2.errors
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from omnitron.api.exceptions import error_body
from orders.models import Order, OrderItem
from orders.selectors import order_list_for_user
from orders.serializers import OrderSerializer

from .exceptions import (
    AlreadyCaptured,
    CaptureError,
    OrderAmbiguous,
    OrderItemNotCapturable,
    OrderItemNotFound,
    OrderLocked,
    OrderNotCapturable,
    OrderNotFound,
)
from .idempotency import idempotency_claim, idempotency_store, request_fingerprint
from .models import Capture, CaptureItem
from .rules import CAPTURABLE_ORDER_STATUSES, NON_CAPTURABLE_ITEM_STATUSES

_renderer = JSONRenderer()


@dataclass(frozen=True)
class ItemInput:
    pk: int
    attributes: dict | None = None  # None: leave the stored attributes as they are


@dataclass(frozen=True)
class CaptureResult:
    """The answer of a capture: the rendered JSON body, byte for byte what a replay
    with the same Idempotency-Key answers."""

    status_code: int
    body: bytes
    replayed: bool = False


def order_capture(
    *,
    user,
    order_number: str,
    items: list[ItemInput],
    channel: int | None = None,
    idempotency_key: str | None = None,
    request_id: str = "",
) -> CaptureResult:
    """Capture exactly the given items of the order, or none of them.

    Raises a CaptureError (400) when a rule refuses, OrderLocked (409) when the order
    stays locked by another request past the lock timeout, and with a key,
    IdempotencyKeyInUse (409) or IdempotencyKeyReused (422)."""
    capture_args = {
        "user": user,
        "order_number": order_number,
        "items": items,
        "channel": channel,
        "idempotency_key": idempotency_key,
        "request_id": request_id,
    }
    with _locks_time_out_as_conflict():
        if idempotency_key is None:
            with transaction.atomic():
                order = _capture_items(**capture_args)
                return CaptureResult(200, _render(OrderSerializer(order).data))
        return _order_capture_idempotent(**capture_args)


def _order_capture_idempotent(*, user, idempotency_key: str, **capture_args) -> CaptureResult:
    fingerprint = request_fingerprint(
        {
            "order": capture_args["order_number"],
            "channel": capture_args["channel"],
            "order_items": [
                {"pk": item.pk, "attributes": item.attributes} for item in capture_args["items"]
            ],
        }
    )
    store = {"user": user, "key": idempotency_key, "fingerprint": fingerprint}
    with transaction.atomic():
        stored = idempotency_claim(**store)
        if stored is not None:
            return CaptureResult(
                stored.status_code, stored.response_body.encode("utf-8"), replayed=True
            )
        try:
            order = _capture_items(user=user, idempotency_key=idempotency_key, **capture_args)
        except CaptureError as exc:
            # Nothing was written before the rule failed; commit the stored refusal.
            refusal = exc
            idempotency_store(**store, status_code=exc.status_code, body=_render(error_body(exc)))
        else:
            body = _render(OrderSerializer(order).data)
            idempotency_store(**store, status_code=200, body=body)
            return CaptureResult(200, body)
    raise refusal


def _capture_items(*, user, order_number, items, channel, idempotency_key, request_id) -> Order:
    order = _lock_order(user=user, order_number=order_number, channel=channel)
    if order.status not in CAPTURABLE_ORDER_STATUSES:
        raise OrderNotCapturable(order.status)

    given = {item.pk: item for item in items}
    locked = list(
        OrderItem.objects.select_for_update()
        .filter(order_id=order.pk, pk__in=list(given))
        .order_by("pk")
        .only("pk", "status", "price", "attributes", "captured_at")
    )
    if missing := given.keys() - {item.pk for item in locked}:
        raise OrderItemNotFound(missing)
    if refused := [item.pk for item in locked if item.status in NON_CAPTURABLE_ITEM_STATUSES]:
        raise OrderItemNotCapturable(refused)
    if captured := [item.pk for item in locked if item.captured_at is not None]:
        raise AlreadyCaptured(captured)

    now = timezone.now()
    audit = []
    for item in locked:
        before = item.attributes
        changes = given[item.pk].attributes
        after = {**before, **changes} if changes else before
        audit.append((item, before, after))
        item.attributes = after
    _mark_captured(locked, now)
    capture = Capture.objects.create(
        order=order,
        user=user,
        created_at=now,
        amount=sum((item.price for item in locked), Decimal("0.00")),
        currency=order.currency,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )
    CaptureItem.objects.bulk_create(
        CaptureItem(
            capture=capture,
            order_item_id=item.pk,
            price=item.price,
            attributes_before=before,
            attributes_after=after,
        )
        for item, before, after in audit
    )
    return _touch_and_read_back(order, now)


def _lock_order(*, user, order_number: str, channel: int | None) -> Order:
    """Find the order among the user's channels and lock its row. Orders of other
    channels are not found, so the answer never tells that they exist."""
    orders = order_list_for_user(user=user).filter(number=order_number)
    if channel is not None:
        orders = orders.filter(channel_id=channel)
    # At most two rows, locked in pk order like every other order lock.
    found = list(orders.select_for_update().order_by("pk").only("pk", "status", "currency")[:2])
    if not found:
        raise OrderNotFound()
    if len(found) > 1:
        raise OrderAmbiguous()
    return found[0]


def _touch_and_read_back(order: Order, now) -> Order:
    """Bump modified_date and read the whole row back, in one statement."""
    table = Order._meta.db_table
    query = f"UPDATE {table} SET modified_date = %s WHERE id = %s RETURNING *"
    (updated,) = Order.objects.raw(query, [now, order.pk])
    return updated


def _mark_captured(items: list[OrderItem], now) -> None:
    """One UPDATE for all items, whatever their number."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {OrderItem._meta.db_table} AS item
               SET captured_at = %s, modified_date = %s, attributes = given.attributes
              FROM unnest(%s::bigint[], %s::jsonb[]) AS given(id, attributes)
             WHERE item.id = given.id
            """,
            [
                now,
                now,
                [item.pk for item in items],
                [json.dumps(item.attributes) for item in items],
            ],
        )


def _render(data) -> bytes:
    return _renderer.render(data)


@contextmanager
def _locks_time_out_as_conflict():
    """A lock wait past lock_timeout (or a deadlock) becomes a retryable 409 order_locked."""
    try:
        yield
    except OperationalError as exc:
        if isinstance(
            exc.__cause__, psycopg2.errors.LockNotAvailable | psycopg2.errors.DeadlockDetected
        ):
            raise OrderLocked() from exc
        raise
