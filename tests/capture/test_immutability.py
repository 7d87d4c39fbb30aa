"""Once captured, an item's order, SKU, price, currency, status and capture time are the
capture's: the admin shows them but saves no change to them, superusers included;
the capture records never change; the database refuses either whatever asks; and
`check_captures` proves the audit adds up."""

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from capture.integrity import GUARD_DIGEST, GUARD_TRIGGERS
from capture.models import Capture, CaptureItem
from capture.sql import CAPTURE_ITEMS, CAPTURES, ITEMS
from events.models import Event
from orders.models import OrderItem
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import capture
from tests.orders.admin_pages import change_form


@pytest.fixture
def superuser(db):
    return make_api_user(is_superuser=True, is_staff=True)


@pytest.fixture
def captured(api_client, order):
    item = order.items.order_by("pk").first()
    assert capture(api_client, order, [item.pk]).status_code == 200
    item.refresh_from_db()
    return item


def audit_problems() -> str:
    """What check_captures names, once it has refused the audit."""
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_captures", stdout=StringIO(), stderr=err)
    return err.getvalue()


def write_past_the_guards(sql: str, params: list) -> None:
    """What only a bypass of the triggers could do (session_replication_role)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def admin_form_data(client, url):
    """The change form's current values, as the browser would post them back."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else getattr(value, "pk", value)
    return data


def test_a_superuser_cannot_move_or_reprice_a_captured_item(client, superuser, captured):
    other_order = make_order(channel=ChannelFactory(), items=0)
    client.force_login(superuser)
    url = f"/admin/orders/orderitem/{captured.pk}/change/"
    data = admin_form_data(client, url)
    data.update(order=other_order.pk, price="0.01", price_currency="usd", status="600",
                product_sku="ANOTHER-PRODUCT", tax_rate="0.18")  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:500]
    after = OrderItem.objects.get(pk=captured.pk)
    assert (after.order_id, after.product_sku, after.price, after.price_currency, after.status,
            after.captured_at) == (
        captured.order_id, captured.product_sku, captured.price, captured.price_currency,
        captured.status, captured.captured_at)  # fmt: skip
    assert after.tax_rate == Decimal("0.18")  # what the capture does not own stays editable


def test_an_uncaptured_item_can_still_be_edited(client, superuser, order):
    item = order.items.order_by("pk").last()
    client.force_login(superuser)
    url = f"/admin/orders/orderitem/{item.pk}/change/"
    data = admin_form_data(client, url)
    data.update(price="12.34", status="500")
    assert client.post(url, data).status_code == 302
    item.refresh_from_db()
    assert (item.price, item.status) == (Decimal("12.34"), "500")


def test_the_database_refuses_to_change_a_captured_item_or_a_capture(captured):
    for change in (
        lambda: OrderItem.objects.filter(pk=captured.pk).update(price=Decimal("1.00")),
        lambda: OrderItem.objects.filter(pk=captured.pk).update(captured_at=None),
        # The export and the audit name the item by its SKU (the event sent had it).
        lambda: OrderItem.objects.filter(pk=captured.pk).update(product_sku="ANOTHER"),
        lambda: Capture.objects.update(amount=Decimal("1.00")),
        lambda: CaptureItem.objects.all().delete(),
    ):
        with pytest.raises(DatabaseError, match="captured|immutable"), transaction.atomic():
            change()
    OrderItem.objects.filter(pk=captured.pk).update(tax_rate=Decimal("0.08"))  # not the audit's


def test_check_captures_passes_when_the_audit_adds_up_and_names_what_does_not(captured):
    out = StringIO()
    call_command("check_captures", stdout=out)
    assert "Every capture adds up." in out.getvalue()

    record = Capture.objects.get()
    write_past_the_guards(
        "UPDATE capture_capture SET amount = amount + 1 WHERE id = %s", [record.pk]
    )
    err = audit_problems()
    assert f"capture amount is not the sum of its items' prices: {record.pk}" in err


