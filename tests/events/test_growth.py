"""What the worker's and the admin's statements over the deliveries read as the table
grows: a page of rows, not every row behind it. Filled in SQL (generate_series), as
bench/bigdata.py fills a year, at a size a test can hold; each statement's plan is run
with EXPLAIN ANALYZE and the rows its scans of the table examine are counted (those a
filter removed included: an index walked in its order, filtered row by row, reads
every row it passes)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events import delivery
from events.models import LANES_PER_SUBSCRIPTION, DeliveryState, Event, WebhookDelivery
from events.services import webhook_subscription_create_or_update
from events.sql import EVENT_SEQUENCE
from tests.factories import ChannelFactory, make_api_user

pytestmark = pytest.mark.django_db

EVENTS = Event._meta.db_table
DELIVERIES = WebhookDelivery._meta.db_table


def subscription(url: str):
    made, _, _ = webhook_subscription_create_or_update(url=url, event_types=["order.captured"])
    return made


def events_and_deliveries(subscription_id: int, count: int, state: str, due: str = "NULL"):
    """`count` new events, each with one delivery to the subscription in `state`,
    oldest first (ids in the order they were made, as a live shop's are)."""
    channel = ChannelFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH made AS (
                INSERT INTO {EVENTS} (id, seq, txid, type, created_at, channel_id, object_id, snapshot)
                SELECT 'evt_' || lpad(to_hex(txid), 16, '0') || lpad(to_hex(seq), 16, '0'),
                       seq, txid, 'order.captured', now() - interval '1 day', %(channel)s, 0, '{{}}'
                  FROM (SELECT nextval('{EVENT_SEQUENCE}') AS seq,
                               pg_current_xact_id()::text::bigint AS txid
                          FROM generate_series(1, %(count)s)) AS n
                RETURNING id, seq)
            INSERT INTO {DELIVERIES} (event_id, subscription_id, state, attempts, created_at,
                                      next_attempt_at, delivered_at, last_outcome)
            SELECT id, %(subscription)s, %(state)s::text, 1, now() - interval '1 day', {due},
                   CASE WHEN %(state)s::text = 'delivered' THEN now() END, ''
              FROM made ORDER BY seq""",
            {"channel": channel.pk, "count": count, "subscription": subscription_id,
             "state": state},
        )  # fmt: skip


def analyze():
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {EVENTS}, {DELIVERIES}")


def rows_examined(statement: str, table: str) -> int:
    """Rows the scans of `table` read when the statement (as sent, with its values)
    runs: those they return and those their filters removed, over every loop."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}")
        (plan,) = cursor.fetchone()[0]

    def total(node) -> int:
        here = 0
        if "Scan" in node["Node Type"] and node.get("Relation Name") == table:
            read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            here = read * node["Actual Loops"]
        return here + sum(total(child) for child in node.get("Plans", []))

    return total(plan["Plan"])


def test_a_lanes_batch_reads_a_batch_whatever_the_backlog():
    """A receiver back after an outage has thousands of deliveries due. Each batch of
    a lane (events/delivery.py `_due`) read every due delivery of the subscription on
    the pending index, kept its lane's quarter, joined each to its event (snapshot
    and payload, 2 kB a row) and sorted them for the 100 it sends: at 300,000 due,
    0.95 s and 675,000 buffers a batch, and the worker drained 160 a second where it
    drains 700 at 20,000 (a quadratic drain, the database's CPU all the while)."""
    hook = subscription("http://127.0.0.1:9/backlog")
    events_and_deliveries(hook.pk, 8000, DeliveryState.PENDING, due="now() - interval '1 minute'")
    analyze()
    with CaptureQueriesContext(connection) as queries:
        batch = delivery._due(hook, 0)
    assert len(batch) == delivery.BATCH
    assert {d.id % LANES_PER_SUBSCRIPTION for d in batch} == {0}
    # The plan for its values, which PostgreSQL keeps for it: the generic plan cannot
    # use the partial indexes (the state is a parameter), and costs a scan of the table.
    statement = queries.captured_queries[-1]["sql"]
    assert rows_examined(statement, DELIVERIES) <= 2 * delivery.BATCH
    assert rows_examined(statement, EVENTS) <= 2 * delivery.BATCH


@pytest.mark.parametrize("shown", ["failed", "old subscription"])
def test_the_deliveries_filters_read_a_page_when_the_rows_they_show_are_old(client, shown):
    """The operator's filters of the deliveries list (a state, a subscription) on a
    list in id order: when the deliveries they show are old (the failures of an
    outage months ago, a subscription deactivated last year), the list walked the
    whole primary key from the newest delivery, filtering each. On a fill of 2.66
    million deliveries: `?state__exact=failed` 723 ms, an old subscription 634 ms,
    growing with every delivery made since (a year of a busy shop is tens of millions:
    past the statement timeout, a 503)."""
    old = subscription("http://127.0.0.1:9/old")
    current = subscription("http://127.0.0.1:9/current")
    if shown == "failed":
        events_and_deliveries(current.pk, 3000, DeliveryState.FAILED)
        url = "/admin/events/webhookdelivery/?state__exact=failed"
    else:
        events_and_deliveries(old.pk, 3000, DeliveryState.DELIVERED)
        url = f"/admin/events/webhookdelivery/?subscription__id__exact={old.pk}"
    events_and_deliveries(current.pk, 30000, DeliveryState.DELIVERED)
    analyze()
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    (listing,) = [q["sql"] for q in queries.captured_queries
                  if q["sql"].startswith(f'SELECT "{DELIVERIES}"."id"') and "LIMIT 100" in q["sql"]]  # fmt: skip
    assert rows_examined(listing, DELIVERIES) <= 1000


def test_the_events_channel_filter_reads_a_page_when_the_channels_events_are_old(client):
    """The events list is newest first by `seq`, and the only index with the channel is
    (channel, id): filtered by a channel whose events are old (a channel that closed,
    a marketplace that left), it walked `seq`'s index from the newest event, filtering
    each. On a fill of a million events, a channel holding the oldest 30,000: 1.1 s,
    growing with every event since."""
    hook = subscription("http://127.0.0.1:9/hook")
    events_and_deliveries(hook.pk, 3000, DeliveryState.DELIVERED)
    (old_channel,) = Event.objects.order_by().values_list("channel_id", flat=True).distinct()
    events_and_deliveries(hook.pk, 30000, DeliveryState.DELIVERED)
    analyze()
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/events/event/?channel__id__exact={old_channel}")
    assert response.status_code == 200
    (listing,) = [q["sql"] for q in queries.captured_queries
                  if q["sql"].startswith(f'SELECT "{EVENTS}"."id"') and "LIMIT 100" in q["sql"]]  # fmt: skip
    assert rows_examined(listing, EVENTS) <= 1000
