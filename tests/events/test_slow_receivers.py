"""A receiver that answers a byte at a time, or never, costs its subscription one
POST's deadline (WEBHOOK_TIMEOUT_SECONDS in all) per pause, not one per delivery or
per lane, and never holds a worker's slot for ever. Real sockets on loopback,
in-process lanes."""

import contextlib
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from events import outbound
from events.delivery import _pause, webhook_lane_flush
from events.models import DeliveryAttempt, DeliveryState, WebhookDelivery, WebhookSubscription
from events.services import webhook_subscription_create_or_update, webhook_subscriptions_resume
from events.tasks import dispatch_due_deliveries
from tests.events.helpers import receiving
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
            except OSError:  # closed by stop()
                return
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


def subscribe(url: str, schedule: list[int]) -> WebhookSubscription:
    subscription, _, _ = webhook_subscription_create_or_update(
        url=url, event_types=["order.captured"]
    )
    subscription.retry_schedule = schedule
    subscription.save()
    return subscription


def capture_orders(client, channel, count: int) -> None:
    for order in [make_order(channel=channel, items=1) for _ in range(count)]:
        assert capture(client, order, [order.items.get().pk]).status_code == 200


def lane_jobs() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        return cursor.fetchone()[0]


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_a_receiver_that_never_answers_pauses_its_subscription(api_client, channel,
                                                                slow_receiver):  # fmt: skip
    """One POST's deadline pauses every lane of the subscription for the next step of
    its retry schedule: the rest of the batch stays pending, not sent and not counted
    as attempts (they reached `failed` without ever being sent), and no lane sends or
    is queued until the pause ends (two hanging receivers' lanes held all eight worker
    slots, one deadline after another, while captures added deliveries)."""
    receiver = slow_receiver()  # never answers
    subscription = subscribe(receiver.url, [30, 3600])
    capture_orders(api_client, channel, 12)
    lane = WebhookDelivery.objects.order_by("id").first().pk % 4
    ids = [d.pk for d in WebhookDelivery.objects.order_by("id") if d.pk % 4 == lane]
    assert len(ids) == 3

    started = time.monotonic()
    assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane) == 1
    assert time.monotonic() - started < 1.8  # one deadline; the job ends at once

    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.delivery_id == ids[0]
    assert attempt.error.startswith("ReadTimeoutError") or "within" in attempt.error
    untouched = WebhookDelivery.objects.exclude(pk=ids[0])
    assert set(untouched.values_list("state", "attempts")) == {(DeliveryState.PENDING, 0)}
    subscription.refresh_from_db()
    assert subscription.timeouts_in_a_row == 1
    pause = (subscription.paused_until - timezone.now()).total_seconds()
    assert 25 < pause <= 30  # the schedule's first step

    for other in {0, 1, 2, 3} - {lane}:  # the other lanes send nothing while paused
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=other) == 0
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")
    capture_orders(api_client, channel, 4)  # new deliveries queue no lane job
    dispatch_due_deliveries(0)  # nor does the dispatcher
    assert lane_jobs() == 0
    assert DeliveryAttempt.objects.count() == 1


