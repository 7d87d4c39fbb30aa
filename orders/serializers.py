"""Output serializers of the orders domain. `OrderSerializer` is the seed's `Order`:
the one representation of an order on the API (the capture answer and the read
endpoints)."""

import heapq

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from omnitron.api.exceptions import named_errors
from omnitron.api.serializers import OutputModelSerializer

from .error_codes import OrderErrorCode
from .models import Order, OrderItem, delivery_range_normalized

# The seed's property order.
ORDER_FIELDS = [
    "pk", "number", "channel", "customer", "date_placed", "extra_field", "payment_option",
    "payment_option_slug", "bin_number", "installment", "installment_count",
    "installment_interest_amount", "cargo_company", "is_send", "delivery_type",
    "cancellation_info", "cancel_status", "shipping_interest_amount", "external_status",
    "client_type", "carrier_shipping_code", "segment", "checkout_provider_id", "status",
    "currency", "amount", "discount_amount", "shipping_amount", "shipping_tax_rate",
    "refund_amount", "discount_refund_amount", "shipping_refund_amount", "invoice_number",
    "invoice_date", "e_archive_url", "tracking_number", "defined_tracking_url",
    "shipping_company", "remote_addr", "has_gift_box", "gift_box_note", "language_code",
    "notes", "delivery_range", "shipping_option_slug", "created_date", "modified_date",
]  # fmt: skip

DATE_TIME = {"type": "string", "format": "date-time"}


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object"})
class CancellationInfoField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "properties": {"start": DATE_TIME, "end": DATE_TIME}})
class DeliveryRangeField(serializers.JSONField):
    """In UTC with `Z`, as the import and the admin store it now; a value stored before
    that rule (another offset) is answered so too, one that is no date-time as it is."""

    def to_representation(self, value):
        if not value:
            return value
        try:
            return delivery_range_normalized(value)
        except ValueError:
            return value


class OrderSerializer(OutputModelSerializer):
    channel = serializers.IntegerField(source="channel_id", read_only=True)
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    extra_field = JSONObjectField(read_only=True)
    cancellation_info = CancellationInfoField(read_only=True)
    delivery_range = DeliveryRangeField(read_only=True)

    class Meta:
        model = Order
        fields = ORDER_FIELDS
        read_only_fields = ORDER_FIELDS


class OrderItemSerializer(OutputModelSerializer):
    order = serializers.IntegerField(source="order_id", read_only=True)
    attributes = JSONObjectField(read_only=True)
    extra_field = JSONObjectField(read_only=True)
    is_captured = serializers.BooleanField(read_only=True)

    class Meta:
        model = OrderItem
        fields = [
            "pk", "order", "product_sku", "price", "retail_price", "tax_rate",
            "discount_amount", "price_currency", "status", "attributes", "extra_field",
            "is_captured", "captured_at", "created_date", "modified_date",
        ]  # fmt: skip
        read_only_fields = fields


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, nothing else ("true", 1, "yes" are `invalid`)."""

    def to_internal_value(self, data):
        if type(data) is not bool:
            self.fail("invalid")
        return data


MAX_NAMED_FIELDS = 10  # fields not writable, named in one answer


class OrderSentSerializer(serializers.Serializer):
    """What the ERP may change on an order: whether it has taken it (`is_send`)."""

    is_send = StrictBooleanField(help_text="true once the ERP has taken the order.")

    def to_internal_value(self, data):
        if isinstance(data, dict) and (others := set(data) - {"is_send"}):
            # The first few are named: a body of 400,000 keys took 10 s to answer, in
            # 26 MB.
            named = heapq.nsmallest(MAX_NAMED_FIELDS, others)
            raise serializers.ValidationError(
                named_errors(named, OrderErrorCode.NOT_WRITABLE.message),
                code=OrderErrorCode.NOT_WRITABLE.code,
            )
        return super().to_internal_value(data)
