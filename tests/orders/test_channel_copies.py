"""Items and captures carry their order's channel (the lists of a channel read it:
docs/performance.md, "A small channel among large ones"). The database writes it,
whoever writes the row; an order's channel is fixed, so the copies stay true; and
the migrations that brought the column filled the rows that were already there."""

import threading
import time
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from capture.models import Capture
from omnitron.db import backfill
from orders.models import Order, OrderItem
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import capture, client_for


def stored_channel(model, pk: int) -> int:
    return model.objects.values_list("channel_id", flat=True).get(pk=pk)


def test_an_item_has_its_orders_channel_however_it_is_written(db):
    first, second = make_order(channel=ChannelFactory()), make_order(channel=ChannelFactory())
    item = first.items.first()
    assert stored_channel(OrderItem, item.pk) == first.channel_id

    with connection.cursor() as cursor:  # a wrong channel given is corrected
        cursor.execute("UPDATE orders_orderitem SET channel_id = %s WHERE id = %s",
                       [second.channel_id, item.pk])  # fmt: skip
    assert stored_channel(OrderItem, item.pk) == first.channel_id

    item.order = second  # moved to an order of another channel: the channel follows
    item.save()
    assert stored_channel(OrderItem, item.pk) == second.channel_id


def test_a_capture_has_its_orders_channel(db):
    order = make_order(channel=ChannelFactory())
    client = client_for(make_api_user(channels=[order.channel]))
    assert capture(client, order, [order.items.first().pk]).status_code == 200
    assert stored_channel(Capture, Capture.objects.get().pk) == order.channel_id


def test_an_orders_channel_is_fixed(db, admin_client):
    order, other = make_order(channel=ChannelFactory()), ChannelFactory()
    with pytest.raises(DatabaseError, match="channel is fixed"), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(channel=other)
    Order.objects.filter(pk=order.pk).update(channel=order.channel)  # no change: fine

    page = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert 'name="channel"' not in page  # shown, not editable
    assert 'name="channel"' in admin_client.get("/admin/orders/order/add/").content.decode()


def test_check_captures_names_a_copy_that_is_not_its_orders(db):
    order, other = make_order(channel=ChannelFactory()), ChannelFactory()
    client = client_for(make_api_user(channels=[order.channel]))
    assert capture(client, order, [order.items.first().pk]).status_code == 200
    record, item = Capture.objects.get(), order.items.last()
    with connection.cursor() as cursor:  # what only a bypass of the triggers could do
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE capture_capture SET channel_id = %s", [other.pk])
        cursor.execute("UPDATE orders_orderitem SET channel_id = %s WHERE id = %s",
                       [other.pk, item.pk])  # fmt: skip
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_captures", stdout=StringIO(), stderr=err)
    assert f"capture's channel is not its order's: {record.pk}" in err.getvalue()
    assert (
        f"order item's channel is not its order's (its channel's lists would show it wrongly): {item.pk}"
        in err.getvalue()
    )  # noqa: E501


BEFORE = [
    ("orders", "0006_order_channel_placed_idx"),
    ("capture", "0005_capture_capture_created_idx"),
]


def index_validity(name: str) -> list[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT i.indisvalid FROM pg_index i "
                       "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s", [name])  # fmt: skip
        return [row[0] for row in cursor.fetchall()]


