"""Event types, registered by the app whose changes they describe (capture registers
`order.captured`): how to render an event's `data`, and its schema for the docs."""

from collections.abc import Callable
from dataclasses import dataclass

from rest_framework import serializers


@dataclass(frozen=True)
class EventType:
    name: str
    # Renders the `data` of a batch of events of this type: {event id: data}.
    render: Callable[[list], dict[str, dict]]
    # The serializer that documents `data` (OpenAPI).
    data_serializer: type[serializers.Serializer]


EVENT_TYPES: dict[str, EventType] = {}


def register(event_type: EventType) -> None:
    EVENT_TYPES[event_type.name] = event_type
