"""The capture's read of the order and its items, folded into the authentication
statement (accounts/authentication.py): a capture is then two statements, that one
and the write (capture/sql.py, capture/services.py).

The read needs the order number, the channel and the item pks before DRF has parsed
the body, so it reads them from the raw body. When the body is not plain JSON of the
request's shape, or its values are not the validated ones (validation trims the
number, for one), there is no read here and the service reads under locks instead:
the body's own answer (400, 415, 413) is left to the parser and the serializer."""

import json

from omnitron.api.lookups import UserLookup
from omnitron.limits import MAX_BIGINT

from .idempotency import IDEMPOTENCY_KEY, RECORDS
from .sql import READ_ORDER_AND_ITEMS, Seen, seen_from_json

# A larger body (about 5,000 items and up) is read under locks instead of parsed twice.
MAX_READ_BODY_BYTES = 256 * 1024


class OrderReadLookup(UserLookup):
    """The order and items of the body (a Seen), or None when the user has an answer
    stored under the request's Idempotency-Key: a replay reads no order."""

    name = "order_read"
    sql = f"""
        SELECT CASE WHEN %(capture_key)s::text IS NULL OR NOT EXISTS (
                    SELECT 1 FROM {RECORDS} r
                     WHERE r.user_id = token_user.id AND r.key = %(capture_key)s::text)
               THEN ({READ_ORDER_AND_ITEMS}) END"""

    def params(self, request) -> dict | None:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            return None  # refused before the capture reads anything
        read = _number_channel_pks(request)
        if read is None:
            return None
        number, channel, pks = read
        return {
            "capture_key": key,
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
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= MAX_READ_BODY_BYTES:
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    number, channel, items = data.get("order"), data.get("channel"), data.get("order_items")
    if not (isinstance(number, str) and _is_text(number)):
        return None
    if channel is not None and not _is_bigint(channel):
        return None
    if not (isinstance(items, list) and items):
        return None
    pks = [item.get("pk") if isinstance(item, dict) else None for item in items]
    if not all(_is_bigint(pk) for pk in pks):
        return None
    return number, channel, pks


def _is_bigint(value) -> bool:
    return type(value) is int and -MAX_BIGINT - 1 <= value <= MAX_BIGINT  # not bool


def _is_text(value: str) -> bool:
    """PostgreSQL's text: no NUL, and valid UTF-8 (no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
