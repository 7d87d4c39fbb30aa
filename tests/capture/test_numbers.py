"""Numbers in `attributes` are stored and answered exactly: the same value (PostgreSQL
answers it in plain notation), never a float's approximation, and a number
PostgreSQL cannot hold is a 400 with a code, never a 500 (hypothesis)."""

import json
import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.serializers import _plain_length
from omnitron import exactjson
from tests.factories import make_order
from tests.helpers import CAPTURE_URL

digits = st.text("0123456789", min_size=1, max_size=60)
number_texts = st.one_of(
    st.integers(min_value=-(10**50), max_value=10**50).map(str),
    st.builds(lambda sign, whole, fraction: f"{sign}{int(whole)}.{fraction}",
              st.sampled_from(["", "-"]), digits, digits),
    st.builds(lambda sign, whole, exp_sign, exponent: f"{sign}{int(whole)}e{exp_sign}{exponent}",
              st.sampled_from(["", "-"]), digits, st.sampled_from(["", "+", "-"]),
              st.integers(0, 250000)),
    st.sampled_from(["0", "-0", "0.0", "-0.0", "1e400", "-1e400", "1E-400", "1e131071",
                     "1e131072", "1e-16383", "1e-16384", "0.1000000000000000055511151231257827", "1e4300",
     "9" * 4400,
                     "123456789012345678901234567890.000000000000000000001"]),
)  # fmt: skip


def post_raw(client, text: str):
    return client.post(CAPTURE_URL, text, content_type="application/json")


def stored_attributes(client, pk: int) -> dict:
    response = client.get(f"/api/v1/order_items/{pk}/")
    assert response.status_code == 200, (pk, response.content)
    return exactjson.loads(response.content)["attributes"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=number_texts)
def test_a_number_is_stored_exactly_or_refused_with_a_code(api_client, channel, text):
    order = make_order(channel=channel, items=1)
    pk = order.items.get().pk
    body = f'{{"order": "{order.number}", "order_items": [{{"pk": {pk}, "attributes": {{"n": {text}}}}}]}}'
    response = post_raw(api_client, body)
    sent = Decimal(text)
    plain_size = len(format(sent, "f")) + len('{"n":}')
    if not exactjson.number_in_range(sent):
        assert (response.status_code, response.json()["code"]) == (400, "number_out_of_range")
    elif plain_size > 16 * 1024:
        assert (response.status_code, response.json()["code"]) == (400, "attributes_too_large")
    else:
        assert response.status_code == 200, response.content
        stored = stored_attributes(api_client, pk)["n"]
        assert Decimal(stored) == sent  # the same number, every digit kept


@pytest.mark.parametrize(
    ("text", "answered"),
    [("1e400", None), ("-1e400", None),
     ("0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827"),
     ("123456789012345678901234567890", "123456789012345678901234567890"),
     ("1.50", "1.50"),
     # PostgreSQL's plain notation, as docs/api.md says (Python's str() wrote 1E-7).
     ("1e3", "1000"), ("1e-7", "0.0000001"), ("100e-9", "0.000000100"), ("-2.5E-8", "-0.000000025"),
     ("-0e5", "0")],
)  # fmt: skip
def test_what_floats_lose_is_kept(api_client, order, text, answered):
    pk = order.items.first().pk
    body = {"order": order.number, "order_items": [{"pk": pk, "attributes": {"n": "X"}}]}
    response = post_raw(api_client, json.dumps(body).replace('"X"', text))
    assert response.status_code == 200, response.content
    stored = stored_attributes(api_client, pk)["n"]
    assert Decimal(stored) == Decimal(text)
    if answered is not None:
        raw = api_client.get(f"/api/v1/order_items/{pk}/").content.decode()
        assert f'"n":{answered}' in raw  # the digits themselves, not a float's rounding


def test_a_number_postgresql_cannot_hold_is_400_and_changes_nothing(api_client, order):
    pk = order.items.first().pk
    body = f'{{"order": "{order.number}", "order_items": [{{"pk": {pk}, "attributes": {{"n": 1e200000}}}}]}}'
    response = post_raw(api_client, body)
    assert response.status_code == 400
    assert response.json() == {
        "order_items": [{"attributes": [
            "Numbers must have at most 4300 digits before the decimal point and 16383 after it."
        ]}],
        "code": "number_out_of_range",
    }  # fmt: skip
    assert order.items.filter(captured_at__isnull=False).count() == 0


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_the_plain_length_is_counted_as_format_writes_it(value):
    assert _plain_length(value) == len(format(value, "f"))


