"""Serializers of the capture app: the input of the capture endpoint, mirroring
Omnitron's CaptureOrderSerializer and CaptureOrderItemSerializer (field-level checks
only; the rules that need the database live in capture/services.py), and the audit
records as the read endpoints answer them."""

import json

from rest_framework import serializers

from omnitron.api.serializers import ModelSerializer
from orders.serializers import JSONObjectField

from .models import Capture, CaptureItem
from .rules import (
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_DB_ID,
    MAX_ITEMS_PER_CAPTURE,
)


def _check_json_value(value, depth: int = 0) -> None:
    """PostgreSQL's jsonb cannot store NUL characters or lone surrogates; refuse them
    (and absurd nesting) here instead of failing in the database."""
    if depth > MAX_ATTRIBUTES_DEPTH:
        raise serializers.ValidationError(
            f"Attributes are nested deeper than {MAX_ATTRIBUTES_DEPTH} levels.", code="too_deep"
        )
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError(
                "Null characters are not allowed.", code="null_characters_not_allowed"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError(
                "Surrogate characters are not allowed.", code="surrogate_characters_not_allowed"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)


class CaptureOrderItemListSerializer(serializers.ListSerializer):
    def to_internal_value(self, data):
        # Count before validating each entry: a huge list is refused at once.
        if isinstance(data, list) and len(data) > MAX_ITEMS_PER_CAPTURE:
            raise serializers.ValidationError(
                f"At most {MAX_ITEMS_PER_CAPTURE} order items can be captured at once.",
                code="too_many_items",
            )
        return super().to_internal_value(data)


class CaptureOrderItemSerializer(serializers.Serializer):
    pk = serializers.IntegerField(min_value=1, max_value=MAX_DB_ID, help_text="Order Item ID")
    attributes = serializers.DictField(
        required=False,
        help_text=(
            "Order item attributes. Merged into the item's stored attributes: "
            "keys given replace, others stay."
        ),
    )

    class Meta:
        list_serializer_class = CaptureOrderItemListSerializer

    def validate_attributes(self, value):
        _check_json_value(value)
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > MAX_ATTRIBUTES_BYTES:
            raise serializers.ValidationError(
                f"Attributes are {size} bytes; at most {MAX_ATTRIBUTES_BYTES} are allowed.",
                code="attributes_too_large",
            )
        return value


class CaptureOrderSerializer(serializers.Serializer):
    order = serializers.CharField(max_length=128, help_text="Order Number")
    order_items = CaptureOrderItemSerializer(
        many=True, allow_empty=False, help_text="List of order items"
    )
    channel = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DB_ID,
        help_text=(
            "Extension: the channel id of the order. Needed only when the number "
            "exists in several of your channels."
        ),
    )

    def validate_order_items(self, items):
        seen, duplicates = set(), set()
        for item in items:
            (duplicates if item["pk"] in seen else seen).add(item["pk"])
        if duplicates:
            listed = ", ".join(str(pk) for pk in sorted(duplicates))
            raise serializers.ValidationError(
                f"Order items listed more than once: {listed}.", code="duplicate_order_items"
            )
        return items


# The audit, as the read endpoints answer it.


class CaptureItemSerializer(ModelSerializer):
    order_item = serializers.IntegerField(source="order_item_id", read_only=True)
    attributes_before = JSONObjectField(read_only=True)
    attributes_after = JSONObjectField(read_only=True)

    class Meta:
        model = CaptureItem
        fields = ["order_item", "price", "attributes_before", "attributes_after"]
        read_only_fields = fields


class CaptureSerializer(ModelSerializer):
    order = serializers.IntegerField(source="order_id", read_only=True)
    order_number = serializers.CharField(source="order.number", read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    items = CaptureItemSerializer(many=True, read_only=True)

    class Meta:
        model = Capture
        fields = [
            "pk", "order", "order_number", "user", "username", "created_at", "amount",
            "currency", "idempotency_key", "request_id", "items",
        ]  # fmt: skip
        read_only_fields = fields
