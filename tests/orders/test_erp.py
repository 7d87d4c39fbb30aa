"""Omnitron's ERP pull: list orders not yet sent, mark each sent; only `is_send` can
change, only with orders.mark_order_sent, only in your channels."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import Order
from tests.capture import locks
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import client_for


@pytest.fixture
def erp(channel):
    """A client of a user made as the docs say: create_api_user --mark-sent."""
    call_command("create_api_user", "erp", "--channel", str(channel.pk), "--no-capture",
                 "--mark-sent", stdout=StringIO())  # fmt: skip
    return client_for(get_user_model().objects.get(username="erp"))


def test_pull_the_unsent_orders_then_mark_each_sent(erp, channel):
    orders = [make_order(channel=channel, items=1) for _ in range(3)]
    unsent = erp.get("/api/v1/orders/", {"is_send": "false"}).json()
    assert sorted(o["pk"] for o in unsent["results"]) == sorted(o.pk for o in orders)
    response = erp.patch(f"/api/v1/orders/{orders[0].pk}/", {"is_send": True}, format="json")
    assert response.status_code == 200
    assert response.json()["is_send"] is True
    assert Order.objects.get(pk=orders[0].pk).is_send is True
    left = erp.get("/api/v1/orders/", {"is_send": "false"}).json()["results"]
    assert sorted(o["pk"] for o in left) == sorted(o.pk for o in orders[1:])
    sent = erp.get("/api/v1/orders/", {"is_send": "true"}).json()["results"]
    assert [o["pk"] for o in sent] == [orders[0].pk]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [({"is_send": True, "status": "100"}, "status", "not_writable"),
     ({"amount": "1.00"}, "amount", "not_writable"),
     ({}, "is_send", "required"),
     ({"is_send": "true"}, "is_send", "invalid"),
     ({"is_send": 1}, "is_send", "invalid"),
     ({"is_send": None}, "is_send", "null")],
)  # fmt: skip
def test_only_is_send_can_change(erp, channel, body, field, code):
    order = make_order(channel=channel, items=1, status="400")
    response = erp.patch(f"/api/v1/orders/{order.pk}/", body, format="json")
    assert response.status_code == 400
    assert (response.json()["code"], field in response.json()) == (code, True)
    assert Order.objects.get(pk=order.pk).is_send is False


def test_a_number_beyond_what_decimal_holds_is_a_parse_error(erp, channel):
    """1e99999999999999999999999 raised decimal.InvalidOperation in the JSON parser
    (500), on this endpoint as on every JSON one."""
    order = make_order(channel=channel, items=1)
    response = erp.generic("PATCH", f"/api/v1/orders/{order.pk}/",
                           '{"is_send": 1e99999999999999999999999}',
                           content_type="application/json")  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert Order.objects.get(pk=order.pk).is_send is False


def test_a_key_with_a_lone_surrogate_is_named_as_it_was_sent(erp, channel):
    """The answer names the key it refuses; a lone surrogate in it failed to encode
    (500): it is written back as the escape it came in."""
    order = make_order(channel=channel, items=1)
    response = erp.generic("PATCH", f"/api/v1/orders/{order.pk}/",
                           '{"is_send": true, "a\\udfff": 1}',
                           content_type="application/json")  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (400, "not_writable")
    assert b'"a\\udfff":' in response.content
    assert Order.objects.get(pk=order.pk).is_send is False


def test_marking_sent_needs_the_permission_and_the_channel(erp, api_client, channel):
    mine = make_order(channel=channel, items=1)
    theirs = make_order(channel=ChannelFactory(), items=1)
    no_permission = api_client.patch(f"/api/v1/orders/{mine.pk}/", {"is_send": True}, format="json")
    assert (no_permission.status_code, no_permission.json()["code"]) == (403, "permission_denied")
    other_channel = erp.patch(f"/api/v1/orders/{theirs.pk}/", {"is_send": True}, format="json")
    assert other_channel.status_code == 404
    assert (
        erp.put(f"/api/v1/orders/{mine.pk}/", {"is_send": True}, format="json").status_code == 405
    )
    assert not Order.objects.filter(is_send=True).exists()


def test_the_permission_counts_through_a_group_and_for_a_superuser_and_only_for_them(
    api_client, channel
):
    """A group's permission is its members' alone; a superuser holds every one."""
    order = make_order(channel=channel, items=1)
    url = f"/api/v1/orders/{order.pk}/"
    group = Group.objects.create(name="erp")
    group.permissions.add(
        Permission.objects.get(content_type__app_label="orders", codename="mark_order_sent")
    )
    member = make_api_user(channels=[channel], can_capture=False)
    member.groups.add(group)
    refused = api_client.patch(url, {"is_send": True}, format="json")  # in no group
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert client_for(member).patch(url, {"is_send": True}, format="json").status_code == 200
    superuser = make_api_user(is_superuser=True, can_capture=False)
    assert client_for(superuser).patch(url, {"is_send": False}, format="json").status_code == 200
    assert Order.objects.get(pk=order.pk).is_send is False


def test_many_fields_not_writable_are_answered_at_once_naming_the_first_few(erp, channel):
    """A body of 400,000 unknown keys took 10 s and answered 26 MB, one message each
    (400,000 is over the body's values limit now: 150,000 here)."""
    order = make_order(channel=channel, items=1)
    keys = [f"{n:x}" for n in range(150_000)]
    body = "{" + ",".join(f'"{key}":0' for key in keys) + "}"  # 1.3 MB
    started = time.monotonic()
    response = erp.generic("PATCH", f"/api/v1/orders/{order.pk}/", body,
                           content_type="application/json")  # fmt: skip
    assert time.monotonic() - started < 3
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "not_writable"
    assert sorted(set(answer) - {"code"}) == sorted(keys)[:10]


def test_a_field_named_as_a_key_of_the_error_body_is_still_named(erp, channel):
    order = make_order(channel=channel, items=1)
    body = {"code": "y", "detail": "z", "non_field_errors": 1, "is_send": True}
    response = erp.patch(f"/api/v1/orders/{order.pk}/", body, format="json")
    message = "This field cannot be changed here: only is_send can."
    assert response.json() == {
        "non_field_errors": [
            f"{name}: {message}" for name in ("code", "detail", "non_field_errors")
        ],  # fmt: skip
        "code": "not_writable",
    }
    assert not Order.objects.filter(is_send=True).exists()


@pytest.mark.django_db(transaction=True)
def test_marking_an_order_a_capture_holds_is_503_database_timeout(erp, channel):
    """The PATCH waits lock_timeout for the capture's row lock, then gives up: a
    coded 503 to retry, as a statement timeout is (it was database_unavailable, "not
    reachable", though the database answered)."""
    from tests.capture.locks import holding_order_lock

    order = make_order(channel=channel)
    with holding_order_lock(order):
        response = erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": True}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "database_timeout"
    assert erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": True},
                     format="json").status_code == 200  # fmt: skip


