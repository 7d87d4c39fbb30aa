"""Validation of the import format (see orders_import): DRF serializers built from
the models, strict about unknown keys, with errors named by their path
(`orders[3].items[1].price: ...`)."""

import re
from decimal import ROUND_DOWN, Decimal

from django.db import models
from rest_framework import serializers

from omnitron import exactjson
from omnitron.api.serializers import StrictIntegerField
from omnitron.limits import MAX_INTEGER, MAX_JSON_DEPTH

from .models import Order, OrderItem, delivery_range_normalized, price_currency_error


def import_document_parse(raw: bytes):
    """An import document's JSON, as every reader of one takes it: UTF-8, numbers exact
    (decimals, not floats), a key given twice refused (json keeps the last one: the
    last of two `orders` lists was imported alone). ValueError when it is not that
    (UnicodeDecodeError and JSONDecodeError included); RecursionError when nested
    deeper than Python can read."""
    return exactjson.loads(raw.decode("utf-8"), object_pairs_hook=exactjson.without_duplicate_keys)


ORDER_IMPORT_EXCLUDE = {"id", "channel", "customer", "created_date", "modified_date"}


class StrictKeysMixin:
    """Refuse keys the format does not know, instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown field."] for key in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class ImportDecimalField(serializers.DecimalField):
    """DRF's DecimalField, reading a number written in text as JSON writes numbers:
    ASCII digits without a leading zero or spaces, a point, an exponent (Python's
    Decimal also read `1_000` and other scripts' digits, `١٢٣`, as numbers). More
    places than the column's are taken when the extra ones are zeros (`19.990` is
    19.99)."""

    PLAIN_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")

    def to_internal_value(self, data):
        if isinstance(data, str) and not self.PLAIN_NUMBER.fullmatch(data):
            self.fail("invalid")
        if isinstance(data, str | Decimal) and self.decimal_places is not None:
            try:
                number = Decimal(data)
                places = number.quantize(Decimal(1).scaleb(-self.decimal_places), ROUND_DOWN)
            except ArithmeticError:
                pass  # DRF's own checks word what is wrong with it
            else:
                if places == number:
                    data = places
        return super().to_internal_value(data)


# Integers as the API reads them: a JSON integer or ASCII digits (DRF's IntegerField
# also read other scripts' digits, "١" as channel 1, and "1.00", " 7 ", "1_0").
INTEGER_FIELDS = (models.IntegerField, models.BigIntegerField, models.SmallIntegerField,
                  models.PositiveIntegerField, models.PositiveBigIntegerField,
                  models.PositiveSmallIntegerField)  # fmt: skip


class ImportModelSerializer(StrictKeysMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: ImportDecimalField,
        **dict.fromkeys(INTEGER_FIELDS, StrictIntegerField),
    }


class ChannelImportSerializer(StrictKeysMixin, serializers.Serializer):
    pk = StrictIntegerField(min_value=1, max_value=MAX_INTEGER)
    name = serializers.CharField(max_length=255)


class CustomerImportSerializer(StrictKeysMixin, serializers.Serializer):
    pk = StrictIntegerField(min_value=1, max_value=MAX_INTEGER)
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class OrderItemImportSerializer(ImportModelSerializer):
    class Meta:
        model = OrderItem
        fields = [
            "product_sku",
            "price",
            "retail_price",
            "tax_rate",
            "discount_amount",
            "price_currency",
            "status",
            "attributes",
            "extra_field",
        ]
        # Default to the order's currency and status.
        extra_kwargs = {"price_currency": {"required": False}, "status": {"required": False}}

    def validate_attributes(self, value):
        return _json_object(value)

    def validate_extra_field(self, value):
        return _json_object(value)


class OrderImportSerializer(ImportModelSerializer):
    channel = StrictIntegerField(min_value=1, max_value=MAX_INTEGER)
    customer = StrictIntegerField(min_value=1, max_value=MAX_INTEGER)
    items = OrderItemImportSerializer(many=True, required=False)

    class Meta:
        model = Order
        fields = [
            "channel",
            "customer",
            "items",
            *(f.name for f in Order._meta.concrete_fields if f.name not in ORDER_IMPORT_EXCLUDE),
        ]
        # (channel, number) duplicates are skipped by the import, not refused one query at a time.
        validators: list = []

    def validate_extra_field(self, value):
        return _json_object(value)

    def validate_cancellation_info(self, value):
        return _json_object(value)

    def validate_delivery_range(self, value):
        try:
            return delivery_range_normalized(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None

    def validate(self, attrs):
        currency = attrs.get("currency")
        errors = [
            {"price_currency": [error]}
            if (error := price_currency_error(currency, item.get("price_currency")))
            else {}
            for item in attrs.get("items", [])
        ]
        if any(errors):
            raise serializers.ValidationError({"items": errors}, code="currency_mismatch")
        return attrs


def _json_object(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.", code="not_an_object")
    # A NUL, a lone surrogate: not storable; deeper than MAX_JSON_DEPTH: stored, but no
    # page could read it back.
    if refusal := exactjson.jsonb_refusal(value, max_depth=MAX_JSON_DEPTH):
        raise serializers.ValidationError(refusal, code="not_storable")
    return value


def error_lines(errors, path: str = "") -> list[str]:
    """Flatten DRF's nested errors into `path: message` lines."""
    if isinstance(errors, dict):
        lines = []
        for key, value in errors.items():
            if isinstance(key, int):  # DRF keys list errors by index
                child = f"{path}[{key}]"
            elif key == "non_field_errors":
                child = path
            else:
                child = f"{path}.{key}" if path else key
            lines += error_lines(value, child)
        return lines
    if isinstance(errors, list):
        if all(isinstance(value, str) for value in errors):
            return [f"{path}: {value}" for value in errors]
        lines = []
        for index, value in enumerate(errors):
            if value:
                lines += error_lines(value, f"{path}[{index}]")
        return lines
    return [f"{path}: {errors}"]