def test_lanes_that_time_out_together_pause_once(db):
    subscription = subscribe("http://127.0.0.1:9/hook", [5, 30, 120])
    for _ in range(4):  # four lanes, as when a pause ends on a receiver that still hangs
        _pause(subscription)
    subscription.refresh_from_db()
    assert subscription.timeouts_in_a_row == 1
    subscription.paused_until = timezone.now()  # it ended; the next timeout pauses longer
    subscription.save()
    _pause(subscription)
    subscription.refresh_from_db()
    assert subscription.timeouts_in_a_row == 2
    assert 25 < (subscription.paused_until - timezone.now()).total_seconds() <= 30


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_a_pause_ends_on_time_or_when_resumed_and_an_answer_ends_the_row(api_client, channel):
    with receiving() as receiver:
        subscription = subscribe(receiver.url, [5])
        capture_orders(api_client, channel, 1)
        delivery = WebhookDelivery.objects.get()
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            paused_until=timezone.now() + timedelta(minutes=5), timeouts_in_a_row=3
        )
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4) == 0
        assert webhook_subscriptions_resume(subscriptions=WebhookSubscription.objects.all()) == 1
        dispatch_due_deliveries(0)
        assert lane_jobs() == 1  # the dispatcher queues its lane again
        WebhookSubscription.objects.filter(pk=subscription.pk).update(  # it ended on time
            paused_until=timezone.now() - timedelta(hours=1), timeouts_in_a_row=3
        )
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4) == 1
    assert receiver.ids() == [delivery.event_id]
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    subscription.refresh_from_db()
    assert (subscription.paused_until, subscription.timeouts_in_a_row) == (None, 0)


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
        with conn, contextlib.suppress(OSError):  # the client closed first
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
        subscription, _, _ = webhook_subscription_create_or_update(
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


def test_a_refused_connection_pauses_nothing_and_costs_its_delivery_only(api_client, channel):
    """urllib3's error for a refused connection is a ConnectTimeoutError too: it was
    taken for a timeout, and one refusal stopped the batch (and paused the receiver)."""
    subscription = subscribe("http://127.0.0.1:9/nobody", [5])
    capture_orders(api_client, channel, 12)
    lane = WebhookDelivery.objects.order_by("id").first().pk % 4
    assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane) == 3
    assert set(DeliveryAttempt.objects.values_list("error", flat=True)) == {
        "NewConnectionError: HTTPConnection(host='127.0.0.1', port=9): Failed to establish "
        "a new connection: [Errno 111] Connection refused"
    }
    subscription.refresh_from_db()
    assert (subscription.paused_until, subscription.timeouts_in_a_row) == (None, 0)


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_an_answer_before_a_timeout_in_one_batch_keeps_the_row_of_timeouts(
    api_client, channel, monkeypatch
):
    """A lane's batch got an answer, then a POST timed out, while another lane's timeout
    paused the subscription for its row's third step: the receiver hangs now, and that
    pause and row stand (not ended by the earlier answer and started over at the first
    step)."""
    hang = threading.Event()

    def answer(number, webhook_id):
        if hang.is_set():
            time.sleep(2)  # past the 0.5 s deadline
        return 200

    with receiving(answer=answer) as receiver:
        subscription = subscribe(receiver.url, [5, 30, 120])
        capture_orders(api_client, channel, 5)
        first = WebhookDelivery.objects.order_by("id").first()
        another_lanes_pause = timezone.now() + timedelta(seconds=120)
        post = outbound.Target.post

        def answered_then_another_lane_timed_out(target, body, headers):
            outcome = post(target, body, headers)
            if not hang.is_set():
                hang.set()  # the next POST hangs
                WebhookSubscription.objects.filter(pk=subscription.pk).update(
                    paused_until=another_lanes_pause, timeouts_in_a_row=2
                )
            return outcome

        monkeypatch.setattr(outbound.Target, "post", answered_then_another_lane_timed_out)
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=first.pk % 4) == 2
    assert len(receiver.requests) == 2
    subscription.refresh_from_db()
    assert (subscription.paused_until, subscription.timeouts_in_a_row) == (
        another_lanes_pause, 2)  # fmt: skip


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_a_deactivated_subscription_gets_no_more_attempts(api_client, channel):
    """Deactivating a subscription is how an operator stops a receiver that misbehaves:
    its lanes had gone on sending (and holding the worker's slots) for 31 hours."""
    subscription, _, _ = webhook_subscription_create_or_update(
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


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_queues_no_lane_whose_retry_is_not_due_yet(api_client, channel):
    """A receiver that answered 503 gets its retry after the schedule's delay: until
    then the dispatcher queues no job for its lane, which would find nothing to send
    and hold a worker slot idle, every second."""
    with receiving(answer=lambda number, webhook_id: 503) as receiver:
        subscription = subscribe(receiver.url, [3600])
        capture_orders(api_client, channel, 1)
        delivery = WebhookDelivery.objects.get()
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4) == 1
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=30)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")  # the lane job the capture queued
    dispatch_due_deliveries(0)
    assert lane_jobs() == 0


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_the_probes_lane_is_that_of_the_delivery_due_first_not_the_oldest(api_client, channel):
    """The probe is the delivery due first (a retry can fall due before an older
    delivery's): the dispatcher queues its lane, the lane the job's `_due` sends it from.
    Queued by oldest id instead, the job found no probe in its lane and the receiver was
    never probed."""
    subscription = subscribe("http://127.0.0.1:9/nobody", [5])
    capture_orders(api_client, channel, 2)
    oldest, newer = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=newer.pk).update(
        next_attempt_at=oldest.next_attempt_at - timedelta(minutes=1)
    )
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        paused_until=timezone.now() - timedelta(hours=1), timeouts_in_a_row=2
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")
        dispatch_due_deliveries(0)
        cursor.execute("SELECT args->>'lane' FROM procrastinate_jobs")
        assert cursor.fetchall() == [(str(newer.pk % 4),)]


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_when_a_pause_ends_one_delivery_probes_the_receiver(api_client, channel):
    """Every lane of both hanging receivers started a POST when their pauses ended, and
    held all eight worker slots for a deadline. Now only the oldest due delivery's lane
    is queued and sends it; once the receiver answers, every lane sends again."""
    with receiving() as receiver:
        subscription = subscribe(receiver.url, [5])
        capture_orders(api_client, channel, 8)
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            paused_until=timezone.now() - timedelta(hours=1), timeouts_in_a_row=2
        )
        oldest = WebhookDelivery.objects.order_by("id").first()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs")
            dispatch_due_deliveries(0)
            cursor.execute("SELECT args->>'lane' FROM procrastinate_jobs")
            assert cursor.fetchall() == [(str(oldest.pk % 4),)]
            cursor.execute("DELETE FROM procrastinate_jobs")
        other = (oldest.pk + 1) % 4
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=other) == 0
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=oldest.pk % 4) == 2
        assert receiver.ids()[0] == oldest.event_id  # the probe, then the rest of its lane
        subscription.refresh_from_db()
        assert subscription.timeouts_in_a_row == 0
        dispatch_due_deliveries(0)
        assert lane_jobs() == 3  # the other lanes go again


