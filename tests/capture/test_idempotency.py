"""Idempotency-Key through the API: replay, reuse with another body, in use, expiry.
A retry's stored answer is usually read by the authentication statement
(StoredAnswerLookup); tests/capture/test_idempotency_flow.py covers the same rules when
the answer is read inside the capture's transaction instead (`_claim`: a retry that
raced the first request)."""

import json
from datetime import timedelta
from io import StringIO
from unittest.mock import patch

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import Capture, IdempotencyRecord
from orders.models import ChannelMembership, OrderItem
from tests.capture.locks import holding_order_lock, in_a_thread, wait_for_lock_waiters
from tests.factories import make_api_user, make_order
from tests.helpers import CAPTURE_URL, capture, client_for


def test_a_retry_replays_the_first_answer_exactly(api_client, order):
    pks = list(order.items.values_list("pk", flat=True))[:2]
    first = capture(api_client, order, pks, key="retry-1")
    retry = capture(api_client, order, pks, key="retry-1")

    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Capture.objects.count() == 1


def test_a_retry_that_validates_to_the_same_request_replays(api_client, order):
    pk = order.items.first().pk
    first = capture(api_client, order, [pk], key="same-request")
    # Validation trims the number and ignores keys it does not know.
    retry = capture(api_client, f" {order.number} ", [pk], key="same-request", note="retry")
    assert (retry.status_code, retry.content) == (200, first.content)
    assert retry["Idempotent-Replayed"] == "true"


def test_a_retry_that_does_not_validate_is_refused_not_replayed(api_client, order):
    pk = order.items.first().pk
    assert capture(api_client, order, [pk], key="then-invalid").status_code == 200
    retry = capture(api_client, order, [pk], key="then-invalid", channel=None)
    assert (retry.status_code, retry.json()["code"]) == (400, "null")
    assert "Idempotent-Replayed" not in retry


