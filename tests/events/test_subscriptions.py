"""Webhook subscriptions: the command, the admin, and what production refuses."""

import http.server
import json
import socket
import threading
import time
from datetime import timedelta
from io import StringIO
from unittest.mock import patch

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from events.delivery import retry_schedule, webhook_lane_flush
from events.models import DeliveryState, WebhookDelivery, WebhookSubscription
from events.outbound import TargetRefused, resolve
from events.services import (
    webhook_deliveries_redeliver,
    webhook_subscription_create_or_update,
)
from omnitron.admin import large_tables
from tests.events.helpers import receiving
from tests.factories import make_api_user, make_order
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
def test_a_rerun_keeps_what_its_options_leave_out(channel):
    """A re-run without --channel made a channel's subscription every channel's (other
    channels' orders went to that receiver), dropped the receiver's auth header and
    turned a deactivated subscription back on."""
    first = create_webhook("http://127.0.0.1:9/hook", "--channel", str(channel.pk),
                           "--header", "Authorization=Bearer abc", "--event", "order.captured")  # fmt: skip
    WebhookSubscription.objects.update(is_active=False, paused_until=timezone.now() + timedelta(60))
    assert create_webhook("http://127.0.0.1:9/hook") == first
    subscription = WebhookSubscription.objects.get()
    assert subscription.channel_ids == [channel.pk]
    assert subscription.headers == {"Authorization": "Bearer abc"}
    assert subscription.event_types == ["order.captured"]
    assert (subscription.is_active, subscription.paused_until) == (False, None)  # pause over

    create_webhook("http://127.0.0.1:9/hook", "--all-channels", "--no-headers")
    subscription.refresh_from_db()
    assert (subscription.channel_ids, subscription.headers) == ([], {})
    assert subscription.event_types == ["order.captured"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-5", "2147483648", "99999999999999999999", "x", "٥"])
def test_a_channel_id_no_channel_can_have_is_refused(value, capsys):
    with pytest.raises(CommandError, match="not a channel id"):
        create_webhook("http://127.0.0.1:9/hook", "--channel", value)
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_a_channel_that_does_not_exist_yet_is_taken_with_a_warning():
    err = StringIO()
    call_command("create_webhook", "http://127.0.0.1:9/hook", "--channel", "999",
                 stdout=StringIO(), stderr=err)  # fmt: skip
    assert WebhookSubscription.objects.get().channel_ids == [999]
    assert "No channel 999 yet" in err.getvalue()


@pytest.mark.django_db
@override_settings(WEBHOOK_REQUIRE_HTTPS=True)
def test_production_refuses_a_plain_http_subscription():
    with pytest.raises(CommandError, match="https"):
        create_webhook("http://example.com/hook")


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]", "[::ffff:10.0.0.1]",
     # Python 3.11's ipaddress takes these as global: local-use NAT64 (RFC 8215) reaches
     # the network's own IPv4 (here 10.0.0.1), site-local is still routed inside some,
     # SIIT's IPv4-translated form carries 10.0.0.1, the IETF's protocol assignments
     # and SRv6's segment ids are no receiver's.
     "[64:ff9b:1::a00:1]", "[fec0::1]", "[::ffff:0:a00:1]", "192.0.0.8", "[5f00::1]"],
)  # fmt: skip
def test_a_private_address_written_in_the_url_is_refused_when_subscribing(db, host):
    """It was refused only when sending: a day of retries to an address that could
    never be called."""
    with pytest.raises(CommandError, match="not a public address"):
        create_webhook(f"https://{host}/hook")
    assert not WebhookSubscription.objects.exists()
    create_webhook("https://[2001:4860:4860::8888]/hook")  # a public one is taken
    assert WebhookSubscription.objects.count() == 1


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
    """Shown once, on the page after the save, and never sent in a cookie: Django's
    messages went in one, signed but readable (an outside test decoded the secret)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    saved = client.post("/admin/events/webhooksubscription/add/", {
        "url": "http://127.0.0.1:9/admin", "event_types": "order.captured", "channel_ids": "",
        "headers": "{}", "retry_schedule": "", "is_active": "on"})  # fmt: skip
    subscription = WebhookSubscription.objects.get()
    assert "messages" not in saved.cookies
    assert subscription.secret not in str(saved.cookies)
    response = client.get(saved["Location"])
    assert subscription.secret in response.content.decode()
    page = client.get(f"/admin/events/webhooksubscription/{subscription.pk}/change/")
    assert subscription.secret not in page.content.decode()
    assert f"whsec_…{subscription.secret[-4:]}" in page.content.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_types", "order.capture"), ("event_types", ""), ("channel_ids", "-5,0"),
     ("channel_ids", "2147483648"), ("channel_ids", "1,1"),
     ("channel_ids", ",".join(str(n) for n in range(1, 1002))),
     ("retry_schedule", "2147483647"), ("retry_schedule", "0"),
     ("retry_schedule", ",".join(["1"] * 31))],
)  # fmt: skip
def test_the_admin_refuses_a_subscription_that_could_receive_nothing(client, db, field, value):
    """The admin took a misspelt event type and channel 0, which receive nothing, a
    retry in 68 years, pending (and in the backlog) all that time, and 20,000 copies of
    one channel."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    form = {"url": "http://127.0.0.1:9/admin", "event_types": "order.captured",
            "channel_ids": "", "headers": "{}", "retry_schedule": "", "is_active": "on"}  # fmt: skip
    response = client.post("/admin/events/webhooksubscription/add/", {**form, field: value})
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not WebhookSubscription.objects.exists()


