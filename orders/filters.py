"""Query parameters of the read endpoints, validated like any input: a bad value is
a 400 field error with a code, never silently ignored. Selectors apply them."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from omnitron.api.serializers import QueryDateTimeField, StrictIntegerField
from omnitron.limits import MAX_BIGINT

from .enums import OrderStatus
from .models import ORDER_NUMBER_LENGTH, ORDER_NUMBER_PATTERN


class QueryBooleanField(serializers.BooleanField):
    """A boolean query parameter. DRF reads a missing boolean in form-like input (a
    query string) as False, like an unticked checkbox; here missing means "no filter"."""

    default_empty_html = empty


@extend_schema_field(
    {"type": "string", "minLength": 1, "maxLength": ORDER_NUMBER_LENGTH,
     "pattern": ORDER_NUMBER_PATTERN}
)  # fmt: skip
class OrderNumberQueryField(serializers.CharField):
    """An order number, trimmed as the capture trims it: one of whitespace only is
    `blank`, one with a NUL refused (the document's pattern says both; empty is no
    filter, as for any parameter)."""


class OrderFilterSerializer(serializers.Serializer):
    number = OrderNumberQueryField(required=False, max_length=ORDER_NUMBER_LENGTH)
    channel = StrictIntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    status = serializers.ChoiceField(required=False, choices=OrderStatus.choices)
    date_placed__gte = QueryDateTimeField(required=False)
    date_placed__lte = QueryDateTimeField(required=False)
    is_send = QueryBooleanField(
        required=False, help_text="false: not yet sent to the ERP (Omnitron's ERP pull)."
    )


class OrderItemFilterSerializer(serializers.Serializer):
    order = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_BIGINT,
        help_text="The order's pk (as the list's `order` says it), not its number.",
    )  # fmt: skip
    status = serializers.ChoiceField(required=False, choices=OrderStatus.choices)
    is_captured = QueryBooleanField(required=False)
