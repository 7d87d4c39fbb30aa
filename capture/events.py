"""The capture's event, `order.captured`: one per successful capture, written by the
capture's own statement (capture/sql.py). Its data is the capture exactly as
GET /api/v1/captures/{pk}/ answers it and the order exactly as the capture answered
it (rendered from the order row the capture's statement returned)."""

from rest_framework import serializers

from events.registry import EventType, register
from orders.models import order_from_snapshot
from orders.serializers import OrderSerializer

from .selectors import captures_with_items
from .serializers import CaptureSerializer
from .sql import ORDER_CAPTURED


class OrderCapturedDataSerializer(serializers.Serializer):
    capture = CaptureSerializer(help_text="As GET /api/v1/captures/{pk}/ answers it.")
    order = OrderSerializer(help_text="As the capture answered it.")


def render(events) -> dict[str, dict]:
    captures = captures_with_items().in_bulk([event.object_id for event in events])
    return {
        event.id: {
            "capture": CaptureSerializer(captures[event.object_id]).data,
            "order": OrderSerializer(order_from_snapshot(event.snapshot)).data,
        }
        for event in events
    }


register(EventType(ORDER_CAPTURED, render=render, data_serializer=OrderCapturedDataSerializer))