def test_an_order_marked_sent_can_be_put_back_in_the_pull(erp, channel):
    order = make_order(channel=channel, items=1)
    erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": True}, format="json")
    response = erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": False}, format="json")
    assert (response.status_code, response.json()["is_send"]) == (200, False)
    unsent = erp.get("/api/v1/orders/", {"is_send": "false"}).json()["results"]
    assert [o["pk"] for o in unsent] == [order.pk]


def test_marking_an_order_as_it_already_is_changes_nothing(erp, channel):
    """A retried PATCH moved the order's modified_date, as if it had changed."""
    order = make_order(channel=channel, items=1)
    url = f"/api/v1/orders/{order.pk}/"
    first = erp.patch(url, {"is_send": True}, format="json").json()
    time.sleep(0.01)
    again = erp.patch(url, {"is_send": True}, format="json")
    assert again.status_code == 200
    assert again.json() == first
    assert (
        Order.objects.get(pk=order.pk).modified_date.isoformat().replace("+00:00", "Z")
        == first["modified_date"]
    )


@pytest.mark.django_db(transaction=True)
def test_marking_sent_keeps_what_another_writer_committed_while_it_waited(erp, channel):
    """The PATCH writes is_send and nothing else: an operator's change to the order
    (here its status), committed while the PATCH waited for the order's row, stays."""
    order = make_order(channel=channel, items=1)
    assert order.status != OrderStatus.SHIPPED
    ship = "UPDATE orders_order SET status = %s WHERE id = %s"
    with locks.committed_once_waited_for(ship, [OrderStatus.SHIPPED.value, order.pk]):
        answer = locks.in_a_thread(
            lambda: erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": True}, format="json")
        )
    assert answer().status_code == 200
    order.refresh_from_db()
    assert (order.is_send, order.status) == (True, OrderStatus.SHIPPED)


@pytest.mark.django_db(transaction=True)
def test_marking_sent_after_a_later_change_answers_and_keeps_the_later_time(erp, channel):
    """The PATCH took its time before it waited for the order's row: behind a capture
    that committed later it stored, and answered, an earlier modified_date than the
    capture's. It answers the order as it is after the change, with a time never
    before the one it waited for (here a writer an hour ahead: another host's clock)."""
    order = make_order(channel=channel, items=1)
    change = (
        "UPDATE orders_order SET status = %s, modified_date = now() + interval '1 hour' "
        "WHERE id = %s RETURNING modified_date"
    )
    with locks.committed_once_waited_for(change, [OrderStatus.SHIPPED.value, order.pk]):
        answer = locks.in_a_thread(
            lambda: erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": True}, format="json")
        )
    body = answer().json()
    order.refresh_from_db()
    assert order.modified_date > timezone.now() + timedelta(minutes=59)
    assert (body["is_send"], body["status"]) == (True, OrderStatus.SHIPPED.value)
    assert body["modified_date"] == order.modified_date.isoformat().replace("+00:00", "Z")


def test_a_pk_that_is_not_a_number_is_an_unknown_url_whatever_the_permission(api_client):
    """Not an order of another channel, nor one the user may not mark: no such URL."""
    response = api_client.patch("/api/v1/orders/abc/", {"is_send": True}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