def test_the_admin_sends_failed_deliveries_again_and_counts_the_rest(client, api_client, channel):
    """The action queues the failed deliveries of the selection and says how many of it
    it left: pending and delivered ones alike."""
    webhook_subscription_create_or_update(url="https://hooks.example.com/a",
                                          event_types=["order.captured"])  # fmt: skip
    for order in [make_order(channel=channel, items=1) for _ in range(4)]:
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    failed, delivered, pending, other_failed = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk__in=[failed.pk, other_failed.pk]).update(
        state=DeliveryState.FAILED, attempts=6, next_attempt_at=None
    )
    WebhookDelivery.objects.filter(pk=delivered.pk).update(
        state=DeliveryState.DELIVERED, delivered_at=timezone.now(), next_attempt_at=None
    )
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    selection = [failed.pk, delivered.pk, pending.pk]
    response = client.post("/admin/events/webhookdelivery/",
                           {"action": "redeliver", "_selected_action": selection}, follow=True)  # fmt: skip
    assert [str(m) for m in response.context["messages"]] == [
        "1 delivery(ies) queued again; 2 not failed, left as they were."
    ]
    states = dict(WebhookDelivery.objects.values_list("pk", "state"))
    assert states == {failed.pk: DeliveryState.PENDING, delivered.pk: DeliveryState.DELIVERED,
                      pending.pk: DeliveryState.PENDING, other_failed.pk: DeliveryState.FAILED}  # fmt: skip
    assert WebhookDelivery.objects.get(pk=failed.pk).next_attempt_at <= timezone.now()


