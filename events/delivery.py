"""Delivering events to webhook subscriptions: a lane's job (events/tasks.py) sends
every due delivery of one lane of a subscription, in batches over one kept-alive
connection, and records each attempt; a timed-out receiver pauses its subscription.
docs/webhooks.md says what a receiver sees."""

import logging
import math
import random
import time
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from . import outbound, signing
from .metrics import observe_delivery
from .models import (
    DeliveryAttempt,
    DeliveryState,
    Lane,
    WebhookDelivery,
    WebhookSubscription,
)
from .payloads import render_payloads, store_payloads
from .services import webhook_subscriptions_resume
from .sql import (
    JOB_RUNNING,
    LANE_JOB_WAITING,
    RECORD_OUTCOMES,
    WEBHOOK_QUEUE,
)
from .worker import STOPPING

logger = logging.getLogger(__name__)

JITTER = 0.2  # a retry waits its scheduled delay, give or take 20%
BATCH = 100  # deliveries claimed, rendered and recorded together
LANE_IDLE_SECONDS = 2  # a lane's job ends after this long without a due delivery
LANE_POLL_SECONDS = 0.2
# After a batch smaller than BATCH, a lane waits this long before it looks again: under
# load its deliveries gather into batches, so each batch's queries, rendering set-up and
# connection serve many events instead of one (docs/webhooks.md has the figures). The
# wait adds up to this much to a delivery's lag; larger batches also take longer to send.
LANE_GATHER_SECONDS = 0.1
# After a POST that timed out, the subscription is paused for its retry schedule's next
# step (5 s, 30 s, 2 min, 10 min by default), never longer than this: a receiver that
# is back gets its deliveries within this long.
MAX_PAUSE_SECONDS = 600
# A lane's job checks it still holds its lane before a POST when this long has passed
# since it last did (at most half of WEBHOOK_STALLED_SECONDS): a worker frozen past
# that (stopped, starved) has had its jobs ended as stalled and their lanes given to
# new jobs, and on waking it sent the rest of its batch while a new job sent the same.
HOLD_CHECK_SECONDS = 5
# A batch's POSTs stop after this long, and their outcomes are recorded before the
# rest are sent: a job whose worker dies or freezes leaves at most this long's POSTs
# unrecorded, which the lane's next job sends again (the same webhook-ids). A slow
# receiver's batch of 100 took 30 s, all of it sent twice after a freeze.
RECORD_SECONDS = 5


def retry_schedule(subscription: WebhookSubscription) -> list[int]:
    """Seconds before each retry: the subscription's own, or the default."""
    return subscription.retry_schedule or settings.WEBHOOK_RETRY_SCHEDULE


class LaneHold:
    """A lane job's hold on its lane: its procrastinate job still running (`job_id`;
    None, as in tests that call webhook_lane_flush themselves, always holds)."""

    def __init__(self, job_id: int | None):
        self.job_id = job_id
        self.checked_at = -math.inf  # asked before the first POST: the job may have waited
        self.lost = False

    def held(self) -> bool:
        """False once the job was found ended as stalled; asked of the database only
        when HOLD_CHECK_SECONDS (or half of WEBHOOK_STALLED_SECONDS) passed since the
        last time, so a lane sending without pause asks about once in that time."""
        interval = min(HOLD_CHECK_SECONDS, settings.WEBHOOK_STALLED_SECONDS / 2)
        if self.lost or self.job_id is None or time.monotonic() - self.checked_at < interval:
            return not self.lost
        with connection.cursor() as cursor:
            cursor.execute(JOB_RUNNING, {"id": self.job_id})
            (running,) = cursor.fetchone()
        self.checked_at, self.lost = time.monotonic(), not running
        return running


