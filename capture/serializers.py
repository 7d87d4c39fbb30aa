"""Serializers of the capture app: the input of the capture endpoint, mirroring
Omnitron's CaptureOrderSerializer and CaptureOrderItemSerializer (field-level checks
only; the rules that need the database live in capture/services.py), and the audit
records as the read endpoints answer them."""

from decimal import Decimal

from rest_framework import serializers

from omnitron import collector, exactjson
from omnitron.api.error_codes import FieldErrorCode
from omnitron.api.serializers import OutputModelSerializer, SharedFieldsMixin, StrictIntegerField
from omnitron.exactjson import LargeInteger
from omnitron.limits import MAX_BIGINT
from orders.models import ORDER_NUMBER_LENGTH
from orders.serializers import JSONObjectField

from .error_codes import CaptureErrorCode
from .models import Capture, CaptureItem
from .rules import (
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_ITEMS_PER_CAPTURE,
)
from .shape import plain_item


def _check_json_value(value) -> int:
    """Refuse what PostgreSQL's jsonb cannot store (NUL characters, lone surrogates,
    numbers beyond numeric's range) and absurd nesting (a value deeper than
    MAX_ATTRIBUTES_DEPTH), here instead of failing in the database; the first in the
    document's order. Returns how many characters longer the value's numbers are in
    the plain notation PostgreSQL answers them in (1E+3 is 1000)."""
    growth = 0
    for part, depth in exactjson.walk(value):
        if depth > MAX_ATTRIBUTES_DEPTH:
            raise CaptureErrorCode.TOO_DEEP.validation_error()
        if isinstance(part, str):
            if refusal := exactjson.text_refusal(part):
                kind, code_point = refusal
                if kind == "nul":
                    raise FieldErrorCode.NULL_CHARACTERS_NOT_ALLOWED.validation_error()
                raise FieldErrorCode.SURROGATE_CHARACTERS_NOT_ALLOWED.validation_error(
                    code_point=code_point
                )
        elif isinstance(part, Decimal):
            if not exactjson.number_in_range(part):
                raise CaptureErrorCode.NUMBER_OUT_OF_RANGE.validation_error()
            growth += _plain_length(part) - len(str(part))
    return growth


def _plain_length(value: Decimal) -> int:
    """len(format(value, "f")), counted instead of written: 1E+131000 is 131,001
    characters, and a body can hold a hundred thousand such numbers."""
    sign, digits, exponent = value.as_tuple()
    if exponent >= 0:
        return sign + (1 if digits == (0,) else len(digits) + exponent)
    return sign + max(len(digits) + exponent, 1) + 1 - exponent


def check_attributes(value: dict) -> dict:
    """The rules of an item's `attributes` beyond being an object: storable in jsonb,
    at most MAX_ATTRIBUTES_DEPTH deep and MAX_ATTRIBUTES_BYTES serialized (numbers in
    plain notation, as PostgreSQL keeps them)."""
    with collector.paused():  # the walk's own tuples set off passes over the whole app
        growth = _check_json_value(value)
    text = exactjson.dumps(value, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode("utf-8")) + growth
    if size > MAX_ATTRIBUTES_BYTES:
        raise CaptureErrorCode.ATTRIBUTES_TOO_LARGE.validation_error(size=size)
    return value


def _plain_items(data) -> list[dict] | None:
    """The common, valid shape of `order_items`, validated without DRF's per-item
    machinery (docs/performance.md has what it saves at 1,000 items): a non-empty
    list of plain items (capture/shape.py), whose attributes' errors it words as DRF
    would. Anything else returns None and takes DRF's path, which words every error.
    Both paths give the same result (tests/capture/test_input_properties.py)."""
    if not (isinstance(data, list) and data and all(plain_item(entry) for entry in data)):
        return None
    # Refused attributes are worded here as DRF's path words them, item by item: falling
    # back to that path walked every item's attributes a second time (2 MB of them cost
    # a second).
    errors = {
        index: error for index, entry in enumerate(data) if (error := _attribute_errors(entry))
    }
    if errors:  # keyed by index, as DRF's ListSerializer keys them
        raise serializers.ValidationError(errors)
    return [dict(entry) for entry in data]


def _attribute_errors(entry: dict) -> dict:
    """A plain item's errors as DRF's item serializer gives them: {} or its attributes'."""
    if "attributes" not in entry:
        return {}
    try:
        check_attributes(entry["attributes"])
    except serializers.ValidationError as exc:
        return {"attributes": exc.detail}
    return {}


class CaptureOrderItemListSerializer(serializers.ListSerializer):
    def to_internal_value(self, data):
        # Count before validating each entry: a huge list is refused at once.
        if isinstance(data, list) and len(data) > MAX_ITEMS_PER_CAPTURE:
            raise CaptureErrorCode.TOO_MANY_ITEMS.validation_error()
        plain = _plain_items(data)
        if plain is not None:
            return plain
        return super().to_internal_value(data)


class CaptureOrderItemSerializer(SharedFieldsMixin, serializers.Serializer):
    pk = StrictIntegerField(min_value=1, max_value=MAX_BIGINT, help_text="Order Item ID")
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
        return check_attributes(value)


class OrderNumberField(serializers.CharField):
    """A string, or a JSON integer read as its digits (1002 as "1002", as Omnitron's
    DRF field does): one of over 4,000 digits too (decoded as a LargeInteger), which is
    then `max_length`, as a shorter long one is, not `invalid`."""

    def to_internal_value(self, data):
        return super().to_internal_value(str(data) if isinstance(data, LargeInteger) else data)


class CaptureOrderSerializer(SharedFieldsMixin, serializers.Serializer):
    order = OrderNumberField(max_length=ORDER_NUMBER_LENGTH, help_text="Order Number")
    order_items = CaptureOrderItemSerializer(
        many=True, allow_empty=False, help_text="List of order items"
    )
    channel = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=MAX_BIGINT,
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
            raise CaptureErrorCode.DUPLICATE_ORDER_ITEMS.validation_error(pks=listed)
        return items


# The audit, as the read endpoints answer it.


class CaptureItemSerializer(OutputModelSerializer):
    order_item = serializers.IntegerField(source="order_item_id", read_only=True)
    attributes_before = JSONObjectField(read_only=True)
    attributes_after = JSONObjectField(read_only=True)

    class Meta:
        model = CaptureItem
        fields = ["order_item", "price", "attributes_before", "attributes_after"]
        read_only_fields = fields


class CaptureSerializer(OutputModelSerializer):
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
