"""Idempotency-Key: the first request with a key that reaches the capture rules
stores its answer; a retry with the same key and body gets that answer again.

`idempotent_answer` is the whole flow, called by the view: claim the key, produce
the answer (run the capture and render it), store it. Everything happens inside the
capture's own transaction, so a stored answer and the capture it describes are
committed together or not at all. A transaction-level advisory lock on (user, key)
tells a concurrent duplicate that the first request is still running, without
making it wait."""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status

from omnitron import exactjson, metrics
from omnitron.api.exceptions import error_body
from omnitron.api.renderers import render_json
from orders.models import ChannelMembership, Order
from orders.serializers import OrderSerializer

from .exceptions import (
    CaptureError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    OrderNotFound,
)
from .models import IdempotencyRecord
from .rules import IDEMPOTENCY_KEY_TTL_HOURS, MAX_IDEMPOTENCY_KEY_LENGTH

TTL = timedelta(hours=IDEMPOTENCY_KEY_TTL_HOURS)


@dataclass(frozen=True)
class Answer:
    """A rendered answer, byte for byte what a replay with the same key answers."""

    status_code: int
    body: bytes
    replayed: bool = False


def idempotent_answer(*, user, key: str, fingerprint: str, capture: Callable[[], Order]) -> Answer:
    """The answer to a request with an Idempotency-Key, in one transaction: the stored
    answer when this user sent this key with the same request before; otherwise
    `capture()`'s order, rendered and stored. A CaptureError that `capture` raises
    is stored as its error answer, then raised; any other error stores nothing.

    Raises IdempotencyKeyReused when the key was used with another request,
    IdempotencyKeyInUse when a request with this key is still running, and
    OrderNotFound when the stored answer shows an order the user may no longer see."""
    record = {"user": user, "key": key, "fingerprint": fingerprint}
    with transaction.atomic():
        stored = _claim(**record)
        if stored is not None:
            metrics.count(metrics.REPLAYS)
            return stored
        try:
            order = capture()
        except CaptureError as exc:
            refusal = exc
            body = render_json(error_body(exc))
            _store(**record, answer=Answer(exc.status_code, body), order_id=exc.order_id)
        else:
            answer = Answer(status.HTTP_200_OK, render_json(OrderSerializer(order).data))
            _store(**record, answer=answer, order_id=order.pk)
            return answer
    raise refusal


# Visible ASCII but the comma: two Idempotency-Key headers arrive joined by one.
IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x2b\x2d-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}")


def idempotency_key_parse(raw: str | None) -> str | None:
    """The header's value, or None when absent."""
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidIdempotencyKey()
    return raw


def request_fingerprint(data: dict) -> str:
    """A hash of a validated capture request: equal for the same order, channel and
    items, whatever the JSON's whitespace and key order."""
    payload = {
        "order": data["order"],
        "channel": data.get("channel"),
        "order_items": [
            {"pk": item["pk"], "attributes": item.get("attributes")} for item in data["order_items"]
        ],
    }
    canonical = exactjson.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _advisory_lock_id(user_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


RECORDS = IdempotencyRecord._meta.db_table
ORDERS = Order._meta.db_table
MEMBERSHIPS = ChannelMembership._meta.db_table

TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%(id)s)"
READ = f"""
    SELECT r.request_fingerprint, r.status_code, r.response_body,
           r.order_id IS NULL OR %(superuser)s OR EXISTS (
               SELECT 1 FROM {ORDERS} o JOIN {MEMBERSHIPS} m ON m.channel_id = o.channel_id
                WHERE o.id = r.order_id AND m.user_id = r.user_id) AS visible
      FROM {RECORDS} r
     WHERE r.user_id = %(user)s AND r.key = %(key)s AND r.created_at > %(since)s
    """
STORE = f"""
    INSERT INTO {RECORDS}
           (user_id, key, request_fingerprint, status_code, response_body, order_id,
            created_at)
    VALUES (%(user)s, %(key)s, %(fingerprint)s, %(status)s, %(body)s, %(order)s, %(now)s)
    ON CONFLICT (user_id, key) DO UPDATE
       SET request_fingerprint = EXCLUDED.request_fingerprint,
           status_code = EXCLUDED.status_code,
           response_body = EXCLUDED.response_body,
           order_id = EXCLUDED.order_id,
           created_at = EXCLUDED.created_at
    """


def _claim(*, user, key: str, fingerprint: str) -> Answer | None:
    """Within the caller's transaction: the stored answer for this key, or None when the
    caller goes on to produce the answer (and then calls `_store`).

    Raises IdempotencyKeyReused when the key was used with another body, and
    IdempotencyKeyInUse when a request with this key is still running."""
    with connection.cursor() as cursor:
        cursor.execute(TRY_LOCK, {"id": _advisory_lock_id(user.pk, key)})
        (locked,) = cursor.fetchone()
        # A separate statement, so its snapshot sees whatever the lock holder committed.
        since = timezone.now() - TTL
        cursor.execute(
            READ,
            {"user": user.pk, "key": key, "since": since, "superuser": user.is_superuser},
        )
        row = cursor.fetchone()
    if row is not None:
        stored_fingerprint, status_code, body, visible = row
        if stored_fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if not visible:
            raise OrderNotFound()  # the user lost the order's channel since
        return Answer(status_code, body.encode("utf-8"), replayed=True)
    if not locked:
        raise IdempotencyKeyInUse()
    return None


def _store(*, user, key: str, fingerprint: str, answer: Answer, order_id: int | None) -> None:
    """Store the answer, replacing an expired record of the same key."""
    with connection.cursor() as cursor:
        cursor.execute(
            STORE,
            {
                "user": user.pk,
                "key": key,
                "fingerprint": fingerprint,
                "status": answer.status_code,
                "body": answer.body.decode("utf-8"),
                "order": order_id,
                "now": timezone.now(),
            },
        )


def idempotency_prune(*, now=None) -> int:
    """Delete the records older than the TTL; returns how many."""
    cutoff = (now or timezone.now()) - TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lte=cutoff).delete()
    return deleted