def webhook_lane_flush(*, subscription_id: int, lane: int, job_id: int | None = None) -> int:
    """Send every due delivery of one lane of a subscription, oldest first, in batches
    over one kept-alive connection, and record each attempt. A 2xx answer delivers a
    delivery; anything else schedules its next attempt from the retry schedule (the
    worker's dispatcher queues the lane again when it is due), or, after the last,
    fails it. A POST that timed out (connecting, reading, or past its deadline) ends
    the job and pauses the subscription (`_pause`): the rest of its batch stays pending
    and uncounted, no lane sends until the pause ends, and then one delivery probes the
    receiver (`_due`). Any answer ends the row of timeouts. docs/webhooks.md says why
    (a hanging receiver held every worker slot). A worker asked to stop (STOPPING) ends
    the job after the batch it is sending. Only one job per lane runs at a time
    (its procrastinate lock), so no delivery is ever sent twice at once; a job ended
    as stalled (`job_id`'s worker froze) stops at its next POST once it wakes
    (LaneHold), and records no outcome over another job's. Returns how many attempts
    were made."""
    subscription = WebhookSubscription.objects.filter(pk=subscription_id).first()
    # Queued just before the pause: nothing to wait for. Or queued for a subscription
    # since deleted (from the shell, a restored database; the tests' flushed tables):
    # the job ended as an error with a traceback.
    if subscription is None or subscription.is_paused:
        return 0
    hold = LaneHold(job_id)
    attempts, timed_out = 0, False
    while not (timed_out or STOPPING.is_set()) and (batch := _next_batch(subscription, lane)):
        # Read again for each batch: a job runs as long as deliveries keep coming, and
        # one read at its start sent to a changed URL's old address, with old headers
        # and secret, for seconds after the change (and after a deactivation).
        subscription.refresh_from_db()
        if not subscription.is_active or subscription.is_paused:
            break
        outcomes, rendered = _send(subscription, batch, hold)
        recorded = _record(subscription, outcomes, rendered)
        attempts += len(outcomes)
        if hold.lost:
            logger.warning(
                "Webhook lane %s of subscription %s: job %s no longer holds it (ended as "
                "stalled: its worker stopped for %s s or more). It stops; the lane's new "
                "job sends the rest.",
                lane, subscription.pk, job_id, settings.WEBHOOK_STALLED_SECONDS,
            )  # fmt: skip
            break
        if recorded < len(outcomes):
            logger.warning(
                "Webhook lane %s of subscription %s: %s of job %s's %s attempts were "
                "recorded meanwhile by another job of the lane (one ended as stalled that "
                "woke) or changed by an operator. It stops; the lane is queued again.",
                lane, subscription.pk, len(outcomes) - recorded, job_id, len(outcomes),
            )  # fmt: skip
            break
        timed_out = outcomes[-1].outcome.timed_out
        answered = any(sent.outcome.status_code is not None for sent in outcomes)
        if answered and not timed_out:  # the receiver answers: its row of timeouts ends
            webhook_subscriptions_resume(
                subscriptions=WebhookSubscription.objects.filter(pk=subscription.pk)
            )
        if len(batch) < BATCH and not timed_out:
            time.sleep(LANE_GATHER_SECONDS)
    if timed_out:
        _pause(subscription)
    return attempts


class Sent(NamedTuple):
    """One POST of a delivery: when it started and what came of it."""

    delivery: WebhookDelivery
    started_at: datetime
    outcome: outbound.Outcome


def _send(
    subscription: WebhookSubscription, batch: list[WebhookDelivery], hold: LaneHold
) -> tuple[list[Sent], dict[str, str]]:
    """POST the batch's deliveries in order over one connection, up to and including
    the first that timed out, while the job holds its lane and for RECORD_SECONDS at
    most (the rest stay due, for the next batch): what was sent, and the payloads
    rendered for it (those not stored yet)."""
    events = [delivery.event for delivery in batch]
    rendered = render_payloads(events)
    payloads = {event.id: event.payload or rendered[event.id] for event in events}
    target = outbound.Target(subscription.url, subscription.headers)
    outcomes, deadline = [], time.monotonic() + RECORD_SECONDS
    try:
        for delivery in batch:
            if not hold.held() or (outcomes and time.monotonic() >= deadline):
                break
            started_at = timezone.now()
            body = payloads[delivery.event_id].encode()
            signed = signing.headers(subscription.secret, delivery.event_id, int(time.time()), body)
            outcome = target.post(body, signed)
            outcomes.append(Sent(delivery, started_at, outcome))
            if outcome.timed_out:
                break
    finally:
        target.close()
    return outcomes, rendered


def _pause(subscription: WebhookSubscription) -> None:
    """Pause the subscription after a POST that timed out, for the next step of its
    retry schedule (at most MAX_PAUSE_SECONDS). Its lanes that time out together, as
    they do when a pause ends, count one timeout and set one pause."""
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.is_paused:
            return
        schedule = retry_schedule(subscription) or [MAX_PAUSE_SECONDS]
        step = schedule[min(subscription.timeouts_in_a_row, len(schedule) - 1)]
        subscription.paused_until = timezone.now() + timedelta(seconds=min(step, MAX_PAUSE_SECONDS))
        subscription.timeouts_in_a_row += 1
        subscription.save(update_fields=["paused_until", "timeouts_in_a_row"])


def _next_batch(subscription: WebhookSubscription, lane: int) -> list[WebhookDelivery]:
    """The lane's due deliveries; waiting up to LANE_IDLE_SECONDS for new ones, since
    no job is queued for a lane while its job runs, unless another lane's job waits
    for a worker slot: with more lanes than slots, deliveries waited behind idle jobs
    (2 s and more)."""
    deadline = time.monotonic() + LANE_IDLE_SECONDS
    while not (batch := _due(subscription, lane)) and time.monotonic() < deadline:
        if STOPPING.wait(LANE_POLL_SECONDS) or _lane_job_waiting():
            return []
    return batch