def test_numbers_with_huge_exponents_are_refused_at_once(api_client, order):
    """Each 1e131000 was 131,001 characters in plain notation: writing 20,000 of them
    out held a worker for seconds (a 2.7 MB body of them, past gunicorn's timeout).
    Such a number is out of range now; 1e4299 is 4,300 characters, and counted so."""
    pk = order.items.first().pk
    numbers = ",".join(["1e4299"] * 20_000)
    body = f'{{"order": "{order.number}", "order_items": [{{"pk": {pk}, "attributes": {{"a": [{numbers}]}}}}]}}'
    started = time.monotonic()
    response = post_raw(api_client, body)
    assert time.monotonic() - started < 2
    assert (response.status_code, response.json()["code"]) == (400, "attributes_too_large")
    size = len('{"a":[]}') + 20_000 * 4_300 + 19_999  # as PostgreSQL would write it
    assert f"{size} bytes" in response.json()["order_items"][0]["attributes"][0]


@pytest.mark.parametrize("value", ["NaN", "-Infinity", "sNaN"])
def test_an_answer_never_holds_a_number_json_has_not(value):
    """Written as raw JSON, a Decimal NaN (only raw SQL can store one in a numeric
    column) was answered `NaN`, which no JSON parser reads."""
    from omnitron.api.renderers import render_json

    with pytest.raises(ValueError, match="is not JSON"):
        render_json({"discount_amount": Decimal(value)})


@pytest.mark.parametrize("text", ["0e200000", "0e2147483648", "-0e99999999999"])
def test_a_zero_with_an_exponent_beyond_numerics_is_refused_not_a_500(api_client, order, text):
    """PostgreSQL reads 0e300000000 as 0 but refuses 0e2147483648 ("value overflows
    numeric format", a DataError: 500): a zero's exponent counts as any number's."""
    pk = order.items.first().pk
    body = f'{{"order": "{order.number}", "order_items": [{{"pk": {pk}, "attributes": {{"n": {text}}}}}]}}'
    response = post_raw(api_client, body)
    assert (response.status_code, response.json()["code"]) == (400, "number_out_of_range")


@pytest.mark.parametrize("digits", [19, 1_000, 4_000, 4_001, 4_300, 100_000])
def test_an_integer_too_long_for_a_field_is_named_by_its_range_whatever_its_length(
    api_client, order, digits
):
    """A JSON integer of over 4,000 digits is decoded as a LargeInteger (Python will not
    convert one of over 4,300): a pk or a channel that long was `invalid` and an order
    number `invalid` (not a string), where a shorter one is `max_value` and, read as
    its digits, `max_length`."""
    long = "9" * digits
    item = order.items.first().pk
    bodies = {
        ("order_items", "pk", "max_value"): f'{{"order": "{order.number}", "order_items": [{{"pk": {long}}}]}}',
        ("order_items", "pk", "min_value"): f'{{"order": "{order.number}", "order_items": [{{"pk": -{long}}}]}}',
        ("channel", None, "max_value"): f'{{"order": "{order.number}", "channel": {long}, "order_items": [{{"pk": {item}}}]}}',
        ("order", None, "max_length"): f'{{"order": {long}, "order_items": [{{"pk": {item}}}]}}',
    }  # fmt: skip
    if digits <= 128:  # a number a string field takes
        del bodies["order", None, "max_length"]
    for (field, inner, code), body in bodies.items():
        response = api_client.post(CAPTURE_URL, body, content_type="application/json")
        assert response.status_code == 400, body[:80]
        error = response.json()[field]
        if inner:
            error = error[0][inner]
        assert [response.json()["code"], len(error)] == [code, 1], (field, response.json())


def test_an_integer_part_python_cannot_read_back_is_refused(api_client, order):
    """PostgreSQL holds 1e5000, and answered it as 5,001 digits in the capture's answer,
    its webhook and the event feed: Python's json (the standard webhooks library too)
    reads an integer of at most 4,300 digits, so a receiver failed on every attempt.
    4,300 digits are kept, and read back by the standard library."""
    pk = order.items.first().pk
    for text, status in (("1e5000", 400), ("-1.5e4300", 400), ("1e4299", 200)):
        body = f'{{"order": "{order.number}", "order_items": [{{"pk": {pk}, "attributes": {{"n": {text}}}}}]}}'
        response = post_raw(api_client, body)
        assert response.status_code == status, (text, response.content[:200])
    assert response.json()["number"] == order.number  # json.loads, as any Python client
    answered = json.loads(api_client.get(f"/api/v1/order_items/{pk}/").content)
    assert answered["attributes"]["n"] == 10**4299


def test_a_long_integer_where_a_list_is_expected_is_named_an_integer(api_client):
    """The decoder's own class name showed: 'got type "LargeInteger"'."""
    body = f'{{"order": "A-1", "order_items": {"9" * 4001}}}'
    response = post_raw(api_client, body)
    assert response.status_code == 400
    assert response.json()["order_items"] == ['Expected a list of items but got type "int".']