def test_a_stored_refusal_is_replayed_too(api_client, order):
    pk = order.items.first().pk
    assert capture(api_client, order, [pk]).status_code == 200
    first = capture(api_client, order, [pk], key="late-retry")
    retry = capture(api_client, order, [pk], key="late-retry")
    assert first.json()["code"] == "already_captured"
    assert (retry.status_code, retry.content) == (400, first.content)
    assert retry["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_422(api_client, order):
    first_pk, second_pk, _ = order.items.values_list("pk", flat=True)
    assert capture(api_client, order, [first_pk], key="k").status_code == 200
    response = capture(api_client, order, [second_pk], key="k")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert OrderItem.objects.get(pk=second_pk).captured_at is None


def test_keys_are_per_user(api_client, order, channel):
    from tests.factories import make_api_user

    other = client_for(make_api_user(channels=[channel]))
    first_pk, second_pk, _ = order.items.values_list("pk", flat=True)
    assert capture(api_client, order, [first_pk], key="shared").status_code == 200
    assert capture(other, order, [second_pk], key="shared").status_code == 200


def test_validation_errors_are_not_stored(api_client, order):
    bad = api_client.post(CAPTURE_URL, {"order": order.number, "order_items": []},
                          format="json", HTTP_IDEMPOTENCY_KEY="v")  # fmt: skip
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "ключ"])
def test_a_malformed_key_is_refused(api_client, order, key):
    response = capture(api_client, order, [order.items.first().pk], key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert "detail" in response.json()
    assert not Capture.objects.exists()


def test_expired_keys_are_forgotten_and_pruned(api_client, order):
    first_pk, second_pk, _ = order.items.values_list("pk", flat=True)
    first = capture(api_client, order, [first_pk], key="old")
    created = IdempotencyRecord.objects.get().created_at
    # Just under 24 hours the key still holds: a retry replays, another body is refused.
    IdempotencyRecord.objects.update(created_at=created - timedelta(hours=23, minutes=59))
    replay = capture(api_client, order, [first_pk], key="old")
    assert (replay.status_code, replay.content) == (200, first.content)
    assert replay["Idempotent-Replayed"] == "true"
    assert capture(api_client, order, [second_pk], key="old").status_code == 422
    IdempotencyRecord.objects.update(created_at=created - timedelta(hours=25))

    # After 24 hours the key is new again: a different body is no longer "reused".
    assert capture(api_client, order, [second_pk], key="old").status_code == 200
    assert IdempotencyRecord.objects.get(key="old").request_fingerprint

    IdempotencyRecord.objects.update(
        created_at=IdempotencyRecord.objects.get().created_at - timedelta(hours=25)
    )
    call_command("prune_idempotency_keys")
    assert not IdempotencyRecord.objects.exists()


def test_a_key_whose_first_request_is_running_is_409_in_use(api_user, order, transactional_db):
    pk = order.items.first().pk
    with holding_order_lock(order):
        first = in_a_thread(lambda: capture(client_for(api_user), order, [pk], key="busy"))
        wait_for_lock_waiters(1)
        second = capture(client_for(api_user), order, [pk], key="busy")

    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_use"
    assert second["Retry-After"] == "1"
    assert first().status_code == 200
    third = capture(client_for(api_user), order, [pk], key="busy")
    assert (third.status_code, third.content) == (200, first().content)
    assert Capture.objects.count() == 1


def test_a_lock_held_too_long_is_409_order_locked_and_retryable(api_user, order, transactional_db):
    pk = order.items.first().pk
    client = client_for(api_user)
    with holding_order_lock(order):
        response = capture(client, order, [pk], key="slow")
    assert response.status_code == 409
    assert response.json()["code"] == "order_locked"
    assert response["Retry-After"] == "1"
    assert not IdempotencyRecord.objects.exists()  # nothing stored: a retry runs again
    retry = capture(client, order, [pk], key="slow")
    assert retry.status_code == 200
    assert json.loads(retry.content)["number"] == order.number


def test_a_replay_after_losing_the_channel_is_order_not_found(api_client, api_user, order):
    pk = order.items.first().pk
    assert capture(api_client, order, [pk], key="lost").status_code == 200
    ChannelMembership.objects.filter(user=api_user).delete()
    replay = capture(api_client, order, [pk], key="lost")
    assert (replay.status_code, replay.json()["code"]) == (400, "order_not_found")
    assert "Idempotent-Replayed" not in replay
    assert api_client.get(f"/api/v1/orders/{order.pk}/").status_code == 404


@pytest.mark.parametrize("superuser", [False, True])
def test_a_replay_of_a_refusal_whose_order_was_deleted_is_order_not_found(order, superuser):
    """A refused capture stores its order's id, and an order with no capture may be
    deleted in the admin: no one sees it any more, superusers neither (before the
    visibility rule was written once, a superuser's replay still showed it)."""
    user = make_api_user(channels=[order.channel], is_superuser=superuser)
    client = client_for(user)
    OrderItem.objects.filter(order=order).update(status="100")  # canceled: refused
    pk = order.items.first().pk
    first = capture(client, order, [pk], key="gone")
    assert first.json()["code"] == "order_item_not_capturable"
    OrderItem.objects.filter(order=order).delete()
    order.delete()
    replay = capture(client, order.number, [pk], key="gone")
    assert (replay.status_code, replay.json()["code"]) == (400, "order_not_found")
    assert "Idempotent-Replayed" not in replay


def test_two_idempotency_key_headers_are_refused(api_client, order):
    """WSGI servers join repeated headers with a comma."""
    response = capture(api_client, order, [order.items.first().pk], key="first,second")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_idempotency_key")
    assert not Capture.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_backlog_of_expired_keys_is_pruned_in_batches_each_committed(api_user, monkeypatch):
    """One DELETE of two million expired answers ran past the 15 s statement timeout and
    deleted nothing, every hour: the table only grew. Each batch is a short statement
    and a transaction of its own now: a failure keeps what the batches before it did.
    Here: 25 expired, in batches of 10, the third batch failing, then a run that ends."""
    from django.db.models import QuerySet

    from omnitron.db import pruning

    now = timezone.now()
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(user=api_user, key=f"k{n}", request_fingerprint="f", status_code=200,
                          response_body="{}", created_at=now - timedelta(hours=25 + n))
        for n in range(25)
    )  # fmt: skip
    kept = IdempotencyRecord.objects.create(user=api_user, key="fresh", request_fingerprint="f",
                                            status_code=200, response_body="{}", created_at=now)  # fmt: skip
    monkeypatch.setattr(pruning, "PRUNE_BATCH", 10)
    real_delete, calls = QuerySet.delete, []

    def third_fails(queryset):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return real_delete(queryset)

    with patch.object(QuerySet, "delete", third_fails), pytest.raises(RuntimeError):
        call_command("prune_idempotency_keys", stderr=StringIO())
    assert IdempotencyRecord.objects.count() == 6  # two batches of 10 stayed deleted
    with CaptureQueriesContext(connection) as queries:
        call_command("prune_idempotency_keys", stderr=StringIO())
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [kept.pk]
    assert [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]


def test_a_key_used_again_after_it_expired_replays_its_new_answer(api_client, order):
    """After 24 hours a key is new again: the new request's answer replaces the
    expired one, and a retry of the new request replays it."""
    first_pk, second_pk, _ = order.items.values_list("pk", flat=True)
    assert capture(api_client, order, [first_pk], key="again").status_code == 200
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    second = capture(api_client, order, [second_pk], key="again")
    assert second.status_code == 200
    retry = capture(api_client, order, [second_pk], key="again")

    assert (retry.status_code, retry.content) == (200, second.content)
    assert retry["Idempotent-Replayed"] == "true"
    assert Capture.objects.count() == 2


