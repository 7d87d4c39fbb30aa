"""The capture's read of the order and its items, folded into the authentication
statement (accounts/authentication.py): a capture is then two statements, that one
and the write (capture/sql.py, capture/services.py).

The read needs the order number, the channel and the item pks before DRF has parsed
the body, so it reads them from the raw body. When the body is not plain JSON of the
request's shape within the serializer's limits, or its values are not the validated
ones (validation trims the number, for one), there is no read here and the service
reads under locks instead: the body's own answer (400, 413, 415) is left to the
parser and the serializer, after authentication, as before. Users without the
capture permission get no read."""

import json

from django.conf import settings
from django.utils import timezone

from omnitron import exactjson
from omnitron.api.lookups import UserLookup
from omnitron.api.middleware import declared_length
from omnitron.limits import is_row_id
from orders.models import ORDER_NUMBER_LENGTH

from .exceptions import InvalidIdempotencyKey
from .idempotency import RECORDS, TTL, idempotency_key
from .rules import MAX_ITEMS_PER_CAPTURE
from .sql import READ_ORDER_AND_ITEMS, Seen, seen_from_json

# A larger body (1,000 items with large attributes) is read under locks instead of
# parsed twice.
MAX_READ_BODY_BYTES = 256 * 1024


class OrderReadLookup(UserLookup):
    """The order and items of the body (a Seen); None when the user lacks the capture
    permission or has an answer stored under the request's Idempotency-Key (a replay
    reads no order)."""

    name = "order_read"
    sql = f"""
        SELECT CASE WHEN token_user.has_required_permission AND (
                    %(capture_key)s::text IS NULL OR NOT EXISTS (
                    SELECT 1 FROM {RECORDS} r
                     WHERE r.user_id = token_user.id AND r.key = %(capture_key)s::text
                       AND r.created_at > %(capture_key_since)s))
               THEN ({READ_ORDER_AND_ITEMS}) END"""

    def params(self, request) -> dict | None:
        try:
            key = idempotency_key(request)
        except InvalidIdempotencyKey:
            return None  # refused before the capture reads anything
        read = _number_channel_pks(request)
        if read is None:
            return None
        number, channel, pks = read
        return {
            "capture_key": key,
            "capture_key_since": timezone.now() - TTL,
            "capture_number": number,
            "capture_channel": channel,
            "capture_pks": pks,
        }

    def load(self, value, params: dict) -> Seen | None:
        if value is None:
            return None
        return seen_from_json(
            value,
            number=params["capture_number"],
            channel=params["capture_channel"],
            pks=params["capture_pks"],
        )


def _number_channel_pks(request) -> tuple[str, int | None, list[int]] | None:
    """The order number, channel and item pks of a JSON capture body, if it has the
    shape the serializer validates, with values PostgreSQL takes as they are."""
    if request.content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    if request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower() not in ("", "identity"):
        return None
    length = declared_length(request)
    if not 0 < length <= min(MAX_READ_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE):
        return None  # a body Django refuses is refused after authentication, as before
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    number, channel, items = data.get("order"), data.get("channel"), data.get("order_items")
    # As validated: a number of 1 to ORDER_NUMBER_LENGTH characters (already
    # trimmed), 1 to MAX_ITEMS_PER_CAPTURE items, pks and channel from 1 to 2**63 - 1.
    if not isinstance(number, str) or not 0 < len(number) <= ORDER_NUMBER_LENGTH:
        return None
    if number != number.strip() or exactjson.text_refusal(number):
        return None
    if channel is not None and not is_row_id(channel):
        return None
    if not (isinstance(items, list) and 0 < len(items) <= MAX_ITEMS_PER_CAPTURE):
        return None
    pks = [item.get("pk") if isinstance(item, dict) else None for item in items]
    if not all(is_row_id(pk) for pk in pks):
        return None
    return number, channel, pks
