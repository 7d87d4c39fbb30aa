"""A receiver that answers a byte at a time, or never, costs a lane one POST's
deadline (WEBHOOK_TIMEOUT_SECONDS in all), not one per delivery, and never holds it
for ever. Real sockets on loopback, in-process lanes."""

import socket
import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from events import outbound
from events.models import DeliveryAttempt, DeliveryState, WebhookDelivery
from events.services import webhook_lane_flush, webhook_subscription_create_or_update
from events.tasks import dispatch_due_deliveries
from tests.factories import make_order
from tests.helpers import capture

TRICKLED = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 60 + b"\r\n\r\n"


class SlowReceiver:
    """Reads each request, then sends `answer` one byte every `pause` seconds (each
    byte well within the read timeout), then keeps the connection open, answering
    nothing more. With no answer it never answers at all."""

    def __init__(self, answer: bytes = b"", pause: float = 0.1):
        self.answer, self.pause = answer, pause
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.server.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.recv(65536)
            for byte in self.answer:
                if self.stopped.wait(self.pause):
                    return
                conn.sendall(bytes([byte]))
            self.stopped.wait()

    def stop(self):
        self.stopped.set()
        self.server.close()


@pytest.fixture
def slow_receiver():
    receivers = []

    def start(**options):
        receivers.append(SlowReceiver(**options))
        return receivers[-1]

    yield start
    for receiver in receivers:
        receiver.stop()


@override_settings(WEBHOOK_TIMEOUT_SECONDS=1)
def test_an_answer_sent_a_byte_at_a_time_is_cut_at_the_deadline(slow_receiver, db):
    """Each byte came within the read timeout: the POST lasted as long as the receiver
    liked (9 minutes in a sweep), holding the worker's slot."""
    receiver = slow_receiver(answer=TRICKLED, pause=0.1)  # 7.7 s to send it all
    target = outbound.Target(receiver.url)
    started = time.monotonic()
    outcome = target.post(b"{}", {})
    target.close()
    assert time.monotonic() - started < 2.5
    assert (outcome.status_code, outcome.delivered) == (None, False)
    assert outcome.error == "no whole answer within 1 s"


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_a_receiver_that_never_answers_costs_a_lane_one_deadline(api_client, channel,
                                                                  slow_receiver):  # fmt: skip
    """The rest of the batch is not sent, and each is recorded as an attempt; the
    lane's job ends instead of waiting a timeout per delivery."""
    receiver = slow_receiver()  # never answers
    subscription, _ = webhook_subscription_create_or_update(
        url=receiver.url, event_types=["order.captured"]
    )
    subscription.retry_schedule = [3600]
    subscription.save()
    for order in [make_order(channel=channel, items=1) for _ in range(12)]:
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    lane = WebhookDelivery.objects.order_by("id").first().pk % 4
    ids = [d.pk for d in WebhookDelivery.objects.order_by("id") if d.pk % 4 == lane]
    assert len(ids) == 3

    started = time.monotonic()
    webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
    # The job ends after the batch, handing its slot back: no wait for more deliveries.
    assert time.monotonic() - started < 1.8

    attempts = list(DeliveryAttempt.objects.filter(delivery_id__in=ids).order_by("delivery_id"))
    assert [a.delivery_id for a in attempts] == ids  # one attempt each
    assert attempts[0].error.startswith("ReadTimeoutError") or "within" in attempts[0].error
    assert all(a.error.startswith("not sent: the POST before it timed out")
               for a in attempts[1:])  # fmt: skip
    assert sum(a.duration_ms for a in attempts) < 1000  # one deadline, not three
    states = set(WebhookDelivery.objects.filter(pk__in=ids).values_list("state", flat=True))
    assert states == {DeliveryState.PENDING}  # each waits for its retry, an hour away


class ResetsItsFirstConnection:
    """Resets the first connection it gets (as a receiver that dropped a kept-alive
    connection just as the POST arrived), then answers 204 on every other."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            first = self.connections == 1
            threading.Thread(target=self._answer, args=(conn, first), daemon=True).start()

    def _answer(self, conn, reset):
        with conn:
            while conn.recv(65536):
                if reset:  # RST instead of an answer
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                    return
                conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    def stop(self):
        self.server.close()


def test_a_reset_connection_costs_its_delivery_only(api_client, channel):
    """Only a timeout stops a batch: a reset (or refused) connection fails fast, and the
    next delivery goes on a new connection."""
    receiver = ResetsItsFirstConnection()
    try:
        subscription, _ = webhook_subscription_create_or_update(
            url=receiver.url, event_types=["order.captured"]
        )
        for order in [make_order(channel=channel, items=1) for _ in range(12)]:
            assert capture(api_client, order, [order.items.get().pk]).status_code == 200
        lane = WebhookDelivery.objects.order_by("id").first().pk % 4
        ids = [d.pk for d in WebhookDelivery.objects.order_by("id") if d.pk % 4 == lane]
        webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
    finally:
        receiver.stop()
    states = dict(WebhookDelivery.objects.filter(pk__in=ids).values_list("pk", "state"))
    assert [states[pk] for pk in ids] == [DeliveryState.PENDING, DeliveryState.DELIVERED,
                                          DeliveryState.DELIVERED]  # fmt: skip
    assert not DeliveryAttempt.objects.filter(error__startswith="not sent").exists()


def test_a_deactivated_subscription_gets_no_more_attempts(api_client, channel):
    """Deactivating a subscription is how an operator stops a receiver that misbehaves:
    its lanes had gone on sending (and holding the worker's slots) for 31 hours."""
    subscription, _ = webhook_subscription_create_or_update(
        url="http://127.0.0.1:9/nobody", event_types=["order.captured"]
    )
    order = make_order(channel=channel, items=1)
    assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    delivery = WebhookDelivery.objects.get()
    subscription.is_active = False
    subscription.save()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")  # the lane job the capture queued
        dispatch_due_deliveries(0)  # the worker's dispatcher, every second
        cursor.execute("SELECT count(*) FROM procrastinate_jobs")
        assert cursor.fetchone() == (0,)
    assert webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4) == 0
    assert not DeliveryAttempt.objects.exists()
