import pytest
from rest_framework.test import APIClient

from tests.factories import ChannelFactory, make_api_user, make_order


@pytest.fixture
def channel(db):
    return ChannelFactory()


@pytest.fixture
def api_user(channel):
    return make_api_user(channels=[channel])


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


@pytest.fixture
def api_client(api_user):
    return client_for(api_user)


@pytest.fixture
def order(channel):
    return make_order(channel=channel, items=3)


CAPTURE_URL = "/api/v1/capture-order/"


def capture(client, order, pks, *, key=None, **extra):
    """POST a capture of the given item pks of an order (or order number)."""
    number = order if isinstance(order, str) else order.number
    body = {"order": number, "order_items": [{"pk": pk} for pk in pks], **extra}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(CAPTURE_URL, body, format="json", **headers)
