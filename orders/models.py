"""Orders as Omnitron keeps them: one row per order, one row per unit ordered."""

import re
from datetime import UTC, datetime

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from omnitron.exactjson import EXACT_JSON

from .enums import CancelStatus, ClientType, Currency, DeliveryType, OrderStatus, ShippingCompany

ORDER_NUMBER_LENGTH = 128  # Omnitron's order numbers; the capture and the filters check it
# An order number as the API reads one, for the OpenAPI document: not whitespace only
# (it is trimmed, then `blank`), and no NUL (`null_characters_not_allowed`).
ORDER_NUMBER_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

MONEY = {"max_digits": 12, "decimal_places": 2}
RATE_DIGITS = {"max_digits": 5, "decimal_places": 2}


class Channel(models.Model):
    """A sales channel (web shop, marketplace, store). Its pk is Omnitron's channel id."""

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} ({self.pk})"


class Customer(models.Model):
    id = models.IntegerField(primary_key=True)
    email = models.EmailField(max_length=254, db_index=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.email


class ChannelMembership(models.Model):
    """Grants a user the orders of one channel. A user sees only the orders of their
    channels; a superuser sees all."""

    # Indexed by uniq_membership_user_channel (user, channel).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="channel_memberships",
        db_index=False,
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "channel"], name="uniq_membership_user_channel")
        ]

    def __str__(self):
        return f"{self.user} in {self.channel}"


class Order(models.Model):
    """Every property of the seed's `Order`, as a column."""

    number = models.CharField(max_length=ORDER_NUMBER_LENGTH)
    # Indexed by order_channel_placed_idx (channel, date_placed, id).
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    date_placed = models.DateTimeField()
    status = models.CharField(max_length=8, choices=OrderStatus.choices, db_index=True)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    amount = models.DecimalField(**MONEY)
    discount_amount = models.DecimalField(**MONEY, default=0)
    shipping_amount = models.DecimalField(**MONEY, default=0)
    shipping_tax_rate = models.DecimalField(**RATE_DIGITS, null=True, blank=True)
    refund_amount = models.DecimalField(**MONEY, default=0)
    discount_refund_amount = models.DecimalField(**MONEY, default=0)
    shipping_refund_amount = models.DecimalField(**MONEY, default=0)
    installment_interest_amount = models.DecimalField(**MONEY, default=0)
    shipping_interest_amount = models.DecimalField(**MONEY, default=0)

    # References to Omnitron objects this service does not model: plain ids.
    payment_option = models.IntegerField(null=True, blank=True)
    installment = models.IntegerField(null=True, blank=True)
    cargo_company = models.IntegerField(null=True, blank=True)
    external_status = models.IntegerField(null=True, blank=True)
    checkout_provider_id = models.IntegerField(null=True, blank=True)

    payment_option_slug = models.CharField(max_length=128, null=True, blank=True)
    bin_number = models.CharField(max_length=8, null=True, blank=True)
    installment_count = models.IntegerField(null=True, blank=True)
    is_send = models.BooleanField(default=False)
    delivery_type = models.CharField(
        max_length=16, choices=DeliveryType.choices, null=True, blank=True
    )
    cancel_status = models.CharField(
        max_length=32, choices=CancelStatus.choices, null=True, blank=True
    )
    cancellation_info = models.JSONField(default=dict, blank=True, **EXACT_JSON)
    client_type = models.CharField(
        max_length=16, choices=ClientType.choices, default=ClientType.DEFAULT
    )
    carrier_shipping_code = models.CharField(max_length=255, null=True, blank=True)
    segment = models.CharField(max_length=255, null=True, blank=True)
    invoice_number = models.CharField(max_length=255, null=True, blank=True)
    invoice_date = models.DateTimeField(null=True, blank=True)
    e_archive_url = models.URLField(max_length=1024, null=True, blank=True)
    tracking_number = models.CharField(max_length=255, null=True, blank=True)
    defined_tracking_url = models.URLField(max_length=1024, null=True, blank=True)
    shipping_company = models.CharField(
        max_length=32, choices=ShippingCompany.choices, null=True, blank=True
    )
    remote_addr = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    has_gift_box = models.BooleanField(default=False)
    gift_box_note = models.TextField(null=True, blank=True)
    language_code = models.CharField(max_length=16, null=True, blank=True)
    notes = models.TextField(null=True, blank=True)
    delivery_range = models.JSONField(default=dict, blank=True, **EXACT_JSON)
    shipping_option_slug = models.CharField(max_length=128, null=True, blank=True)
    extra_field = models.JSONField(default=dict, blank=True, **EXACT_JSON)

    created_date = models.DateTimeField(auto_now_add=True)
    modified_date = models.DateTimeField(auto_now=True)

    class Meta:
        # The list's order; its indexes let a page (omnitron/api/pagination.py) start
        # anywhere without reading what comes before, also for the ERP's pull of unsent
        # orders.
        ordering = ["-date_placed", "-id"]
        indexes = [
            models.Index(fields=["-date_placed", "-id"], name="order_placed_idx"),
            # One channel's orders in the list's order: a one-channel user's page is one
            # range of this index, however many orders the other channels hold.
            models.Index(
                fields=["channel", "-date_placed", "-id"], name="order_channel_placed_idx"
            ),
            models.Index(
                fields=["-date_placed", "-id"],
                condition=models.Q(is_send=False),
                name="order_unsent_idx",
            ),
        ]
        # (number, channel): the unique index also serves lookups by number alone.
        constraints = [
            models.UniqueConstraint(fields=["number", "channel"], name="uniq_order_number_channel")
        ]
        permissions = [
            ("capture_order", "Can capture order items"),
            ("mark_order_sent", "Can mark orders sent to the ERP (is_send)"),
        ]

    def __str__(self):
        return self.number


