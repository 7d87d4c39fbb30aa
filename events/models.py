"""Events and their deliveries. An event is written in the transaction of the change
it describes, so it exists exactly when that change committed; a worker delivers it
to each subscription afterwards (events/tasks.py)."""

import secrets
from base64 import b64encode

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.utils import timezone

from omnitron.exactjson import EXACT_JSON
from omnitron.limits import MAX_INTEGER
from orders.models import Channel

from .outbound import (
    MAX_OUTCOME_LENGTH,
    MAX_URL_LENGTH,
    TargetRefused,
    check_headers,
    check_url,
    normalized_url,
)
from .registry import EVENT_TYPES


class Event(models.Model):
    """One thing that happened, e.g. an order captured. `id` ("evt_" + the writing
    transaction's id + a sequence number, in hex) sorts in the order the event feed
    serves events; `payload` is rendered once, on first use, then never changes."""

    id = models.CharField(primary_key=True, max_length=40)
    type = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    # Indexed by event_channel_id_idx (channel, id): no index of its own to write.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+", db_index=False)
    # What the event is about, for its type's renderer (order.captured: the capture).
    object_id = models.BigIntegerField()
    # The rows as they were when the event happened (order.captured: the order).
    snapshot = models.JSONField(**EXACT_JSON)
    payload = models.TextField(null=True, blank=True)  # noqa: DJ001 - null: not rendered yet
    txid = models.BigIntegerField(help_text="The writing transaction's id (pg_current_xact_id).")
    seq = models.BigIntegerField(unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["channel", "id"], name="event_channel_id_idx")]

    def __str__(self):
        return f"{self.type} {self.id}"


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + b64encode(secrets.token_bytes(32)).decode("ascii")


MAX_SUBSCRIPTION_CHANNELS = 1_000  # channels one subscription names (none: every one)


