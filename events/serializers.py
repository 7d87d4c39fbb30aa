from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from omnitron.api.pagination import Pagination
from omnitron.api.serializers import StrictIntegerField

from .registry import EVENT_TYPES

EVENT_ID = r"^evt_[0-9a-f]{32}$"


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="EventData",
        # Read when the schema is generated: apps register their types in ready().
        serializers=lambda: [event_type.data_serializer for event_type in EVENT_TYPES.values()],
        resource_type_field_name=None,
    )
)
class EventDataField(serializers.JSONField):
    """The `data` of an event, by its type (documented from the registered types)."""


class EventFilterSerializer(serializers.Serializer):
    # Not trimmed: another spelling of an id is refused, as a list's cursor is.
    after = serializers.RegexField(
        EVENT_ID, required=False, trim_whitespace=False,
        help_text="The last event id you got: the events after it.",
    )  # fmt: skip
    type = serializers.ChoiceField(choices=[], required=False)  # the registered types: get_fields
    limit = StrictIntegerField(required=False, min_value=1, max_value=Pagination.max_page_size,
                               default=Pagination.page_size)  # as the lists' page_size  # fmt: skip

    def get_fields(self):
        fields = super().get_fields()
        # Read when the filter is used: apps register their types in ready(), which may
        # come after this module is imported.
        fields["type"].choices = sorted(EVENT_TYPES)
        return fields

    def validate_after(self, value):
        if value.endswith("\n"):  # the pattern's `$` matches before a final newline
            message = self.fields["after"].error_messages["invalid"]
            raise serializers.ValidationError(message, code="invalid")
        return value


class EventSerializer(serializers.Serializer):
    """An event as the feed answers it: its id and channel, and its payload's type,
    timestamp and data, as the webhooks send them."""

    id = serializers.CharField(help_text="Unique; the `webhook-id` of every delivery of it.")
    type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    channel = serializers.IntegerField()
    data = EventDataField()


class EventPageSerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True, help_text="The events after this page's last one; null on an empty page."
    )
    results = EventSerializer(many=True)
