"""A capture's answer, rendered once: what the endpoint sends, and what an
Idempotency-Key stores and replays byte for byte (capture/idempotency.py)."""

from dataclasses import dataclass

from rest_framework import status

from omnitron.api.renderers import render_json
from orders.models import Order
from orders.serializers import OrderSerializer


@dataclass(frozen=True)
class Answer:
    """A rendered answer, byte for byte what a replay with the same key answers."""

    status_code: int
    body: bytes
    replayed: bool = False


def order_answer(order: Order) -> Answer:
    """A capture's answer: the order after it, 200."""
    return Answer(status.HTTP_200_OK, render_json(OrderSerializer(order).data))