def test_a_key_running_for_one_user_is_free_for_another(api_user, order, channel, transactional_db):
    """Keys are per user while they run too: another user's request with the same key
    is not told that the first one is in use."""
    other = make_api_user(channels=[channel])
    elsewhere = make_order(channel=channel, items=1)
    pk = order.items.first().pk
    with holding_order_lock(order):
        first = in_a_thread(lambda: capture(client_for(api_user), order, [pk], key="shared"))
        wait_for_lock_waiters(1)
        theirs = capture(client_for(other), elsewhere, [elsewhere.items.get().pk], key="shared")

    assert theirs.status_code == 200
    assert first().status_code == 200
    assert Capture.objects.count() == 2


def test_a_superuser_without_the_orders_channel_gets_the_replay(order):
    """A superuser sees every channel: a retry of their capture replays it, even with
    no membership of the order's channel."""
    client = client_for(make_api_user(is_superuser=True))
    pk = order.items.first().pk
    first = capture(client, order, [pk], key="su")
    assert first.status_code == 200
    replay = capture(client, order, [pk], key="su")
    assert (replay.status_code, replay.content) == (200, first.content)
    assert replay["Idempotent-Replayed"] == "true"
    assert Capture.objects.count() == 1


def test_the_prune_keeps_every_key_still_within_its_24_hours(api_user):
    """A key pruned before its 24 hours are up is new again: a client's retry of a
    capture would no longer replay its answer."""
    now = timezone.now()
    for key, age in (("young", timedelta(hours=1)), ("almost", timedelta(hours=23, minutes=59)),
                     ("expired", timedelta(hours=24, minutes=1))):  # fmt: skip
        IdempotencyRecord.objects.create(user=api_user, key=key, request_fingerprint="f",
                                         status_code=200, response_body="{}",
                                         created_at=now - age)  # fmt: skip
    call_command("prune_idempotency_keys", stderr=StringIO())
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["almost", "young"]


@pytest.mark.parametrize(
    ("first", "retry", "replayed"),
    [("1e3", "1E+3", True), ("0.1e1", "1", True), ("1e3", "1000", False), ("1", "1.0", False)],
)  # fmt: skip
def test_a_retrys_numbers_are_compared_as_decimal_writes_them(api_client, order, first, retry,
                                                              replayed):  # fmt: skip
    """docs/api.md: `1e3` and `1E+3` are the same, and so are `0.1e1` and `1`, but
    `1000` and `1e3` are not, nor `1.0` and `1`."""
    pk = order.items.first().pk

    def post(number):
        item = f'{{"pk": {pk}, "attributes": {{"n": {number}}}}}'
        body = f'{{"order": "{order.number}", "order_items": [{item}]}}'
        return api_client.post(CAPTURE_URL, body, content_type="application/json",
                               HTTP_IDEMPOTENCY_KEY="spelt")  # fmt: skip

    first_answer = post(first)
    assert first_answer.status_code == 200
    again = post(retry)
    if replayed:
        assert (again.status_code, again.content) == (200, first_answer.content)
        assert again["Idempotent-Replayed"] == "true"
    else:
        assert (again.status_code, again.json()["code"]) == (422, "idempotency_key_reused")
    assert Capture.objects.count() == 1


def test_spaces_and_tabs_around_a_key_are_not_part_of_it_through_gunicorn(api_user, order,
                                                                          transactional_db):  # fmt: skip
    """docs/api.md: keys are compared as sent but for spaces and tabs around the value
    (`k` and ` k ` are one key). The app does not trim: the server's header parsing does."""
    from tests.live import gunicorn, raw_request

    body = json.dumps({"order": order.number, "order_items": [{"pk": order.items.first().pk}]})

    def post(base, key_line: bytes) -> bytes:
        return raw_request(base, (
            b"POST /api/v1/capture-order/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Token " + api_user.auth_token.key.encode() + b"\r\n"
            b"Content-Type: application/json\r\n" + key_line
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body.encode()))  # fmt: skip

    with gunicorn(workers=1) as (base, _):
        first = post(base, b"Idempotency-Key: k\r\n")
        retry = post(base, b"Idempotency-Key: \t k \t\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert retry.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nIdempotent-Replayed: true\r\n" in retry
    assert first.split(b"\r\n\r\n", 1)[1] == retry.split(b"\r\n\r\n", 1)[1]
    assert Capture.objects.count() == 1


def test_a_retry_with_a_plain_body_that_does_not_validate_gets_its_field_error(api_client, order):
    """Fields (rule 6) are judged before the key (rule 7): a retry whose body has the
    plain shape but does not validate (the same pk twice) is its field's 400, not 422."""
    first_pk, second_pk, _ = order.items.values_list("pk", flat=True)
    assert capture(api_client, order, [first_pk], key="then-duplicate").status_code == 200
    retry = capture(api_client, order, [second_pk, second_pk], key="then-duplicate")
    assert (retry.status_code, retry.json()["code"]) == (400, "duplicate_order_items")
    assert "Idempotent-Replayed" not in retry
