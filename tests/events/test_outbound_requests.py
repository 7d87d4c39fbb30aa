"""What a delivery's POST puts on the wire for the targets and headers a subscription
takes: a subscription that create_webhook or the admin takes is one a receiver can
get, under one spelling of its URL; each retry waits its step after its POST; a
subscription narrowed gets nothing it no longer takes. (Found from outside by helpers,
2026-11-30: each of these was taken and then failed every POST, or was sent otherwise
than set.)"""

import http.server
import socket
import threading
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.core.management import CommandError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import Capture
from events import outbound
from events.delivery import webhook_lane_flush
from events.models import Event, WebhookDelivery, WebhookSubscription
from events.services import webhook_subscription_create_or_update
from tests.events.helpers import receiving
from tests.events.test_subscriptions import create_webhook
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import capture, client_for
from tests.orders.admin_pages import change_form

pytestmark = pytest.mark.django_db
LOCAL_TARGETS = override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


def send_the_capture(api_client, order) -> WebhookDelivery:
    capture(api_client, order, [order.items.first().pk])
    delivery = WebhookDelivery.objects.get()
    webhook_lane_flush(subscription_id=delivery.subscription_id, lane=delivery.pk % 4)
    delivery.refresh_from_db()
    return delivery


@LOCAL_TARGETS
@pytest.mark.parametrize("value", ["Bearer €uro", "café"])
def test_a_header_value_beyond_ascii_is_refused_when_the_subscription_is_made(value):
    """`Bearer €uro` was taken, and every POST failed before it was sent (http.client
    writes a header as Latin-1): 31 hours of retries, then failed. `café` went out as
    a Latin-1 byte, which a receiver reading UTF-8 does not read as written."""
    with pytest.raises(CommandError, match="X-Token header's value must be visible ASCII"):
        create_webhook("http://127.0.0.1:9/hook", "--header", f"X-Token={value}")
    # A row that holds one anyway (written around the checks): its POSTs say why.
    target = outbound.Target("http://127.0.0.1:9/hook", {"X-Token": value})
    outcome = target.post(b"{}", {})
    assert outcome.error == "refused: the X-Token header's value must be visible ASCII text"


@LOCAL_TARGETS
def test_a_user_agent_the_subscription_sets_is_sent_as_set(api_client, order):
    """--header "adds a header to every delivery": User-Agent was taken and replaced
    by the sender's own on every POST."""
    with receiving() as receiver:
        create_webhook(receiver.url, "--header", "User-Agent=erp-gateway-auth/7")
        assert send_the_capture(api_client, order).state == "delivered"
        WebhookSubscription.objects.update(headers={})
        WebhookDelivery.objects.all().delete()
        assert send_the_capture(api_client, make_order(channel=order.channel)).state == "delivered"
    assert [r["headers"]["User-Agent"] for r in receiver.requests] == [
        "erp-gateway-auth/7", "omnitron-capture-webhooks/1"]  # fmt: skip