def test_resending_says_what_an_inactive_or_paused_subscription_does_with_it(
    client, api_client, channel
):
    """Sent again, they became pending, which nothing sends while the subscription is
    inactive: the action said "queued", and the failed count and its alert cleared.
    They stay failed now; a pending one says nothing sends it."""
    subscription, _, _ = webhook_subscription_create_or_update(
        url="https://hooks.example.com/a", event_types=["order.captured"]
    )
    for order in [make_order(channel=channel, items=1) for _ in range(3)]:
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    failed, other_failed, pending = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk__in=[failed.pk, other_failed.pk]).update(
        state=DeliveryState.FAILED, attempts=6, next_attempt_at=None, failed_at=timezone.now()
    )
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    listed = client.get("/admin/events/webhooksubscription/").content.decode()
    assert "Pending deliveries" in listed
    assert "Failed in 7 days, not sent again" in listed
    row = listed.split('class="field-url"')[1]
    assert '<td class="field-pending">1</td>' in row
    assert '<td class="field-failed">2</td>' in row
    with patch.object(large_tables, "COUNT_CAP", 1):  # a backlog of millions: capped
        capped = client.get("/admin/events/webhooksubscription/").content.decode()
    assert '<td class="field-failed">1+</td>' in capped.split('class="field-url"')[1]
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)

    response = client.post("/admin/events/webhookdelivery/",
                           {"action": "redeliver", "_selected_action": [failed.pk, pending.pk]},
                           follow=True)  # fmt: skip
    assert [str(m) for m in response.context["messages"]] == [
        "0 delivery(ies) queued again; 1 of an inactive subscription left failed (make it "
        "active first); 1 not failed, left as they were."
    ]
    states = dict(WebhookDelivery.objects.values_list("pk", "state"))
    assert states == {failed.pk: DeliveryState.FAILED, other_failed.pk: DeliveryState.FAILED,
                      pending.pk: DeliveryState.PENDING}  # fmt: skip
    page = client.get(f"/admin/events/webhookdelivery/{pending.pk}/change/").content.decode()
    assert "Pending: not sent while its subscription is inactive" in page
    listed = client.get("/admin/events/webhookdelivery/?state__exact=pending").content.decode()
    assert "Pending: not sent while its subscription is inactive" in listed

    # A paused subscription's are queued, and the message says when they go.
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=True, paused_until=timezone.now() + timedelta(hours=1)
    )
    response = client.post("/admin/events/webhookdelivery/",
                           {"action": "redeliver", "_selected_action": [failed.pk]},
                           follow=True)  # fmt: skip
    assert [str(m) for m in response.context["messages"]] == [
        "1 delivery(ies) queued again (1 of a paused subscription: sent when its pause ends, "
        "or at once if you resume it); 0 not failed, left as they were."
    ]
    page = client.get(f"/admin/events/webhookdelivery/{failed.pk}/change/").content.decode()
    assert "Pending: its subscription is paused until " in page


def test_staff_who_are_not_superusers_see_no_webhooks(client, channel):
    client.force_login(make_api_user(channels=[channel], is_staff=True))
    assert client.get("/admin/events/webhooksubscription/").status_code == 403
    assert client.get("/admin/events/webhookdelivery/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["https://example.com:99999/hook"], "not a URL"),
        (["https://[::1/hook"], "not a URL"),
        (["https://exa mple.com/hook"], "space"),
        (["https://example.com/" + "x" * 2048], "longer than"),
        # One more character than the column holds: the insert failed.
        (["https://example.com/" + "x" * (2048 - 19)], "longer than"),
        (["https:///hook"], "https://host/"),  # no host
        (["https://example.com/hook", "--header", "X-A=v\r\nX-Injected: 1"], "visible ASCII text"),
        (["https://example.com/hook", "--header", "Content-Length=5"], "set by the sender"),
        (["https://example.com/hook", "--header", "Bad Name=1"], "not a header name"),
        (["https://example.com/hook", "--header", f"{'X' * 129}=1"], "not a header name"),
        (["https://example.com/hook", "--header", f"X-A={'v' * 4097}"], "visible ASCII text"),
    ],
)  # fmt: skip
def test_a_subscription_a_delivery_could_not_use_is_refused_when_made(args, refusal):
    """Each of these made every delivery of its subscription fail before it was
    recorded, so the worker sent it again every second."""
    with pytest.raises(CommandError, match=refusal):
        create_webhook(*args)
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_a_url_as_long_as_the_column_holds_is_taken_and_the_longest_header():
    url = "https://example.com/" + "x" * (2048 - 20)
    create_webhook(url, "--header", f"{'X' * 128}={'v' * 4096}")
    assert WebhookSubscription.objects.get().url == url


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [[1, 2], {"X": None}, {"X": {"y": 1}}, {"X": "a\u0000"},
     {"X-A": "1", "x-a": "2"}],  # one header, twice: both were sent
)  # fmt: skip
def test_the_admin_form_refuses_headers_a_delivery_could_not_send(headers):
    subscription = WebhookSubscription(url="https://example.com/hook", headers=headers,
                                       event_types=["order.captured"])  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        subscription.full_clean()
    assert "headers" in refused.value.message_dict


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_an_answer_with_a_nul_byte_is_recorded_and_retried_on_schedule(api_client, order):
    """PostgreSQL's text holds no NUL: recording such an answer failed, the delivery
    stayed due with no attempt, and the worker sent it again every second."""
    with receiving(answer=lambda number, webhook_id: 500, body=b"ok\x00bad") as receiver:
        create_webhook(receiver.url)
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.state) == (1, "pending")
    assert delivery.next_attempt_at > delivery.tries.get().started_at  # the schedule's wait
    assert delivery.tries.get().response_excerpt == "ok\ufffdbad"
    assert len(receiver.requests) == 1