class WebhookSubscription(models.Model):
    """Where events are sent: a URL, the types and channels it wants (no channel: all),
    extra headers for the receiver's own authentication, and a retry schedule (empty:
    settings.WEBHOOK_RETRY_SCHEDULE). A receiver whose POST timed out is paused: none
    of its deliveries is sent until `paused_until` (events/delivery.py)."""

    url = models.URLField(max_length=MAX_URL_LENGTH, unique=True)
    secret = models.CharField(max_length=128, default=new_secret)
    event_types = ArrayField(models.CharField(max_length=64), default=list)
    channel_ids = ArrayField(models.IntegerField(), default=list, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    retry_schedule = ArrayField(
        models.PositiveIntegerField(),
        default=list,
        blank=True,
        help_text="Seconds to wait before each retry, e.g. 5,30,120; empty: the default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="No delivery is sent before this: a POST timed out."
    )
    # A default in the database too: the release before writes rows without it.
    timeouts_in_a_row = models.PositiveIntegerField(
        default=0, db_default=0, help_text="POSTs that timed out since the receiver last answered."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url

    @property
    def is_paused(self) -> bool:
        """Whether its deliveries wait for `paused_until` now."""
        return self.paused_until is not None and self.paused_until > timezone.now()

    def clean(self):
        # The admin's form checks what webhook_subscription_create_or_update and
        # create_webhook do: a subscription it took could receive nothing (a misspelt
        # event type, channel 0) or wait decades for a retry.
        errors = {}
        for field, check in (("url", check_url), ("headers", check_headers)):
            try:
                check(getattr(self, field))
            except TargetRefused as exc:
                errors[field] = str(exc)
        if "url" not in errors:  # one spelling per target: the unique check comes after
            self.url = normalized_url(self.url)
        if not self.event_types:
            errors["event_types"] = "At least one event type: with none it receives nothing."
        elif unknown := set(self.event_types) - set(EVENT_TYPES):
            errors["event_types"] = f"Unknown event type(s): {', '.join(sorted(unknown))}."
        elif len(set(self.event_types)) != len(self.event_types):
            errors["event_types"] = "Each event type once."
        channel_ids = self.channel_ids or ()
        if any(not 1 <= pk <= MAX_INTEGER for pk in channel_ids):
            errors["channel_ids"] = f"A channel id is 1 to {MAX_INTEGER}."
        elif len(set(channel_ids)) != len(channel_ids):
            errors["channel_ids"] = "Each channel once."
        elif len(channel_ids) > MAX_SUBSCRIPTION_CHANNELS:
            errors["channel_ids"] = f"At most {MAX_SUBSCRIPTION_CHANNELS:,}; none is every channel."
        schedule = self.retry_schedule or ()
        most = settings.MAX_RETRY_DELAY
        if len(schedule) > settings.MAX_RETRIES or any(not 1 <= s <= most for s in schedule):
            errors["retry_schedule"] = (
                f"At most {settings.MAX_RETRIES} delays, each 1 to {most:,} seconds (a week)."
            )
        if errors:
            raise ValidationError(errors)


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    # Never to be sent: its subscription no longer takes the event's channel or type.
    CANCELLED = "cancelled"


# Deliveries of one subscription run in at most this many parallel lanes: a slow or
# failing receiver holds a few worker slots at most, never all of them.
LANES_PER_SUBSCRIPTION = 4


class Lane(models.Func):
    """A delivery's lane: its id modulo LANES_PER_SUBSCRIPTION, written with the number
    in the SQL (not a parameter), as delivery_lane_due_idx has it, so that a prepared
    statement's generic plan can use that index too."""

    template = f"mod(%(expressions)s, {LANES_PER_SUBSCRIPTION})"
    output_field = models.BigIntegerField()


class WebhookDelivery(models.Model):
    """One event sent to one subscription, through as many attempts as it takes."""

    # Indexed by uniq_delivery (event, subscription): no index of its own to write.
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    # Indexed by delivery_subscription_idx (subscription, id): no index of its own.
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # When its last attempt failed it for good; cleared when it is sent again.
    failed_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=MAX_OUTCOME_LENGTH, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "subscription"], name="uniq_delivery")
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="delivery_state_idx"),
            # The admin's list (newest first) filtered by a subscription, or by a state
            # other than delivered (the many): a walk of these, however many deliveries
            # came after the ones it shows (the failures of an outage months ago walked
            # every delivery since: 0.7 s at 2.6 million, an outside test). Partial:
            # on a plain (state, id) index the planner still walked the primary key,
            # taking the failures as spread evenly among the rest.
            models.Index(
                fields=["id"],
                condition=~models.Q(state=DeliveryState.DELIVERED),
                name="delivery_undelivered_idx",
            ),
            models.Index(fields=["subscription", "id"], name="delivery_subscription_idx"),
            # A subscription's first due delivery across its lanes (events/sql.py's
            # FIRST_DUE: the one probe of a receiver that timed out).
            models.Index(
                fields=["subscription", "next_attempt_at"],
                condition=models.Q(state=DeliveryState.PENDING),
                name="delivery_due_idx",
            ),
            # What a lane's job sends next (and the dispatcher looks for, per lane): its
            # due deliveries, oldest due first, one range of this index however many
            # are due on the other lanes. On delivery_due_idx alone a batch read every
            # due delivery of the subscription: 0.95 s at 300,000 due (an outside test).
            models.Index(
                F("subscription"),
                Lane("id"),
                F("next_attempt_at"),
                F("id"),
                condition=models.Q(state=DeliveryState.PENDING),
                name="delivery_lane_due_idx",
            ),
            # What /metrics counts: the deliveries failed for good lately.
            models.Index(
                fields=["failed_at"],
                condition=models.Q(state=DeliveryState.FAILED),
                name="delivery_failed_idx",
            ),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event_id} to {self.subscription_id}"


class DeliveryAttempt(models.Model):
    """One HTTP POST of a delivery: when, how long, and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=MAX_OUTCOME_LENGTH, blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self):
        return f"attempt {self.number} of delivery {self.delivery_id}"
