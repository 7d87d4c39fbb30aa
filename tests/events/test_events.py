"""Events in-process: one per committed capture, in its transaction; payloads as
documented; the feed, channel-scoped, never skipping or repeating an event."""

import json
import re

import jsonschema
import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

from capture.idempotency import idempotent_answer, request_fingerprint
from capture.services import ItemInput, order_capture
from events.models import DeliveryState, Event, WebhookDelivery
from events.payloads import event_payloads
from events.registry import EVENT_TYPES, EventType
from events.services import webhook_subscription_create_or_update
from orders.models import Order, order_from_snapshot
from orders.serializers import OrderSerializer
from tests.contract import to_json_schema
from tests.events.helpers import assert_valid_payload
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import capture, client_for


def event_payload(event: Event) -> str:
    return event_payloads([event])[event.id]


FEED = "/api/v1/events/"


def test_a_capture_writes_one_event_and_a_refusal_or_a_replay_none(api_client, order):
    pk = order.items.first().pk
    first = capture(api_client, order, [pk], key="k1")
    assert first.status_code == 200
    assert Event.objects.count() == 1
    assert capture(api_client, order, [pk], key="k1")["Idempotent-Replayed"] == "true"
    assert capture(api_client, order, [pk]).status_code == 400  # already captured
    assert capture(api_client, "NO-SUCH-ORDER", [pk]).status_code == 400
    event = Event.objects.get()
    assert (event.type, event.channel_id) == ("order.captured", order.channel_id)
    assert event.id.startswith("evt_")
    assert len(event.id) == 36


def test_a_rolled_back_capture_leaves_no_event(api_user, order):
    pk = order.items.first().pk

    def capture_then_fail():
        order_capture(user=api_user, order_number=order.number, items=[ItemInput(pk)])
        raise RuntimeError("the transaction rolls back after the capture's statement")

    with pytest.raises(RuntimeError):
        idempotent_answer(user=api_user, key="r", fingerprint=request_fingerprint(
            {"order": order.number, "order_items": [{"pk": pk}]}), capture=capture_then_fail)  # fmt: skip
    assert not Event.objects.exists()


def test_the_payload_is_the_capture_as_get_answers_it_and_the_order_as_answered(api_client, order):
    pk = order.items.first().pk
    answer = capture(api_client, order, [pk])
    payload = assert_valid_payload(event_payload(Event.objects.get()).encode())
    capture_pk = payload["data"]["capture"]["pk"]
    assert payload["type"] == "order.captured"
    assert payload["data"]["order"] == answer.json()
    assert payload["data"]["capture"] == api_client.get(f"/api/v1/captures/{capture_pk}/").json()
    assert payload["timestamp"] == payload["data"]["capture"]["created_at"]


def test_an_event_stored_before_an_order_column_existed_still_renders(api_client, order):
    """A release that adds a column to orders upgrades with events whose payloads are
    not rendered yet: their order snapshot lacks the column, and rendering failed on
    it (KeyError). The column has its default in such a payload."""
    Order.objects.filter(pk=order.pk).update(has_gift_box=True)
    answer = capture(api_client, order, [order.items.first().pk]).json()
    event = Event.objects.get()
    snapshot = {**event.snapshot}
    del snapshot["has_gift_box"]  # as if the column were added since
    Event.objects.filter(pk=event.pk).update(snapshot=snapshot)
    payload = assert_valid_payload(event_payload(Event.objects.get()).encode())
    assert answer["has_gift_box"] is True
    assert payload["data"]["order"] == {**answer, "has_gift_box": False}
    # A missing column without a default is not made up (a renamed one, say).
    del snapshot["number"]
    with pytest.raises(KeyError, match="no 'number'"):
        order_from_snapshot(snapshot)


def test_the_payload_is_rendered_once_and_never_changes(api_client, api_user, order):
    capture(api_client, order, [order.items.first().pk])
    event = Event.objects.get()
    first = event_payload(event)
    assert json.loads(first)["data"]["order"]["status"] != "550"
    Order.objects.filter(pk=order.pk).update(status="550")
    assert event_payload(Event.objects.get()) == first  # stored, not rendered again