class StreamingReceiver:
    """Answers every POST 200 with a chunked body of 8,000 bytes, sent in four chunks
    10 ms apart, on a kept-alive connection."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(4):
                    self.wfile.write(b"7d0\r\n" + b"x" * 2000 + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.01)
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_an_answer_longer_than_what_is_read_does_not_spoil_the_next_post(api_client, channel):
    """Only the first 1 KB of an answer is read. The connection went back to be used
    for the batch's next POST with the rest of a streamed answer still to come, which
    was then read as that POST's answer (BadStatusLine): a receiver answering 200 every
    time had deliveries failed and retried."""
    receiver = StreamingReceiver()
    try:
        create_webhook(receiver.url)
        for order in [make_order(channel=channel, items=1) for _ in range(12)]:
            assert capture(api_client, order, [order.items.get().pk]).status_code == 200
        subscription_id = WebhookSubscription.objects.get().pk
        for lane in range(4):
            webhook_lane_flush(subscription_id=subscription_id, lane=lane)
    finally:
        receiver.stop()
    outcomes = list(WebhookDelivery.objects.values_list("state", "attempts", "last_outcome"))
    assert outcomes == [(DeliveryState.DELIVERED, 1, "HTTP 200")] * 12
    assert len(receiver.received) == 12


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_subscription_stored_with_unusable_headers_fails_on_schedule(api_client, order):
    """Saved around the checks (an old row, a raw UPDATE): each attempt is refused and
    recorded, never retried every second."""
    with receiving() as receiver:
        create_webhook(receiver.url)
        WebhookSubscription.objects.update(headers=[1, 2])
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.tries.get().error.startswith("refused: headers must be an object")
    assert receiver.requests == []


def test_a_delivery_failed_for_good_records_when(api_client, order):
    """/metrics counts the deliveries failed in the last week by that time (a failure's
    retries can last weeks after the event)."""
    with receiving() as receiver:
        create_webhook(receiver.url)
        WebhookSubscription.objects.update(headers=[1, 2])  # every attempt refused
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        schedule = retry_schedule(delivery.subscription)
        WebhookDelivery.objects.update(attempts=len(schedule))  # the last attempt is next
        before = timezone.now()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert before <= delivery.failed_at <= timezone.now()


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize(
    "address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "::ffff:10.0.0.1"]
)
def test_an_ipv6_address_carrying_a_private_ipv4_one_is_refused(address):
    """NAT64, 6to4 and IPv4-compatible addresses reach the IPv4 address they carry."""
    with pytest.raises(TargetRefused, match="non-public"):
        resolve(address, 443)


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize("address", ["2001:4860:4860::8888", "::ffff:0:808:808"])  # SIIT: 8.8.8.8
def test_a_public_ipv6_address_is_taken(address):
    assert resolve(address, 443) == address


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize("order", [("8.8.8.8", "10.0.0.5"), ("10.0.0.5", "8.8.8.8")])
def test_a_name_with_a_public_and_a_private_address_is_refused(monkeypatch, order):
    """The connection may go to any address a name resolves to: every one is checked,
    not the first (a resolver's stand-in: this machine reaches no DNS server)."""

    def getaddrinfo(host, port, *args, **kwargs):
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in order]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(TargetRefused, match=r"non-public address \(10\.0\.0\.5\)"):
        resolve("hooks.example.com", 443)


