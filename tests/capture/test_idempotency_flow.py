"""idempotent_answer called directly: claim, capture, render, store, in one transaction.
Without a stored answer read beforehand, so every rule runs through `_claim`, the read
inside the capture's transaction (the API's path for a retry that raced the first
request; tests/capture/test_idempotency.py covers the API's usual path)."""

import json
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from capture.exceptions import (
    AlreadyCaptured,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    OrderNotFound,
)
from capture.idempotency import idempotent_answer, request_fingerprint
from capture.models import Capture, IdempotencyRecord
from capture.serializers import CaptureOrderItemSerializer, CaptureOrderSerializer
from capture.services import ItemInput, order_capture
from capture.shape import ITEM_FIELDS, REQUEST_FIELDS
from orders.models import ChannelMembership

BODY = {"order": "A-1", "order_items": [{"pk": 1}]}


def answer(user, capture, *, key="k", body=BODY):
    return idempotent_answer(
        user=user, key=key, fingerprint=request_fingerprint(body), capture=capture
    )


def capturing(user, order, calls=None):
    """A capture callable of the order's first item, counting its calls."""

    def capture():
        if calls is not None:
            calls.append(1)
        pk = order.items.order_by("pk").first().pk
        return order_capture(user=user, order_number=order.number, items=[ItemInput(pk)])

    return capture


def test_the_first_answer_is_stored_and_replayed_without_capturing_again(api_user, order):
    calls = []
    first = answer(api_user, capturing(api_user, order, calls))
    again = answer(api_user, capturing(api_user, order, calls))
    assert (first.status_code, first.replayed) == (200, False)
    assert json.loads(first.body)["number"] == order.number
    assert (again.status_code, again.body, again.replayed) == (200, first.body, True)
    assert calls == [1]
    assert Capture.objects.count() == 1


def test_the_fingerprint_ignores_key_order_and_absent_attributes():
    reordered = {"order_items": [{"attributes": None, "pk": 1}], "order": "A-1"}
    assert request_fingerprint(reordered) == request_fingerprint(BODY)
    assert request_fingerprint({**BODY, "channel": 2}) != request_fingerprint(BODY)


def test_the_fingerprint_is_the_one_stored_keys_were_made_with():
    """Keys stored by earlier releases still replay: the hash of the same request
    does not change (values computed by the release that introduced this test)."""
    assert request_fingerprint(BODY) == (
        "56df88407895283da0569700f59bab6dcf3f891a052e9959439ae3e92dfb4280"
    )
    body = {"order": "ŞÖ-7", "channel": 3, "order_items": [
        {"pk": 9, "attributes": {"w": Decimal("1.20"), "n": ["x", None]}}, {"pk": 2}]}  # fmt: skip
    assert request_fingerprint(body) == (
        "94ee047c1e832537739a15abbaf9fa14b12feda2947cde6e274b94b41b411ff7"
    )


def test_the_fields_read_without_the_serializer_are_the_serializers():
    """The fingerprint and the plain shape (capture/shape.py) name the request's fields
    once (REQUEST_FIELDS, ITEM_FIELDS): a field added to the serializer must be added
    there, or two requests differing only in it would share an answer."""
    assert CaptureOrderSerializer().fields.keys() == REQUEST_FIELDS
    assert CaptureOrderItemSerializer().fields.keys() == ITEM_FIELDS


def test_a_refusal_is_stored_then_raised_and_replayed(api_user):
    def refuse():
        raise AlreadyCaptured([7])

    with pytest.raises(AlreadyCaptured):
        answer(api_user, refuse)
    replay = answer(api_user, lambda: pytest.fail("must not run again"))
    assert (replay.status_code, replay.replayed) == (400, True)
    assert replay.body == (
        b'{"order_items":["Order items already captured: 7."],"code":"already_captured"}'
    )


def test_an_unexpected_error_stores_nothing(api_user, order):
    def crash():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        answer(api_user, crash)
    assert not IdempotencyRecord.objects.exists()
    assert answer(api_user, capturing(api_user, order)).replayed is False


def test_the_same_key_with_another_request_is_refused(api_user, order):
    answer(api_user, capturing(api_user, order))
    with pytest.raises(IdempotencyKeyReused):
        answer(api_user, capturing(api_user, order), body={**BODY, "order": "A-2"})


def test_the_answer_and_the_capture_commit_together_or_not_at_all(api_user, order):
    """If anything fails after the capture ran, neither the capture nor the answer stays."""

    def capture_then_crash():
        capturing(api_user, order)()
        raise RuntimeError("after the capture, before the answer is stored")

    with pytest.raises(RuntimeError):
        answer(api_user, capture_then_crash)
    assert not Capture.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_replay_shows_nothing_of_a_channel_the_user_lost(api_user, order):
    assert answer(api_user, capturing(api_user, order)).status_code == 200
    ChannelMembership.objects.filter(user=api_user).delete()
    with pytest.raises(OrderNotFound):
        answer(api_user, lambda: pytest.fail("must not run"))
    ChannelMembership.objects.create(user=api_user, channel=order.channel)
    assert answer(api_user, lambda: pytest.fail("must not run")).replayed


@pytest.mark.django_db(transaction=True)
def test_a_key_still_running_elsewhere_is_in_use(api_user, order):
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return capturing(api_user, order)()

    def first_request():
        try:
            answer(api_user, slow)
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert started.wait(10)
        with pytest.raises(IdempotencyKeyInUse), transaction.atomic():
            answer(api_user, lambda: pytest.fail("must not run"))
    finally:
        release.set()
        thread.join()
    assert answer(api_user, lambda: pytest.fail("must not run")).replayed


def test_a_superusers_answer_read_in_the_transaction_replays_without_the_channel(order):
    """A superuser sees every channel: a retry that raced the first request (its answer
    read by `_claim`, not by the authentication statement) replays too."""
    from capture.services import capture_answer
    from tests.factories import make_api_user

    superuser = make_api_user(is_superuser=True)  # no membership of the order's channel
    data = {"order": order.number, "order_items": [{"pk": order.items.first().pk}]}
    first = capture_answer(user=superuser, data=data, idempotency_key="su-race")
    replay = capture_answer(user=superuser, data=data, idempotency_key="su-race")
    assert (replay.status_code, replay.body, replay.replayed) == (200, first.body, True)
    assert Capture.objects.count() == 1