def test_deliveries_are_queued_only_for_matching_active_subscriptions(api_client, order):
    other = ChannelFactory()
    wanted, _, _ = webhook_subscription_create_or_update(url="http://127.0.0.1:9/a",
                                                      event_types=["order.captured"])  # fmt: skip
    webhook_subscription_create_or_update(url="http://127.0.0.1:9/b",
                                          event_types=["order.captured"], channel_ids=[other.pk])  # fmt: skip
    off, _, _ = webhook_subscription_create_or_update(url="http://127.0.0.1:9/c",
                                                   event_types=["order.captured"])  # fmt: skip
    off.is_active = False
    off.save()
    capture(api_client, order, [order.items.first().pk])
    delivery = WebhookDelivery.objects.get()
    assert (delivery.subscription, delivery.state) == (wanted, DeliveryState.PENDING)
    lane = {"subscription_id": wanted.pk, "lane": delivery.pk % 4}
    assert queued_lane_jobs() == [lane]
    # Four more captures, one delivery each, on every lane: one job per lane, never two.
    for more in [make_order(channel=order.channel, items=1) for _ in range(4)]:
        capture(api_client, more, [more.items.get().pk])
    assert WebhookDelivery.objects.count() == 5
    expected = [{"subscription_id": wanted.pk, "lane": n} for n in range(4)]
    assert sorted(queued_lane_jobs(), key=str) == sorted(expected, key=str)


def test_a_capture_queues_no_job_for_a_lane_whose_job_is_running(api_client, order):
    """A lane's job sends its lane's deliveries while they come: a capture while it runs
    queues a job for the other lanes only (one more for the running lane would wait for
    its lock, then hold a worker slot idle)."""
    webhook_subscription_create_or_update(
        url="http://127.0.0.1:9/a", event_types=["order.captured"]
    )
    capture(api_client, order, [order.items.first().pk])
    (running,) = queued_lane_jobs()
    with connection.cursor() as cursor:  # a worker took the lane's job
        cursor.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE status = 'todo'")
    for more in [make_order(channel=order.channel, items=1) for _ in range(4)]:
        capture(api_client, more, [more.items.get().pk])
    assert {delivery.pk % 4 for delivery in WebhookDelivery.objects.all()} == {0, 1, 2, 3}
    assert sorted(job["lane"] for job in queued_lane_jobs()) == sorted(
        {0, 1, 2, 3} - {running["lane"]}
    )


def queued_lane_jobs() -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT args::text FROM procrastinate_jobs "
                       "WHERE task_name = 'events.tasks.deliver_lane' AND status = 'todo'")  # fmt: skip
        return [json.loads(row[0]) for row in cursor.fetchall()]


# The feed


def test_the_feed_serves_the_callers_channels_oldest_first_by_cursor(api_client, channel):
    mine = [make_order(channel=channel, items=1) for _ in range(3)]
    theirs = make_order(channel=ChannelFactory(), items=1)
    superuser = client_for(make_api_user(is_superuser=True))
    for order in [mine[0], theirs, mine[1], mine[2]]:
        assert capture(superuser, order, [order.items.get().pk]).status_code == 200

    page = api_client.get(FEED, {"limit": 2}).json()
    assert [e["data"]["order"]["number"] for e in page["results"]] == [o.number for o in mine[:2]]
    rest = api_client.get(page["next"]).json()
    assert [e["data"]["order"]["number"] for e in rest["results"]] == [mine[2].number]
    last = api_client.get(rest["next"]).json()
    assert last == {"next": None, "results": []}
    ids = [e["id"] for e in page["results"] + rest["results"]]
    assert ids == sorted(ids)
    assert all(e["channel"] == channel.pk for e in page["results"] + rest["results"])
    assert api_client.get(FEED, {"type": "order.captured"}).json()["results"]
    assert api_client.get(FEED, {"type": "order.nope"}).json()["code"] == "invalid_choice"
    assert api_client.get(FEED, {"after": "nope"}).json()["code"] == "invalid"
    # Another spelling of an id is refused, as a list's cursor is (it was trimmed).
    for spelling in (f" {ids[0]} ", f"{ids[0]}\n"):
        assert api_client.get(FEED, {"after": spelling}).json()["code"] == "invalid"


