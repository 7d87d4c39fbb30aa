"""What a receiver checks of a delivery's Standard Webhooks headers, with the
`standardwebhooks` library as docs/webhooks.md shows: the signature, and a
`webhook-timestamp` that is the attempt's (the library refuses one five minutes off)."""

from datetime import timedelta

from django.db.models import F
from standardwebhooks import Webhook

from events.delivery import webhook_lane_flush
from events.models import Event, WebhookDelivery
from events.services import webhook_subscription_create_or_update
from tests.events.helpers import receiving
from tests.factories import make_order
from tests.helpers import capture


def test_an_attempt_hours_after_the_capture_carries_the_time_of_the_attempt(api_client, channel):
    """Retries go on for about 31 hours: an attempt 6 hours after the capture must be
    signed with its own time, or every receiver refuses it as stale."""
    with receiving() as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(
            url=receiver.url, event_types=["order.captured"]
        )
        order = make_order(channel=channel, items=1)
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
        Event.objects.update(created_at=F("created_at") - timedelta(hours=6))
        delivery = WebhookDelivery.objects.get()
        assert webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4) == 1
    (request,) = receiver.requests
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert abs(int(headers["webhook-timestamp"]) - request["at"]) <= 2  # this attempt's
    payload = Webhook(subscription.secret).verify(request["body"], headers)
    assert payload["type"] == "order.captured"
    assert headers["webhook-id"] == delivery.event_id
