from rest_framework import serializers

from omnitron.api.serializers import QueryDateTimeField, StrictIntegerField
from omnitron.limits import MAX_BIGINT


class CaptureFilterSerializer(serializers.Serializer):
    order = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_BIGINT,
        help_text="The order's pk (as the list's `order` says it), not its number.",
    )  # fmt: skip
    channel = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_BIGINT,
        help_text="One channel's captures (a merchant account's settlement, exported alone).",
    )  # fmt: skip
    created_at__gte = QueryDateTimeField(
        required=False, help_text="Captures made at or after this time (ISO 8601)."
    )
    created_at__lte = QueryDateTimeField(
        required=False, help_text="Captures made at or before this time (ISO 8601)."
    )