def test_a_feed_page_holds_at_most_max_page_characters_of_payloads(
    api_client, channel, monkeypatch
):
    """500 events of orders of 1,000 items were 21 MB and 2.4 s in one answer. A page
    ends before the event that would pass the limit; polling with `after` goes on."""
    from events import selectors

    orders = [make_order(channel=channel, items=n) for n in (1, 30, 1, 1)]
    for order in orders:
        assert (
            capture(api_client, order, list(order.items.values_list("pk", flat=True))).status_code
            == 200
        )
    assert len(api_client.get(FEED).json()["results"]) == 4  # renders and stores the payloads
    sizes = [len(p) for p in Event.objects.order_by("id").values_list("payload", flat=True)]
    monkeypatch.setattr(selectors, "MAX_PAGE_CHARACTERS", sizes[0] + 1)
    pages, url = [], FEED + "?limit=500"
    while True:
        body = api_client.get(url).json()
        if not body["results"]:
            break
        pages.append([len(e["data"]["capture"]["items"]) for e in body["results"]])
        url = body["next"]
    assert pages == [[1], [30], [1], [1]]


def test_a_full_feed_page_renders_no_payload_beyond_it(api_client, channel, monkeypatch):
    """Rendering the payloads of 500 events of 1,000-item orders at once took over 30 s
    (gunicorn killed the worker), and reading their rows fetched 30 MB for a page of
    25. Events are read and rendered 10, 20, 40... at a time, and none once the page is
    full."""
    from events import selectors

    for order in [make_order(channel=channel, items=1) for _ in range(25)]:
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    assert not Event.objects.filter(payload__isnull=False).exists()
    monkeypatch.setattr(selectors, "MAX_PAGE_CHARACTERS", 1)  # one event a page
    with CaptureQueriesContext(connection) as queries:
        assert len(api_client.get(FEED, {"limit": 500}).json()["results"]) == 1
    assert Event.objects.filter(payload__isnull=False).count() == 10
    reads = [
        q["sql"] for q in queries if q["sql"].startswith("SELECT") and '"snapshot"' in q["sql"]
    ]
    assert [re.search(r"LIMIT (\d+)", sql).group(1) for sql in reads] == ["10"]


def test_a_feed_page_renders_five_payloads_a_read_for_the_first_time(api_client, channel):
    """Pages of 500 events never rendered (a shop without webhooks whose feed nobody
    read) cost so much that one token's took every worker below its read limit (an
    outside test): a page renders at most five for the first time for each read it
    counts as (a limit of 500 is ten: fifty), then ends; rendered ones are served 500
    a page."""
    for order in [make_order(channel=channel, items=1) for _ in range(120)]:
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    every = list(Event.objects.order_by("id").values_list("id", flat=True))
    assert not Event.objects.filter(payload__isnull=False).exists()
    event_payloads(list(Event.objects.filter(id__in=every[60:70])))  # rendered already
    pages, url = [], FEED + "?limit=500"
    while (body := api_client.get(url).json())["results"]:
        pages.append([event["id"] for event in body["results"]])
        url = body["next"]
    assert [len(page) for page in pages] == [50, 60, 10]  # 50; 10 + 40 (the 10 rendered)
    assert sum(pages, []) == every
    assert len(api_client.get(FEED, {"limit": 500}).json()["results"]) == 120  # all stored
    Event.objects.update(payload=None)
    small = api_client.get(FEED, {"limit": 50}).json()["results"]  # one read: five
    assert [event["id"] for event in small] == every[:5]


def test_a_feed_page_reads_in_growing_chunks_and_skips_nothing(api_client, channel):
    for order in [make_order(channel=channel, items=1) for _ in range(45)]:
        assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    every = list(Event.objects.order_by("id").values_list("id", flat=True))
    event_payloads(list(Event.objects.all()))  # rendered: a page is not cut by renderings
    page = api_client.get(FEED, {"limit": 40}).json()
    assert [event["id"] for event in page["results"]] == every[:40]
    rest = api_client.get(page["next"]).json()
    assert [event["id"] for event in rest["results"]] == every[40:]


