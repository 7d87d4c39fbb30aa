"""Capture: mark exactly the given items of an order captured, or none of them.

`order_capture` runs one transaction, in this order (Saleor's order actions):

1. lock the order row, then the given items in pk order (`sql.lock_order_and_items`:
   one statement; every capture locks in the same order, so captures never deadlock);
2. check the rules under the locks; the first that fails is raised, nothing written:
   - no order with this number in the user's channels (and in `channel`, when
     given) is `OrderNotFound`, whether it does not exist or is another channel's;
     the number in several of the user's channels is `OrderAmbiguous`;
   - an order whose status is not in `CAPTURABLE_ORDER_STATUSES` is
     `OrderNotCapturable`;
   - a pk that is not an item of this order is `OrderItemNotFound`;
   - an item whose status is in `NON_CAPTURABLE_ITEM_STATUSES` is
     `OrderItemNotCapturable`;
   - an item captured already is `AlreadyCaptured`: a second capture is an error,
     never a silent success;
3. write, in one statement (`sql.write_capture`): the items' `captured_at` and their
   merged attributes, the audit record (`Capture`, amount = the sum of the items'
   prices, and a `CaptureItem` per item with its attributes before and after), the
   order's `modified_date`; and read the order back.

Waiting for another request's lock longer than `lock_timeout` is `OrderLocked`.
The unique `CaptureItem.order_item` is the database's own guarantee that no item is
ever captured twice. The errors' codes, statuses and messages are in
capture/error_codes.py; docs/api.md lists them with the rules."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import psycopg.errors
from django.db import OperationalError, transaction
from django.utils import timezone

from omnitron import metrics
from orders.models import Order

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
from .rules import CAPTURABLE_ORDER_STATUSES, NON_CAPTURABLE_ITEM_STATUSES


@dataclass(frozen=True)
class ItemInput:
    pk: int
    attributes: dict | None = None  # None: leave the stored attributes as they are


def order_capture(
    *,
    user,
    order_number: str,
    items: list[ItemInput],
    channel: int | None = None,
    idempotency_key: str | None = None,
    request_id: str = "",
) -> Order:
    """Capture exactly the given items of the order, or none of them, and return the
    order as it is after the capture. Raises a CaptureError when a rule refuses and
    OrderLocked when the order stays locked by another request."""
    given = {item.pk: item for item in items}
    with _lock_waits_raise_order_locked():
        # No savepoint inside an enclosing transaction (the Idempotency-Key's): a
        # refusal is raised only after the block, and nothing was written before it.
        with transaction.atomic(savepoint=False):
            orders, locked = sql.lock_order_and_items(
                user=user, number=order_number, channel=channel, pks=list(given)
            )
            refusal = _first_broken_rule(orders, given.keys(), locked)
            if refusal is None:
                amount = sum((item.price for item in locked), Decimal("0.00"))
                captured = sql.write_capture(
                    order=orders[0],
                    user_id=user.pk,
                    now=timezone.now(),
                    amount=amount,
                    idempotency_key=idempotency_key,
                    request_id=request_id,
                    changes={item.pk: given[item.pk].attributes for item in locked},
                )
        if refusal is None:
            metrics.observe_capture(items=len(locked), amount=amount, currency=captured.currency)
            return captured
        if len(orders) == 1:
            refusal.order_id = orders[0].pk
        metrics.count(metrics.REFUSALS, refusal.default_code)
        raise refusal


def _first_broken_rule(
    orders: list[sql.LockedOrder], given_pks, items: list[sql.LockedItem]
) -> CaptureError | None:
    """The first rule the capture breaks, in the order of the module docstring."""
    if not orders:
        return OrderNotFound()
    if len(orders) > 1:
        return OrderAmbiguous()
    if orders[0].status not in CAPTURABLE_ORDER_STATUSES:
        return OrderNotCapturable(orders[0].status)
    if missing := given_pks - {item.pk for item in items}:
        return OrderItemNotFound(missing)
    if refused := [item.pk for item in items if item.status in NON_CAPTURABLE_ITEM_STATUSES]:
        return OrderItemNotCapturable(refused)
    if captured := [item.pk for item in items if item.captured_at is not None]:
        return AlreadyCaptured(captured)
    return None


@contextmanager
def _lock_waits_raise_order_locked() -> Iterator[None]:
    """A lock wait past lock_timeout (or a deadlock) becomes OrderLocked: retryable."""
    try:
        yield
    except OperationalError as exc:
        if isinstance(
            exc.__cause__, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected
        ):
            raise OrderLocked() from exc
        raise
