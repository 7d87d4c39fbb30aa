"""Akinon's own SDK (omnisdk) logs in and captures against a live server."""

import pytest
import requests
from omnisdk.omnitron.client import OmnitronApiClient
from omnisdk.omnitron.endpoints import OmnitronApiEndpoint, OrderItemEndpoint
from rest_framework.authtoken.models import Token

from orders.models import OrderItem
from tests.live import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)


class CaptureOrderEndpoint(OmnitronApiEndpoint):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, endpoint="capture-order", model=dict, **kwargs)


@pytest.fixture
def live_server_url():
    with gunicorn(workers=1) as (base, _):
        yield base


def test_omnisdk_logs_in_captures_and_relogs_after_a_401(live_server_url, api_user, order):
    first, second, _ = order.items.order_by("pk")
    # The SDK appends "api/v1/" to the base URL as given.
    with OmnitronApiClient(f"{live_server_url}/", api_user.username, "pw-123456"):
        endpoint = CaptureOrderEndpoint(raw=True)
        answer = endpoint.create({"order": order.number, "order_items": [{"pk": first.pk}]})
        assert answer["number"] == order.number
        assert answer["status"] == "400"

        # A rotated token: the SDK gets a 401, logs in again and retries once.
        Token.objects.filter(user=api_user).delete()
        again = endpoint.create(
            {"order": order.number, "order_items": [{"pk": second.pk, "attributes": {"a": 1}}]}
        )
        assert again["pk"] == order.pk

        with pytest.raises(requests.HTTPError) as refused:
            endpoint.create({"order": order.number, "order_items": [{"pk": first.pk}]})

        # Its list() sends `page=1`, which the lists take (and ignore).
        listed = OrderItemEndpoint(raw=True).list(params={"order": order.pk})  # the JSON
        assert {item["pk"] for item in listed["results"]} == {item.pk for item in order.items.all()}
    assert refused.value.response.status_code == 400
    assert refused.value.args[1]["code"] == "already_captured"
    assert set(
        OrderItem.objects.filter(captured_at__isnull=False).values_list("pk", flat=True)
    ) == {
        first.pk,
        second.pk,
    }