@pytest.mark.django_db(transaction=True)
def test_the_feed_waits_for_a_running_transaction_rather_than_skip_its_event(api_client, channel):
    """A transaction that started first may commit an event that sorts before one
    committed already: the feed serves neither until it ends, so no poller skips it."""
    first, second = make_order(channel=channel, items=1), make_order(channel=channel, items=1)
    s = connection.settings_dict
    slow = psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"])
    try:
        with slow.cursor() as cursor:  # takes its transaction id first, commits last
            cursor.execute("SELECT pg_current_xact_id()")
        assert capture(api_client, second, [second.items.get().pk]).status_code == 200
        assert api_client.get(FEED).json()["results"] == []
        slow.commit()
        served = api_client.get(FEED).json()["results"]
        assert [e["data"]["order"]["number"] for e in served] == [second.number]
        assert capture(api_client, first, [first.items.get().pk]).status_code == 200
        after = api_client.get(FEED, {"after": served[-1]["id"]}).json()["results"]
        assert [e["data"]["order"]["number"] for e in after] == [first.number]
    finally:
        slow.close()


def test_every_feed_event_is_valid_against_the_documented_payload(api_client, order):
    capture(api_client, order, [order.items.first().pk])
    (event,) = api_client.get(FEED).json()["results"]
    assert_valid_payload(json.dumps({k: event[k] for k in ("type", "timestamp", "data")}).encode())


class OrderUpdatedDataSerializer(serializers.Serializer):
    order = OrderSerializer()


def test_each_feed_event_is_one_type_when_a_second_type_has_data_alike(
    api_client, order, monkeypatch
):
    # A second type whose data an order.captured event's data also fits ({order}, with
    # more properties allowed): the feed's schema must still say which type an event is.
    capture(api_client, order, [order.items.first().pk])
    (event,) = api_client.get(FEED).json()["results"]
    updated = EventType("order.updated", render=dict, data_serializer=OrderUpdatedDataSerializer)
    monkeypatch.setitem(EVENT_TYPES, updated.name, updated)
    schema = SchemaGenerator(urlconf="omnitron.urls").get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    feed_event = to_json_schema(components["Event"], components)

    jsonschema.validate(event, feed_event)
    jsonschema.validate({**event, "type": updated.name, "data": {"order": event["data"]["order"]}},
                        feed_event)  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "type": "order.refunded"}, feed_event)
    assert components["Event"]["discriminator"]["mapping"] == {
        "order.captured": "#/components/schemas/OrderCapturedEvent",
        "order.updated": "#/components/schemas/OrderUpdatedEvent",
    }


def test_the_feed_needs_a_token(client, db):
    assert client.get(FEED).status_code == 401


def test_nothing_of_a_rolled_back_transaction_reaches_the_feed(api_client, api_user, order):
    pk = order.items.first().pk

    def capture_then_fail():
        with transaction.atomic():
            order_capture(user=api_user, order_number=order.number, items=[ItemInput(pk)])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        capture_then_fail()
    assert api_client.get(FEED).json()["results"] == []


def test_the_admin_finds_an_event_and_its_deliveries_by_whole_id(api_client, client, order):
    webhook_subscription_create_or_update(
        url="http://127.0.0.1:9/hook", event_types=["order.captured"]
    )
    for item in order.items.all()[:2]:
        assert capture(api_client, order, [item.pk]).status_code == 200
    first, second = Event.objects.order_by("seq")
    client.force_login(make_api_user(is_superuser=True, is_staff=True))

    listing = client.get("/admin/events/event/").content.decode()
    assert listing.index(second.id) < listing.index(first.id)  # newest first
    found = client.get(f"/admin/events/event/?q={first.id}").content.decode()
    assert first.id in found
    assert second.id not in found
    assert second.id in client.get("/admin/events/event/?type=order.captured").content.decode()
    assert second.id not in client.get("/admin/events/event/?type=order.other").content.decode()
    deliveries = client.get(f"/admin/events/webhookdelivery/?q={second.id}").content.decode()
    assert second.id in deliveries
    assert first.id not in deliveries


def test_the_feed_refuses_a_parameter_it_does_not_take(api_client, order):
    """`?afer=<id>`, misspelt, served the feed from its start, and went on into `next`."""
    capture(api_client, order, [order.items.first().pk])
    event = Event.objects.get()
    response = api_client.get(FEED, {"afer": event.id})
    assert response.status_code == 400
    assert response.json() == {
        "afer": ["This list takes no such query parameter."], "code": "unknown_parameter",
    }  # fmt: skip
    taken = api_client.get(FEED, {"after": event.id, "type": "order.captured", "limit": 5,
                                  "page_size": 9, "cursor": "x", "page": 1, "format": "json"})  # fmt: skip
    assert (taken.status_code, taken.json()["results"]) == (200, [])
