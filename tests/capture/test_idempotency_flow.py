"""idempotent_answer called directly: claim, produce, store, in one transaction."""

import threading

import pytest
from django.db import connection, transaction

from capture.exceptions import AlreadyCaptured, IdempotencyKeyInUse, IdempotencyKeyReused
from capture.idempotency import idempotent_answer, request_fingerprint
from capture.models import Capture, IdempotencyRecord
from capture.services import ItemInput, order_capture

BODY = {"order": "A-1", "order_items": [{"pk": 1}]}


def answer(user, produce, *, key="k", body=BODY):
    return idempotent_answer(
        user=user, key=key, fingerprint=request_fingerprint(body), produce=produce
    )


def test_the_first_answer_is_stored_and_replayed_without_producing_again(api_user):
    calls = []

    def produce():
        calls.append(1)
        return b'{"ok": 1}'

    first = answer(api_user, produce)
    again = answer(api_user, produce)
    assert (first.status_code, first.body, first.replayed) == (200, b'{"ok": 1}', False)
    assert (again.status_code, again.body, again.replayed) == (200, b'{"ok": 1}', True)
    assert calls == [1]


def test_the_fingerprint_ignores_key_order_and_absent_attributes():
    reordered = {"order_items": [{"attributes": None, "pk": 1}], "order": "A-1"}
    assert request_fingerprint(reordered) == request_fingerprint(BODY)
    assert request_fingerprint({**BODY, "channel": 2}) != request_fingerprint(BODY)


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


def test_an_unexpected_error_stores_nothing(api_user):
    def crash():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        answer(api_user, crash)
    assert not IdempotencyRecord.objects.exists()
    assert answer(api_user, lambda: b"{}").replayed is False


def test_the_same_key_with_another_request_is_refused(api_user):
    answer(api_user, lambda: b"{}")
    with pytest.raises(IdempotencyKeyReused):
        answer(api_user, lambda: b"{}", body={**BODY, "order": "A-2"})


def test_the_answer_and_the_capture_commit_together_or_not_at_all(api_user, order):
    """If anything fails after the capture ran, neither the capture nor the answer stays."""
    pk = order.items.first().pk

    def capture_then_crash():
        order_capture(user=api_user, order_number=order.number, items=[ItemInput(pk)])
        raise RuntimeError("after the capture, before the answer is stored")

    with pytest.raises(RuntimeError):
        answer(api_user, capture_then_crash)
    assert not Capture.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_key_still_running_elsewhere_is_in_use(api_user):
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return b"{}"

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
