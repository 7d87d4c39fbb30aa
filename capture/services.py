"""Capture: mark exactly the given items of an order captured, or none of them.

`capture_answer` is the endpoint's answer to a validated request: `order_capture`,
under the request's Idempotency-Key when it has one (capture/idempotency.py), rendered.

`order_capture` reads, judges, writes (Saleor's order actions):

1. read the order and the given items. Usually the authentication statement has read
   them already (capture/lookups.py: no round trip of its own, no lock). Otherwise, and
   when the write below finds that a row changed since that read, they are read again
   inside a transaction that locks the order row, then the given items in pk order
   (`sql.lock_order_and_items`; every capture locks in this order, so captures never
   deadlock);
2. check the rules on what was read (`_first_broken_rule`, in the order docs/api.md
   lists them): the first that fails is raised, nothing written;
3. write, in one statement (`sql.write_capture`), which locks the order and the items
   (in the same order) and writes only if the order's status and currency and every
   item's row are as read: the items' `captured_at` and their merged attributes, the
   audit record (`Capture`, amount = the sum of the items' prices, and a `CaptureItem`
   per item with its attributes before and after), the order's `modified_date`, the
   `order.captured` event with a webhook delivery per subscription that wants it
   (events/sql.py); and read the order back. A capture takes effect as of its read:
   a refusal is what the rows said then, and a write happens only if they still say it.

Waiting for another request's lock longer than `lock_timeout` is `OrderLocked`.
The unique `CaptureItem.order_item` is the database's own guarantee that no item is
ever captured twice. The errors' codes, statuses and messages are in
capture/error_codes.py; docs/api.md lists them with the rules."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.db import OperationalError, transaction
from django.utils import timezone

from omnitron.api.exceptions import LOCK_WAITS
from orders.models import Order

from . import metrics, sql
from .answers import Answer, order_answer
from .exceptions import (
    AlreadyCaptured,
    CaptureError,
    OrderAmbiguous,
    OrderItemNotCapturable,
    OrderItemNotFound,
    OrderItemPriceInvalid,
    OrderLocked,
    OrderNotCapturable,
    OrderNotFound,
)
from .idempotency import idempotent_answer, request_fingerprint
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
    seen: sql.Seen | None = None,
) -> Order:
    """Capture exactly the given items of the order, or none of them, and return the
    order as it is after the capture. `seen`: the order and items as read for this
    request already (by the authentication statement), if they were. Raises a
    CaptureError when a rule refuses and OrderLocked when the order stays locked by
    another request."""
    given = {item.pk: item for item in items}
    write = {"user_id": user.pk, "idempotency_key": idempotency_key, "request_id": request_id}
    with _lock_waits_raise_order_locked():
        outcome = None
        if seen is not None and seen.is_for(order_number, channel, given):
            outcome = _judge_and_write(seen, given, **write)
            if outcome is None:
                metrics.count_reread()
        if outcome is None:  # not read yet, or a row changed since it was read
            # No savepoint inside an enclosing transaction (the Idempotency-Key's): a
            # refusal is raised only after the block, and nothing was written before it.
            with transaction.atomic(savepoint=False):
                seen = sql.lock_order_and_items(
                    user=user, number=order_number, channel=channel, pks=list(given)
                )
                outcome = _judge_and_write(seen, given, **write)
                if outcome is None:  # unreachable: this transaction holds the rows' locks
                    raise RuntimeError("A row changed under the capture's own lock.")
    if isinstance(outcome, CaptureError):
        if len(seen.orders) == 1:
            outcome.order_id = seen.orders[0].pk
        refused = outcome.default_code  # counted once committed, as a capture is
        transaction.on_commit(lambda: metrics.count_refusal(refused), robust=True)
        raise outcome
    # Counted once committed: inside the Idempotency-Key's transaction the commit is
    # still to come, and it can fail (a row deleted meanwhile: `deleted_meanwhile`).
    counted = {"items": len(given), "amount": _amount(seen.items), "currency": outcome.currency}
    # Robust: a failing counter must not turn a committed capture into a 500.
    transaction.on_commit(lambda: metrics.observe_capture(**counted), robust=True)
    return outcome


def capture_answer(
    *,
    user,
    data: dict,
    idempotency_key: str | None = None,
    stored: list | None = None,
    seen: sql.Seen | None = None,
    request_id: str = "",
) -> Answer:
    """The capture endpoint's answer to a validated request (CaptureOrderSerializer's
    data), rendered: the order after `order_capture`; with an Idempotency-Key, the
    answer stored under the key (the first request's, or this one's, stored in the
    capture's transaction: capture/idempotency.py). `stored` and `seen`: the key's
    stored answer and the order as the authentication statement read them, if it did.
    Raises what order_capture and idempotent_answer raise."""

    def capture() -> Order:
        return order_capture(
            user=user,
            order_number=data["order"],
            items=[ItemInput(item["pk"], item.get("attributes")) for item in data["order_items"]],
            channel=data.get("channel"),
            idempotency_key=idempotency_key,
            request_id=request_id,
            seen=seen,
        )

    if idempotency_key is None:
        return order_answer(capture())
    return idempotent_answer(
        user=user,
        key=idempotency_key,
        fingerprint=request_fingerprint(data),
        capture=capture,
        stored=stored,
    )


def _judge_and_write(seen: sql.Seen, given: dict, **write) -> Order | CaptureError | None:
    """The first broken rule; else the capture written and the order after it; None
    when a row changed since `seen` was read (nothing written)."""
    refusal = _first_broken_rule(seen, given.keys())
    if refusal is not None:
        return refusal
    return sql.write_capture(
        order=seen.orders[0],
        items=seen.items,
        now=timezone.now(),
        amount=_amount(seen.items),
        changes={pk: item.attributes for pk, item in given.items()},
        **write,
    )


def _amount(items: list[sql.SeenItem]) -> Decimal:
    return sum((item.price for item in items), Decimal("0.00"))


def _first_broken_rule(seen: sql.Seen, given_pks) -> CaptureError | None:
    """The first rule the capture breaks, in the order docs/api.md lists them (rule 8;
    tests/capture/test_rules.py checks that order), or None. The rules an item decides
    alone are also in capture/selectors.capturable_items (the items the demo offers):
    change both."""
    orders, items = seen.orders, seen.items
    if not orders:  # none in the user's channels (and `channel`): absent or another's
        return OrderNotFound()
    if len(orders) > 1:  # the number in several of the user's channels
        return OrderAmbiguous()
    if orders[0].status not in CAPTURABLE_ORDER_STATUSES:
        return OrderNotCapturable(orders[0].status)
    if missing := given_pks - {item.pk for item in items}:  # not items of this order
        return OrderItemNotFound(missing)
    if refused := [item.pk for item in items if item.status in NON_CAPTURABLE_ITEM_STATUSES]:
        return OrderItemNotCapturable(refused)
    if captured := [item.pk for item in items if item.captured]:  # never a silent success
        return AlreadyCaptured(captured)
    # The capture's amount is the sum of its items' prices, in the order's currency.
    currency = orders[0].currency
    if mispriced := [item.pk for item in items if item.price < 0 or item.currency != currency]:
        return OrderItemPriceInvalid(mispriced)
    return None


@contextmanager
def _lock_waits_raise_order_locked() -> Iterator[None]:
    """A lock wait past lock_timeout (or a deadlock) becomes OrderLocked: retryable."""
    try:
        yield
    except OperationalError as exc:
        if isinstance(exc.__cause__, LOCK_WAITS):
            raise OrderLocked() from exc
        raise