def migrate(targets=None):
    """To `targets`; to every app's latest migration without. (Back to BEFORE also
    takes back every later migration that depends on those: the events app's
    included, so the way forward is every app's latest, not the two that were.)"""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migrations_fill_the_rows_that_were_there_and_can_run_again(monkeypatch):
    """Rows written before the column existed get their order's channel (the fill
    runs two rows a batch here, so batches and their ends are crossed); an index
    build that failed before (it leaves an INVALID index of that name) does not stop
    the migration when it runs again; captures are immutable again afterwards."""
    monkeypatch.setattr(backfill, "BATCH", 2)
    orders = [make_order(channel=ChannelFactory(), items=3) for _ in range(3)]
    for order in orders:
        client = client_for(make_api_user(channels=[order.channel]))
        assert capture(client, order, [order.items.first().pk]).status_code == 200
    try:
        migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM information_schema.columns "
                           "WHERE column_name = 'channel_id' "
                           "AND table_name IN ('orders_orderitem', 'capture_capture')")  # fmt: skip
            assert cursor.fetchone() == (0,)
            with pytest.raises(DatabaseError):  # three items per order: not unique
                cursor.execute("CREATE UNIQUE INDEX CONCURRENTLY item_channel_idx "
                               "ON orders_orderitem (order_id)")  # fmt: skip
            assert index_validity("item_channel_idx") == [False]
    finally:
        migrate()
    assert index_validity("item_channel_idx") == [True]
    assert index_validity("capture_channel_created_idx") == [True]
    for order in orders:
        channels = OrderItem.objects.filter(order=order).values_list("channel_id", flat=True)
        assert set(channels) == {order.channel_id}
        assert stored_channel(Capture, Capture.objects.get(order=order).pk) == order.channel_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, is_nullable FROM information_schema.columns "
                       "WHERE column_name = 'channel_id' "
                       "AND table_name IN ('orders_orderitem', 'capture_capture')")  # fmt: skip
        assert sorted(cursor.fetchall()) == [("capture_capture", "NO"), ("orders_orderitem", "NO")]
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Capture.objects.update(request_id="changed")


@pytest.mark.django_db(transaction=True)
def test_setting_not_null_behind_a_long_reader_lets_writes_through_meanwhile():
    """A report or a backup reading the table held the ALTER's exclusive lock back; the
    ALTER waited 10 s, and every capture queued behind it for those seconds gave up at
    its own 3 s lock_timeout (409 order_locked). It waits 1 s at a time now (a third
    of the app's lock_timeout, at most 1 s)."""
    params = connection.get_connection_params()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch_backfill (id int PRIMARY KEY, c int)")
        cursor.execute("INSERT INTO scratch_backfill SELECT g, g FROM generate_series(1, 10) g")
    writes = []

    def write_meanwhile():
        with psycopg.connect(**params, autocommit=True) as writer:
            while not writer.execute(  # until the ALTER waits for the reader's lock
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'ALTER TABLE scratch_backfill%%'"
            ).fetchone()[0]:
                time.sleep(0.02)
            writer.execute("SET lock_timeout = '3s'")  # the app's DB_LOCK_TIMEOUT_MS
            writer.execute("INSERT INTO scratch_backfill VALUES (11, 11)")
            writes.append(time.monotonic() - started)

    try:
        with psycopg.connect(**params) as reader:
            reader.execute("SELECT count(*) FROM scratch_backfill")  # holds its lock
            started = time.monotonic()
            writer = threading.Thread(target=write_meanwhile)
            writer.start()
            threading.Timer(4, reader.commit).start()
            backfill.set_not_null(connection, table="scratch_backfill", column="c")
            writer.join()
        assert len(writes) == 1  # the write went through, within its own lock_timeout
        assert writes[0] < 3
        with connection.cursor() as cursor:
            cursor.execute("SELECT is_nullable FROM information_schema.columns "
                           "WHERE table_name = 'scratch_backfill' AND column_name = 'c'")  # fmt: skip
            assert cursor.fetchone() == ("NO",)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS scratch_backfill")


@pytest.mark.parametrize(
    ("lock_timeout", "deadlock_timeout", "wait"),
    [
        ("3s", "1s", 1100),  # the defaults: a try outlasts deadlock_timeout
        ("9s", "200ms", 1000),  # at most LOCK_WAIT_MS once that is longer
        ("600ms", "1s", 500),  # never as long as the captures' own lock_timeout
        ("0", "1s", 1100),  # no lock_timeout in the app
    ],
)
def test_a_try_for_an_exclusive_lock_outlasts_deadlock_timeout(
    db, lock_timeout, deadlock_timeout, wait
):
    """PostgreSQL cancels an autovacuum that holds a table only once a lock request has
    waited deadlock_timeout (1 s by default), and each try waited exactly 1 s: an
    autovacuum the fill's 3 million updates set off held out through 15 tries, each
    holding every capture queued behind it for that second (an outside test, upgrading a
    database of a million orders under captures)."""
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute(f"SET lock_timeout = '{lock_timeout}'")
        cursor.execute(f"SET deadlock_timeout = '{deadlock_timeout}'")
    assert backfill.lock_wait_ms(connection) == wait
