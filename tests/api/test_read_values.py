"""What the read endpoints answer, value by value: each Order and item property from
its own column, exactly as stored; the filters' bounds, numbers and items' order."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from django.utils.timezone import now

from orders.models import Order, OrderItem
from tests.factories import make_order
from tests.helpers import capture


def as_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def exact(response) -> dict:
    """The JSON answer with its numbers read as the text they were written as."""
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)


ISTANBUL = timezone(timedelta(hours=3))
# Every property a value of its own, none a default, so that a property answered from
# another column, rounded or in another zone shows.
DISTINCT = {
    "number": "Read-Values-1", "status": "400", "currency": "eur",
    "date_placed": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=ISTANBUL),
    "amount": Decimal("1234.56"), "discount_amount": Decimal("11.11"),
    "shipping_amount": Decimal("22.22"), "shipping_tax_rate": Decimal("7.25"),
    "refund_amount": Decimal("33.33"), "discount_refund_amount": Decimal("44.44"),
    "shipping_refund_amount": Decimal("55.55"),
    "installment_interest_amount": Decimal("66.66"),
    "shipping_interest_amount": Decimal("77.77"),
    "payment_option": 3, "installment": 7, "cargo_company": 11, "external_status": 2,
    "checkout_provider_id": 5, "payment_option_slug": "card", "bin_number": "454360",
    "installment_count": 9, "is_send": True, "delivery_type": "next_day",
    "cancellation_info": {"reason": "late"}, "cancel_status": "waiting", "client_type": "ios",
    "carrier_shipping_code": "CSC-1", "segment": "gold", "invoice_number": "INV-1",
    "invoice_date": datetime(2026, 11, 22, 12, 30, 15, 123456, tzinfo=ISTANBUL),
    "e_archive_url": "https://e.example.com/a/1",
    "tracking_number": "TRK-1", "defined_tracking_url": "https://track.example.com/1",
    "shipping_company": "mng", "remote_addr": "192.168.1.20", "has_gift_box": True,
    "gift_box_note": "for you", "language_code": "tr-tr", "notes": "ring twice",
    "delivery_range": {"start": "2026-11-23T09:00:00Z", "end": "2026-11-23T18:00:00Z"},
    "shipping_option_slug": "express", "extra_field": {"gift": [1, 2]},
}  # fmt: skip
DATE_TIMES = ("date_placed", "invoice_date", "created_date", "modified_date")


def test_every_order_property_is_its_own_column_exactly_in_utc(api_client, channel):
    """An Order property answered from another column (refund_amount from
    discount_refund_amount), rounded (a rate of 7.25 as 7) or in another zone than UTC
    with Z passed: the answer was checked against the seed's types, never against the
    values stored."""
    order = make_order(channel=channel, items=0, **DISTINCT)
    order = Order.objects.get(pk=order.pk)
    expected = {
        **{name: value for name, value in DISTINCT.items() if name not in DATE_TIMES},
        **{name: as_z(getattr(order, name)) for name in DATE_TIMES},
        "pk": order.pk, "channel": channel.pk, "customer": order.customer_id,
    }  # fmt: skip
    assert expected["date_placed"] == "2026-01-02T00:04:05.678901Z"
    detail = exact(api_client.get(f"/api/v1/orders/{order.pk}/"))
    assert detail == expected
    (listed,) = exact(api_client.get("/api/v1/orders/"))["results"]
    assert listed == expected


def test_every_item_property_is_its_own_column(api_client, channel):
    """retail_price answered from price (and the like) passed: the item's values were
    never read back but its price."""
    order = make_order(channel=channel, items=1)
    item = order.items.get()
    OrderItem.objects.filter(pk=item.pk).update(
        price=Decimal("12.34"), retail_price=Decimal("56.78"), tax_rate=Decimal("8.00"),
        discount_amount=Decimal("9.10"), attributes={"a": 1}, extra_field={"e": 2},
    )  # fmt: skip
    assert capture(api_client, order, [item.pk]).status_code == 200
    # Edited since (its modified_date moves on; its capture time stays).
    OrderItem.objects.filter(pk=item.pk).update(modified_date=now() + timedelta(hours=1))
    item = OrderItem.objects.get(pk=item.pk)
    assert item.modified_date != item.captured_at
    expected = {
        "pk": item.pk, "order": order.pk, "product_sku": item.product_sku,
        "price": Decimal("12.34"), "retail_price": Decimal("56.78"), "tax_rate": Decimal("8.00"),
        "discount_amount": Decimal("9.10"), "price_currency": "try", "status": "400",
        "attributes": {"a": 1}, "extra_field": {"e": 2}, "is_captured": True,
        "captured_at": as_z(item.captured_at), "created_date": as_z(item.created_date),
        "modified_date": as_z(item.modified_date),
    }  # fmt: skip
    assert exact(api_client.get(f"/api/v1/order_items/{item.pk}/")) == expected
    assert exact(api_client.get(f"/api/v1/order_items/?order={order.pk}"))["results"] == [expected]


def test_the_number_filter_is_exact_and_trimmed(api_client, channel):
    """Order numbers are case-sensitive (ORD-1 and ord-1 are two orders, and the capture
    tells them apart); the filter is trimmed as the capture trims a number, and one of
    whitespace only is `blank`. A case-insensitive match, or an untrimmed one, passed."""
    lower = make_order(channel=channel, items=1, number="abc-1")
    upper = make_order(channel=channel, items=1, number="ABC-1")

    def pks(number):
        response = api_client.get("/api/v1/orders/", {"number": number})
        assert response.status_code == 200, response.content
        return [o["pk"] for o in response.json()["results"]]

    assert pks("abc-1") == [lower.pk]
    assert pks("ABC-1") == [upper.pk]
    assert pks("Abc-1") == []
    assert pks("  abc-1 ") == [lower.pk]
    response = api_client.get("/api/v1/orders/", {"number": "   "})
    assert (response.status_code, response.json()["code"]) == (400, "blank")


def test_a_captures_items_come_by_item_pk(api_client, channel):
    """Items of a capture, in its list and its detail, by the item's pk (whatever the
    order they were sent in); reversed passed, every listed capture holding one item."""
    order = make_order(channel=channel, items=3)
    pks = sorted(order.items.values_list("pk", flat=True))
    assert capture(api_client, order, list(reversed(pks))).status_code == 200
    (listed,) = api_client.get("/api/v1/captures/").json()["results"]
    assert [item["order_item"] for item in listed["items"]] == pks
    detail = api_client.get(f"/api/v1/captures/{listed['pk']}/").json()
    assert [item["order_item"] for item in detail["items"]] == pks
