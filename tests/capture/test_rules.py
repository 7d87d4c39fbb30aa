"""Every capture rule through the API: the documented status and code on the wire, and
nothing changes. (tests/capture/test_services.py checks the service's own errors.)"""

import json

import pytest

from capture.models import Capture
from capture.rules import CAPTURABLE_ORDER_STATUSES, MAX_ATTRIBUTES_BYTES
from orders.enums import OrderStatus
from orders.models import ChannelMembership, OrderItem
from tests.factories import ChannelFactory, OrderItemFactory, make_api_user, make_order
from tests.helpers import CAPTURE_URL, capture, client_for


def assert_nothing_captured():
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()
    assert not Capture.objects.exists()


def post(client, body):
    return client.post(CAPTURE_URL, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"order_items": [{"pk": 1}]}, "order", "required"),
        ({"order": "", "order_items": [{"pk": 1}]}, "order", "blank"),
        ({"order": None, "order_items": [{"pk": 1}]}, "order", "null"),
        ({"order": ["A"], "order_items": [{"pk": 1}]}, "order", "invalid"),
        ({"order": "x" * 129, "order_items": [{"pk": 1}]}, "order", "max_length"),
        ({"order": "A"}, "order_items", "required"),
        ({"order": "A", "order_items": []}, "order_items", "empty"),
        ({"order": "A", "order_items": {"pk": 1}}, "order_items", "not_a_list"),
        ({"order": "A", "order_items": [{"pk": n} for n in range(1, 1002)]},
         "order_items", "too_many_items"),
        ({"order": "A", "order_items": [{"pk": 0}]}, "order_items", "min_value"),
        ({"order": "A", "order_items": [{"pk": -5}]}, "order_items", "min_value"),
        ({"order": "A", "order_items": [{"pk": "x"}]}, "order_items", "invalid"),
        ({"order": "A", "order_items": [{"pk": 2**63}]}, "order_items", "max_value"),
        *[({"order": "A", "order_items": [{"pk": pk}]}, "order_items", "invalid")
          for pk in ["١٣١٨٢", "１３２０５", "13_187", " 1118 ", "+1123", "1124.00", "-5", "7.0", True]],
        ({"order": "A", "order_items": [{"pk": 1}], "channel": "١"}, "channel", "invalid"),
        ({"order": "A", "order_items": [{}]}, "order_items", "required"),
        ({"order": "A", "order_items": [5]}, "order_items", "invalid"),
        ({"order": "A", "order_items": [{"pk": 1, "attributes": ["a"]}]}, "order_items", "not_a_dict"),
        ({"order": "A", "order_items": [{"pk": 1, "attributes": None}]}, "order_items", "null"),
        ({"order": "A", "order_items": [{"pk": 1, "attributes": {"k": "v" * 16400}}]},
         "order_items", "attributes_too_large"),
        ({"order": "A", "order_items": [{"pk": 1, "attributes": {"k": "a\x00b"}}]},
         "order_items", "null_characters_not_allowed"),
        ({"order": "A", "order_items": [{"pk": 1}, {"pk": 2}, {"pk": 1}]},
         "order_items", "duplicate_order_items"),
        ({"order": "A", "order_items": [{"pk": 1}], "channel": "web"}, "channel", "invalid"),
        ({"order": "A", "order_items": [{"pk": 1}], "channel": 0}, "channel", "min_value"),
        ({"order": "A", "order_items": [{"pk": 1}], "channel": 2**63}, "channel", "max_value"),
        ({"order": "A\x00", "order_items": [{"pk": 1}]}, "order", "null_characters_not_allowed"),
        ({"order": "A\ud800", "order_items": [{"pk": 1}]}, "order",
         "surrogate_characters_not_allowed"),
        ({"order": 7.0, "order_items": [{"pk": 1}]}, "order", "invalid"),
        ({"order": True, "order_items": [{"pk": 1}]}, "order", "invalid"),
    ],
)  # fmt: skip
def test_invalid_input_is_a_field_error_with_a_code(api_client, order, body, field, code):
    response = post(api_client, body)
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == code
    assert field in data
    assert set(data) == {field, "code"}
    assert_nothing_captured()


def test_unknown_order_number_is_order_not_found(api_client, order):
    response = capture(api_client, "NOPE", [order.items.first().pk])
    assert response.json() == {"order": ["Order not found."], "code": "order_not_found"}


def test_a_number_in_several_of_my_channels_needs_channel(api_client, api_user, channel):
    second = ChannelFactory()
    ChannelMembership.objects.create(user=api_user, channel=second)
    here = make_order(channel=channel, number="TWIN", items=1)
    there = make_order(channel=second, number="TWIN", items=1)

    ambiguous = capture(api_client, "TWIN", [there.items.get().pk])
    assert ambiguous.status_code == 400
    assert ambiguous.json()["code"] == "order_ambiguous"
    assert list(ambiguous.json()) == ["order", "code"]
    assert_nothing_captured()

    response = capture(api_client, "TWIN", [there.items.get().pk], channel=second.pk)
    assert response.status_code == 200
    assert response.json()["channel"] == second.pk
    assert here.items.get().captured_at is None