@pytest.mark.parametrize(
    ("sql", "line"),
    [(f"UPDATE {CAPTURES} SET amount = amount - 0.01",  # less than its items'
      "capture amount is not the sum of its items' prices: {capture}"),
     (f"DELETE FROM {CAPTURE_ITEMS}",  # a capture of no items
      "capture amount is not the sum of its items' prices: {capture}"),
     (f"UPDATE {CAPTURE_ITEMS} SET price = price + 1",  # the currency is the item's
      "capture item's price or currency is not its order item's: {capture_item}"),
     (f"UPDATE {ITEMS} SET captured_at = NULL",  # its capture item stays
      "captured item without a capture item, or the other way round: {item}")],
)  # fmt: skip
def test_check_captures_names_an_amount_or_a_price_that_does_not_add_up(captured, sql, line):
    ids = {
        "capture": Capture.objects.get().pk,
        "capture_item": CaptureItem.objects.get().pk,
        "item": captured.pk,
    }
    write_past_the_guards(sql, [])
    assert line.format(**ids) in audit_problems()


def test_check_captures_names_an_item_of_negative_price(db):
    """Releases before orders/0009 imported a price of -5.00, and the upgrade kept it:
    operations.md says a price is never negative, and nothing found those."""
    order = make_order(items=3)
    item, cent, _ = order.items.order_by("pk")
    OrderItem.objects.filter(pk=item.pk).update(price=Decimal("-5.00"))
    OrderItem.objects.filter(pk=cent.pk).update(price=Decimal("-0.01"))
    err = audit_problems()
    assert (
        "order item with a negative price (a capture refuses it: correct its price): "
        f"{item.pk}, {cent.pk}\n" in err
    )


def test_check_captures_names_a_capture_whose_event_is_missing(captured):
    """Without its event a capture reaches neither a webhook nor the feed: the payment
    service and the ERP never hear of it."""
    record = Capture.objects.get()
    Event.objects.filter(object_id=record.pk).delete()
    err = audit_problems()
    assert (
        f"capture without exactly one order.captured event (no webhook, not in the feed): {record.pk}"
        in err
    )


def test_check_captures_names_events_ahead_of_the_databases_transaction_ids(captured):
    """What a restore from a dump leaves: the transaction ids start again below the
    events', and the feed serves nothing new until the ids pass them."""
    event = Event.objects.get()
    Event.objects.filter(pk=event.pk).update(txid=2**40)
    err = audit_problems()
    assert f"the event feed serves nothing after it: {event.pk}" in err


def test_a_user_who_has_captured_keeps_their_username(captured, client, superuser):
    """The captures API and the export name who captured by username: renamed, a user's
    captures showed the new name, and the old one could go to someone else."""
    capturer = Capture.objects.get().user
    with pytest.raises(DatabaseError, match="has captured"), transaction.atomic():
        User.objects.filter(pk=capturer.pk).update(username="someone-else")
    User.objects.filter(pk=capturer.pk).update(email="new@example.com")  # the rest is free
    never_captured = make_api_user()
    User.objects.filter(pk=never_captured.pk).update(username="renamed-freely")

    client.force_login(superuser)
    url = f"/admin/auth/user/{capturer.pk}/change/"
    data = admin_form_data(client, url)
    data.update(username="someone-else", date_joined_0="2026-01-01", date_joined_1="00:00:00")
    response = client.post(url, data)
    assert response.status_code == 200
    assert "the capture audit names them by this username" in response.content.decode()
    assert User.objects.get(pk=capturer.pk).username == capturer.username


def test_check_captures_names_an_event_of_another_channel_and_a_currency_changed(captured):
    """The feed and the webhooks go by the event's channel: moved, another channel's
    user read the capture, and the check still said every capture adds up."""
    event, record = Event.objects.get(), Capture.objects.get()
    Event.objects.filter(pk=event.pk).update(channel=ChannelFactory())
    with connection.cursor() as cursor:  # what only a bypass of the checks could do
        cursor.execute("UPDATE orders_order SET currency = 'usd' WHERE id = %s",
                       [record.order_id])  # fmt: skip
    err = audit_problems()
    assert f"order.captured event whose channel is not its capture's: {event.pk}" in err
    assert f"capture's currency is not its order's: {record.pk}\n" in err


# The project's triggers that guard no capture record: each with its table and digest.
NOT_GUARDS = {
    # events/0007: a delivery written failed gets the time (the failed alert reads it).
    "delivery_failed_at": ("events_webhookdelivery", "02a51fa472bf9442c125ab7e11df7854"),
}