def test_a_subscription_written_by_the_release_before_gets_its_defaults(db):
    """The release before a migration keeps serving while it runs, and knows no
    `timeouts_in_a_row`: its create_webhook failed on NOT NULL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_webhooksubscription (url, secret, event_types, channel_ids, "
            "headers, retry_schedule, is_active, created_at) VALUES ('https://hooks.example.com/', "
            "'whsec_x', '{order.captured}', '{}', '{}', '{}', true, now()) RETURNING id"
        )
        (pk,) = cursor.fetchone()
    assert WebhookSubscription.objects.get(pk=pk).timeouts_in_a_row == 0


def test_the_service_and_create_webhook_keep_the_admins_channel_rules(db):
    """The rules were the admin form's only: create_webhook took a channel twice and
    more than a thousand, and an event type twice."""

    with pytest.raises(ValidationError, match="Each channel once"):
        webhook_subscription_create_or_update(url="https://hooks.example.com/a",
                                              channel_ids=[1, 1])  # fmt: skip
    with pytest.raises(CommandError, match="At most 1,000"):
        call_command("create_webhook", "https://hooks.example.com/b",
                     *[f"--channel={n}" for n in range(1, 1002)], stdout=StringIO(),
                     stderr=StringIO())  # fmt: skip
    call_command("create_webhook", "https://hooks.example.com/c", "--channel=1", "--channel=1",
                 stdout=StringIO(), stderr=StringIO())  # fmt: skip
    assert WebhookSubscription.objects.get().channel_ids == [1]
    # The same for event types (the type was stored twice).
    with pytest.raises(ValidationError, match="Each event type once"):
        webhook_subscription_create_or_update(url="https://hooks.example.com/d",
                                              event_types=["order.captured"] * 2)  # fmt: skip
    call_command("create_webhook", "https://hooks.example.com/e", "--event=order.captured",
                 "--event=order.captured", stdout=StringIO(), stderr=StringIO())  # fmt: skip
    assert WebhookSubscription.objects.get(url__endswith="/e").event_types == ["order.captured"]


def test_staff_with_every_subscription_permission_still_cannot_write_one(client, channel):
    from django.contrib.auth.models import Permission

    staff = make_api_user(channels=[channel], is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="webhooksubscription"))
    client.force_login(staff)
    response = client.post("/admin/events/webhooksubscription/add/", {
        "url": "https://hooks.example.com/", "event_types": "order.captured", "channel_ids": "",
        "headers": "{}", "retry_schedule": "", "is_active": "on"})  # fmt: skip
    assert response.status_code == 403
    assert not WebhookSubscription.objects.exists()


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_failing_delivery_is_retried_once_per_step_of_its_schedule_then_failed(api_client, order):
    """docs/webhooks.md: anything but a 2xx is retried after each delay of the schedule
    in turn (give or take 20%), and after the last attempt the delivery is failed: one
    attempt plus one per step."""
    with receiving(answer=lambda number, webhook_id: 500) as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(
            url=receiver.url, event_types=["order.captured"]
        )
        WebhookSubscription.objects.filter(pk=subscription.pk).update(retry_schedule=[7, 300, 3600])
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        waits = []
        for _ in range(4):
            webhook_lane_flush(subscription_id=subscription.pk, lane=delivery.pk % 4)
            delivery.refresh_from_db()
            if delivery.state == DeliveryState.PENDING:
                started = delivery.tries.order_by("number").last().started_at
                waits.append((delivery.next_attempt_at - started).total_seconds())
                WebhookDelivery.objects.filter(pk=delivery.pk).update(  # due now
                    next_attempt_at=timezone.now() - timedelta(seconds=1)
                )
    assert len(receiver.requests) == 4
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryState.FAILED, 4, None)  # fmt: skip
    assert len(waits) == 3
    for wait, step in zip(waits, [7, 300, 3600], strict=True):
        assert step * 0.8 - 1 <= wait <= step * 1.2 + 1, (waits, step)


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
@pytest.mark.parametrize("status", [301, 302, 404])
def test_a_3xx_or_4xx_answer_is_not_a_delivery(api_client, order, status):
    """Only a 2xx delivers; no redirect is followed (docs/webhooks.md): a receiver that
    moved, or refuses the event, gets it again on the schedule."""
    with receiving(answer=lambda number, webhook_id: status) as receiver:
        create_webhook(receiver.url)
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    assert delivery.delivered_at is None
    assert delivery.next_attempt_at > timezone.now()
    assert delivery.last_outcome == f"HTTP {status}"
    assert len(receiver.requests) == 1


def test_staff_with_every_event_permission_still_see_no_event(client, api_client, order):
    """Events carry every channel's orders (the payload names the customer): the admin's
    events, deliveries and attempts are for superusers, whatever permissions staff of
    one channel are given."""
    from django.contrib.auth.models import Permission

    from events.models import Event

    assert capture(api_client, order, [order.items.first().pk]).status_code == 200
    event = Event.objects.get()
    staff = make_api_user(channels=[order.channel], is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="events"))
    client.force_login(staff)
    assert client.get("/admin/events/event/").status_code == 403
    assert client.get(f"/admin/events/event/{event.pk}/change/").status_code == 403
    assert client.get("/admin/events/webhookdelivery/").status_code == 403


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=False,
                   WEBHOOK_TIMEOUT_SECONDS=1)  # fmt: skip
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_rebound_to_loopback_after_its_check_is_not_connected_to(
    monkeypatch, api_client, order, scheme
):
    """docs/webhooks.md, outbound safety: the connection goes to the address that was
    checked, so a DNS answer that changes in between (public when checked, loopback when
    connecting) cannot reach the internal network (a resolver's stand-in: this machine
    reaches no DNS server). The internal service here only counts connections; the
    public address is refused by a stand-in too, so no packet leaves this machine."""
    internal = socket.create_server(("127.0.0.1", 0))
    internal.settimeout(0.5)
    port = internal.getsockname()[1]
    real_getaddrinfo, answers = socket.getaddrinfo, iter(["8.8.8.8"])
    real_connect, tried = socket.socket.connect, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "hooks.example.com":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")  # public once, then rebound to loopback
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def connect(self, address):
        tried.append(address[0])
        if address[0] == "8.8.8.8":
            raise ConnectionRefusedError("a public address: tests reach loopback only")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    try:
        create_webhook(f"{scheme}://hooks.example.com:{port}/hook")
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
        with pytest.raises(TimeoutError):
            internal.accept()[0].close()  # nothing connected to loopback
    finally:
        internal.close()
    attempt = WebhookDelivery.objects.get().tries.get()
    assert attempt.status_code is None
    assert tried == ["8.8.8.8"]  # the checked address, and nothing else


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["Host", "host", "Content-Type", "Connection", "Transfer-Encoding",
                                  "webhook-id", "Webhook-Timestamp", "Webhook-Signature"])  # fmt: skip
def test_every_header_the_sender_sets_is_refused_when_subscribing(name):
    """docs/webhooks.md: a subscription may not set Host, Content-Length,
    Transfer-Encoding, Content-Type, Connection or the webhook-* headers, in any case: a
    second Host or webhook-signature beside the sender's reached the receiver."""
    with pytest.raises(CommandError, match="set by the sender"):
        create_webhook("https://example.com/hook", "--header", f"{name}=x")
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("char", ["\x00", "\x7f", "\u200b"])
def test_a_url_with_a_control_character_is_refused_when_subscribing(char):
    """docs/webhooks.md: no space or control character (a DEL or a zero-width space is
    no space; a NUL could not even be stored)."""
    with pytest.raises(CommandError, match="control character"):
        create_webhook(f"https://example.com/ho{char}ok")
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize("host", ["224.0.0.1", "239.255.255.250", "[ff02::1]", "[ff0e::1]"])
def test_a_multicast_address_written_in_the_url_is_refused_when_subscribing(host):
    """A multicast group is no unicast receiver: nothing could ever answer a POST."""
    with pytest.raises(CommandError, match="not a public address"):
        create_webhook(f"https://{host}/hook")
    assert not WebhookSubscription.objects.exists()