def _lane_job_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(LANE_JOB_WAITING, {"queue": WEBHOOK_QUEUE})
        return cursor.fetchone()[0]


def _due(subscription: WebhookSubscription, lane: int) -> list[WebhookDelivery]:
    """The lane's due deliveries, none once the subscription is deactivated or paused
    (a running job stops at its next batch). Of a subscription whose receiver timed out
    and has not answered since, only its first due delivery (by next attempt, then id:
    events/sql.py's FIRST_DUE), once its pause ended: one POST probes the receiver, not
    one per lane (when every lane probed, two hanging receivers held all eight worker
    slots as their pauses ended)."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(
        subscription=subscription, state=DeliveryState.PENDING, next_attempt_at__lte=now
    )
    probe = due.order_by("next_attempt_at", "id").values("id")[:1]
    return list(
        due.select_related("event")
        .alias(lane=Lane("id"))
        .filter(
            Q(subscription__timeouts_in_a_row=0)
            | Q(subscription__paused_until__lte=now, id=Subquery(probe)),
            subscription__is_active=True,
            lane=lane,
        )
        .order_by("next_attempt_at", "id")[:BATCH]  # delivery_lane_due_idx's order
    )


def apply_outcome(sent: Sent, schedule: list[int]) -> DeliveryAttempt:
    """Apply one POST's outcome to its delivery, in memory: its attempts, its last
    outcome and its state (delivered; failed after the schedule's last retry; else due
    again after the schedule's next delay, give or take JITTER, counted from the end
    of the POST). Returns the attempt's record, unsaved."""
    delivery, started_at, outcome = sent
    delivery.attempts += 1
    delivery.last_outcome = (
        f"HTTP {outcome.status_code}" if outcome.status_code else outcome.error
    )[: outbound.MAX_OUTCOME_LENGTH]
    if outcome.delivered:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, timezone.now()
        delivery.next_attempt_at = None
    elif delivery.attempts > len(schedule):
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
        delivery.failed_at = timezone.now()
    else:
        # Counted from the end of this POST, not from now: the batch is recorded after
        # its later POSTs, which added up to RECORD_SECONDS and a timeout.
        ended = started_at + timedelta(milliseconds=outcome.duration_ms)
        delay = schedule[delivery.attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        delivery.next_attempt_at = ended + timedelta(seconds=delay)
    return DeliveryAttempt(
        delivery=delivery, number=delivery.attempts, started_at=started_at,
        duration_ms=outcome.duration_ms, status_code=outcome.status_code,
        error=outcome.error, response_excerpt=outcome.response_excerpt,
    )  # fmt: skip


def _record(
    subscription: WebhookSubscription, outcomes: list[Sent], rendered: dict[str, str]
) -> int:
    """The batch's payloads (first rendering), attempts and outcomes (apply_outcome), in
    one transaction committed without waiting for its WAL flush: a database crash may
    lose the last of these records, and those deliveries are sent again, with the same
    webhook-id (at least once, as promised). Events themselves are written, durably,
    by the capture. A delivery another job of the lane recorded meanwhile keeps that
    job's record (RECORD_OUTCOMES). Returns how many were recorded."""
    schedule = retry_schedule(subscription)
    attempts = [apply_outcome(sent, schedule) for sent in outcomes]
    deliveries = [sent.delivery for sent in outcomes]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        store_payloads(rendered)
        cursor.execute(RECORD_OUTCOMES, {
            "ids": [d.pk for d in deliveries], "attempts": [d.attempts for d in deliveries],
            "states": [d.state for d in deliveries],
            "delivered_at": [d.delivered_at for d in deliveries],
            "next_attempt_at": [d.next_attempt_at for d in deliveries],
            "failed_at": [d.failed_at for d in deliveries],
            "outcomes": [d.last_outcome for d in deliveries],
        })  # fmt: skip
        recorded = {delivery_id for (delivery_id,) in cursor.fetchall()}
        DeliveryAttempt.objects.bulk_create([a for a in attempts if a.delivery_id in recorded])
    _observe([delivery for delivery in deliveries if delivery.pk in recorded])
    return len(recorded)


def _observe(recorded: list[WebhookDelivery]) -> None:
    """Count the recorded outcomes: delivered (with the lag since the event), retry
    or failed."""
    for delivery in recorded:
        if delivery.state == DeliveryState.DELIVERED:
            lag = (delivery.delivered_at - delivery.event.created_at).total_seconds()
            observe_delivery("delivered", lag)
        else:
            observe_delivery("failed" if delivery.state == DeliveryState.FAILED else "retry")
