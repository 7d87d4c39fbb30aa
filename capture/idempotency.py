"""Idempotency-Key: the first request with a key that reaches the capture rules
stores its answer; a retry with the same key and body gets that answer again.

`idempotent_answer` is the whole flow, called by `services.capture_answer`: claim the
key, produce the answer (run the capture and render it), store it. Everything happens inside the
capture's own transaction, so a stored answer and the capture it describes are
committed together or not at all. A transaction-level advisory lock on (user, key)
tells a concurrent duplicate that the first request is still running, without
making it wait. A retry whose body, as sent, is the stored request replays before the
body is validated again (`replay_as_sent`): a replay is then the token statement
(which reads the stored answer) and a hash."""

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from omnitron import exactjson
from omnitron.api.exceptions import error_body
from omnitron.api.lookups import UserLookup
from omnitron.api.renderers import render_json
from omnitron.db.pruning import delete_in_batches
from orders.models import Order
from orders.selectors import channel_visible_sql

from . import metrics
from .answers import Answer, order_answer
from .exceptions import (
    CaptureError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    OrderNotFound,
)
from .models import IdempotencyRecord
from .rules import IDEMPOTENCY_KEY_TTL_HOURS, MAX_IDEMPOTENCY_KEY_LENGTH
from .shape import ITEM_FIELDS, REQUEST_FIELDS, plain_request
from .sql import ORDERS

TTL = timedelta(hours=IDEMPOTENCY_KEY_TTL_HOURS)


def expired_before() -> datetime:
    """A record created at or before this has expired: it is not replayed, and pruned."""
    return timezone.now() - TTL


def idempotent_answer(
    *, user, key: str, fingerprint: str, capture: Callable[[], Order], stored=None
) -> Answer:
    """The answer to a request with an Idempotency-Key: the stored answer when this
    user sent this key with the same request before (`stored`, when the caller read it
    already: StoredAnswerLookup); otherwise, in one transaction, `capture()`'s order,
    rendered and stored. A CaptureError that `capture` raises is stored as its error
    answer, then raised; any other error stores nothing.

    Raises IdempotencyKeyReused when the key was used with another request,
    IdempotencyKeyInUse when a request with this key is still running, and
    OrderNotFound when the stored answer shows an order the user may no longer see."""
    record = {"user": user, "key": key, "fingerprint": fingerprint}
    if stored is not None:  # a stored answer is final: no lock needed to replay it
        return _replay(stored, fingerprint)
    with transaction.atomic():
        claimed = _claim(**record)
        if claimed is not None:
            return claimed
        try:
            order = capture()
        except CaptureError as exc:
            refusal = exc
            body = render_json(error_body(exc))
            _store(**record, answer=Answer(exc.status_code, body), order_id=exc.order_id)
        else:
            answer = order_answer(order)
            _store(**record, answer=answer, order_id=order.pk)
            return answer
    raise refusal


def replay_as_sent(stored, data) -> Answer | None:
    """The stored answer, without validating the body again, when the body as sent
    is the stored request: it has the shape validation gives back (capture/shape.py:
    no other keys, no nulls, integers where integers go) and fingerprints as the
    stored, validated request. None otherwise: the caller validates and compares the
    validated body, which may still be the same request (validation trims the order
    number, for one). Raises what `_replay` raises."""
    if not plain_request(data):
        return None
    fingerprint = request_fingerprint(data)
    if fingerprint != stored[0]:
        return None
    return _replay(stored, fingerprint)


# Visible ASCII but the comma: two Idempotency-Key headers arrive joined by one.
IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x2b\x2d-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}")


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key header, or None when it has none. Raises
    InvalidIdempotencyKey when it is not 1 to MAX_IDEMPOTENCY_KEY_LENGTH visible ASCII
    characters other than a comma."""
    raw = request.headers.get("Idempotency-Key")
    if raw is not None and not IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidIdempotencyKey()
    return raw


def request_fingerprint(data: dict) -> str:
    """A hash of a validated capture request: equal for the same order, channel and
    items, whatever the JSON's whitespace and key order. Every field counts (an absent
    one as null), so two requests that differ in any field never share an answer."""
    payload = {field: data.get(field) for field in REQUEST_FIELDS}
    payload["order_items"] = [
        {field: item.get(field) for field in ITEM_FIELDS} for item in data["order_items"]
    ]
    canonical = exactjson.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _advisory_lock_id(user_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


RECORDS = IdempotencyRecord._meta.db_table

TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%(id)s)"


def _stored(user_id: str, superuser: str, key: str, since: str) -> str:
    """The stored answer of a (user, key) as one JSON array: fingerprint, status, body,
    and whether the user may still see its order (SQL expressions as arguments)."""
    return f"""
    SELECT json_build_array(r.request_fingerprint, r.status_code, r.response_body,
           r.order_id IS NULL OR EXISTS (
               SELECT 1 FROM {ORDERS} o
                WHERE o.id = r.order_id
                  AND {channel_visible_sql("o.channel_id", user="r.user_id", superuser=superuser)}))
      FROM {RECORDS} r
     WHERE r.user_id = {user_id} AND r.key = {key} AND r.created_at > {since}"""


READ = _stored("%(user)s", "%(superuser)s", "%(key)s", "%(since)s")


class StoredAnswerLookup(UserLookup):
    """The stored answer of the request's Idempotency-Key, read by the authentication
    statement itself: a replay then needs no statement of its own."""

    name = "stored_answer"
    sql = _stored("token_user.id", "token_user.is_superuser", "%(idempotency_key)s",
                  "%(idempotency_since)s")  # fmt: skip

    def params(self, request) -> dict | None:
        try:
            key = idempotency_key(request)
        except InvalidIdempotencyKey:
            return None  # refused by the view
        if key is None:
            return None
        return {"idempotency_key": key, "idempotency_since": expired_before()}


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
        cursor.execute(READ, {"user": user.pk, "key": key, "since": expired_before(),
                              "superuser": user.is_superuser})  # fmt: skip
        row = cursor.fetchone()
    if row is not None:
        return _replay(row[0], fingerprint)
    if not locked:
        raise IdempotencyKeyInUse()
    return None


def _replay(stored: list, fingerprint: str) -> Answer:
    """The stored answer (fingerprint, status, body, visible), if this request may
    have it."""
    stored_fingerprint, status_code, body, visible = stored
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if not visible:
        raise OrderNotFound()  # the user lost the order's channel since
    metrics.count_replay()
    return Answer(status_code, body.encode("utf-8"), replayed=True)


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


def idempotency_prune() -> int:
    """Delete the records older than the TTL; returns how many."""
    expired = IdempotencyRecord.objects.filter(created_at__lte=expired_before())
    return delete_in_batches(expired)