def test_the_admin_shows_a_pause_and_resumes_it(client, db):
    from tests.factories import make_api_user

    subscription = subscribe("https://hooks.example.com/paused", [5])
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        paused_until=timezone.now() + timedelta(minutes=5), timeouts_in_a_row=2
    )
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    listing = client.get("/admin/events/webhooksubscription/")
    assert listing.status_code == 200
    assert "paused until" in listing.content.decode().lower()
    response = client.post("/admin/events/webhooksubscription/",
                           {"action": "resume", "_selected_action": [subscription.pk]})  # fmt: skip
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.paused_until, subscription.timeouts_in_a_row) == (None, 0)


def test_resume_also_ends_a_row_of_timeouts_whose_pause_is_over(db):
    """Past its pause, a receiver that refuses connections gets one probe at a time
    until it answers: resume ended only a pause still running."""
    subscription = subscribe("https://hooks.example.com/probing", [5])
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        paused_until=timezone.now() - timedelta(minutes=1), timeouts_in_a_row=4
    )
    assert webhook_subscriptions_resume(subscriptions=WebhookSubscription.objects.all()) == 1
    subscription.refresh_from_db()
    assert (subscription.paused_until, subscription.timeouts_in_a_row) == (None, 0)


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_changed_subscription_is_used_from_the_next_batch(api_client, channel, monkeypatch):
    """A lane's job runs as long as deliveries keep coming: it read the subscription
    once, and went on sending to the old URL with the old headers for seconds after an
    operator changed them (and after a deactivation)."""
    from events import delivery

    monkeypatch.setattr(delivery, "BATCH", 1)
    monkeypatch.setattr(delivery, "LANE_IDLE_SECONDS", 0)
    with receiving() as old, receiving() as new, receiving() as never:
        subscription = subscribe(old.url, [30])
        capture_orders(api_client, channel, 12)
        lane = WebhookDelivery.objects.order_by("id").first().pk % 4
        sent = delivery._send

        def send_then_change(subscription_then, batch, hold):
            outcome = sent(subscription_then, batch, hold)
            if len(new.requests) == 1:  # then deactivates it
                WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)
            elif len(old.requests) == 1:  # an operator saves the subscription meanwhile
                WebhookSubscription.objects.filter(pk=subscription.pk).update(
                    url=new.url, headers={"X-New": "1"}
                )
            return outcome

        monkeypatch.setattr(delivery, "_send", send_then_change)
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane) == 2
    assert (len(old.requests), len(new.requests), len(never.requests)) == (1, 1, 0)
    assert new.requests[0]["headers"]["X-New"] == "1"
    assert WebhookDelivery.objects.filter(state=DeliveryState.PENDING).count() == 10


def test_a_pause_is_never_longer_than_max_pause_seconds(db):
    """docs/webhooks.md: a subscription is paused for the next step of its schedule,
    10 minutes at most, so a receiver that is back gets its deliveries within that."""
    subscription = subscribe("http://127.0.0.1:9/hook", [3600, 86400])
    _pause(subscription)
    subscription.refresh_from_db()
    assert 540 < (subscription.paused_until - timezone.now()).total_seconds() <= 600


# The dispatcher's now() is its transaction's start: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_a_probe_answered_with_an_error_status_ends_the_row_of_timeouts(api_client, channel):
    """docs/webhooks.md: an answer, any status, ends the row of timeouts and every lane
    sends again. A receiver back from hanging but answering 500 still answers: it is
    retried on the schedule, not kept to one probe at a time."""
    with receiving(answer=lambda number, webhook_id: 500) as receiver:
        subscription = subscribe(receiver.url, [5])
        capture_orders(api_client, channel, 1)
        delivery = WebhookDelivery.objects.get()
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            paused_until=timezone.now() - timedelta(hours=1), timeouts_in_a_row=3
        )
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4) == 1
    assert receiver.ids() == [delivery.event_id]
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code == 500
    subscription.refresh_from_db()
    assert (subscription.paused_until, subscription.timeouts_in_a_row) == (None, 0)
