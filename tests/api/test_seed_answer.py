"""The capture answer, validated against the seed's own `Order` schema."""

import copy
from datetime import UTC, datetime
from decimal import Decimal

import jsonschema
import pytest

from tests.api.seed import load_seed
from tests.api.test_schema import ALLOWED_DIFFERENCES, STATUS_CODES
from tests.contract import to_json_schema
from tests.factories import make_order
from tests.helpers import capture


def seed_order_schema(*, nullable=()):
    """The seed's Order with the status enum as strings, and `nullable` properties."""
    components = copy.deepcopy(load_seed()["components"]["schemas"])
    properties = components["Order"]["properties"]
    properties["status"]["enum"] = STATUS_CODES
    for name in nullable:
        properties[name] = {"allOf": [properties[name]], "nullable": True}
    return to_json_schema({"$ref": "#/components/schemas/Order"}, components)


def validate(body, schema):
    jsonschema.validate(body, schema, format_checker=jsonschema.FormatChecker())


def test_a_fully_set_order_answers_exactly_the_seed(api_client, channel):
    order = make_order(
        channel=channel, items=1, payment_option=3, installment=7, cargo_company=11,
        external_status=2, checkout_provider_id=5, shipping_company="mng",
        remote_addr="192.168.1.20", e_archive_url="https://e.example.com/a/1",
        defined_tracking_url="https://track.example.com/1", installment_count=3,
        invoice_date=datetime(2026, 11, 22, 9, 30, tzinfo=UTC), shipping_tax_rate=Decimal("18.00"),
        delivery_type="next_day", cancel_status="waiting", client_type="ios",
        delivery_range={"start": "2026-11-23T09:00:00Z", "end": "2026-11-23T18:00:00Z"},
        extra_field={"gift": True}, notes="leave at door", bin_number="454360",
    )  # fmt: skip
    response = capture(api_client, order, [order.items.get().pk])
    assert response.status_code == 200
    validate(response.json(), seed_order_schema())


def test_an_order_without_references_answers_the_seed_with_the_allowed_nulls(api_client, order):
    allowed_null = [prop for (component, prop, attribute) in ALLOWED_DIFFERENCES
                    if component == "Order" and attribute == "nullable"]  # fmt: skip
    body = capture(api_client, order, [order.items.first().pk]).json()
    assert {name for name in allowed_null if body[name] is None} == set(allowed_null)
    validate(body, seed_order_schema(nullable=allowed_null))
    # Without the allowance, the nulls are exactly what the seed would refuse.
    with pytest.raises(jsonschema.ValidationError) as refused:
        validate(body, seed_order_schema())
    assert refused.value.path[0] in allowed_null
