"""The seed's `Order`: the one representation of an order on the API (the capture
answer and the read endpoints)."""

from rest_framework import serializers

from .models import Order

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


class OrderSerializer(serializers.ModelSerializer):
    channel = serializers.IntegerField(source="channel_id", read_only=True)
    customer = serializers.IntegerField(source="customer_id", read_only=True)

    class Meta:
        model = Order
        fields = ORDER_FIELDS
        read_only_fields = ORDER_FIELDS
