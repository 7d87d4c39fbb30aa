"""Nothing the import accepts can make a capture fail: the capture's amount holds the
largest capture, 1,000 items at the largest price an item can have."""

from decimal import Decimal

from capture.models import CAPTURE_AMOUNT, Capture
from capture.rules import MAX_ITEMS_PER_CAPTURE
from orders.models import MONEY
from orders.services import orders_import
from tests.helpers import capture

LARGEST_PRICE = Decimal("9" * (MONEY["max_digits"] - MONEY["decimal_places"]) + ".99")


def test_the_capture_amount_column_holds_the_largest_capture():
    largest = LARGEST_PRICE * MAX_ITEMS_PER_CAPTURE
    integer_digits = CAPTURE_AMOUNT["max_digits"] - CAPTURE_AMOUNT["decimal_places"]
    assert largest < 10**integer_digits


def import_order(number: str, channel, prices: list[Decimal]) -> list[int]:
    """One order with an item per price, through the import; its item pks."""
    result = orders_import(
        data={
            "customers": [{"pk": 77, "email": "big@example.com"}],
            "orders": [{
                "number": number, "channel": channel.pk, "customer": 77,
                "date_placed": "2026-11-20T10:00:00Z", "amount": "1.00", "status": "400",
                "currency": "try",
                "items": [{"product_sku": f"S-{n}", "price": str(price)}
                          for n, price in enumerate(prices)],
            }],
        }
    )  # fmt: skip
    return [item["pk"] for item in result.created[0]["items"]]


def test_a_thousand_items_at_the_largest_price_are_captured_to_the_cent(api_client, channel):
    pks = import_order("BIG-1", channel, [LARGEST_PRICE] * MAX_ITEMS_PER_CAPTURE)
    response = capture(api_client, "BIG-1", pks, key="big-1")
    assert response.status_code == 200, response.content[:300]
    assert Capture.objects.get().amount == Decimal("9999999999990.00")
    retry = capture(api_client, "BIG-1", pks, key="big-1")
    assert (retry.status_code, retry["Idempotent-Replayed"]) == (200, "true")


def test_eleven_items_at_999999999_99_are_captured(api_client, channel):
    """The case that answered 500 (numeric field overflow) before."""
    pks = import_order("ELEVEN", channel, [Decimal("999999999.99")] * 11)
    assert capture(api_client, "ELEVEN", pks).status_code == 200
    assert Capture.objects.get().amount == Decimal("10999999999.89")
