"""The capture request's shape as the serializers give it back, defined once for the
three places that read a body without them: the authentication statement's read of
the order (lookups.py), the replay of a body as sent (idempotency.py) and the plain
items (serializers.py). A body of this shape is one validation would return as it is,
but for what the shape leaves to the serializers: the attributes' contents and
duplicate pks. Anything else takes the serializers' path, which words every error.
Tests check the field names are the serializers' and that the paths agree
(tests/capture/test_input_properties.py)."""

from omnitron import exactjson
from omnitron.limits import is_row_id
from orders.models import ORDER_NUMBER_LENGTH

from .rules import MAX_ITEMS_PER_CAPTURE

REQUEST_FIELDS = frozenset({"order", "order_items", "channel"})
ITEM_FIELDS = frozenset({"pk", "attributes"})


def plain_item(entry) -> bool:
    """{"pk": <1 to 2**63 - 1>, "attributes": <an object>} with the attributes
    optional, and no other key."""
    return (
        isinstance(entry, dict)
        and entry.keys() <= ITEM_FIELDS
        and is_row_id(entry.get("pk"))
        and isinstance(entry.get("attributes", {}), dict)
    )


def plain_order_number(number) -> bool:
    """Text of 1 to ORDER_NUMBER_LENGTH characters that validation keeps as it is (no
    surrounding whitespace to trim, nothing PostgreSQL refuses)."""
    return (
        isinstance(number, str)
        and 0 < len(number) <= ORDER_NUMBER_LENGTH
        and number == number.strip()
        and exactjson.text_refusal(number) is None
    )


def plain_request(data) -> bool:
    """{"order": <a plain number>, "order_items": [1 to MAX_ITEMS_PER_CAPTURE plain
    items], "channel": <1 to 2**63 - 1>} with the channel optional, and no other key."""
    if not (isinstance(data, dict) and data.keys() <= REQUEST_FIELDS):
        return False
    items = data.get("order_items")
    return (
        plain_order_number(data.get("order"))
        and ("channel" not in data or is_row_id(data["channel"]))
        and isinstance(items, list)
        and 0 < len(items) <= MAX_ITEMS_PER_CAPTURE
        and all(plain_item(entry) for entry in items)
    )
