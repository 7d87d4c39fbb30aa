"""A delivery's next state after one POST (events/delivery.py's apply_outcome), worked
out in memory: no database, no receiver."""

from datetime import UTC, datetime, timedelta

import pytest

from events.delivery import JITTER, Sent, apply_outcome
from events.models import DeliveryState, WebhookDelivery
from events.outbound import MAX_OUTCOME_LENGTH, Outcome

STARTED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SCHEDULE = [5, 30, 120]


def post(attempts_before: int, *, status: int | None, error: str = "", ms: int = 250):
    delivery = WebhookDelivery(pk=7, attempts=attempts_before, state=DeliveryState.PENDING)
    outcome = Outcome(status_code=status, error=error, response_excerpt="ok", duration_ms=ms)
    return delivery, Sent(delivery, STARTED, outcome)


def test_a_2xx_delivers():
    delivery, sent = post(0, status=204)
    attempt = apply_outcome(sent, SCHEDULE)
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryState.DELIVERED, 1, None)  # fmt: skip
    assert delivery.delivered_at is not None
    assert delivery.last_outcome == "HTTP 204"
    assert (attempt.number, attempt.status_code, attempt.started_at, attempt.duration_ms) == (
        1, 204, STARTED, 250)  # fmt: skip


@pytest.mark.parametrize("attempts_before", [0, 1, 2])
def test_anything_else_is_due_again_after_the_schedules_next_delay_from_the_posts_end(
    attempts_before,
):
    delivery, sent = post(attempts_before, status=None, error="x" * 1000, ms=1500)
    apply_outcome(sent, SCHEDULE)
    ended = STARTED + timedelta(milliseconds=1500)
    delay = SCHEDULE[attempts_before]
    assert delivery.state == DeliveryState.PENDING
    earliest = ended + timedelta(seconds=delay * (1 - JITTER))
    latest = ended + timedelta(seconds=delay * (1 + JITTER))
    assert earliest <= delivery.next_attempt_at <= latest
    assert delivery.last_outcome == "x" * MAX_OUTCOME_LENGTH


def test_a_delivered_delivery_has_no_next_attempt():
    """A pending delivery is sent once due: delivered, the admin shows it no next
    attempt (the time it had been due)."""
    delivery, sent = post(0, status=200)
    delivery.next_attempt_at = STARTED
    apply_outcome(sent, SCHEDULE)
    assert (delivery.state, delivery.next_attempt_at) == (DeliveryState.DELIVERED, None)


def test_a_retry_after_a_long_post_waits_its_whole_delay_after_the_answer():
    """A POST that took 3 s (a slow receiver, a batch recorded after it): the 5 s retry
    comes 4 to 6 s after it ended, at least 7 s after it started, whatever the jitter."""
    delivery, sent = post(0, status=503, ms=3000)
    apply_outcome(sent, SCHEDULE)
    waited = (delivery.next_attempt_at - STARTED).total_seconds()
    assert 3 + 5 * (1 - JITTER) <= waited <= 3 + 5 * (1 + JITTER)


def test_the_attempt_after_the_schedules_last_retry_fails_it():
    delivery, sent = post(len(SCHEDULE), status=500)
    attempt = apply_outcome(sent, SCHEDULE)
    assert (delivery.state, delivery.next_attempt_at, delivery.attempts) == (
        DeliveryState.FAILED, None, 4)  # fmt: skip
    assert delivery.failed_at is not None
    assert delivery.last_outcome == "HTTP 500"
    assert attempt.number == 4


def test_a_retry_waits_its_delay_give_or_take_twenty_percent_as_documented():
    """docs/webhooks.md: each retry comes after its step, give or take 20% (bounds
    written out: derived from JITTER, the test above followed any change made to it)."""
    for _ in range(200):
        delivery, sent = post(1, status=503, ms=0)
        apply_outcome(sent, SCHEDULE)
        waited = (delivery.next_attempt_at - STARTED).total_seconds()
        assert 30 * 0.8 <= waited <= 30 * 1.2