def test_channel_narrows_but_never_widens(api_client, order):
    other = ChannelFactory()
    make_order(channel=other, number=order.number, items=1)
    response = capture(api_client, order, [order.items.first().pk], channel=other.pk)
    assert response.json()["code"] == "order_not_found"


# The capturable statuses as docs/api.md lists them (rule 8.2), written out: derived
# from CAPTURABLE_ORDER_STATUSES, these tests followed any change made to it.
DOCUMENTED_CAPTURABLE = ["400", "450", "500", "510", "520", "540", "550"]


def test_the_capturable_statuses_are_the_documented_ones():
    assert sorted(CAPTURABLE_ORDER_STATUSES, key=int) == DOCUMENTED_CAPTURABLE


@pytest.mark.parametrize(
    "status", sorted(set(OrderStatus.values) - set(DOCUMENTED_CAPTURABLE), key=int)
)
def test_an_order_outside_the_capturable_statuses_is_refused(api_client, channel, status):
    order = make_order(channel=channel, status=status, items=1)
    response = capture(api_client, order, [order.items.get().pk])
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [f"Order in status {status} cannot be captured."],
        "code": "order_not_capturable",
    }
    assert_nothing_captured()


@pytest.mark.parametrize("status", DOCUMENTED_CAPTURABLE)
def test_every_capturable_order_status_captures(api_client, channel, status):
    order = make_order(channel=channel, status=status, items=1)
    assert capture(api_client, order, [order.items.get().pk]).status_code == 200


@pytest.mark.parametrize("status", ["50", "100", "600"])
def test_items_cancelled_or_refunded_are_refused(api_client, order, status):
    good, bad, _ = order.items.order_by("pk")
    OrderItem.objects.filter(pk=bad.pk).update(status=status)
    response = capture(api_client, order, [good.pk, bad.pk])
    assert response.status_code == 400
    assert response.json() == {
        "order_items": [f"Order items cannot be captured in their status: {bad.pk}."],
        "code": "order_item_not_capturable",
    }
    assert_nothing_captured()


def test_an_item_of_another_order_is_not_found_and_named(api_client, channel, order):
    stranger = make_order(channel=channel, items=2)
    mine = order.items.first()
    theirs = sorted(stranger.items.values_list("pk", flat=True))
    response = capture(api_client, order, [mine.pk, *theirs, 987654321])
    assert response.status_code == 400
    named = ", ".join(str(pk) for pk in sorted([*theirs, 987654321]))
    assert response.json() == {
        "order_items": [f"Order items not found in this order: {named}."],
        "code": "order_item_not_found",
    }
    assert_nothing_captured()


def test_a_refusal_names_the_first_hundred_items_and_counts_the_rest(api_client, order):
    """Naming 1,000 made-up 19-digit pks took 21 KB, stored for a day under each
    Idempotency-Key: one token at the capture limit filled 6 GB an hour."""
    made_up = [10**18 + n * 7919 for n in range(1000)]
    response = capture(api_client, order, made_up, key="k-1")
    assert response.status_code == 400
    named = ", ".join(str(pk) for pk in sorted(made_up)[:100])
    assert response.json() == {
        "order_items": [f"Order items not found in this order: {named} (and 900 more)."],
        "code": "order_item_not_found",
    }
    assert len(response.content) < 2500
    replayed = capture(api_client, order, made_up, key="k-1")
    assert (replayed.content, replayed["Idempotent-Replayed"]) == (response.content, "true")
    assert_nothing_captured()


def test_a_second_capture_is_already_captured_never_a_silent_success(api_client, order):
    first, second, third = order.items.order_by("pk")
    assert capture(api_client, order, [first.pk, second.pk]).status_code == 200

    response = capture(api_client, order, [third.pk, second.pk, first.pk])
    assert response.status_code == 400
    assert response.json() == {
        "order_items": [f"Order items already captured: {first.pk}, {second.pk}."],
        "code": "already_captured",
    }
    # All or nothing: the capturable third item was not captured either.
    third.refresh_from_db()
    assert third.captured_at is None
    assert Capture.objects.count() == 1


def test_an_item_priced_below_zero_or_in_another_currency_is_refused(api_client, order):
    """A capture's amount is the sum of its items' prices in the order's currency: a
    USD item was added into a TRY amount, and a negative price was captured and
    answered 500 (the metrics refused a negative amount after the commit)."""
    dollars, negative, fine = order.items.order_by("pk")
    OrderItem.objects.filter(pk=dollars.pk).update(price_currency="usd")
    OrderItem.objects.filter(pk=negative.pk).update(price="-0.01")
    for pks, refused in (([fine.pk, dollars.pk], [dollars.pk]),
                         ([negative.pk, fine.pk, dollars.pk], [dollars.pk, negative.pk])):  # fmt: skip
        response = capture(api_client, order, pks, key=f"price-{len(pks)}")
        assert response.status_code == 400
        named = ", ".join(str(pk) for pk in refused)
        assert response.json() == {
            "order_items": [f"Order items cannot be captured at their price: {named}."],
            "code": "order_item_price_invalid",
        }
    assert_nothing_captured()
    assert capture(api_client, order, [fine.pk]).status_code == 200


