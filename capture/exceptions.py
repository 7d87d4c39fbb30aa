"""The capture's errors, one class per code of capture/error_codes.py (which holds
their status, shape and message)."""

from omnitron.api.exceptions import CodedError

from .error_codes import CaptureErrorCode, ExportErrorCode


class CaptureError(CodedError):
    """A capture rule refused the request before anything was written. `order_id`:
    the order the refusal is about, when the rules found it.

    These are the refusals decided by the order and items as read, and only these are
    stored for an Idempotency-Key and replayed to its retries (capture/idempotency.py):
    a retry with the same key gets the same answer, even after the rows changed (an
    order refused as not capturable stays refused under that key once its status
    moves on; a new key asks again). A refusal that a retry with the same key should
    get past (OrderLocked, the key's own errors) is a CodedError that is not a
    CaptureError."""

    order_id: int | None = None


class OrderNotFound(CaptureError):
    error = CaptureErrorCode.ORDER_NOT_FOUND


class OrderAmbiguous(CaptureError):
    error = CaptureErrorCode.ORDER_AMBIGUOUS


class OrderNotCapturable(CaptureError):
    error = CaptureErrorCode.ORDER_NOT_CAPTURABLE

    def __init__(self, order_status: str):
        super().__init__(status=order_status)


# A refusal names at most this many items, then how many more. Naming 1,000 made-up
# 19-digit pks took 21 KB, stored for a day under each Idempotency-Key: one token at
# the capture limit filled 6 GB an hour (an outside test).
MAX_NAMED_ITEMS = 100


class ItemsError(CaptureError):
    """A rule that fails for some of the given items, named in the message (the
    first MAX_NAMED_ITEMS by pk)."""

    def __init__(self, pks):
        self.pks = sorted(pks)
        named = ", ".join(str(pk) for pk in self.pks[:MAX_NAMED_ITEMS])
        if len(self.pks) > MAX_NAMED_ITEMS:
            named += f" (and {len(self.pks) - MAX_NAMED_ITEMS:,} more)"
        super().__init__(pks=named)


class OrderItemNotFound(ItemsError):
    error = CaptureErrorCode.ORDER_ITEM_NOT_FOUND


class OrderItemNotCapturable(ItemsError):
    error = CaptureErrorCode.ORDER_ITEM_NOT_CAPTURABLE


class AlreadyCaptured(ItemsError):
    error = CaptureErrorCode.ALREADY_CAPTURED


class OrderItemPriceInvalid(ItemsError):
    error = CaptureErrorCode.ORDER_ITEM_PRICE_INVALID


class OrderLocked(CodedError):
    error = CaptureErrorCode.ORDER_LOCKED
    wait = 1


class InvalidIdempotencyKey(CodedError):
    error = CaptureErrorCode.INVALID_IDEMPOTENCY_KEY


class IdempotencyKeyInUse(CodedError):
    error = CaptureErrorCode.IDEMPOTENCY_KEY_IN_USE
    wait = 1


class IdempotencyKeyReused(CodedError):
    error = CaptureErrorCode.IDEMPOTENCY_KEY_REUSED


class ExportTooLarge(CodedError):
    error = ExportErrorCode.EXPORT_TOO_LARGE
