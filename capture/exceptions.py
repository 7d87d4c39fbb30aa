"""Every code the capture endpoint answers besides DRF's own (see the README's table).
The shapes come from omnitron.api.exceptions.CodedError: `field` names the key the
message goes under; no field means {"detail": ..., "code": ...}."""

from rest_framework import status

from omnitron.api.exceptions import NON_FIELD_ERRORS, CodedError


def _pks(pks) -> str:
    return ", ".join(str(pk) for pk in sorted(pks))


class CaptureError(CodedError):
    """A capture rule refused the request; nothing was changed."""

    status_code = status.HTTP_400_BAD_REQUEST


class OrderNotFound(CaptureError):
    field = "order"
    default_code = "order_not_found"
    default_detail = "Order not found."


class OrderAmbiguous(CaptureError):
    field = "order"
    default_code = "order_ambiguous"
    default_detail = "This order number exists in several of your channels; send `channel` too."


class OrderNotCapturable(CaptureError):
    field = NON_FIELD_ERRORS
    default_code = "order_not_capturable"

    def __init__(self, order_status: str):
        super().__init__(f"Order in status {order_status} cannot be captured.")


class ItemsError(CaptureError):
    """A rule that fails for some of the given items, named in the message."""

    field = "order_items"
    message = ""

    def __init__(self, pks):
        self.pks = sorted(pks)
        super().__init__(self.message.format(pks=_pks(self.pks)))


class OrderItemNotFound(ItemsError):
    default_code = "order_item_not_found"
    message = "Order items not found in this order: {pks}."


class OrderItemNotCapturable(ItemsError):
    default_code = "order_item_not_capturable"
    message = "Order items cannot be captured in their status: {pks}."


class AlreadyCaptured(ItemsError):
    default_code = "already_captured"
    message = "Order items already captured: {pks}."


class OrderLocked(CodedError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "order_locked"
    default_detail = "The order is being changed by another request. Retry shortly."


class InvalidIdempotencyKey(CodedError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = "Idempotency-Key must be 1 to 255 visible ASCII characters."


class IdempotencyKeyInUse(CodedError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_use"
    default_detail = "A request with this Idempotency-Key is still being processed. Retry shortly."


class IdempotencyKeyReused(CodedError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request body."
