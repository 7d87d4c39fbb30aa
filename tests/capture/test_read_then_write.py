"""A capture is judged on the order and items as the authentication statement read
them (capture/lookups.py), and written by one statement that writes only if they are
still as read (capture/sql.py). These tests change a row between that read and the
write: the capture must then be judged again on the rows as they are, never written
from the stale read."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

from capture import exceptions as errors
from capture.idempotency import TTL
from capture.lookups import OrderReadLookup
from capture.models import Capture, IdempotencyRecord
from capture.services import ItemInput, order_capture
from omnitron import exactjson
from orders.enums import OrderStatus
from orders.models import Order, OrderItem
from tests.capture.test_input_properties import bodies, valid_bodies
from tests.helpers import CAPTURE_URL

# Each statement its own transaction, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

LOOKUP = OrderReadLookup()


def read_as_authentication_does(params: dict, user, permitted=True) -> object:
    """The lookup's value for `params`, read as the authentication statement reads it
    for a user with (or without) the capture permission."""
    users = get_user_model()._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH token_user AS (SELECT id, is_superuser, %(permitted)s AS "
            f"has_required_permission FROM {users} WHERE id = %(uid)s) "
            f"SELECT ({LOOKUP.sql}) FROM token_user",
            {**params, "uid": user.pk, "permitted": permitted},
        )
        (value,) = cursor.fetchone()
    return LOOKUP.load(value, params)


def first_read(user, order, pks, channel=None, key=None, permitted=True):
    params = {"capture_number": order.number, "capture_channel": channel, "capture_pks": pks,
              "capture_key": key, "capture_key_since": timezone.now() - TTL}  # fmt: skip
    return read_as_authentication_does(params, user, permitted)


def rereads() -> float:
    return REGISTRY.get_sample_value("omnitron_capture_rereads_total") or 0


def capture_after(seen, user, order, items):
    return order_capture(user=user, order_number=order.number, items=items, seen=seen)


def test_a_read_still_true_is_written_in_one_statement(api_user, order):
    pks = list(order.items.values_list("pk", flat=True))
    seen = first_read(api_user, order, pks)
    assert [o.pk for o in seen.orders] == [order.pk]
    assert sorted(i.pk for i in seen.items) == sorted(pks)

    before = rereads()
    with CaptureQueriesContext(connection) as queries:
        captured = capture_after(seen, api_user, order, [ItemInput(pk) for pk in pks])

    assert captured.pk == order.pk
    assert len(queries) == 1, [q["sql"][:60] for q in queries]
    assert rereads() == before
    assert OrderItem.objects.filter(order=order, captured_at__isnull=False).count() == 3


def test_an_item_captured_since_the_read_is_already_captured(api_user, order):
    first, second, _ = order.items.order_by("pk").values_list("pk", flat=True)
    seen = first_read(api_user, order, [first, second])
    order_capture(user=api_user, order_number=order.number, items=[ItemInput(first)])
    before = rereads()

    with pytest.raises(errors.AlreadyCaptured) as raised:
        capture_after(seen, api_user, order, [ItemInput(first), ItemInput(second)])

    assert rereads() == before + 1  # omnitron_capture_rereads_total
    assert raised.value.pks == [first]
    assert Capture.objects.count() == 1
    assert OrderItem.objects.get(pk=second).captured_at is None


def test_an_order_no_longer_capturable_since_the_read_is_refused(api_user, order):
    pks = list(order.items.values_list("pk", flat=True))
    seen = first_read(api_user, order, pks)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.WAITING)

    with pytest.raises(errors.OrderNotCapturable):
        capture_after(seen, api_user, order, [ItemInput(pk) for pk in pks])

    assert not Capture.objects.exists()
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()


def test_an_item_edited_since_the_read_is_captured_as_it_is_now(api_user, order):
    """The amount and the audit's attributes come from the item as edited, not as read."""
    first = order.items.order_by("pk").first()
    seen = first_read(api_user, order, [first.pk])
    OrderItem.objects.filter(pk=first.pk).update(price="99.99", attributes={"color": "blue"})

    capture_after(seen, api_user, order, [ItemInput(first.pk, {"weight_kg": 2})])

    audit = Capture.objects.get()
    assert audit.amount == Decimal("99.99")
    (line,) = audit.items.all()
    assert line.attributes_before == {"color": "blue"}
    assert line.attributes_after == {"color": "blue", "weight_kg": 2}


def test_a_change_since_the_read_in_the_callers_own_transaction_is_seen(api_user, order):
    """A row changed by the transaction that read it keeps its xmin: its place (ctid)
    tells the versions apart."""
    first = order.items.order_by("pk").first()
    with transaction.atomic():
        OrderItem.objects.filter(pk=first.pk).update(price="12.00")
        seen = first_read(api_user, order, [first.pk])  # a version this transaction wrote
        OrderItem.objects.filter(pk=first.pk).update(price="99.99")
        capture_after(seen, api_user, order, [ItemInput(first.pk)])
    assert Capture.objects.get().amount == Decimal("99.99")


def test_a_read_of_other_items_is_not_used(api_user, order):
    first, second, _ = order.items.order_by("pk").values_list("pk", flat=True)
    seen = first_read(api_user, order, [first])  # a read for another request

    capture_after(seen, api_user, order, [ItemInput(first), ItemInput(second)])

    assert set(Capture.objects.get().items.values_list("order_item_id", flat=True)) == {
        first,
        second,
    }