def test_the_guard_triggers_are_every_trigger_of_the_project_as_migrations_make_them(db):
    """check_captures knows every trigger of the project's tables that guards the
    audit, and what each does (GUARD_TRIGGERS' digests) as a freshly migrated database
    has it, and this test every other: a migration that adds or changes one must say
    so there, or here."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.tgname, t.tgrelid::regclass::text, {GUARD_DIGEST}"
            " FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND t.tgrelid::regclass::text NOT LIKE 'procrastinate%%'"
        )
        found = {name: (table, digest) for name, table, digest in cursor.fetchall()}
    assert found == GUARD_TRIGGERS | NOT_GUARDS


def test_check_captures_names_a_guard_trigger_dropped_disabled_or_changed(captured):
    """The triggers are what keep a captured record as it was against a shell or a
    script: one lost (dropped by hand, a restore without it), disabled, or changed to
    let changes through, the database takes changes the audit would not see until
    they were made."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the capture's checks, before DDL
        cursor.execute("DROP TRIGGER captured_item_fixed ON orders_orderitem")
        cursor.execute("ALTER TABLE capture_capture DISABLE TRIGGER capture_immutable")
        # Its function made to let every change through, and another made to fire after.
        cursor.execute(
            "CREATE OR REPLACE FUNCTION capture_keep_capturer_username()"
            " RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        )
        cursor.execute("DROP TRIGGER captured_item_sku_fixed ON orders_orderitem")
        cursor.execute("CREATE TRIGGER captured_item_sku_fixed AFTER INSERT ON orders_orderitem"
                       " FOR EACH ROW EXECUTE FUNCTION capture_keep_captured_sku()")  # fmt: skip
        # Made to fire never, or on another column's updates only.
        cursor.execute("DROP TRIGGER item_channel ON orders_orderitem")
        cursor.execute("CREATE TRIGGER item_channel BEFORE INSERT OR UPDATE OF order_id, "
                       "channel_id ON orders_orderitem FOR EACH ROW WHEN (false) "
                       "EXECUTE FUNCTION orders_item_channel()")  # fmt: skip
        cursor.execute("DROP TRIGGER capture_item_immutable ON capture_captureitem")
        cursor.execute("CREATE TRIGGER capture_item_immutable BEFORE UPDATE OF price OR DELETE "
                       "ON capture_captureitem FOR EACH ROW "
                       "EXECUTE FUNCTION capture_refuse_change()")  # fmt: skip
        # Another trigger that rewrites what a guard let by; and no trigger firing at all
        # in the database's sessions.
        cursor.execute("CREATE TRIGGER zz_rewrite BEFORE UPDATE ON orders_orderitem FOR EACH "
                       "ROW EXECUTE FUNCTION capture_keep_captured_sku()")  # fmt: skip
        cursor.execute("CREATE TRIGGER capture_immutable BEFORE UPDATE ON orders_orderitem "
                       "FOR EACH ROW EXECUTE FUNCTION capture_keep_captured_sku()")  # fmt: skip
        # New captures sent by a rule to a table no guard watches.
        cursor.execute("CREATE TABLE capture_elsewhere () INHERITS (capture_capture)")
        cursor.execute("CREATE RULE to_elsewhere AS ON INSERT TO capture_capture DO INSTEAD "
                       "INSERT INTO capture_elsewhere VALUES (NEW.*)")  # fmt: skip
        # A guard that reads a table made to read one a session's search_path finds.
        cursor.execute("ALTER FUNCTION capture_channel() RESET search_path")
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
        cursor.execute(f'ALTER DATABASE "{database}" SET session_replication_role = replica')
        # `local` fires ordinary triggers, as `origin` does: nothing to report.
        cursor.execute("ALTER ROLE CURRENT_USER SET session_replication_role = local")
    err = audit_problems()
    lines = err.splitlines()
    assert (
        "trigger that keeps captured records as they were is missing, disabled or changed "
        "(the database would take changes to them): capture_channel, capture_immutable, "
        "capture_item_immutable, captured_item_fixed, captured_item_sku_fixed, "
        "capturer_username_fixed, item_channel"
    ) in lines
    assert ("trigger, rule or inheriting table on a guarded table that the migrations did not "
            "make (it may change what the guards keep): capture_elsewhere, capture_immutable, "
            "to_elsewhere, zz_rewrite") in lines  # fmt: skip
    assert ("session_replication_role set to replica for this database, a role or the server "
            f"(no guard fires in their sessions): every role on {database}") in lines  # fmt: skip


def test_check_captures_is_not_cut_by_the_requests_statement_timeout(captured):
    """Each check reads whole tables: at some millions of items one took longer than
    a request may (DB_STATEMENT_TIMEOUT_MS), here made a millisecond."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 1")
    out = StringIO()
    call_command("check_captures", stdout=out)
    assert "Every capture adds up." in out.getvalue()


def test_check_captures_names_a_guard_moved_to_another_table(captured):
    """capture_immutable made on the capture items, as capture_item_immutable is: the
    captures themselves are unguarded."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the capture's checks, before DDL
        cursor.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger"
                       " WHERE tgname = 'capture_immutable'")  # fmt: skip
        (definition,) = cursor.fetchone()
        cursor.execute("DROP TRIGGER capture_immutable ON capture_capture")
        cursor.execute(re.sub(r" ON \S+ ", " ON capture_captureitem ", definition))
    assert (
        "trigger that keeps captured records as they were is missing, disabled or changed "
        "(the database would take changes to them): capture_immutable"
    ) in audit_problems().splitlines()


