"""Capture: the rules and the transaction that marks order items captured.

One transaction per request, in this order (Saleor's actions): lock the order row
then the items by pk, check every rule under the locks, then write the items, the
audit rows and the order's modified_date and read the order back. Two statements
(capture/sql.py), whatever the number of items."""

from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import psycopg2.errors
from django.db import OperationalError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from omnitron.api.exceptions import error_body
from orders.models import Order
from orders.serializers import OrderSerializer

from . import sql
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
            # Rendered after COMMIT: the row locks are released as soon as possible.
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
            return CaptureResult(stored.status_code, stored.body, replayed=True)
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
    given = {item.pk: item for item in items}
    orders, locked = sql.lock_order_and_items(
        user=user, number=order_number, channel=channel, pks=list(given)
    )
    if not orders:
        # Orders of other channels are not found: the answer never tells they exist.
        raise OrderNotFound()
    if len(orders) > 1:
        raise OrderAmbiguous()
    order = orders[0]
    if order.status not in CAPTURABLE_ORDER_STATUSES:
        raise OrderNotCapturable(order.status)
    if missing := given.keys() - {item.pk for item in locked}:
        raise OrderItemNotFound(missing)
    if refused := [item.pk for item in locked if item.status in NON_CAPTURABLE_ITEM_STATUSES]:
        raise OrderItemNotCapturable(refused)
    if captured := [item.pk for item in locked if item.captured_at is not None]:
        raise AlreadyCaptured(captured)

    return sql.write_capture(
        order=order,
        user_id=user.pk,
        now=timezone.now(),
        amount=sum((item.price for item in locked), Decimal("0.00")),
        idempotency_key=idempotency_key,
        request_id=request_id,
        changes={item.pk: given[item.pk].attributes for item in locked},
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
