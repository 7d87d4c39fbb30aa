"""The capture's read of the order and its items, folded into the authentication
statement (accounts/authentication.py): a capture is then two statements, that one
and the write (capture/sql.py, capture/services.py).

The read needs the order number, the channel and the item pks before DRF has parsed
the body, so it reads them from the raw body. When the body is not JSON of the plain
shape (capture/shape.py: what validation gives back as it is), there is no read here
and the service reads under locks instead: the body's own answer (400, 413, 415) is left to the
parser and the serializer, after authentication, as for any request. Users without
the capture permission get no read."""

import json

from django.conf import settings
from django.utils import timezone

from omnitron import collector
from omnitron.api.lookups import UserLookup
from omnitron.api.middleware import declared_length
from omnitron.api.parsers import is_identity_encoded, is_json

from .exceptions import InvalidIdempotencyKey
from .idempotency import RECORDS, TTL, idempotency_key
from .shape import plain_request
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
    """The order number, channel and item pks of a JSON capture body of the plain
    shape (capture/shape.py), as validation gives them back."""
    if not (is_json(request) and is_identity_encoded(request)):
        return None
    length = declared_length(request)
    if not 0 < length <= min(MAX_READ_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE):
        return None  # a body Django refuses is refused after authentication
    try:
        with collector.paused():
            data = json.loads(request.body)
    except (ValueError, RecursionError):
        return None
    if not plain_request(data):
        return None
    return data["order"], data.get("channel"), [item["pk"] for item in data["order_items"]]
