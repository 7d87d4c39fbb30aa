from rest_framework import serializers

from omnitron.api.serializers import QueryDateTimeField, StrictIntegerField
from omnitron.limits import MAX_BIGINT


class CaptureFilterSerializer(serializers.Serializer):
    order = StrictIntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    created_at__gte = QueryDateTimeField(
        required=False, help_text="Captures made at or after this time (ISO 8601)."
    )
    created_at__lte = QueryDateTimeField(
        required=False, help_text="Captures made at or before this time (ISO 8601)."
    )
