"""Webhook subscriptions: the command, the admin, and what production refuses."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from events.models import WebhookDelivery, WebhookSubscription
from events.services import webhook_lane_flush
from tests.events.helpers import receiving
from tests.factories import make_api_user
from tests.helpers import capture


def create_webhook(*args) -> dict:
    out = StringIO()
    call_command("create_webhook", *args, stdout=out)
    return json.loads(out.getvalue())  # one JSON object, nothing else


@pytest.mark.django_db
def test_create_webhook_prints_id_and_secret_and_keeps_the_secret_on_rerun(channel):
    first = create_webhook("http://127.0.0.1:9/hook")
    assert first["secret"].startswith("whsec_")
    again = create_webhook("http://127.0.0.1:9/hook", "--channel", str(channel.pk),
                           "--header", "Authorization=Bearer abc", "--event", "order.captured")  # fmt: skip
    assert again == first
    subscription = WebhookSubscription.objects.get()
    assert subscription.channel_ids == [channel.pk]
    assert subscription.headers == {"Authorization": "Bearer abc"}
    assert subscription.event_types == ["order.captured"]
    with pytest.raises(CommandError, match="Unknown event type"):
        create_webhook("http://127.0.0.1:9/x", "--event", "order.nope")


@pytest.mark.django_db
@override_settings(WEBHOOK_REQUIRE_HTTPS=True)
def test_production_refuses_a_plain_http_subscription():
    with pytest.raises(CommandError, match="https"):
        create_webhook("http://example.com/hook")


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
def test_a_target_resolving_to_a_private_address_is_refused_when_sending(api_client, order):
    """Production settings (private targets refused), checked at delivery time, after
    DNS: `localhost` resolves to loopback, so nothing reaches the receiver."""
    with receiving() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        create_webhook(url)
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    attempt = delivery.tries.get()
    assert "non-public address (127.0.0.1)" in attempt.error
    assert attempt.status_code is None
    assert receiver.requests == []


def test_the_admin_shows_the_secret_once_then_masked(client, db):
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.post("/admin/events/webhooksubscription/add/", {
        "url": "http://127.0.0.1:9/admin", "event_types": "order.captured", "channel_ids": "",
        "headers": "{}", "retry_schedule": "", "is_active": "on"}, follow=True)  # fmt: skip
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret in response.content.decode()
    page = client.get(f"/admin/events/webhooksubscription/{subscription.pk}/change/")
    assert subscription.secret not in page.content.decode()
    assert f"whsec_…{subscription.secret[-4:]}" in page.content.decode()


def test_staff_who_are_not_superusers_see_no_webhooks(client, channel):
    client.force_login(make_api_user(channels=[channel], is_staff=True))
    assert client.get("/admin/events/webhooksubscription/").status_code == 403
    assert client.get("/admin/events/webhookdelivery/").status_code == 403
