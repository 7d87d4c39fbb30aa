"""Upgrading a live shop (docs/operations.md): what the migrations do to the rows and
the locks of a database in use, and that looking at them changes nothing."""

import importlib
import re
import threading
import time
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection, models
from django.test import override_settings
from django.utils import timezone

from events.models import DeliveryAttempt, DeliveryState, WebhookDelivery, WebhookSubscription
from events.services import webhook_subscription_create_or_update
from omnitron.db.backfill import create_index_concurrently
from tests.factories import make_order
from tests.helpers import capture

FILLED = importlib.import_module("events.migrations.0007_delivery_failed_at_filled")
RESPELT = importlib.import_module("events.migrations.0008_webhook_urls_in_one_spelling")


def delivery_of_a_capture(api_client, channel) -> WebhookDelivery:
    webhook_subscription_create_or_update(url="http://127.0.0.1:9/hook",
                                          event_types=["order.captured"])  # fmt: skip
    order = make_order(channel=channel, items=1)
    assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    return WebhookDelivery.objects.latest("id")


def test_a_delivery_written_failed_without_a_time_gets_one(api_client, channel):
    """The release before events/0006 fails a delivery without `failed_at`, and it
    serves while the migrations run: the failed alert and the admin's count, which read
    `failed_at`, left such deliveries out."""
    delivery = delivery_of_a_capture(api_client, channel)
    before = timezone.now()
    with connection.cursor() as cursor:  # as the release before records an outcome
        cursor.execute("UPDATE events_webhookdelivery SET state = 'failed', attempts = 8 "
                       "WHERE id = %s", [delivery.pk])  # fmt: skip
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert before <= delivery.failed_at <= timezone.now()

    other, _, _ = webhook_subscription_create_or_update(url="http://127.0.0.1:10/hook",
                                                     event_types=["order.captured"])  # fmt: skip
    inserted = WebhookDelivery.objects.create(  # as the release before writes one
        event=delivery.event, subscription=other, state="failed", created_at=timezone.now()
    )
    inserted.refresh_from_db()
    assert before <= inserted.failed_at <= timezone.now()

    given = timezone.now() - timedelta(days=2)  # a time given is kept
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="pending", failed_at=None)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="failed", failed_at=given)
    delivery.refresh_from_db()
    assert delivery.failed_at == given


def test_the_deliveries_failed_before_the_upgrade_get_their_last_attempts_time(api_client, channel):
    tried, untried, pending = (delivery_of_a_capture(api_client, channel) for _ in range(3))
    last = timezone.now() - timedelta(days=3)
    for number, started_at in ((1, last - timedelta(hours=1)), (2, last)):
        DeliveryAttempt.objects.create(delivery=tried, number=number, started_at=started_at,
                                       duration_ms=5, status_code=500)  # fmt: skip
    with connection.cursor() as cursor:  # as they were before events/0007
        cursor.execute("SET LOCAL session_replication_role = replica")  # no triggers
        cursor.execute("UPDATE events_webhookdelivery SET state = 'failed' WHERE id IN (%s, %s)",
                       [tried.pk, untried.pk])  # fmt: skip
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert WebhookDelivery.objects.filter(failed_at__isnull=False).count() == 0

    with connection.schema_editor() as editor:
        FILLED.fill(None, editor)

    times = dict(WebhookDelivery.objects.values_list("pk", "failed_at"))
    assert times == {tried.pk: last, untried.pk: untried.created_at, pending.pk: None}


@pytest.mark.django_db
@override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_subscriptions_stored_in_another_spelling_are_respelt_and_found_again():
    """A subscription's URL is stored in one spelling since events/0008, and
    create_webhook finds it by that: a re-run with the spelling a row was stored in
    before made a second subscription of the same receiver (every event twice, two
    secrets). Two rows of one receiver from before stay as they were."""
    stored = ["HTTP://127.0.0.1:9/a", "http://127.0.0.1:9/b#x", "https://Example.com:443/c",
              "HTTP://127.0.0.1:9/d", "http://127.0.0.1:9/d", "http://a..b/e"]  # fmt: skip
    rows = [WebhookSubscription.objects.create(url=url, event_types=["order.captured"])
            for url in stored]  # fmt: skip
    RESPELT.respell(django_apps, None)
    assert [WebhookSubscription.objects.get(pk=row.pk).url for row in rows] == [
        "http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "https://example.com/c",
        "HTTP://127.0.0.1:9/d", "http://127.0.0.1:9/d", "http://a..b/e"]  # fmt: skip
    for url in stored[:3]:
        subscription, created, _ = webhook_subscription_create_or_update(url=url)
        assert not created
        assert subscription.secret == next(row.secret for row in rows if row.url == url)
    assert WebhookSubscription.objects.count() == len(stored)


@pytest.mark.django_db(transaction=True)
def test_an_index_build_waits_for_a_long_reader_instead_of_failing():
    """CREATE INDEX CONCURRENTLY waits for every older transaction to end (a backup, a
    report), holding up no write meanwhile. Cut at the app's lock_timeout, a build
    behind a 40-second report failed and left events/0006 impossible to run again (an
    outside test upgrading a live shop)."""
    index = models.Index(fields=["created_at"], name="scratch_build_idx")
    params = connection.get_connection_params()
    try:
        with psycopg.connect(**params) as reader:
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            reader.execute("SELECT count(*) FROM orders_order")  # a report's snapshot
            threading.Timer(3, reader.commit).start()
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '1s'")  # shorter than the report
            started = time.monotonic()
            with connection.schema_editor(atomic=False) as editor:
                create_index_concurrently(editor, WebhookDelivery, index)
            waited = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                           "ON c.oid = i.indexrelid WHERE c.relname = %s", [index.name])  # fmt: skip
            assert cursor.fetchone() == (True,)
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone() != ("1s",)  # the session's own again (reset)
        assert waited > 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX IF EXISTS "{index.name}"')


WRITES = re.compile(r"^\s*(ALTER|CREATE|DROP|UPDATE|INSERT|DELETE|SET|RESET)\b", re.IGNORECASE)


# Django leaves a RunPython of its own out; one nested in SeparateDatabaseAndState it ran.
NAMED = "-- Python step"
LEFT_OUT = "THIS OPERATION CANNOT BE WRITTEN AS SQL"


@pytest.mark.parametrize(
    ("app", "migration", "said"),
    [("capture", "0007", NAMED), ("events", "0006", NAMED), ("events", "0007", LEFT_OUT),
     ("orders", "0010", NAMED), ("accounts", "0001", LEFT_OUT)],
)  # fmt: skip
@pytest.mark.parametrize("backwards", [False, True])
def test_sqlmigrate_prints_and_runs_nothing(db, app, migration, said, backwards):
    """Django's sqlmigrate runs a Python step nested in SeparateDatabaseAndState, and
    this project's run their SQL themselves: `sqlmigrate events 0006` built an index
    on the live database, `capture 0007` altered the table (an outside test)."""
    ran = []

    def record(execute, sql, params, many, context):
        ran.append(sql)
        return execute(sql, params, many, context)

    out = StringIO()
    with connection.execute_wrapper(record):
        call_command("sqlmigrate", app, migration, *(["--backwards"] if backwards else []),
                     stdout=out)  # fmt: skip
    assert [sql for sql in ran if WRITES.match(sql)] == []
    assert said in out.getvalue()
