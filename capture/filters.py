from rest_framework import serializers

from orders.filters import MAX_ID


class CaptureFilterSerializer(serializers.Serializer):
    order = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
