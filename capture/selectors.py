"""Reads of captures: the items a capture would take, the captures of the user's
channels (the API and the admin) and the rows of the reconciliation export. The
audit's own checks are in integrity.py."""

from collections.abc import Iterator

from django.contrib.postgres.expressions import ArraySubquery
from django.db import transaction
from django.db.models import (
    Count,
    F,
    Lookup,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    TextField,
)
from django.db.models.functions import Cast, Length

from orders.models import OrderItem
from orders.selectors import in_channels, visible_to

from .models import Capture, CaptureItem
from .rules import CAPTURABLE_ORDER_STATUSES, NON_CAPTURABLE_ITEM_STATUSES


def capturable_items() -> QuerySet[OrderItem]:
    """The items a capture would take now, by the rules of services.py that an item and
    its order decide alone (those of order_not_capturable, order_item_not_capturable,
    already_captured and order_item_price_invalid): not captured, of a status capture
    takes in an order of one, priced at zero or more in the order's currency."""
    return OrderItem.objects.filter(
        captured_at__isnull=True,
        order__status__in=CAPTURABLE_ORDER_STATUSES,
        price__gte=0,
        price_currency=F("order__currency"),
    ).exclude(status__in=NON_CAPTURABLE_ITEM_STATUSES)


def captures_with_items() -> QuerySet[Capture]:
    """Captures with what their representation needs: order, user, items by item pk."""
    return Capture.objects.select_related("order", "user").prefetch_related(
        Prefetch("items", queryset=CaptureItem.objects.order_by("order_item_id"))
    )


def capture_item_count() -> Subquery:
    """A capture's number of items, for a list's page of captures (a count per row of
    the page, on the items' capture index: COUNT(*) may read the index alone)."""
    items = CaptureItem.objects.filter(capture=OuterRef("pk")).order_by()
    return Subquery(items.values("capture").annotate(n=Count("*")).values("n"))


def capture_attribute_characters(pks: list[int], *, using: str) -> dict[int, int]:
    """The characters of each capture's items' attributes, before and after, as JSON
    (the part of a capture's answer its items' number does not bound)."""
    sizes = (
        CaptureItem.objects.using(using)
        .filter(capture_id__in=pks)
        .order_by()
        .values("capture_id")
        .annotate(
            size=Sum(
                Length(Cast("attributes_before", TextField()))
                + Length(Cast("attributes_after", TextField()))
            )
        )
    )
    return {row["capture_id"]: row["size"] or 0 for row in sizes}


def capture_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Capture]:
    """Captures of the orders the user may see, with their items. Filters: order,
    channel, created_at__gte, created_at__lte."""
    captures = visible_to(captures_with_items(), user)
    filters = dict(filters or {})
    if "channel" in filters:
        captures = in_channels(captures, [filters.pop("channel")])
    if "order" in filters:
        filters["order_id"] = filters.pop("order")
    return captures.filter(**filters)


# The reconciliation export (capture/export.py): one row per captured item, these
# columns, named as the API names them.
CAPTURED_ITEM_COLUMNS = {
    "capture_id": "capture_id",
    "created_at": "capture__created_at",
    "order_number": "capture__order__number",
    "channel": "capture__order__channel_id",
    "order_item_id": "order_item_id",
    "sku": "order_item__product_sku",
    "price": "price",
    "currency": "capture__currency",
    "username": "capture__user__username",
    "idempotency_key": "capture__idempotency_key",
    "request_id": "capture__request_id",
}


def captured_item_count(captures: QuerySet[Capture], *, at_most: int) -> int:
    """How many items these captures hold, counted up to `at_most` (a LIMIT inside the
    count: the cost stays bounded whatever the captures hold)."""
    # A capture holds one item or more: past `at_most` captures, their first `at_most`
    # hold `at_most` items already, so no more ids are read.
    items = CaptureItem.objects.filter(_of_captures(captures, at_most=at_most)).order_by()
    return items[:at_most].count()


def captured_item_rows(captures: QuerySet[Capture], *, chunk_size: int = 2000) -> Iterator[tuple]:
    """Every item of these captures, as a tuple of CAPTURED_ITEM_COLUMNS' values, in
    the order they were captured (CaptureItem pk). One query, read `chunk_size` rows at
    a time through a server-side cursor, so memory stays flat whatever the count. The
    database is chosen now, where the request reads (a replica: omnitron/db/router.py),
    not when the rows are read: they stream after the request's view has returned."""
    items = (
        CaptureItem.objects.filter(_of_captures(captures))
        .order_by("pk")
        .values_list(*CAPTURED_ITEM_COLUMNS.values())
    )
    return _streamed(items.using(items.db), chunk_size)


class _AnyOf(Lookup):
    """`lhs = ANY(rhs)`, rhs an array (used as an expression, not registered)."""

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def _of_captures(captures: QuerySet[Capture], *, at_most: int | None = None) -> _AnyOf:
    """The items of these captures, by `capture_id = ANY(ARRAY(SELECT id ...))`: the
    captures' ids are found first, and their items looked up on the items' capture
    index. As `IN (SELECT ...)`, PostgreSQL joined every captured item to the captures
    (a sequential scan of the items for a day's file: 0.4 s at 300,000 items), and its
    generic plan read every order too; the count's generic plan read every captured
    item. The array holds `at_most` ids at most; an export, MAX_EXPORT_ROWS items."""
    ids = captures.order_by().values("pk")
    return _AnyOf(F("capture_id"), ArraySubquery(ids[:at_most] if at_most else ids))


def _streamed(rows: QuerySet, chunk_size: int) -> Iterator[tuple]:
    # The cursor lives in a transaction: psycopg's server-side cursors need one (else
    # PostgreSQL would materialise the whole result first, WITH HOLD), and a
    # transaction-pooling PgBouncer keeps the server connection for its length.
    with transaction.atomic(using=rows.db):
        yield from rows.iterator(chunk_size=chunk_size)
