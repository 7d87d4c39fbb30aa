"""The capture endpoint over the Django test client: the answer, authentication and
access, and one error shape everywhere. The captures list and detail (the read API) are
in tests/api/test_read_api.py."""

import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings

from capture.models import Capture, CaptureItem
from orders.enums import OrderStatus
from orders.models import OrderItem
from orders.serializers import ORDER_FIELDS
from tests.factories import ChannelFactory, OrderItemFactory, make_api_user, make_order
from tests.helpers import CAPTURE_URL, capture, client_for


def test_capture_marks_exactly_the_given_items_and_answers_the_order(api_client, api_user, order):
    first, second, third = order.items.order_by("pk")
    before = order.modified_date
    OrderItem.objects.filter(pk=first.pk).update(attributes={"color": "red", "size": "M"})

    response = api_client.post(
        CAPTURE_URL,
        {"order": order.number, "order_items": [
            {"pk": first.pk, "attributes": {"size": "L", "weight_kg": 1.25}},
            {"pk": second.pk},
        ]},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == ORDER_FIELDS
    assert len(body) == 47
    assert body["pk"] == order.pk
    assert body["number"] == order.number
    assert body["status"] == "400"
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert first.captured_at is not None
    assert second.captured_at == first.captured_at
    assert third.captured_at is None
    assert first.attributes == {"color": "red", "size": "L", "weight_kg": 1.25}
    assert second.attributes == {}
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert order.modified_date > before
    assert body["modified_date"] == order.modified_date.isoformat().replace("+00:00", "Z")


def test_capture_writes_one_audit_record_with_amount_and_attribute_history(
    api_client, api_user, order
):
    items = list(order.items.order_by("pk"))
    OrderItem.objects.filter(pk=items[1].pk).update(price=Decimal("19.99"))
    response = api_client.post(
        CAPTURE_URL,
        {"order": order.number, "order_items": [
            {"pk": items[0].pk, "attributes": {"picked": True}}, {"pk": items[1].pk}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="audit-1",
    )  # fmt: skip
    assert response.status_code == 200

    record = Capture.objects.get()
    assert record.order == order
    assert record.user == api_user
    assert record.amount == Decimal("69.99")
    assert record.idempotency_key == "audit-1"
    captured = {ci.order_item_id: ci for ci in CaptureItem.objects.filter(capture=record)}
    assert set(captured) == {items[0].pk, items[1].pk}
    assert captured[items[0].pk].attributes_before == {}
    assert captured[items[0].pk].attributes_after == {"picked": True}
    assert captured[items[1].pk].price == Decimal("19.99")


def test_answer_types_match_the_seed(api_client, channel):
    order = make_order(
        channel=channel, items=1, amount=Decimal("149.99"), shipping_tax_rate=None,
        discount_amount=Decimal("1234567890.12"), shipping_company="yurtici",
        remote_addr="10.0.0.1", delivery_range={"start": "2026-11-20T10:00:00Z"},
    )  # fmt: skip
    response = capture(api_client, order, [order.items.get().pk])
    text = response.content.decode()
    body = response.json()

    # Decimals are JSON numbers whose text is the stored decimal.
    assert re.search(r'"amount":149\.99[,}]', text)
    assert re.search(r'"discount_amount":1234567890\.12[,}]', text)
    assert re.search(r'"shipping_amount":0(\.0+)?[,}]', text)
    assert body["shipping_tax_rate"] is None
    # Integer references the order does not have are null.
    for name in ("payment_option", "installment", "cargo_company", "external_status"):
        assert body[name] is None
    assert body["channel"] == channel.pk
    assert isinstance(body["customer"], int)
    assert body["shipping_company"] == "yurtici"
    assert body["remote_addr"] == "10.0.0.1"
    assert body["client_type"] == "default"
    assert body["delivery_range"] == {"start": "2026-11-20T10:00:00Z"}
    assert body["is_send"] is False
    # Date-times in ISO 8601 with an offset.
    for name in ("date_placed", "created_date", "modified_date"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", body[name])


# Authentication and access


@pytest.mark.django_db
def test_no_token_is_401_not_authenticated(client, order):
    response = client.post(CAPTURE_URL, {}, content_type="application/json")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token nope", "Token ", "Token a b", "Bearer x"])
def test_bad_token_is_401(client, order, header):
    response = client.post(
        CAPTURE_URL, {}, content_type="application/json", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401
    assert response.json()["code"] in {"authentication_failed", "not_authenticated"}
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("scheme", ["Bearer", "Basic", "Tokens"])
def test_a_valid_key_under_another_scheme_is_401(api_user, order, scheme):
    """Authentication is `Authorization: Token <key>`: the same key under another scheme
    authenticates nothing, and nothing is captured."""
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {api_user.auth_token.key}")
    response = capture(client, order, [order.items.first().pk])
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()


@pytest.mark.parametrize("scheme", ["token", "TOKEN"])
def test_the_token_scheme_is_read_in_any_case(api_user, order, scheme):
    """An HTTP authentication scheme is case-insensitive (RFC 9110, section 11.1): a
    client that writes `token` is the token's user."""
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {api_user.auth_token.key}")
    assert capture(client, order, [order.items.first().pk]).status_code == 200


def test_an_inactive_users_token_stops_working_at_once(api_client, api_user, order):
    api_user.is_active = False
    api_user.save()
    response = capture(api_client, order, [order.items.first().pk])
    assert response.status_code == 401
    # As an unknown token's answer, the one the registry documents.
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_without_the_capture_permission_is_403(channel, order):
    user = make_api_user(channels=[channel], can_capture=False)
    response = capture(client_for(user), order, [order.items.first().pk])
    assert response.status_code == 403
    assert response.json() == {
        "detail": "You do not have permission to perform this action.",
        "code": "permission_denied",
    }
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()


def test_the_permission_can_come_from_a_group(channel, order):
    from django.contrib.auth.models import Group

    user = make_api_user(channels=[channel], can_capture=False)
    group = Group.objects.create(name="warehouse")
    group.permissions.add(Permission.objects.get(codename="capture_order"))
    user.groups.add(group)
    assert capture(client_for(user), order, [order.items.first().pk]).status_code == 200


def test_an_order_of_another_channel_is_not_found_never_forbidden(api_client, order):
    other = make_order(channel=ChannelFactory(), items=1)
    hidden = capture(api_client, other, [other.items.get().pk])
    missing = capture(api_client, "NO-SUCH-ORDER", [other.items.get().pk])

    assert hidden.status_code == missing.status_code == 400
    assert (
        hidden.json()
        == missing.json()
        == {"order": ["Order not found."], "code": "order_not_found"}
    )
    assert other.items.get().captured_at is None


def test_a_superuser_sees_every_channel(order):
    admin = make_api_user(is_superuser=True)
    assert capture(client_for(admin), order, [order.items.first().pk]).status_code == 200


# One error shape everywhere


def test_malformed_json_is_parse_error(api_client):
    response = api_client.post(CAPTURE_URL, '{"order": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "detail" in response.json()


def test_duplicate_json_keys_are_refused(api_client, order):
    pk = order.items.first().pk
    body = f'{{"order": "{order.number}", "order": "X", "order_items": [{{"pk": {pk}}}]}}'
    response = api_client.post(CAPTURE_URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize(
    "content_type",
    # A wildcard names no format: DRF matched `*/*` and `application/*` to JSON.
    ["application/x-www-form-urlencoded", "*/*", "application/*", "*/json", "text/plain"],
)
def test_wrong_content_type_is_415(api_client, order, content_type):
    body = json.dumps({"order": order.number, "order_items": [{"pk": order.items.first().pk}]})
    response = api_client.post(CAPTURE_URL, body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert not Capture.objects.exists()


def test_wrong_method_is_405(api_client):
    response = api_client.get(CAPTURE_URL)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)  # API_MAX_BODY_BYTES
def test_oversized_body_is_413(api_client, order):
    body = json.dumps(
        {"order": order.number, "order_items": [{"pk": 1, "attributes": {"x": "y" * 2000}}]}
    )
    response = api_client.post(CAPTURE_URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
@pytest.mark.parametrize(
    ("url", "headers"),
    [(CAPTURE_URL, {"content_type": "text/plain"}),
     (CAPTURE_URL, {"content_type": "application/json", "HTTP_CONTENT_ENCODING": "gzip"}),
     (CAPTURE_URL, {"content_type": "application/json", "HTTP_AUTHORIZATION": "Token bad"}),
     ("/api/v1/auth/login/", {"content_type": "text/plain"}),
     ("/api/v1/no-such-endpoint/", {"content_type": "application/json"})],
)  # fmt: skip
def test_rule_5_size_comes_first(client, url, headers):
    """Over the limit is 413 whatever else is wrong with the request (rule 5's order:
    the size, then the media type, then the encoding; the token after the body)."""
    response = client.post(url, b"x" * 1025, **headers)
    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request body is larger than this API accepts.",
        "code": "request_too_large",
    }


@pytest.mark.urls("tests.capture.failing_urls")
def test_unexpected_failures_are_500_json_without_a_traceback(api_client):
    response = api_client.post("/api/v1/boom/", {}, format="json")
    assert response.status_code == 500
    assert response.json() == {"detail": "A server error occurred.", "code": "server_error"}
    assert b"Traceback" not in response.content


def test_a_capture_after_login_works_with_the_returned_token(client, api_user, order):
    key = client.post(
        "/api/v1/auth/login/", {"username": api_user.username, "password": "pw-123456"},
        content_type="application/json",
    ).json()["key"]  # fmt: skip
    response = client.post(
        CAPTURE_URL,
        {"order": order.number, "order_items": [{"pk": order.items.first().pk}]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 200
    assert OrderItemFactory._meta.model.objects.filter(captured_at__isnull=False).count() == 1


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)  # API_MAX_BODY_BYTES
def test_a_body_of_exactly_the_limit_is_taken(api_client, order):
    """The limit is the largest body taken, not the first refused."""
    pk = order.items.first().pk

    def body(pad: int) -> str:
        return json.dumps({"order": order.number,
                           "order_items": [{"pk": pk, "attributes": {"x": "y" * pad}}]})  # fmt: skip

    exact = body(1024 - len(body(0)))
    assert len(exact.encode()) == 1024
    response = api_client.post(CAPTURE_URL, exact, content_type="application/json")
    assert response.status_code == 200


def test_a_group_with_other_permissions_grants_no_capture(channel, order):
    """Only the capture permission itself, directly or through a group, lets a user
    capture: a group holding another permission (the ERP's) does not."""
    from django.contrib.auth.models import Group

    user = make_api_user(channels=[channel], can_capture=False)
    group = Group.objects.create(name="erp")
    group.permissions.add(Permission.objects.get(codename="mark_order_sent"))
    user.groups.add(group)
    response = capture(client_for(user), order, [order.items.first().pk])
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()


def test_an_order_of_a_channel_other_users_have_is_not_found(api_client, order):
    """Visibility is the caller's own channels, not every channel that has members:
    another user's channel stays hidden, for a capture and for its retry."""
    theirs = ChannelFactory()
    make_api_user(channels=[theirs])
    other = make_order(channel=theirs, items=1)
    for key in (None, "theirs", "theirs"):
        hidden = capture(api_client, other, [other.items.get().pk], key=key)
        assert (hidden.status_code, hidden.json()) == (
            400, {"order": ["Order not found."], "code": "order_not_found"}
        )  # fmt: skip
    assert other.items.get().captured_at is None
    assert not Capture.objects.exists()


def test_another_direct_permission_grants_no_capture(channel, order):
    """Only the capture permission itself, given directly, lets a user capture: a user
    holding another permission directly (the ERP's), while other users hold the capture
    permission, does not."""
    make_api_user(channels=[channel])  # another user holds the capture permission
    user = make_api_user(channels=[channel], can_capture=False)
    user.user_permissions.add(Permission.objects.get(codename="mark_order_sent"))
    response = capture(client_for(user), order, [order.items.first().pk])
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()


def test_a_user_without_permissions_is_refused_even_when_another_has_it(channel, order):
    make_api_user(channels=[channel])  # holds the capture permission directly
    user = make_api_user(channels=[channel], can_capture=False)
    response = capture(client_for(user), order, [order.items.first().pk])
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_a_superuser_captures_without_any_permission_of_its_own(order):
    """Superusers have every permission: no user or group permission is needed."""
    user = make_api_user(can_capture=False, is_superuser=True)
    assert not user.user_permissions.exists()
    assert not user.groups.exists()
    response = capture(client_for(user), order, [order.items.first().pk])
    assert response.status_code == 200
    assert Capture.objects.get().user_id == user.pk