def test_not_even_a_superuser_deletes_a_subscription(client, db):
    """docs/webhooks.md: deactivate a subscription rather than delete it (its deliveries
    keep it); the admin offers no delete, to superusers either."""
    subscription = WebhookSubscription.objects.create(url="https://hooks.example.com/",
                                                      event_types=["order.captured"])  # fmt: skip
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    page = f"/admin/events/webhooksubscription/{subscription.pk}/delete/"
    assert client.get(page).status_code == 403
    assert client.post(page, {"post": "yes"}).status_code == 403
    assert WebhookSubscription.objects.filter(pk=subscription.pk).exists()


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_failed_delivery_sent_again_goes_on_from_its_attempts(api_client, order):
    """docs/webhooks.md: sent again, a failed delivery is pending and no longer failed,
    keeps its attempts (numbered on from where they stopped), and one more failure fails
    it again, with the same webhook-id."""
    with receiving(answer=lambda number, webhook_id: 500) as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(
            url=receiver.url, event_types=["order.captured"]
        )
        WebhookSubscription.objects.filter(pk=subscription.pk).update(retry_schedule=[60])
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        lane = delivery.pk % 4
        webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
        WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 2)
        assert delivery.failed_at is not None

        assert webhook_deliveries_redeliver(deliveries=WebhookDelivery.objects.all()) == 1
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts, delivery.failed_at) == (
            DeliveryState.PENDING, 2, None)  # fmt: skip
        assert delivery.next_attempt_at <= timezone.now()
        webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryState.FAILED, 3, None)  # fmt: skip
    assert list(delivery.tries.order_by("number").values_list("number", "status_code")) == [
        (1, 500), (2, 500), (3, 500)]  # fmt: skip
    assert receiver.ids() == [delivery.event_id] * 3


