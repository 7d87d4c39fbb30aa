"""Writes of the events app: webhook subscriptions, and delivering an event to one."""

import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import outbound, signing
from .models import DeliveryAttempt, DeliveryState, WebhookDelivery, WebhookSubscription
from .payloads import event_payload
from .sql import delivery_lock

JITTER = 0.2  # a retry waits its scheduled delay, give or take 20%


def webhook_subscription_create_or_update(
    *,
    url: str,
    event_types: list[str],
    channel_ids: list[int] | None = None,
    headers: dict[str, str] | None = None,
    secret: str | None = None,
) -> tuple[WebhookSubscription, bool]:
    """The subscription of this URL, created (with a new secret unless one is given)
    or updated to these event types, channels and headers, keeping its secret.
    Returns (subscription, created)."""
    outbound.check_url(url)
    with transaction.atomic():
        subscription, created = WebhookSubscription.objects.select_for_update().get_or_create(
            url=url, defaults={"event_types": event_types}
        )
        subscription.event_types = event_types
        subscription.channel_ids = channel_ids or []
        subscription.headers = headers or {}
        subscription.is_active = True
        if secret is not None:
            subscription.secret = secret
        subscription.save()
    return subscription, created


def retry_schedule(subscription: WebhookSubscription) -> list[int]:
    """Seconds before each retry: the subscription's own, or the default."""
    return subscription.retry_schedule or settings.WEBHOOK_RETRY_SCHEDULE


def webhook_delivery_attempt(*, delivery_id: int) -> DeliveryState | None:
    """Send a pending delivery once and record the attempt. A 2xx answer delivers it;
    anything else schedules the next attempt from the retry schedule, or, after the
    last, marks it failed. Returns the delivery's state, or None when it was not
    pending (delivered or failed meanwhile: nothing is sent)."""
    delivery = (
        WebhookDelivery.objects.select_related("event", "subscription")
        .filter(pk=delivery_id, state=DeliveryState.PENDING)
        .first()
    )
    if delivery is None:
        return None
    subscription, event = delivery.subscription, delivery.event
    body = event_payload(event).encode()
    headers = {
        **subscription.headers,
        **signing.headers(subscription.secret, event.id, int(time.time()), body),
    }
    started_at = timezone.now()
    outcome = outbound.post(subscription.url, body, headers)
    return _record(delivery, started_at, outcome)


def _record(delivery: WebhookDelivery, started_at, outcome: outbound.Outcome) -> DeliveryState:
    from .tasks import deliver  # the task module imports this one

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        delivery.attempts += 1
        DeliveryAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, started_at=started_at,
            duration_ms=outcome.duration_ms, status_code=outcome.status_code,
            error=outcome.error, response_excerpt=outcome.response_excerpt,
        )  # fmt: skip
        delivery.last_outcome = (
            f"HTTP {outcome.status_code}" if outcome.status_code else outcome.error
        )[:255]
        schedule = retry_schedule(delivery.subscription)
        if outcome.delivered:
            delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, timezone.now()
            delivery.next_attempt_at = None
        elif delivery.attempts > len(schedule):
            delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
        else:
            delay = schedule[delivery.attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            deliver.configure(schedule_at=delivery.next_attempt_at, lock=_lock(delivery)).defer(
                delivery_id=delivery.pk
            )
        delivery.save()
    return delivery.state


def webhook_deliveries_redeliver(*, deliveries) -> int:
    """Send failed deliveries again, now, with the same webhook-id; the attempt
    count goes on from where it stopped. Returns how many were queued."""
    from .tasks import deliver

    queued = 0
    with transaction.atomic():
        for delivery in deliveries.select_for_update().filter(state=DeliveryState.FAILED):
            delivery.state, delivery.next_attempt_at = DeliveryState.PENDING, timezone.now()
            delivery.save(update_fields=["state", "next_attempt_at"])
            deliver.configure(lock=_lock(delivery)).defer(delivery_id=delivery.pk)
            queued += 1
    return queued


def _lock(delivery: WebhookDelivery) -> str:
    return delivery_lock(delivery.subscription_id, delivery.pk)