def test_checks_run_in_the_documented_order(api_client, channel):
    """order found > order status > items exist > item status > already captured >
    item price."""
    order = make_order(channel=channel, items=4)
    missing = 987654321
    cancelled, captured, fine, dollars = order.items.order_by("pk")
    OrderItem.objects.filter(pk=cancelled.pk).update(status="100")
    assert capture(api_client, order, [captured.pk]).status_code == 200
    OrderItem.objects.filter(pk=dollars.pk).update(price_currency="usd")
    everything_wrong = [fine.pk, captured.pk, cancelled.pk, missing, dollars.pk]

    assert capture(api_client, "NOPE", everything_wrong).json()["code"] == "order_not_found"
    order.status = "100"
    order.save()
    assert capture(api_client, order, everything_wrong).json()["code"] == "order_not_capturable"
    order.status = "400"
    order.save()
    assert capture(api_client, order, everything_wrong).json()["code"] == "order_item_not_found"
    everything_wrong.remove(missing)
    assert (
        capture(api_client, order, everything_wrong).json()["code"] == "order_item_not_capturable"
    )
    everything_wrong.remove(cancelled.pk)
    assert capture(api_client, order, everything_wrong).json()["code"] == "already_captured"
    everything_wrong.remove(captured.pk)
    assert capture(api_client, order, everything_wrong).json()["code"] == "order_item_price_invalid"
    # Field errors come before any rule, in field order.
    response = post(api_client, {"order": "", "order_items": [{"pk": 1}, {"pk": 1}]})
    assert response.json()["code"] == "blank"
    assert set(response.json()) == {"order", "order_items", "code"}


def test_an_item_of_an_order_in_another_channel_stays_hidden(api_client, order):
    other = make_order(channel=ChannelFactory(), items=1)
    OrderItemFactory(order=other)
    response = capture(api_client, order, [other.items.first().pk])
    assert response.json()["code"] == "order_item_not_found"


def test_a_user_without_channels_finds_nothing(order):
    user = make_api_user()
    response = capture(client_for(user), order, [order.items.first().pk])
    assert response.json()["code"] == "order_not_found"


@pytest.mark.parametrize("text", ["13185.0000000000000001", "1124.00", "1.0", "1e3"])
def test_a_pk_must_be_a_json_integer_not_a_number_with_a_fraction(api_client, order, text):
    pk = order.items.first().pk
    body = json.dumps({"order": order.number, "order_items": [{"pk": "X"}]})
    response = api_client.post(CAPTURE_URL, body.replace('"X"', text),
                               content_type="application/json")  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert not OrderItem.objects.filter(pk=pk, captured_at__isnull=False).exists()


def test_a_pk_as_a_string_of_ascii_digits_is_still_accepted(api_client, order):
    pk = order.items.first().pk
    response = post(api_client, {"order": order.number, "order_items": [{"pk": str(pk)}]})
    assert response.status_code == 200, response.content


def test_an_order_number_sent_as_a_json_integer_is_read_as_its_digits(api_client, channel):
    """As Omnitron's DRF CharField reads it."""
    order = make_order(channel=channel, number="777001", items=1)
    response = post(api_client, {"order": 777001, "order_items": [{"pk": order.items.get().pk}]})
    assert response.status_code == 200, response.content
    assert response.json()["number"] == "777001"


def test_an_item_priced_zero_is_captured(api_client, order):
    """order_item_price_invalid is a price below zero, not zero: a free item (a gift) is captured
    with the others, and adds nothing to the amount."""
    free, paid, _ = order.items.order_by("pk")
    OrderItem.objects.filter(pk=free.pk).update(price="0.00")
    response = capture(api_client, order, [free.pk, paid.pk])
    assert response.status_code == 200
    assert Capture.objects.get().amount == paid.price
    assert set(
        OrderItem.objects.filter(captured_at__isnull=False).values_list("pk", flat=True)
    ) == {free.pk, paid.pk}


def test_attributes_of_exactly_the_limit_are_taken_one_byte_more_is_refused(api_client, order):
    """`attributes` may be at most 16 KB serialized: 16,384 bytes are captured."""
    first, second, _ = order.items.order_by("pk")
    wrapper = len('{"k":""}')
    at_limit = {"k": "x" * (MAX_ATTRIBUTES_BYTES - wrapper)}
    over = {"k": "x" * (MAX_ATTRIBUTES_BYTES - wrapper + 1)}
    refused = post(api_client, {"order": order.number,
                                "order_items": [{"pk": second.pk, "attributes": over}]})  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (400, "attributes_too_large")
    taken = post(api_client, {"order": order.number,
                              "order_items": [{"pk": first.pk, "attributes": at_limit}]})  # fmt: skip
    assert taken.status_code == 200
    assert OrderItem.objects.get(pk=first.pk).attributes["k"] == at_limit["k"]