def test_check_captures_names_a_role_set_to_replica_in_every_database(captured):
    with connection.cursor() as cursor:  # kept as written: PostgreSQL takes any case
        cursor.execute("ALTER ROLE CURRENT_USER SET session_replication_role = 'REPLICA'")
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
    assert ("session_replication_role set to replica for this database, a role or the server "
            f"(no guard fires in their sessions): {role} on every database"
            ) in audit_problems().splitlines()  # fmt: skip


def test_a_guard_reads_its_own_schema_whatever_a_sessions_search_path(captured):
    """A session that put a table named as the guard's ahead of the real one (its own
    schema first in its search_path) renamed a capturer past the guard."""
    capturer = Capture.objects.get().user
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("CREATE SCHEMA elsewhere")
        cursor.execute("CREATE TABLE elsewhere.capture_capture (user_id int)")
        cursor.execute("SET LOCAL search_path = elsewhere, public")
        with pytest.raises(DatabaseError, match="has captured"), transaction.atomic():
            cursor.execute("UPDATE public.auth_user SET username = 'someone-else' WHERE id = %s",
                           [capturer.pk])  # fmt: skip
        cursor.execute("SET LOCAL search_path = DEFAULT")


def test_check_captures_says_when_it_names_only_some(captured):
    extra = make_order(channel=captured.channel, items=25)
    with connection.cursor() as cursor:  # captured with no capture item
        cursor.execute("UPDATE orders_orderitem SET captured_at = now() WHERE order_id = %s",
                       [extra.pk])  # fmt: skip
    err = audit_problems()
    (line,) = [line for line in err.splitlines() if "without a capture item" in line]
    assert line.endswith(", and more")
    named = line.split(": ", 1)[1].removesuffix(", and more").split(", ")
    lowest = sorted(extra.items.values_list("pk", flat=True))[:20]
    assert named == [str(pk) for pk in lowest]  # the same rows every run


def test_a_capturer_stored_under_a_non_nfkc_name_can_still_be_deactivated(client, superuser):
    """The admin's form reads a username as NFKC: a capturer stored as "ｆｕｌｌ" came
    back "full", taken for a rename, so no change to them saved, deactivation included."""
    capturer = make_api_user()
    User.objects.filter(pk=capturer.pk).update(username="ｆｕｌｌ")
    make_api_user(username="full")  # the NFKC spelling, another user
    order = make_order(channel=ChannelFactory(), items=1)
    capturer.channel_memberships.create(channel=order.channel)
    from capture.services import ItemInput, order_capture

    order_capture(user=User.objects.get(pk=capturer.pk), order_number=order.number,
                  items=[ItemInput(order.items.get().pk)])  # fmt: skip
    client.force_login(superuser)
    url = f"/admin/auth/user/{capturer.pk}/change/"
    data = {key: value for key, value in change_form(client, url).items() if key != "is_active"}
    response = client.post(url, data)  # the box unticked: deactivated
    assert response.status_code == 302, response.content.decode()[-2000:]
    after = User.objects.get(pk=capturer.pk)
    assert (after.username, after.is_active) == ("ｆｕｌｌ", False)


