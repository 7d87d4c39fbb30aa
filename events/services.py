"""Writes of the events app that operators and commands make: webhook subscriptions,
resuming them, sending failed deliveries again. Sending is events/delivery.py."""

from typing import NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import outbound
from .models import DeliveryState, WebhookDelivery, WebhookSubscription
from .registry import EVENT_TYPES

KEEP = None  # an option of webhook_subscription_create_or_update left as it is


class SubscriptionSaved(NamedTuple):
    """What webhook_subscription_create_or_update did."""

    subscription: WebhookSubscription
    created: bool
    cancelled: int  # deliveries of events it no longer takes, cancelled


def webhook_subscription_create_or_update(
    *,
    url: str,
    event_types: list[str] | None = KEEP,
    channel_ids: list[int] | None = KEEP,
    headers: dict[str, str] | None = KEEP,
) -> SubscriptionSaved:
    """The subscription of this URL (as outbound.normalized_url spells it): created
    (every event type, every channel and no extra header unless given; a new secret),
    or updated with what is given, keeping the rest (its secret, and its event types,
    channels or headers when not given: a re-run that leaves out `channel_ids` must not
    widen a channel's subscription to every channel). Either way its pause ends. An operator's
    deactivation (`is_active`, the admin's) stays. Returns the subscription, whether it
    was created, and how many deliveries a narrowing cancelled.
    Raises TargetRefused for a URL or headers it will not send to, and Django's
    ValidationError for anything else the admin would refuse."""
    outbound.check_url(url)
    url = outbound.normalized_url(url)
    if headers is not KEEP:
        outbound.check_headers(headers)
    with transaction.atomic():
        subscription, created = WebhookSubscription.objects.select_for_update().get_or_create(
            url=url, defaults={"event_types": sorted(EVENT_TYPES)}
        )
        before = (list(subscription.event_types), list(subscription.channel_ids))
        for field, value in (("event_types", event_types), ("channel_ids", channel_ids),
                             ("headers", headers)):  # fmt: skip
            if value is not KEEP:
                setattr(subscription, field, value)
        subscription.paused_until, subscription.timeouts_in_a_row = None, 0
        subscription.clean()  # the admin's rules (event types, channels, retries)
        subscription.save()
    # After the commit: the lock above holds every capture that makes a delivery for it.
    cancelled = 0
    if not created and narrowed(*before, subscription):
        cancelled = webhook_deliveries_cancel_unwanted(subscription=subscription)
    return SubscriptionSaved(subscription, created, cancelled)


def narrowed(event_types: list[str], channel_ids: list[int], now: WebhookSubscription) -> bool:
    """Whether the subscription takes less than these event types and channels (none:
    every channel) did."""
    fewer_types = not set(now.event_types) >= set(event_types)
    fewer_channels = bool(now.channel_ids) and (
        not channel_ids or not set(now.channel_ids) >= set(channel_ids)
    )
    return fewer_types or fewer_channels


CANCEL_BATCH = 10_000
# What the admin and create_webhook tell the operator after a narrowing (no undo).
CANCELLED_NOTICE = (
    "{} pending or failed deliveries of events it no longer takes (their channel or type) "
    "were cancelled: they are not sent again."
)


def webhook_deliveries_cancel_unwanted(*, subscription: WebhookSubscription) -> int:
    """Cancel the pending and failed deliveries of events the subscription no longer
    takes (its channels or event types narrowed): they are not sent again. They were,
    on their retries for up to 31 hours and by the resend action, to a receiver no
    longer meant to get that channel's orders. A batch being sent meanwhile may still
    carry some (its outcomes are not recorded over the cancellation). In batches, each
    its own statement (a receiver down for a day has millions pending); the state is
    checked again on each row as it is written (a delivery recorded delivered
    meanwhile stays delivered). Returns how many."""
    wanted = Q(event__type__in=subscription.event_types)
    if subscription.channel_ids:
        wanted &= Q(event__channel_id__in=subscription.channel_ids)
    open_states = [DeliveryState.PENDING, DeliveryState.FAILED]
    unwanted = (
        subscription.deliveries.filter(state__in=open_states)
        .exclude(wanted)
        .values_list("pk", flat=True)
    )
    cancelled = 0
    while batch := list(unwanted[:CANCEL_BATCH]):
        cancelled += WebhookDelivery.objects.filter(pk__in=batch, state__in=open_states).update(
            state=DeliveryState.CANCELLED, next_attempt_at=None,
            last_outcome="cancelled: its subscription no longer takes this event",
        )  # fmt: skip
    return cancelled


def webhook_subscriptions_resume(*, subscriptions) -> int:
    """End the row of timeouts of these subscriptions, paused or sending one probe at a
    time (a receiver fixed, or one that refuses connections since it hung): every lane
    sends again, the worker's dispatcher queues their due deliveries within a second.
    Returns how many were in a row of timeouts."""
    return subscriptions.filter(timeouts_in_a_row__gt=0).update(
        paused_until=None, timeouts_in_a_row=0
    )


def webhook_deliveries_redeliver(*, deliveries) -> int:
    """Send failed deliveries again, with the same webhook-id, within a second (the
    worker's dispatcher); the attempt count goes on from where it stopped and one more
    failure fails them again. Those of an inactive subscription stay failed: nothing
    would send them, and as pending they left the failed count and its alert. Those of
    a paused subscription go when the pause ends. Returns how many were queued."""
    chosen = deliveries.filter(state=DeliveryState.FAILED, subscription__is_active=True)
    # The state checked on the row as it is written, not only in the choice (a join's
    # subquery): one cancelled meanwhile stays cancelled.
    return WebhookDelivery.objects.filter(
        pk__in=chosen.values("pk"), state=DeliveryState.FAILED
    ).update(state=DeliveryState.PENDING, next_attempt_at=timezone.now(), failed_at=None)
