"""Helpers the tests share (fixtures are in conftest.py)."""

from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


CAPTURE_URL = "/api/v1/capture-order/"
# A key the production settings take (50 characters or more, varied).
PRODUCTION_SECRET_KEY = "production-settings-test-key-" + "0123456789abcdef" * 2


def capture(client, order, pks, *, key=None, **extra):
    """POST a capture of the given item pks of an order (or order number)."""
    number = order if isinstance(order, str) else order.number
    body = {"order": number, "order_items": [{"pk": pk} for pk in pks], **extra}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(CAPTURE_URL, body, format="json", **headers)


def throttle_rates(**overrides):
    """override_settings with these DRF rates, every other rate off."""
    rates = {scope: None for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**rates, **overrides},
        }
    )
