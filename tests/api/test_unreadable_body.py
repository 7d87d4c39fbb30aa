"""A client that stops sending before the end of its body (its connection closed or
reset mid-body) gets the API's 400 parse_error, never a 500 logged as a server error,
and nothing it sent is acted on. The body is UTF-8 whatever charset is named."""

import io
import json
import logging
import time

import pytest
from django.test import Client

from capture.models import Capture
from omnitron.api.exceptions import BODY_ENDED_EARLY
from tests.factories import make_order
from tests.helpers import CAPTURE_URL

BODY = b'{"order": "1", "order_items": [{"pk": 1}]}'


class ResetMidBody(io.RawIOBase):
    """A request body whose connection is reset before any of it arrives."""

    def read(self, size=-1):
        raise ConnectionResetError("Connection reset by peer")

    readline = read


def post_reset_mid_body(url, **headers):
    client = Client(raise_request_exception=False)
    return client.post(
        url, BODY, content_type="application/json", **{"wsgi.input": ResetMidBody()}, **headers
    )


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["valid", "invalid"])
def test_a_capture_whose_body_ends_early_is_a_parse_error(api_user, token, caplog):
    key = api_user.auth_token.key if token == "valid" else "0" * 40
    with caplog.at_level(logging.ERROR):
        response = post_reset_mid_body(CAPTURE_URL, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 400
    assert response.json() == {"detail": BODY_ENDED_EARLY, "code": "parse_error"}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.django_db
def test_a_login_whose_body_ends_early_is_a_parse_error():
    response = post_reset_mid_body("/api/v1/auth/login/")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def post_raw(client, url, body: bytes, *, content_type="application/json", missing=0, **headers):
    """`body` as it is (the test client would re-encode it to a named charset), with a
    Content-Length `missing` bytes longer: a client that closed its connection before
    the end (gunicorn then hands over what arrived)."""
    return client.post(
        url, body, content_type=content_type,
        CONTENT_LENGTH=str(len(body) + missing), **{"wsgi.input": io.BytesIO(body)}, **headers,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_capture_cut_short_is_refused_even_when_what_arrived_is_a_whole_body(api_client, order):
    item = order.items.first()
    body = json.dumps({"order": order.number, "order_items": [{"pk": item.pk}]}).encode()
    response = post_raw(api_client, CAPTURE_URL, body, missing=500)
    assert response.status_code == 400
    assert response.json() == {"detail": BODY_ENDED_EARLY, "code": "parse_error"}
    item.refresh_from_db()
    assert item.captured_at is None
    assert not Capture.objects.exists()


@pytest.mark.django_db
def test_a_whole_body_is_captured(api_client, order):
    item = order.items.first()
    body = json.dumps({"order": order.number, "order_items": [{"pk": item.pk}]}).encode()
    assert post_raw(api_client, CAPTURE_URL, body).status_code == 200


@pytest.mark.django_db
def test_a_charset_parameter_is_ignored_json_is_utf8(api_client, order):
    """RFC 8259 defines no charset for application/json: the body is read as UTF-8."""
    item = order.items.first()
    body = {"order": order.number, "order_items": [{"pk": item.pk, "attributes": {"w": "é"}}]}
    response = post_raw(
        api_client, CAPTURE_URL, json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json; charset=latin-1",
    )  # fmt: skip
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.attributes["w"] == "é"  # not "Ã©", as latin-1 would read it


@pytest.mark.django_db
def test_a_body_in_a_slow_codec_is_answered_at_once():
    """Python's punycode decoder is quadratic: a 1 MB body in it held a worker for
    20 s, before any token (login's throttle reads the body)."""
    body = ("é" * 400_000).encode("punycode")  # 4 s to decode as punycode
    started = time.monotonic()
    response = post_raw(
        Client(), "/api/v1/auth/login/", body, content_type="application/json; charset=punycode"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert time.monotonic() - started < 2


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["[]", "{}", "1.5", "[[]]"])
def test_a_body_of_a_million_tiny_values_is_refused_before_it_is_parsed(api_client, value):
    """4 MB of `[],` held a worker 6 to 15 s: parsed, walked, serialized for the write,
    each pass paying per value."""
    values = ",".join([value] * 700_000)
    body = f'{{"order": "X", "order_items": [{{"pk": 1, "attributes": {{"a": [{values}]}}}}]}}'
    started = time.monotonic()
    response = post_raw(api_client, CAPTURE_URL, body.encode())
    assert time.monotonic() - started < 1
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - more than 200,000 values.",
                               "code": "parse_error"}  # fmt: skip


@pytest.mark.django_db
def test_commas_inside_strings_are_not_values(api_client, channel):
    """13 items with 16,000 commas in a note each (every limit kept, about 40 values)
    were refused as "more than 200,000 values"; a body of as many real values still
    is, and a string's escaped quote does not end it."""
    order = make_order(channel=channel, items=13)
    items = [{"pk": item.pk, "attributes": {"note": '\\",' + "," * 16_000}}
             for item in order.items.all()]  # fmt: skip
    body = json.dumps({"order": order.number, "order_items": items}).encode()
    assert body.count(b",") > 200_000
    assert post_raw(api_client, CAPTURE_URL, body).status_code == 200
    real = json.dumps({"order": order.number, "order_items": [{"pk": 1, "attributes": {
        "a": [",", *range(200_001)]}}]}).encode()  # fmt: skip
    refused = post_raw(api_client, CAPTURE_URL, real)
    assert refused.json() == {"detail": "JSON parse error - more than 200,000 values.",
                              "code": "parse_error"}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("end", [b"]", b"\\"])
def test_an_unended_string_of_escaped_quotes_is_counted_at_once(client, end):
    """Counting without the strings scanned to the end from each escaped quote of one
    that never ends: 400 KB held a worker 30 s, five of them every worker, no token
    needed (the login reads its body to count the username's attempts)."""
    body = b"[" + b"," * 200_001 + b'"' + b'\\"' * 100_000 + end
    started = time.monotonic()
    response = post_raw(client, "/api/v1/auth/login/", body)
    assert time.monotonic() - started < 1
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.django_db
def test_a_thousand_items_with_attributes_are_below_the_values_limit(api_client, channel):
    order = make_order(channel=channel, items=1000)
    attributes = {f"k{n}": [n, {"w": "1.5"}] for n in range(40)}
    items = [{"pk": item.pk, "attributes": attributes} for item in order.items.all()]
    body = json.dumps({"order": order.number, "order_items": items}).encode()
    assert 100_000 < body.count(b",") + body.count(b"[") + body.count(b"{") < 200_000
    assert post_raw(api_client, CAPTURE_URL, body).status_code == 200