def test_resending_warns_only_when_a_delivery_is_not_sent_at_once(client, api_client, channel):
    """A redelivery queued to go at once is news; one left failed (an inactive
    subscription) or waiting for a pause is a warning."""
    from django.contrib import messages

    subscription, _, _ = webhook_subscription_create_or_update(
        url="https://hooks.example.com/a", event_types=["order.captured"]
    )
    order = make_order(channel=channel, items=1)
    assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    delivery = WebhookDelivery.objects.get()
    client.force_login(make_api_user(is_superuser=True, is_staff=True))

    def redeliver():
        WebhookDelivery.objects.update(state=DeliveryState.FAILED, next_attempt_at=None,
                                       failed_at=timezone.now())  # fmt: skip
        response = client.post("/admin/events/webhookdelivery/",
                               {"action": "redeliver", "_selected_action": [delivery.pk]},
                               follow=True)  # fmt: skip
        return [m.level for m in response.context["messages"]]

    assert redeliver() == [messages.INFO]
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)
    assert redeliver() == [messages.WARNING]


def test_resume_counts_only_the_subscriptions_it_resumed(client, db):
    """Selecting every subscription to resume the paused one says one was resumed."""
    paused, _, _ = webhook_subscription_create_or_update(url="https://hooks.example.com/p")
    healthy, _, _ = webhook_subscription_create_or_update(url="https://hooks.example.com/h")
    WebhookSubscription.objects.filter(pk=paused.pk).update(
        paused_until=timezone.now() + timedelta(minutes=5), timeouts_in_a_row=2
    )
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.post("/admin/events/webhooksubscription/",
                           {"action": "resume", "_selected_action": [paused.pk, healthy.pk]},
                           follow=True)  # fmt: skip
    assert [str(m) for m in response.context["messages"]] == [
        "1 subscription(s) resumed: their deliveries go now."
    ]


@pytest.mark.django_db
def test_a_header_named_twice_in_one_case_is_refused():
    """docs/webhooks.md: each extra header is a name given once. Named twice in two cases
    it is refused; named twice in the same case the first value was dropped silently
    (an operator's `--header Authorization=... --header Authorization=...` kept the last)."""
    for second in ("X-A=2", "x-a=2"):
        with pytest.raises(CommandError, match=r"^--header \S+ is given twice: each header once"):
            create_webhook("https://example.com/hook", "--header", "X-A=1", "--header", second)
    assert not WebhookSubscription.objects.exists()


def test_the_admin_form_refuses_a_header_named_twice(client, db):
    """The admin's `headers` JSON with a name given twice kept the last value silently."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    page = client.post("/admin/events/webhooksubscription/add/", {
        "url": "http://127.0.0.1:9/admin", "event_types": "order.captured", "channel_ids": "",
        "headers": '{"X-A": "1", "X-A": "2"}', "retry_schedule": "", "is_active": "on"})  # fmt: skip
    assert page.status_code == 200  # the form again, with its error
    assert "Each key once: duplicate key &#x27;X-A&#x27;." in page.content.decode()
    assert not WebhookSubscription.objects.exists()


@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_only_the_first_kilobyte_of_an_answer_is_recorded(api_client, order):
    """An attempt records an excerpt of the receiver's answer, at most 1 KB of it: a
    receiver answering megabytes must not fill the attempts table."""
    with receiving(body=b"x" * 5000) as receiver:
        create_webhook(receiver.url)
        capture(api_client, order, [order.items.first().pk])
        delivery = WebhookDelivery.objects.get()
        webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.tries.get().response_excerpt == "x" * 1024