@LOCAL_TARGETS
def test_a_user_agent_in_lower_case_is_the_one_sent():
    """Header names are the same in any case: `user-agent` was sent as a second
    User-Agent after the sender's, which most receivers read first."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []

    def serve():
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        got.append(data)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    target = outbound.Target(f"http://127.0.0.1:{server.getsockname()[1]}/h",
                             {"user-agent": "erp/7"})  # fmt: skip
    try:
        assert target.post(b"{}", {}).delivered
    finally:
        target.close()
        server.close()
    agents = [line for line in got[0].lower().split(b"\r\n") if line.startswith(b"user-agent:")]
    assert agents == [b"user-agent: erp/7"]


@LOCAL_TARGETS
def test_a_header_named_twice_in_two_cases_is_refused():
    with pytest.raises(CommandError, match="each header once"):
        create_webhook("http://127.0.0.1:9/hook", "--header", "X-Token=a", "--header", "x-token=b")


class IPv6Receiver:
    """Answers 200 on [::1], recording each POST's Host header."""

    def __init__(self):
        hosts = self.hosts = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self.server = Server(("::1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@LOCAL_TARGETS
def test_an_ipv6_address_target_gets_its_host_in_brackets(api_client, order):
    """An IPv6 address in the URL was sent as `Host: ::1:PORT`, which is no host (RFC
    9112 3.2): nginx answers it 400, so every delivery to such a receiver failed."""
    receiver = IPv6Receiver()
    try:
        create_webhook(f"http://[::1]:{receiver.port}/hook")
        assert send_the_capture(api_client, order).state == "delivered"
    finally:
        receiver.stop()
    assert receiver.hosts == [f"[::1]:{receiver.port}"]


@LOCAL_TARGETS
def test_an_international_host_name_is_delivered_to_by_its_ascii_name(api_client, order):
    """`http://пример.localhost/` was taken and every POST failed before it was sent
    (http.client could not write the Host header); `bücher.localhost` went out with a
    Latin-1 byte in Host instead of its xn-- form. Only DNS is stood in for: the ASCII
    name, the one DNS is asked, resolves to loopback."""
    real = socket.getaddrinfo
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        return real("127.0.0.1" if host == "xn--e1afmkfd.localhost" else host, port, *args,
                    **kwargs)  # fmt: skip

    with receiving() as receiver, patch.object(outbound.socket, "getaddrinfo", getaddrinfo):
        create_webhook(f"http://ПРИМЕР.localhost:{receiver.port}/hook")
        delivery = send_the_capture(api_client, order)
    assert delivery.state == "delivered", delivery.last_outcome
    assert asked[0] == "xn--e1afmkfd.localhost"  # then the connection asks of its address
    assert receiver.requests[0]["headers"]["Host"] == f"xn--e1afmkfd.localhost:{receiver.port}"
    assert WebhookSubscription.objects.get().url == (
        f"http://xn--e1afmkfd.localhost:{receiver.port}/hook")  # fmt: skip


def test_an_international_name_is_spelt_as_idna_2008_spells_it():
    """Python's own "idna" codec is IDNA 2003: `faß.de` went to `fass.de`, another
    domain (and another owner) than the one the subscription names; browsers and
    registries spell it `xn--fa-hia.de`."""
    assert outbound.ascii_host("faß.de") == "xn--fa-hia.de"
    assert outbound.ascii_host("Bücher.example.") == "xn--bcher-kva.example."
    assert outbound.ascii_host("my_service.internal") == "my_service.internal"  # as it was


@LOCAL_TARGETS
def test_a_tls_connection_names_the_ascii_host(monkeypatch):
    """The certificate and SNI name the host as DNS knows it."""
    monkeypatch.setattr(outbound, "resolve", lambda host, port: "127.0.0.1")
    target = outbound.Target("https://пример.localhost/hook")
    try:
        assert target.pool.conn_kw["server_hostname"] == "xn--e1afmkfd.localhost"
        assert target.pool.assert_hostname == "xn--e1afmkfd.localhost"
        assert target.host == "xn--e1afmkfd.localhost"
    finally:
        target.close()


@LOCAL_TARGETS
def test_a_url_longer_than_its_column_once_spelt_in_ascii_is_refused():
    """`пример` is 6 characters and `xn--e1afmkfd` 12: a URL of 2,048 characters as
    given failed at the database (a 500 of the admin, a traceback of create_webhook)."""
    url = f"http://пример.localhost/{'x' * (2048 - len('http://пример.localhost/'))}"
    assert len(url) == 2048
    with pytest.raises(CommandError, match="longer than 2048"):
        create_webhook(url)


@LOCAL_TARGETS
def test_a_host_name_that_has_no_ascii_form_is_refused():
    with pytest.raises(CommandError, match="not a host name"):
        create_webhook("http://a..b/hook")
    with pytest.raises(CommandError, match="not a host name"):
        create_webhook(f"http://{'x' * 64}.example/hook")  # a label is at most 63
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253, DNS's most
    create_webhook(f"http://{longest}/hook")
    with pytest.raises(CommandError, match="not a host name"):
        create_webhook(f"http://{longest}e/hook")


@LOCAL_TARGETS
def test_a_url_has_one_subscription_whatever_its_spelling(client):
    """`HTTP://127.0.0.1/hook` and `.../hook#x` were second subscriptions of the same
    receiver, which got every event twice, under two secrets."""
    first = create_webhook("http://127.0.0.1:9/hook?a=B")
    for spelling in ("HTTP://127.0.0.1:9/hook?a=B", "http://127.0.0.1:9/hook?a=B#x",
                     "Http://127.0.0.1:09/hook?a=B#"):  # fmt: skip
        assert create_webhook(spelling) == first
    ipv6 = create_webhook("http://[0:0::1]:80/hook")
    assert create_webhook("http://[::1]/hook") == ipv6  # its short form, no default port
    assert list(WebhookSubscription.objects.values_list("url", flat=True)) == [
        "http://127.0.0.1:9/hook?a=B", "http://[::1]/hook"]  # fmt: skip
    # The admin's form spells it the same way, so its unique check sees the first.
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    url = "/admin/events/webhooksubscription/add/"
    form = {**change_form(client, url), "url": "HTTP://127.0.0.1:9/hook?a=B#y",
            "event_types": "order.captured"}  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors["url"])
    assert WebhookSubscription.objects.count() == 2


@LOCAL_TARGETS
def test_a_url_that_names_a_user_is_refused():
    """http.client dropped `user:password@` and sent no credentials at all: every POST
    went out unauthenticated, with nothing to say so."""
    with pytest.raises(CommandError, match="names a user"):
        create_webhook("http://erp:s3cret@127.0.0.1:9/hook")


@LOCAL_TARGETS
def test_a_retry_waits_its_step_after_its_own_post_also_in_a_batch(
    api_client, channel, monkeypatch
):
    """docs/webhooks.md: each retry waits its step, give or take 20%, after the attempt
    before. The step was counted from when the lane recorded its batch, after the
    batch's later POSTs: with a receiver answering 500 in 1 s, the first of three
    deliveries of a lane was due 2 s late, and with `make run`'s 3 s answers a 5 s step
    came 11 to 12 s after the attempt before. (No jitter here, so a second tells; a
    10 s step is due after the lane's job ended: one POST each.)"""
    monkeypatch.setattr("events.delivery.random.uniform", lambda low, high: 1.0)
    order = make_order(channel=channel, items=9)
    with receiving(answer=lambda number, webhook_id: 500, delay=1) as receiver:
        create_webhook(receiver.url)
        WebhookSubscription.objects.update(retry_schedule=[10])
        for item in order.items.order_by("pk"):
            assert capture(api_client, order, [item.pk]).status_code == 200
        first = WebhookDelivery.objects.order_by("pk").first()
        lane = WebhookDelivery.objects.filter(pk__in=[first.pk, first.pk + 4, first.pk + 8])
        webhook_lane_flush(subscription_id=first.subscription_id, lane=first.pk % 4)
    assert len(receiver.requests) == 3  # one batch, one POST each
    for delivery in lane:
        attempt = delivery.tries.get()
        ended = attempt.started_at + timedelta(milliseconds=attempt.duration_ms)
        waited = (delivery.next_attempt_at - ended).total_seconds()
        assert abs(waited - 10) < 0.1, (delivery.pk, waited)


@LOCAL_TARGETS
def test_a_subscription_narrowed_gets_none_of_what_it_no_longer_takes(client):
    """Its channels (or event types) narrowed, a subscription's pending deliveries of
    the channel it dropped went on to its receiver on their retries, for up to 31
    hours, and its failed ones by the resend action (helper 114: 800 of another
    channel's events after a narrowing): they are cancelled, and counted nowhere."""
    kept, dropped = ChannelFactory(), ChannelFactory()
    api = client_for(make_api_user(channels=[kept, dropped]))
    answers = iter([500])  # the receiver fails once, then answers 200
    with receiving(answer=lambda number, _: next(answers, 200)) as receiver:
        subscription, _, _ = webhook_subscription_create_or_update(
            url=receiver.url, event_types=["order.captured"], channel_ids=[kept.pk, dropped.pk]
        )
        pending, failed, other = (make_order(channel=c, items=1) for c in (dropped, dropped, kept))
        for order in (pending, failed, other):
            assert capture(api, order, [order.items.get().pk]).status_code == 200
        deliveries = WebhookDelivery.objects.order_by("pk")
        first = deliveries[0]
        webhook_lane_flush(subscription_id=subscription.pk, lane=first.pk % 4)  # its 500
        WebhookDelivery.objects.filter(event__object_id__in=Capture.objects.filter(
            order=failed).values("pk")).update(state="failed", failed_at=timezone.now())  # fmt: skip
        create_webhook(receiver.url, "--channel", str(kept.pk))  # narrowed
        WebhookDelivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())
        for lane in range(4):
            webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
        client.force_login(make_api_user(is_superuser=True, is_staff=True))
        resent = client.post("/admin/events/webhookdelivery/", {
            "action": "redeliver", "_selected_action": [str(d.pk) for d in deliveries]})  # fmt: skip
        assert resent.status_code == 302
        for lane in range(4):
            webhook_lane_flush(subscription_id=subscription.pk, lane=lane)
    channels = [Event.objects.get(pk=r["headers"]["webhook-id"]).channel_id
                for r in receiver.requests]  # fmt: skip
    assert channels == [dropped.pk, kept.pk]  # the first's 500, before; then only `kept`
    assert sorted(WebhookDelivery.objects.values_list("event__channel_id", "state")) == sorted(
        [(dropped.pk, "cancelled"), (dropped.pk, "cancelled"), (kept.pk, "delivered")])  # fmt: skip


