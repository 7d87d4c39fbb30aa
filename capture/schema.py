"""The capture request's limits in the OpenAPI document that drf-spectacular does not
read from a list serializer or from the trimming of a field."""

from orders.models import ORDER_NUMBER_PATTERN

from .rules import MAX_ITEMS_PER_CAPTURE


def capture_request_limits(result, generator, request, public):
    """Postprocessing hook (SPECTACULAR_SETTINGS), after the seed's names are given: 1
    to MAX_ITEMS_PER_CAPTURE items, and an order number that is not only whitespace
    (it is trimmed, then must not be blank) and holds no NUL."""
    properties = result["components"]["schemas"]["CaptureOrderSerializer"]["properties"]
    properties["order_items"].update(minItems=1, maxItems=MAX_ITEMS_PER_CAPTURE)
    properties["order"].update(minLength=1, pattern=ORDER_NUMBER_PATTERN)
    return result
