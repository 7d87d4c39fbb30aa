"""Every code the capture endpoint answers besides those of omnitron/api/error_codes.py:
status, shape, message and when. capture/exceptions.py raises them; the schema and
docs/api.md are generated from this table. "Rule N" is the rule's number in
docs/api.md, which lists the rules in the order they are checked."""

from rest_framework import status

from omnitron.api.error_codes import NON_FIELD_ERRORS, ErrorCode
from omnitron.exactjson import MAX_INTEGER_DIGITS, MAX_NUMERIC_FRACTION_DIGITS

from .rules import (
    IDEMPOTENCY_KEY_TTL_HOURS,
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_ITEMS_PER_CAPTURE,
    NON_CAPTURABLE_ITEM_STATUSES,
)


def _one_of(statuses) -> str:
    """The statuses' labels as a list in words, for a message: "cancellation_waiting,
    canceled or refunded"."""
    names = [status.label for status in sorted(statuses, key=int)]
    return " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


ORDER = "order"
ORDER_ITEMS = "order_items"
ATTRIBUTES = "order_items[].attributes"


class CaptureErrorCode(ErrorCode):
    INVALID_IDEMPOTENCY_KEY = (
        status.HTTP_400_BAD_REQUEST,
        None,
        f"Idempotency-Key must be one header of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII "
        "characters other than a comma.",
        "Rule 4: the `Idempotency-Key` header is empty, too long, not visible ASCII, holds a "
        "comma, or is sent twice.",
    )
    TOO_MANY_ITEMS = (
        status.HTTP_400_BAD_REQUEST,
        ORDER_ITEMS,
        f"At most {MAX_ITEMS_PER_CAPTURE} order items can be captured at once.",
        f"Rule 6: over {MAX_ITEMS_PER_CAPTURE:,} entries in `order_items`.",
    )
    DUPLICATE_ORDER_ITEMS = (
        status.HTTP_400_BAD_REQUEST,
        ORDER_ITEMS,
        "Order items listed more than once: {pks}.",
        "Rule 6: the same pk twice in `order_items`.",
    )
    ATTRIBUTES_TOO_LARGE = (
        status.HTTP_400_BAD_REQUEST,
        ATTRIBUTES,
        f"Attributes are {{size}} bytes; at most {MAX_ATTRIBUTES_BYTES} are allowed.",
        f"Rule 6: an item's `attributes` over {MAX_ATTRIBUTES_BYTES // 1024} KB serialized.",
    )
    TOO_DEEP = (
        status.HTTP_400_BAD_REQUEST,
        ATTRIBUTES,
        f"Attributes are nested deeper than {MAX_ATTRIBUTES_DEPTH} levels.",
        f"Rule 6: an item's `attributes` nested over {MAX_ATTRIBUTES_DEPTH} levels.",
    )
    NUMBER_OUT_OF_RANGE = (
        status.HTTP_400_BAD_REQUEST,
        ATTRIBUTES,
        f"Numbers must have at most {MAX_INTEGER_DIGITS} digits before the decimal "
        f"point and {MAX_NUMERIC_FRACTION_DIGITS} after it.",
        f"Rule 6: a number in `attributes` with more than {MAX_INTEGER_DIGITS:,} digits before "
        "the point (an integer JSON clients such as Python's cannot read back: `1e5000`) or "
        f"more than {MAX_NUMERIC_FRACTION_DIGITS:,} after it (PostgreSQL's numeric).",
    )
    ORDER_NOT_FOUND = (
        status.HTTP_400_BAD_REQUEST,
        ORDER,
        "Order not found.",
        "Rule 8.1: no order with that number in your channels (and in `channel`, when "
        "given); an order of a channel you do not have is not found either.",
    )
    ORDER_AMBIGUOUS = (
        status.HTTP_400_BAD_REQUEST,
        ORDER,
        "This order number exists in several of your channels; send `channel` too.",
        "Rule 8.1: the number is in several of your channels and `channel` was not sent.",
    )
    ORDER_NOT_CAPTURABLE = (
        status.HTTP_400_BAD_REQUEST,
        NON_FIELD_ERRORS,
        "Order in status {status} cannot be captured.",
        "Rule 8.2: the order's status is not one of `CAPTURABLE_ORDER_STATUSES`.",
    )
    ORDER_ITEM_NOT_FOUND = (
        status.HTTP_400_BAD_REQUEST,
        ORDER_ITEMS,
        "Order items not found in this order: {pks}.",
        "Rule 8.3: a pk is not an item of this order.",
    )
    ORDER_ITEM_NOT_CAPTURABLE = (
        status.HTTP_400_BAD_REQUEST,
        ORDER_ITEMS,
        "Order items cannot be captured in their status: {pks}.",
        f"Rule 8.4: an item is {_one_of(NON_CAPTURABLE_ITEM_STATUSES)}.",
    )
    ALREADY_CAPTURED = (
        status.HTTP_400_BAD_REQUEST,
        ORDER_ITEMS,
        "Order items already captured: {pks}.",
        "Rule 8.5: an item is captured already (a second capture is an error, never a "
        "silent success).",
    )
    ORDER_ITEM_PRICE_INVALID = (
        status.HTTP_400_BAD_REQUEST,
        ORDER_ITEMS,
        "Order items cannot be captured at their price: {pks}.",
        "Rule 8.6: an item's price is negative, or in another currency than the order's "
        "(a capture's amount is the sum of its items' prices, in the order's currency).",
    )
    ORDER_LOCKED = (
        status.HTTP_409_CONFLICT,
        None,
        "The order is being changed by another request. Retry shortly.",
        "Rule 9: another request held the order's or an item's lock past "
        "`DB_LOCK_TIMEOUT_MS`. "
        "Nothing changed. Retry (`Retry-After: 1`).",
    )
    IDEMPOTENCY_KEY_IN_USE = (
        status.HTTP_409_CONFLICT,
        None,
        "A request with this Idempotency-Key is still being processed. Retry shortly.",
        "Rule 7: the first request with this key is still running. Retry (`Retry-After: 1`).",
    )
    IDEMPOTENCY_KEY_REUSED = (
        status.HTTP_422_UNPROCESSABLE_ENTITY,
        None,
        "This Idempotency-Key was used with a different request body.",
        "Rule 7: the key was used with another body in the last "
        f"{IDEMPOTENCY_KEY_TTL_HOURS} hours.",
    )


class ExportErrorCode(ErrorCode):
    """The reconciliation export's: the captures list as CSV, the API's and the admin's."""

    EXPORT_TOO_LARGE = (
        status.HTTP_400_BAD_REQUEST,
        None,
        "The export holds more than {limit:,} rows: narrow it with the list's filters "
        "(a date range).",
        "A CSV export (the captures list with `Accept: text/csv`) of more rows than one "
        "answer sends within gunicorn's timeout: cut short there, it ended as a "
        "complete-looking file missing rows. Export by date range.",
    )
