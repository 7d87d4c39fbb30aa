from rest_framework import serializers

from omnitron.api.serializers import StrictIntegerField
from omnitron.limits import MAX_BIGINT


class CaptureFilterSerializer(serializers.Serializer):
    order = StrictIntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
