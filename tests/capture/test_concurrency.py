"""Concurrent captures on the same and overlapping items: each item is captured
exactly once, every loser gets already_captured, nobody gets a 5xx or a deadlock."""

import threading
from collections import Counter
from unittest.mock import patch

import pytest
from django.contrib.auth.models import User
from django.db import connection
from prometheus_client import REGISTRY

from capture import sql
from capture.models import CaptureItem
from orders.enums import OrderStatus
from orders.models import OrderItem
from tests.capture import locks
from tests.factories import make_api_user, make_order
from tests.helpers import CAPTURE_URL, capture, client_for
from tests.reliability.helpers import assert_captures_add_up

pytestmark = pytest.mark.django_db(transaction=True)


def race(user, requests):
    """Run (order, pks, key) captures at once from threads; return the responses."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def run(index, order, pks, key):
        client = client_for(user)
        barrier.wait()
        try:
            responses[index] = capture(client, order, pks, key=key)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, *r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def test_the_same_items_from_many_requests_are_captured_once(api_user, channel):
    order = make_order(channel=channel, items=5)
    pks = list(order.items.values_list("pk", flat=True))

    responses = race(api_user, [(order, pks, None)] * 8)

    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 1, 400: 7}
    assert {r.json()["code"] for r in responses if r.status_code == 400} == {"already_captured"}
    assert CaptureItem.objects.count() == 5
    assert OrderItem.objects.filter(captured_at__isnull=False).count() == 5
    assert_captures_add_up()


def test_overlapping_items_across_orders_are_each_captured_once(api_user, channel):
    orders = [make_order(channel=channel, items=6) for _ in range(3)]
    requests = []
    for order in orders:
        pks = sorted(order.items.values_list("pk", flat=True))
        for start in range(0, 5):  # [0,1], [1,2], ... overlapping windows
            requests.append((order, pks[start : start + 2], None))
            requests.append((order, pks[start : start + 2], f"key-{order.pk}-{start}"))

    responses = race(api_user, requests)

    assert all(r.status_code < 500 for r in responses)
    losers = [r for r in responses if r.status_code != 200]
    assert {r.json()["code"] for r in losers} <= {"already_captured", "order_locked"}
    won = Counter()
    for (_order, pks, _key), response in zip(requests, responses, strict=True):
        if response.status_code == 200:
            won.update(pks)
    captured = set(OrderItem.objects.filter(captured_at__isnull=False).values_list("pk", flat=True))
    assert set(won) == captured
    assert all(count == 1 for count in won.values())  # no item in two successful answers
    assert CaptureItem.objects.count() == len(captured)
    assert_captures_add_up()


@pytest.mark.django_db(transaction=True)
def test_a_capture_whose_user_is_deleted_meanwhile_is_409_and_captures_nothing(channel):
    """An operator deleted an API user in the admin while its capture ran: the capture's
    foreign key to the user failed at its commit, a 500. Nothing is
    captured, nor counted in the captures' metrics; the answer says to retry, and the
    retry is the deleted user's 401."""
    user = make_api_user(channels=[channel])
    order = make_order(channel=channel, items=2)
    first, pk = order.items.order_by("pk").values_list("pk", flat=True)
    client = client_for(user)
    real = sql.write_capture
    before = captures_counted()
    # Another user's capture: a user who has captured cannot be deleted.
    other = client_for(make_api_user(channels=[channel]))
    assert capture(other, order, [first], key="counted").status_code == 200
    counted = captures_counted()
    assert counted == before + 1  # a committed capture with a key is counted

    def user_deleted_first(**kwargs):
        deleting = threading.Thread(target=lambda: User.objects.filter(pk=user.pk).delete())
        deleting.start()  # another connection: committed before the write
        deleting.join()
        return real(**kwargs)

    with patch.object(sql, "write_capture", user_deleted_first):
        answer = capture(client, order, [pk], key="gone-user")
    assert (answer.status_code, answer.json()["code"]) == (409, "deleted_meanwhile")
    assert answer["Retry-After"] == "1"
    assert not CaptureItem.objects.filter(order_item_id=pk).exists()
    assert not OrderItem.objects.filter(pk=pk, captured_at__isnull=False).exists()
    assert captures_counted() == counted
    assert capture(client, order, [pk], key="gone-user").status_code == 401


def captures_counted() -> float:
    return REGISTRY.get_sample_value("omnitron_captures_total") or 0


@pytest.mark.parametrize("pk_as", [int, str], ids=["read-by-authentication", "read-under-lock"])
def test_an_order_cancelled_while_a_capture_waits_for_its_lock_is_not_captured(
    api_user, channel, pk_as
):
    """Another transaction holds the order's row and cancels it; a capture of its items
    waits for that lock and is judged on the status committed, never on the one it saw
    before it waited. The capture reads the order in the authentication statement (a
    plain body) or under the locks (a pk as a string of digits, which only validation
    reads)."""
    order = make_order(channel=channel, items=2)
    pks = list(order.items.order_by("pk").values_list("pk", flat=True))
    body = {"order": order.number, "order_items": [{"pk": pk_as(pk)} for pk in pks]}
    cancel = "UPDATE orders_order SET status = %s WHERE id = %s"
    with locks.committed_once_waited_for(cancel, [OrderStatus.CANCELED.value, order.pk]):
        answer = locks.in_a_thread(
            lambda: client_for(api_user).post(CAPTURE_URL, body, format="json")
        )
    response = answer()
    assert (response.status_code, response.json()["code"]) == (400, "order_not_capturable")
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()
    assert not CaptureItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_capture_whose_webhook_subscription_is_deleted_meanwhile_is_409_and_captures_nothing(
    channel,
):
    """docs/reliability.md: an operator deleting a webhook subscription the running
    capture queues a delivery for (the keys are checked at the commit) is 409
    deleted_meanwhile with Retry-After: 1, nothing captured and no event left; the
    retry captures, without the deleted subscription."""
    from events.models import Event, WebhookDelivery
    from events.services import webhook_subscription_create_or_update

    user = make_api_user(channels=[channel])
    order = make_order(channel=channel, items=1)
    pk = order.items.get().pk
    subscription, _, _ = webhook_subscription_create_or_update(
        url="https://hooks.example.com/deleted", event_types=["order.captured"]
    )
    real = sql.write_capture

    def subscription_deleted_after_the_write(**kwargs):
        written = real(**kwargs)
        deleting = threading.Thread(target=lambda: subscription.delete())
        deleting.start()  # another connection: committed before this capture commits
        deleting.join()
        return written

    with patch.object(sql, "write_capture", subscription_deleted_after_the_write):
        answer = capture(client_for(user), order, [pk], key="gone-subscription")
    assert (answer.status_code, answer.json()["code"]) == (409, "deleted_meanwhile")
    assert answer["Retry-After"] == "1"
    assert not OrderItem.objects.filter(pk=pk, captured_at__isnull=False).exists()
    assert not CaptureItem.objects.exists()
    assert not Event.objects.exists()
    retry = capture(client_for(user), order, [pk], key="gone-subscription")
    assert retry.status_code == 200
    assert not WebhookDelivery.objects.exists()
    assert_captures_add_up()