DELIVERY_RANGE_KEYS = ("start", "end")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def delivery_range_normalized(value) -> dict:
    """An order's `delivery_range` as the seed's Order has it, `{"start", "end"}`, each
    an ISO 8601 date-time with its offset, in UTC with `Z` as every date-time the API
    answers (`2026-11-22T12:00:00+03:00` is `2026-11-22T09:00:00Z`). ValueError, saying
    why, for anything else: the import stored any object, and the capture answered
    `{"start": "garbage", "end": 5}`."""
    if not isinstance(value, dict):
        raise ValueError("Must be a JSON object.")
    if unknown := sorted(set(value) - set(DELIVERY_RANGE_KEYS)):
        raise ValueError(f"Only start and end, not {', '.join(map(repr, unknown))}.")
    normalized = {}
    for key in DELIVERY_RANGE_KEYS:
        if key not in value:
            continue
        text = value[key]
        if not (isinstance(text, str) and _DATE_TIME.fullmatch(text)):
            raise ValueError(f"{key}: an ISO 8601 date-time with its offset, such as "
                             "2026-11-22T09:00:00Z.")  # fmt: skip
        try:
            moment = datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError(f"{key}: not a date-time of the calendar.") from None
        normalized[key] = moment.isoformat().replace("+00:00", "Z")
    return normalized


def price_currency_error(order_currency: str, price_currency: str | None) -> str | None:
    """Why an item's price currency cannot be its order's (None when it can, or is not
    given): a capture's amount adds its items' prices up, in the order's currency. The
    import and the admin's item forms check it."""
    if price_currency in (None, "") or price_currency == order_currency:
        return None
    return f"Must be the order's currency ({order_currency})."


class OrderItem(models.Model):
    """One unit of a product in an order (quantity 2 is two items), as in Omnitron."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    # The order's channel, copied by the database on every write (orders/0008): a
    # channel's items in pk order are one range of item_channel_idx, however many
    # items the other channels hold (docs/performance.md).
    channel = models.ForeignKey(
        Channel, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        editable=False, related_name="+",
    )  # fmt: skip
    product_sku = models.CharField(max_length=128)
    # Never negative: a capture's amount is the sum of its items' prices.
    price = models.DecimalField(
        **MONEY,
        validators=[MinValueValidator(0)],
        help_text="What the customer pays for this unit.",
    )
    retail_price = models.DecimalField(**MONEY, default=0)
    tax_rate = models.DecimalField(**RATE_DIGITS, default=0)
    discount_amount = models.DecimalField(**MONEY, default=0)
    price_currency = models.CharField(max_length=3, choices=Currency.choices)
    status = models.CharField(max_length=8, choices=OrderStatus.choices)
    attributes = models.JSONField(default=dict, blank=True, **EXACT_JSON)
    extra_field = models.JSONField(default=dict, blank=True, **EXACT_JSON)
    captured_at = models.DateTimeField(null=True, blank=True)
    created_date = models.DateTimeField(auto_now_add=True)
    modified_date = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["channel", "id"], name="item_channel_idx"),
            # The items list's `?status=` in the list's order (pk), for every user and for
            # one channel's: a status few items have read the whole table without them. A
            # capture changes no status, so its update of the item stays in place (HOT);
            # `captured_at` gets no index for that reason.
            models.Index(fields=["status", "id"], name="item_status_idx"),
            models.Index(fields=["channel", "status", "id"], name="item_channel_status_idx"),
        ]

    def __str__(self):
        return f"{self.product_sku} (#{self.pk})"

    @property
    def is_captured(self) -> bool:
        return self.captured_at is not None


def order_from_snapshot(snapshot: dict) -> Order:
    """The order a jsonb snapshot of its row (`to_jsonb(orders_order)`) describes, as
    the ORM would have loaded it from that row. A column added since the snapshot was
    taken (an event not rendered yet when a release adds one) has its default, if it has
    one or may be null; any other missing column is a KeyError (a renamed one, say:
    its value would be lost, not defaulted)."""
    fields = Order._meta.concrete_fields
    return Order.from_db(None, [field.attname for field in fields],
                         [_snapshot_value(snapshot, field) for field in fields])  # fmt: skip


def _snapshot_value(snapshot: dict, field):
    if field.column in snapshot:
        return field.to_python(snapshot[field.column])
    if field.has_default() or field.null:
        return field.get_default()
    raise KeyError(f"The order snapshot has no {field.column!r}, and the column no default.")