@pytest.mark.django_db
def test_create_webhook_says_how_many_deliveries_its_narrowing_cancelled(capsys):
    """The admin said how many pending deliveries a narrowing cancelled; create_webhook
    said nothing, and an operator learnt of the events never sent only from the
    receiver (there is no undo). On stderr: stdout stays one JSON object."""
    kept, dropped = ChannelFactory(), ChannelFactory()
    api = client_for(make_api_user(channels=[kept, dropped]))
    first = create_webhook("http://127.0.0.1:9/hook")
    for channel in (dropped, dropped, kept):
        order = make_order(channel=channel, items=1)
        assert capture(api, order, [order.items.get().pk]).status_code == 200
    capsys.readouterr()
    assert create_webhook("http://127.0.0.1:9/hook", "--channel", str(kept.pk)) == first
    assert capsys.readouterr().err.strip() == (
        "2 pending or failed deliveries of events it no longer takes (their channel or "
        "type) were cancelled: they are not sent again."
    )
    create_webhook("http://127.0.0.1:9/hook", "--channel", str(kept.pk))  # narrows nothing
    assert capsys.readouterr().err == ""


@LOCAL_TARGETS
@pytest.mark.django_db(transaction=True)  # the cancelling runs when the page commits
def test_narrowing_a_subscription_in_the_admin_cancels_what_it_no_longer_takes(client):
    """After the page's transaction, in batches; a save that narrows nothing (a re-run
    of create_webhook, an admin save of another field) reads no delivery."""
    kept, dropped = ChannelFactory(), ChannelFactory()
    api = client_for(make_api_user(channels=[kept, dropped]))
    subscription, _, _ = webhook_subscription_create_or_update(
        url="http://127.0.0.1:9/hook", channel_ids=[kept.pk, dropped.pk])  # fmt: skip
    for channel in (kept, dropped):
        order = make_order(channel=channel, items=1)
        assert capture(api, order, [order.items.get().pk]).status_code == 200
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    url = f"/admin/events/webhooksubscription/{subscription.pk}/change/"
    form = change_form(client, url)
    with CaptureQueriesContext(connection) as queries:
        assert client.post(url, {**form, "retry_schedule": "5,30"}).status_code == 302
        webhook_subscription_create_or_update(url="http://127.0.0.1:9/hook")
    assert not [q for q in queries.captured_queries if "events_webhookdelivery" in q["sql"]]
    response = client.post(url, {**form, "channel_ids": str(kept.pk)})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "1 pending or failed deliveries of events it no longer takes" in page
    assert sorted(WebhookDelivery.objects.values_list("event__channel_id", "state")) == sorted(
        [(kept.pk, "pending"), (dropped.pk, "cancelled")])  # fmt: skip


@LOCAL_TARGETS
@pytest.mark.parametrize("status", [300, 302])
def test_a_redirect_is_recorded_as_the_answer_and_not_followed(status):
    """docs/webhooks.md: no redirect is followed (a receiver could send the signed
    event on to a host of its choosing); the 3xx is the attempt's answer, a failure."""
    paths, types = [], []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            paths.append(self.path)
            types.append(self.headers["Content-Type"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status if self.path == "/hook" else 200)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = outbound.Target(f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        outcome = target.post(b"{}", {})
    finally:
        target.close()
        server.shutdown()
        server.server_close()
    assert (outcome.status_code, outcome.delivered, paths) == (status, False, ["/hook"])
    assert types == ["application/json"]


@LOCAL_TARGETS
def test_a_101_answer_is_the_answer_not_an_interim_one():
    """Every 1xx but 101 is interim (RFC 9110, 15.2): a receiver that switches
    protocols has not taken the event, whatever it writes next."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
                               b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
            connection.recv(1)  # until the sender closes

    threading.Thread(target=answer, daemon=True).start()
    target = outbound.Target(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
    try:
        outcome = target.post(b"{}", {})
    finally:
        target.close()
        listener.close()
    assert (outcome.status_code, outcome.delivered) == (101, False)
