"""A client that stops sending before the end of its body (its connection closed or
reset mid-body) gets the API's 400 parse_error, never a 500 logged as a server error."""

import io
import logging

import pytest
from django.test import Client

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
    assert response.json() == {
        "detail": "JSON parse error - the body ended before its length.",
        "code": "parse_error",
    }
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.django_db
def test_a_login_whose_body_ends_early_is_a_parse_error():
    response = post_reset_mid_body("/api/v1/auth/login/")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