def test_a_key_with_a_stored_answer_reads_no_order(api_client, api_user, order):
    """A replay needs the stored answer only."""
    pks = list(order.items.values_list("pk", flat=True))
    assert first_read(api_user, order, pks, key="k-1").orders  # no answer stored yet
    body = {"order": order.number, "order_items": [{"pk": pk} for pk in pks]}
    response = api_client.post(CAPTURE_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 200
    assert first_read(api_user, order, pks, key="k-1") is None
    assert first_read(api_user, order, pks, key="k-2").orders


def test_a_key_whose_answer_expired_reads_the_order(api_client, api_user, order):
    pks = list(order.items.values_list("pk", flat=True))
    body = {"order": order.number, "order_items": [{"pk": pks[0]}]}
    response = api_client.post(CAPTURE_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 200
    IdempotencyRecord.objects.update(created_at=timezone.now() - TTL - timedelta(seconds=1))
    assert first_read(api_user, order, pks, key="k-1").orders


def test_a_user_without_the_capture_permission_reads_no_order(api_user, order):
    pks = list(order.items.values_list("pk", flat=True))
    assert first_read(api_user, order, pks, permitted=False) is None


def test_a_padded_number_is_captured_after_validation_trims_it(api_client, order):
    """The raw body's number is not the validated one: the read is not used."""
    pk = order.items.first().pk
    body = {"order": f"  {order.number} ", "order_items": [{"pk": pk}]}
    assert lookup_params(body) is None
    assert lookup_params({**body, "order": order.number}) is not None
    response = api_client.post(CAPTURE_URL, body, format="json")
    assert response.status_code == 200, response.content
    assert OrderItem.objects.get(pk=pk).captured_at is not None


HOSTILE = [
    {"order": "ORD\x00-1", "order_items": [{"pk": 1}]},
    {"order": "x" * 129, "order_items": [{"pk": 1}]},
    {"order": "ORD-1", "order_items": [{"pk": pk} for pk in range(1, 1002)]},
    {"order": "ORD-1", "order_items": [{"pk": 0}]},
    {"order": "ORD-1", "order_items": [{"pk": 1}], "channel": 0},
    {"order": "\ud800", "order_items": [{"pk": 1}]},
    {"order": "ORD-1", "order_items": [{"pk": 2**63}]},
    {"order": "ORD-1", "order_items": [{"pk": -(2**63) - 1}]},
    {"order": "ORD-1", "order_items": [{"pk": True}]},
    {"order": "ORD-1", "order_items": [{"pk": 1}], "channel": 2**64},
    {"order": "ORD-1", "order_items": [{"pk": 1.5}]},
    {"order": "ORD-1", "order_items": [1]},
    {"order": "ORD-1", "order_items": []},
    [{"order": "ORD-1"}],
]


def lookup_params(body) -> dict | None:
    raw = body if isinstance(body, bytes) else exactjson.dumps(body).encode()
    request = Request(
        RequestFactory().post(CAPTURE_URL, raw, content_type="application/json"),
        parsers=[JSONParser()],
    )
    return LOOKUP.params(request)


@pytest.mark.parametrize("body", HOSTILE)
def test_a_body_postgresql_cannot_take_as_it_is_gets_no_read_and_no_500(api_client, body):
    assert lookup_params(body) is None
    response = api_client.post(CAPTURE_URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("raw", [b"{", b"[" * 100_000 + b"]" * 100_000, b""])
def test_a_body_that_is_not_json_gets_no_read_and_its_own_answer(api_client, raw):
    assert lookup_params(raw) is None
    response = api_client.post(CAPTURE_URL, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("parse_error", "required")


def test_duplicate_keys_are_still_refused_by_the_parser(api_client, order):
    """Python's json takes the last of two keys, so the lookup may read; the capture's
    own parser refuses the body, and nothing is captured."""
    pk = order.items.first().pk
    raw = f'{{"order": "x", "order": "{order.number}", "order_items": [{{"pk": {pk}}}]}}'
    response = api_client.post(CAPTURE_URL, raw.encode(), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Capture.objects.exists()


@pytest.mark.parametrize("token", ["valid", "bad"])
def test_a_body_over_the_size_limit_is_refused_before_authentication(
    client, api_user, order, settings, token
):
    """Neither the read in the token statement nor a bad token gets past the limit:
    413 first, as the proxy in front answers."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    key = api_user.auth_token.key if token == "valid" else "bad"
    body = {"order": order.number, "order_items": [{"pk": order.items.first().pk}], "x": "y" * 200}
    response = client.post(
        CAPTURE_URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert (response.status_code, response.json()["code"]) == (413, "request_too_large")
    assert not Capture.objects.exists()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(bodies, valid_bodies))
@example({"order": "\ud800x", "order_items": [{"pk": 1}]})
@example({"order": "a\x00", "order_items": [{"pk": 1}]})
def test_whatever_the_body_the_read_runs_or_is_skipped(api_user, body):
    """For any body, the lookup either does not read or reads without an error."""
    params = lookup_params(body)
    if params is not None:
        read_as_authentication_does(params, api_user)


def test_an_order_whose_currency_changed_since_the_read_is_judged_again(api_user, order):
    """The write compares the order's currency too: items priced in the order's old
    currency are then refused, never captured into an amount in the new one."""
    pks = list(order.items.values_list("pk", flat=True))
    seen = first_read(api_user, order, pks)
    Order.objects.filter(pk=order.pk).update(currency="eur")

    with pytest.raises(errors.OrderItemPriceInvalid):
        capture_after(seen, api_user, order, [ItemInput(pk) for pk in pks])

    assert not Capture.objects.exists()
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()
