"""A lane's job whose worker froze past WEBHOOK_STALLED_SECONDS is ended as stalled and
its lane given to a new job. On waking, the old job sent the rest of its batch while
the new one sent the same deliveries, and wrote its outcomes over the new job's
(attempt numbers twice, an attempt count below the attempts recorded). It now stops
at its next POST and records nothing over another job's record. In-process lanes, a
real receiver on loopback; the job's row is procrastinate's."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from events import delivery, outbound
from events.delivery import webhook_lane_flush
from events.models import DeliveryAttempt, DeliveryState, WebhookDelivery
from events.services import webhook_subscription_create_or_update
from tests.events.helpers import receiving
from tests.events.test_slow_receivers import capture_orders
from tests.factories import ChannelFactory


def running_job() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
            " VALUES ('webhooks', 'events.tasks.deliver_lane', 'webhook:test', '{}', 'doing')"
            " RETURNING id"
        )
        return cursor.fetchone()[0]


def end_as_stalled(job_id: int) -> None:
    """What release_stalled_jobs does to a job whose worker gave no sign of life."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", [job_id])


@pytest.fixture
def after_each_post(monkeypatch):
    """Runs the given function after each POST a lane makes."""
    hooks = []
    post = outbound.Target.post

    def posted(target, body, headers):
        outcome = post(target, body, headers)
        for hook in hooks:
            hook()
        return outcome

    monkeypatch.setattr(outbound.Target, "post", posted)
    return hooks.append


def test_a_job_ended_as_stalled_stops_at_its_next_post(api_client, channel, monkeypatch,
                                                       after_each_post):  # fmt: skip
    monkeypatch.setattr(delivery, "HOLD_CHECK_SECONDS", 0)  # as if frozen between POSTs
    with receiving() as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 12)
        lane = WebhookDelivery.objects.order_by("id").first().pk % 4
        job = running_job()
        after_each_post(lambda: end_as_stalled(job))
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane, job_id=job) == 1
    assert len(receiver.requests) == 1  # of the lane's three
    in_lane = [d for d in WebhookDelivery.objects.order_by("id") if d.pk % 4 == lane]
    assert [(d.state, d.attempts) for d in in_lane] == [
        (DeliveryState.DELIVERED, 1), (DeliveryState.PENDING, 0), (DeliveryState.PENDING, 0),
    ]  # fmt: skip
    assert DeliveryAttempt.objects.count() == 1


def test_a_job_that_holds_its_lane_sends_it_all(api_client, channel, monkeypatch):
    monkeypatch.setattr(delivery, "HOLD_CHECK_SECONDS", 0)
    with receiving() as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 12)
        lane = WebhookDelivery.objects.order_by("id").first().pk % 4
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane,
                                  job_id=running_job()) == 3  # fmt: skip
    assert len(receiver.requests) == 3


def test_an_outcome_another_job_recorded_meanwhile_is_kept(api_client, channel, monkeypatch,
                                                           after_each_post):  # fmt: skip
    """The POST the frozen job was making when it froze reaches the receiver after the
    new job's (the same webhook-id: at least once); its outcome is not recorded over
    the new job's, and the job stops after that batch (one delivery a batch here)."""
    monkeypatch.setattr(delivery, "BATCH", 1)
    with receiving() as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 12)
        first = WebhookDelivery.objects.order_by("id").first()

        def recorded_by_the_new_job():
            if DeliveryAttempt.objects.filter(delivery=first).exists():
                return  # once
            WebhookDelivery.objects.filter(pk=first.pk).update(
                state=DeliveryState.DELIVERED, attempts=1, delivered_at=timezone.now(),
                next_attempt_at=None, last_outcome="HTTP 204",
            )  # fmt: skip
            DeliveryAttempt.objects.create(delivery=first, number=1, started_at=timezone.now(),
                                           duration_ms=3, status_code=204)  # fmt: skip

        after_each_post(recorded_by_the_new_job)
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=first.pk % 4) == 1
    first.refresh_from_db()
    others = [d for d in WebhookDelivery.objects.order_by("id") if d.pk % 4 == first.pk % 4][1:]
    assert [(d.state, d.attempts) for d in others] == [(DeliveryState.PENDING, 0)] * 2
    assert (first.state, first.attempts, first.last_outcome) == (
        DeliveryState.DELIVERED, 1, "HTTP 204",
    )  # fmt: skip
    assert list(DeliveryAttempt.objects.filter(delivery=first).values_list("status_code")) == [
        (204,)
    ]
    assert len(receiver.requests) == 1  # it stopped: the lane's other job sends the rest


