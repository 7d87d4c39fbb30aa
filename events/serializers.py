from functools import cache

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from omnitron.api.pagination import Pagination
from omnitron.api.serializers import StrictIntegerField

from .registry import EVENT_TYPES, EventType
from .schema import component_name

EVENT_ID = r"^evt_[0-9a-f]{32}$"


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
    data = serializers.JSONField()


@cache
def typed_event_serializer(event_type: EventType) -> type[EventSerializer]:
    """EventSerializer for one type (OpenAPI: OrderCapturedEvent, say): its `type` is
    that type's name, its `data` that type's serializer."""
    name = component_name(event_type.name, suffix="Event")

    @extend_schema_field({"type": "string", "enum": [event_type.name]})
    class TypeField(serializers.CharField):
        pass

    return type(
        f"{name}Serializer",
        (EventSerializer,),
        {
            "__doc__": f"An event of type `{event_type.name}`, as the feed answers it.",
            "__module__": __name__,
            "type": TypeField(),
            "data": event_type.data_serializer(),
        },
    )


class RegisteredEventSerializers(dict):
    """{type: its event's serializer} of the types registered when the schema is
    generated: apps register theirs in ready(). (drf-spectacular keeps what a callable
    returned the first time, so a type registered after that would be left out.)"""

    def items(self):
        return [(name, typed_event_serializer(t)) for name, t in sorted(EVENT_TYPES.items())]


# An event is one of the registered types, told apart by `type`. Each type's event has
# its own schema: a `oneOf` of the data alone would match two types whose data look
# alike, and a client could not tell which it got.
@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="Event",
        serializers=RegisteredEventSerializers(),
        resource_type_field_name="type",
        many=True,
    )
)
class EventListField(serializers.ListField):
    """The events of a page, each documented by its type."""

    child = EventSerializer()


class EventPageSerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True, help_text="The events after this page's last one; null on an empty page."
    )
    results = EventListField()