def test_the_admin_freezes_what_the_database_freezes_and_the_status(db):
    """CAPTURED_ITEM_FROZEN (the admin's list) is the columns the database's triggers
    fix once an item is captured, and the status, which only the admin fixes."""
    from orders.admin_forms import CAPTURED_ITEM_FROZEN

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT a.attname FROM pg_trigger t
                 JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY(t.tgattr)
                WHERE t.tgrelid = 'orders_orderitem'::regclass
                  AND t.tgname IN ('captured_item_fixed', 'captured_item_sku_fixed')"""
        )
        fixed_by_triggers = {name for (name,) in cursor.fetchall()}
    columns = {OrderItem._meta.get_field(name).column for name in CAPTURED_ITEM_FROZEN}
    assert fixed_by_triggers == columns - {"status"}


def test_check_captures_names_a_capture_with_two_events(captured):
    """Two events for one capture are two webhooks and two feed entries with different
    webhook-ids: a payment service or ERP applies the capture twice."""
    record, event = Capture.objects.get(), Event.objects.get()
    Event.objects.create(id="evt_" + "f" * 32, type=event.type, created_at=event.created_at,
                         channel_id=event.channel_id, object_id=event.object_id,
                         snapshot=event.snapshot, txid=event.txid, seq=event.seq + 1000)  # fmt: skip
    err = audit_problems()
    assert (
        f"capture without exactly one order.captured event (no webhook, not in the feed): {record.pk}"
        in err
    )


def test_check_captures_names_a_capture_item_of_another_currency_than_its_item(captured):
    """A capture charged in its currency: an item whose currency was changed past the
    guards no longer matches what was charged for it."""
    capture_item = CaptureItem.objects.get()
    write_past_the_guards(
        "UPDATE orders_orderitem SET price_currency = 'usd' WHERE id = %s", [captured.pk]
    )
    err = audit_problems()
    assert f"capture item's price or currency is not its order item's: {capture_item.pk}\n" in err


def test_check_captures_names_a_capture_item_of_another_orders_item(captured):
    """A capture item that points at an item of another order, of the same channel: the
    audit would charge one order for another's item."""
    capture_item = CaptureItem.objects.get()
    elsewhere = make_order(channel=captured.channel, items=1).items.get()
    write_past_the_guards(
        "UPDATE capture_captureitem SET order_item_id = %s WHERE id = %s",
        [elsewhere.pk, capture_item.pk],
    )
    err = audit_problems()
    assert f"capture item belongs to another order than its capture: {capture_item.pk}\n" in err


def test_check_captures_names_an_event_of_no_capture(captured):
    """An order.captured event whose capture is not there tells the payment service and
    the ERP of a capture the audit does not hold."""
    event = Event.objects.get()
    Event.objects.filter(pk=event.pk).update(object_id=event.object_id + 10**6)
    err = audit_problems()
    assert f"order.captured event of no capture: {event.pk}\n" in err


def test_the_database_refuses_to_move_a_captured_item_or_change_its_currency(captured):
    """docs/reliability.md: PostgreSQL refuses any change to a captured item's order and
    currency too, whoever asks (the audit adds a capture up from its items' order and
    currency); a capture item is never updated either."""
    elsewhere = make_order(channel=captured.order.channel, items=1)
    for change in (
        lambda: OrderItem.objects.filter(pk=captured.pk).update(order=elsewhere),
        lambda: OrderItem.objects.filter(pk=captured.pk).update(price_currency="usd"),
        lambda: CaptureItem.objects.update(price=Decimal("1.00")),
    ):
        with pytest.raises(DatabaseError, match="captured|immutable"), transaction.atomic():
            change()
    call_command("check_captures", stdout=StringIO())  # and the audit still adds up