def test_a_slow_receivers_outcomes_are_recorded_as_the_lane_goes(api_client, channel,
                                                                 monkeypatch, after_each_post):  # fmt: skip
    """Outcomes were recorded once per batch of 100: a receiver answering in 0.3 s took
    30 s a batch, all of which a frozen worker's new job sent again. They are recorded
    every RECORD_SECONDS."""
    monkeypatch.setattr(delivery, "RECORD_SECONDS", 0.3)
    with receiving(delay=0.1) as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 24)  # six a lane
        lane = WebhookDelivery.objects.order_by("id").first().pk % 4
        recorded = []
        after_each_post(lambda: recorded.append(
            WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).count()))  # fmt: skip
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane) == 6
    assert len(receiver.requests) == 6
    assert recorded[0] == 0
    assert recorded[-1] >= 2  # the first POSTs' outcomes were in before the last POST
    in_lane = [d for d in WebhookDelivery.objects.all() if d.pk % 4 == lane]
    assert {(d.state, d.attempts) for d in in_lane} == {(DeliveryState.DELIVERED, 1)}


def test_a_job_ended_as_stalled_before_its_first_post_sends_nothing(api_client, channel):
    """A worker that froze while its lane's job waited (for deliveries, or before it
    began) has had the job ended and the lane given to a new job: on waking, the job
    asks before its first POST, not HOLD_CHECK_SECONDS into its batch, and sends none."""
    with receiving() as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 12)
        lane = WebhookDelivery.objects.order_by("id").first().pk % 4
        job = running_job()
        end_as_stalled(job)
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=lane, job_id=job) == 0
    assert receiver.requests == []
    in_lane = [d for d in WebhookDelivery.objects.all() if d.pk % 4 == lane]
    assert {(d.state, d.attempts) for d in in_lane} == {(DeliveryState.PENDING, 0)}
    assert not DeliveryAttempt.objects.exists()


def test_a_failure_another_job_recorded_meanwhile_is_kept(api_client, channel, monkeypatch,
                                                          after_each_post):  # fmt: skip
    """As above when the new job's POST failed: its failure and the time of its retry
    stay, not the frozen job's late success over them (one attempt counted for two
    tries, both numbered 1, and a delivery the receiver refused marked delivered)."""
    monkeypatch.setattr(delivery, "BATCH", 1)
    with receiving() as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 12)
        first = WebhookDelivery.objects.order_by("id").first()
        retry_at = timezone.now() + timedelta(minutes=5)

        def failed_for_the_new_job():
            if DeliveryAttempt.objects.filter(delivery=first).exists():
                return  # once
            WebhookDelivery.objects.filter(pk=first.pk).update(
                attempts=1, next_attempt_at=retry_at, last_outcome="HTTP 500"
            )
            DeliveryAttempt.objects.create(delivery=first, number=1, started_at=timezone.now(),
                                           duration_ms=3, status_code=500)  # fmt: skip

        after_each_post(failed_for_the_new_job)
        webhook_lane_flush(subscription_id=subscription.pk, lane=first.pk % 4)
    first.refresh_from_db()
    assert (first.state, first.attempts, first.last_outcome, first.next_attempt_at) == (
        DeliveryState.PENDING, 1, "HTTP 500", retry_at,
    )  # fmt: skip
    assert list(
        DeliveryAttempt.objects.filter(delivery=first).values_list("number", "status_code")
    ) == [(1, 500)]
    assert len(receiver.requests) == 1  # it stopped: the lane's other job sends the rest


def test_a_delivery_cancelled_while_it_was_sent_stays_cancelled(api_client, channel,
                                                                after_each_post):  # fmt: skip
    """The subscription narrowed to another channel while its lane sent this channel's
    delivery: the cancellation stands, not the job's late outcome over it (a pending
    retry or `delivered`, with an attempt counted)."""
    other = ChannelFactory()
    with receiving(answer=lambda number, webhook_id: 503) as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(url=receiver.url)
        capture_orders(api_client, channel, 1)
        sent = WebhookDelivery.objects.get()
        after_each_post(lambda: webhook_subscription_create_or_update(url=receiver.url,
                                                                      channel_ids=[other.pk]))  # fmt: skip
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=sent.pk % 4) == 1
    assert len(receiver.requests) == 1
    sent.refresh_from_db()
    assert (sent.state, sent.attempts, sent.next_attempt_at, sent.last_outcome) == (
        DeliveryState.CANCELLED, 0, None, "cancelled: its subscription no longer takes this event"
    )  # fmt: skip
    assert not DeliveryAttempt.objects.exists()


@pytest.mark.django_db
def test_a_lane_job_of_a_subscription_deleted_meanwhile_ends_quietly():
    """A lane job queued for a subscription since deleted (from the shell, a restored
    database; in the suite, a job left queued by a test whose tables were flushed)
    ended as an error with a traceback: WebhookSubscription.DoesNotExist. It has
    nothing to send."""
    assert webhook_lane_flush(subscription_id=2_147_483_647, lane=0) == 0
