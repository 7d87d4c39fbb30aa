"""What a capture leaves behind: an audit row per capture, one row per captured
item, and the stored answers that make retries with an Idempotency-Key safe."""

from django.conf import settings
from django.db import models

from omnitron.exactjson import EXACT_JSON
from omnitron.limits import MAX_REQUEST_ID_LENGTH
from orders.models import MONEY, Channel, Order, OrderItem

from .rules import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_ITEMS_PER_CAPTURE

# The largest capture: MAX_ITEMS_PER_CAPTURE items at the largest price an item can
# have (MONEY) fits, so nothing the import accepts can overflow a capture's amount.
CAPTURE_AMOUNT = {
    "max_digits": MONEY["max_digits"] + len(str(MAX_ITEMS_PER_CAPTURE)) - 1,
    "decimal_places": MONEY["decimal_places"],
}


class Capture(models.Model):
    """One successful capture request: who captured which items of an order, when,
    and for how much. Written once, never edited."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="captures")
    # The order's channel, copied by the database on insert (capture/0007): a
    # channel's captures, newest first, are one range of capture_channel_created_idx,
    # however many the other channels hold.
    channel = models.ForeignKey(
        Channel, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        editable=False, related_name="+",
    )  # fmt: skip
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="captures"
    )
    created_at = models.DateTimeField()
    amount = models.DecimalField(**CAPTURE_AMOUNT, help_text="Sum of the captured items' price.")
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=MAX_IDEMPOTENCY_KEY_LENGTH, null=True, blank=True)
    request_id = models.CharField(max_length=MAX_REQUEST_ID_LENGTH, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]  # and its index: pages at any depth cost the same
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="capture_created_idx"),
            models.Index(
                fields=["channel", "-created_at", "-id"], name="capture_channel_created_idx"
            ),
        ]

    def __str__(self):
        return f"Capture #{self.pk}"


class CaptureItem(models.Model):
    """An item captured by a capture. The unique order_item is the database's own
    guarantee that no item is ever captured twice."""

    capture = models.ForeignKey(Capture, on_delete=models.PROTECT, related_name="items")
    order_item = models.OneToOneField(
        OrderItem, on_delete=models.PROTECT, related_name="capture_item"
    )
    price = models.DecimalField(**MONEY)
    attributes_before = models.JSONField(default=dict, **EXACT_JSON)
    attributes_after = models.JSONField(default=dict, **EXACT_JSON)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"Item #{self.order_item_id} in capture #{self.capture_id}"


class IdempotencyRecord(models.Model):
    """The stored answer of the first capture request made with a key, per user."""

    # Indexed by uniq_idempotency_user_key (user, key): no index of its own to write.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False)
    key = models.CharField(max_length=MAX_IDEMPOTENCY_KEY_LENGTH)
    # The order the answer shows, if any: it is replayed only while the user may see
    # it. No foreign key constraint: a record is a cache of an answer, kept a day. No
    # index: records are looked up by user and key, never by order.
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    request_fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The rendered JSON, byte for byte: a replay answers exactly what the first request got.
    response_body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="uniq_idempotency_user_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self):
        return f"{self.key} ({self.user_id})"
