"""The admin's lists: constant queries however many rows, counts that stop at a cap,
search, sorts and filters on indexes, autocompletes, and actions on a selection;
anything a list does not offer is a 400 or nothing, never a query or a 500."""

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import Capture
from orders.models import Channel, Customer, Order, OrderItem
from tests.factories import (
    ChannelFactory,
    make_api_user,
    make_order,
)
from tests.helpers import capture
from tests.orders.admin_pages import change_form, changelist_queries, staff_with


def test_orders_list_query_count_does_not_grow_with_rows(client, operator, channel):
    client.force_login(operator)
    make_order(channel=channel, items=2)
    few, _ = changelist_queries(client)
    for _ in range(15):
        make_order(channel=channel, items=3)
    many, response = changelist_queries(client)
    assert many == few
    assert response.content.count(b"/ 3") == 15  # captured column: 0 / 3


def test_search_finds_a_whole_number_or_customer_email_on_indexes(client, channel):
    admin = make_api_user(is_superuser=True, is_staff=True)
    a = make_order(channel=channel, number="FIND-ME", items=1)
    make_order(channel=channel, number="OTHER", items=1)
    client.force_login(admin)
    with CaptureQueriesContext(connection) as queries:
        by_number = client.get("/admin/orders/order/?q=FIND-ME").content.decode()
    assert "FIND-ME" in by_number
    assert "OTHER" not in by_number
    # Whole values only: a substring search reads every order of a large table.
    assert not any("LIKE" in query["sql"] for query in queries.captured_queries)
    assert "FIND-ME" not in client.get("/admin/orders/order/?q=FIND").content.decode()
    by_email = client.get(f"/admin/orders/order/?q={a.customer.email}").content.decode()
    assert "FIND-ME" in by_email
    assert "OTHER" not in by_email


def test_a_large_list_searches_a_term_of_many_words_whole(client, channel):
    """The word limit guards Django's word-by-word substring search; an exact search
    compares the whole term once. Splitting the admin's modules had the limit apply to
    the large lists too: an order number of eleven words found nothing."""
    number = " ".join(f"w{n}" for n in range(11))
    make_order(channel=channel, number=number, items=1)
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    page = client.get("/admin/orders/order/", {"q": number}).content.decode()
    assert "1 result" in page
    assert number in page


def test_captured_column_counts_each_orders_items(client, channel):
    admin = make_api_user(is_superuser=True, is_staff=True)
    order = make_order(channel=channel, number="PART-CAPTURED", items=3)
    order.items.filter(pk__in=[item.pk for item in order.items.all()[:2]]).update(
        captured_at=timezone.now()
    )
    make_order(channel=channel, number="NOT-CAPTURED", items=1)
    client.force_login(admin)
    rows = client.get("/admin/orders/order/").content.decode().split("<tr")
    assert "2 / 3" in next(row for row in rows if "PART-CAPTURED" in row)
    assert "0 / 1" in next(row for row in rows if "NOT-CAPTURED" in row)


@pytest.mark.parametrize(
    "url", ["/admin/orders/order/", "/admin/orders/orderitem/", "/admin/capture/capture/"]
)
def test_lists_count_up_to_a_cap_and_say_so(client, channel, monkeypatch, url):
    monkeypatch.setattr("omnitron.admin.large_tables.COUNT_CAP", 3)
    admin = make_api_user(is_superuser=True, is_staff=True)
    client.force_login(admin)
    order = make_order(channel=channel, items=2)
    Capture.objects.create(order=order, user=admin, created_at=order.date_placed,
                           amount=0, currency="try")  # fmt: skip
    under_cap = client.get(url).content.decode()
    assert "3+ " not in under_cap  # "3+" alone is in a date filter's link on the 30th

    for _ in range(3):
        order = make_order(channel=channel, items=2)
        Capture.objects.create(order=order, user=admin, created_at=order.date_placed,
                               amount=0, currency="try")  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url).content.decode()
    assert "3+ " in page  # "3+ orders": at least four, not counted further
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"]]
    assert counts
    assert all("LIMIT 4" in sql for sql in counts)


@pytest.mark.parametrize(
    ("path", "sort"),
    [("orders/order", "o=5"), ("orders/order", "o=-1.2"), ("orders/orderitem", "o=5"),
     ("orders/order", "o=²"), ("orders/order", "o=" + "9" * 5000),
     ("capture/capture", "o=3"), ("events/event", "o=2")],
)  # fmt: skip
def test_a_large_list_sorts_by_no_column(client, channel, path, sort):
    """A sort by a column without an index read and sorted the whole table: 1.9 s at
    664,000 items, and ten at once kept every worker busy."""
    from capture.services import ItemInput, order_capture

    user = make_api_user(is_superuser=True, is_staff=True)
    for _ in range(2):  # two rows in every list: a capture and its event too
        order = make_order(channel=channel, items=2)
        order_capture(user=user, order_number=order.number,
                      items=[ItemInput(order.items.first().pk, None)])  # fmt: skip
    client.force_login(user)
    table = path.replace("/", "_")

    def page_order_by(url):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        [page] = [q["sql"] for q in queries.captured_queries
                  if f'FROM "{table}"' in q["sql"] and "ORDER BY" in q["sql"]]  # fmt: skip
        return page.split("ORDER BY")[1], response

    sorted_by, response = page_order_by(f"/admin/{path}/?{sort}")
    # The list's own order, on its index (Django dropped it for the pk's: an outside
    # test saw `?o=5` turn the orders, newest placed first, into newest created first).
    assert sorted_by == page_order_by(f"/admin/{path}/")[0]
    assert "sortable" not in response.content.decode().split("<thead>")[1].split("</thead>")[0]


@pytest.mark.parametrize(
    "query",
    [
        "number__regex=(((.?){1,11}){1,11}){1,11}x", "number__regex=(", "status__exact=%00",
        "number=%00", "number__contains=a", "date_placed__year=99999",
        "date_placed__year=0", "date_placed__month=13", "date_placed__iso_year=0", "amount__gt=1e999999", "currency__exact=" + "x" * 300,
    ],
)  # fmt: skip
def test_a_lookup_the_list_does_not_offer_is_a_400_not_a_query(client, channel, query):
    """Django takes any lookup on a local field from the query string: a regex ran
    until the statement timeout, a NUL or a year out of range failed in the database."""
    make_order(channel=channel, items=1)
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/orders/order/?{query}")
    assert response.status_code == 400
    assert not [q for q in queries.captured_queries if "orders_order" in q["sql"]]
    # The page says what went wrong: it was Django's bare "Bad Request (400)".
    assert "a filter or a lookup the list does\nnot offer" in response.content.decode()


@pytest.mark.parametrize(
    ("path", "query", "table"),
    [
        ("orders/channel", "name=%00", "orders_channel"),
        ("orders/customer", "email__regex=(", "orders_customer"),
        ("orders/channelmembership", "user__username=%00", "orders_channelmembership"),
        ("auth/user", "username=%00", "auth_user"),
        ("auth/user", "is_staff__exact=" + "1" * 300, "auth_user"),
        ("auth/group", "name__regex=(", "auth_group"),
        ("authtoken/tokenproxy", "key=%00", "authtoken_token"),
        ("events/webhooksubscription", "url=%00", "events_webhooksubscription"),
        ("procrastinate/procrastinatejob", "task_name__regex=(", "procrastinate_jobs"),
    ],
)  # fmt: skip
def test_every_admin_list_takes_only_its_own_filters(client, channel, path, query, table):
    """The small lists and other apps' (auth, authtoken, procrastinate) too: a NUL or a
    bad regex failed in the database (500)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/{path}/?{query}")
    assert response.status_code == 400
    listed = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]
    assert not [sql for sql in listed if '"auth_user"."id" = ' not in sql]  # the session's


@pytest.mark.parametrize(
    "url",
    ["/admin/orders/order/?status__exact=400&currency__exact=try&channel__id__exact=1",
     "/admin/orders/channelmembership/?channel__id__exact=1",
     "/admin/auth/user/?is_staff__exact=1&groups__id__exact=1",
     "/admin/procrastinate/procrastinatejob/?status__exact=todo",
     "/admin/orders/order/?date_placed__gte=2020-01-01&date_placed__lt=2030-01-01",
     "/admin/orders/order/?date_placed__year=2026&date_placed__month=11&date_placed__day=29",
     "/admin/orders/orderitem/?status__exact=400&captured_at__isempty=1",
     "/admin/capture/capture/?created_at__gte=2020-01-01",
     "/admin/events/event/?type=order.captured"],
)  # fmt: skip
def test_the_lists_own_filters_still_filter(client, channel, url):
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("path", "action"),
    [("capture/capture", "export_csv"), ("auth/group", "delete_selected"),
     ("auth/user", "delete_selected"), ("orders/channel", "delete_selected"),
     ("orders/channelmembership", "delete_selected")],
)  # fmt: skip
@pytest.mark.parametrize("selected", [["abc", "1e5"], ["1.5"], ["99999999999999999999"], ["\x00"]])
def test_an_action_on_a_selection_of_anything_but_pks_changes_nothing(
    client, channel, path, action, selected
):
    """Every list's, not only the large ones': Django compared the values with the pk
    column in the query (ValueError, or an integer psycopg cannot send: 500)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.post(f"/admin/{path}/", {"action": action, "_selected_action": selected})
    assert response.status_code == 302  # back to the list, with the message
    assert ChannelFactory._meta.model.objects.filter(pk=channel.pk).exists()


def test_an_action_on_real_pks_still_runs(client, channel):
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.post("/admin/orders/channel/",
                           {"action": "delete_selected", "_selected_action": [str(channel.pk)]})  # fmt: skip
    assert response.status_code == 200  # Django's "Are you sure?" page
    assert channel.name in response.content.decode()


@pytest.mark.parametrize(
    "url", ["/admin/orders/order/", "/admin/orders/orderitem/", "/admin/capture/capture/",
            "/admin/events/event/", "/admin/events/webhookdelivery/"],
)  # fmt: skip
def test_the_large_lists_count_no_facets(client, order, url):
    """Django's "Show counts" (?_facets=True) counted every row of the table for each
    filter's choices: "approved (10005)", a whole-table count per filter."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    plain = client.get(url)
    assert plain.status_code == 200
    assert "_facets" not in plain.content.decode()  # no link to them
    with CaptureQueriesContext(connection) as queries:
        faceted = client.get(url, {"_facets": "True"})
    assert faceted.status_code == 200
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()
                and "FILTER (WHERE" in q["sql"].upper()]  # fmt: skip


def test_the_channel_autocomplete_answers_a_nul_with_nothing(client, channel):
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.get("/admin/autocomplete/", {"app_label": "orders", "term": "\x00",
                          "model_name": "channelmembership", "field_name": "channel"})  # fmt: skip
    assert (response.status_code, response.json()["results"]) == (200, [])
    found = client.get("/admin/autocomplete/", {"app_label": "orders", "term": channel.name,
                       "model_name": "channelmembership", "field_name": "channel"})  # fmt: skip
    assert [row["id"] for row in found.json()["results"]] == [str(channel.pk)]


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name"),
    [("orders", "orderitem", "order"), ("capture", "capture", "order"),
     ("events", "webhookdelivery", "event")],
)  # fmt: skip
def test_the_large_lists_autocompletes_answer_a_nul_with_nothing(
    client, order, app_label, model_name, field_name
):
    """The orders', captures' and events' admins search their own way (whole values)
    and skipped the check of the term: a NUL failed in the database (500)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    query = {"app_label": app_label, "model_name": model_name, "field_name": field_name}
    response = client.get("/admin/autocomplete/", {**query, "term": "\x00"})
    assert (response.status_code, response.json()["results"]) == (200, [])
    if field_name == "order":
        found = client.get("/admin/autocomplete/", {**query, "term": order.number})
        assert [row["id"] for row in found.json()["results"]] == [str(order.pk)]


# To the admin's index ("does not exist"); events are never deleted.
@pytest.mark.parametrize(
    ("page", "status"), [("change/", 302), ("history/", 302), ("delete/", 403)]
)
def test_an_object_id_with_a_nul_is_not_found(client, channel, page, status):
    """An event's pk is text: a NUL reached PostgreSQL (DataError, 500)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.get(f"/admin/events/event/%00/{page}")
    assert response.status_code == status


@pytest.mark.parametrize("lookup", ["status__exact", "status__gte", "status__lt"])
@pytest.mark.parametrize("status", ["999", "abc", "TODO", ""])
def test_a_filter_takes_only_its_fields_choices(client, db, lookup, status):
    """A job's status is a PostgreSQL enum: any other value failed in the database."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.get("/admin/procrastinate/procrastinatejob/", {lookup: status})
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["orders/order", "events/event", "orders/channelmembership"])
@pytest.mark.parametrize("query", ["channel__exact=99999999999999999999",
                                   "channel__lt=-99999999999999999999", "channel__gte=abc"])  # fmt: skip
def test_a_relation_filter_takes_only_values_of_its_key(client, channel, path, query):
    """Beyond 64 bits, psycopg could not send the integer (OverflowError, 500)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    assert client.get(f"/admin/{path}/?{query}").status_code == 400
    assert client.get(f"/admin/{path}/?channel__exact={channel.pk}").status_code == 200


@pytest.mark.parametrize("query", ["created_at__year=%C2%B2", "created_at__day=%D9%A1"])
def test_a_date_part_takes_ascii_digits_only(client, channel, query):
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    assert client.get(f"/admin/capture/capture/?{query}").status_code == 400


def test_a_date_hierarchy_takes_its_date_parts_as_django_does(rf):
    """No list here has one today; another app's admin may."""
    from django.contrib import admin

    from omnitron.admin.checked_input import CheckedInputMixin

    class DatedCaptures(CheckedInputMixin, admin.ModelAdmin):
        date_hierarchy = "created_at"

    captures = DatedCaptures(Capture, admin.site)
    request = rf.get("/")
    assert captures.lookup_allowed("created_at__year", "2026", request)
    assert captures.lookup_allowed("created_at__month", "11", request)
    assert not captures.lookup_allowed("created_at__month", "13", request)
    assert not captures.lookup_allowed("created_at__gte", "2026-01-01", request)
    assert not captures.lookup_allowed("amount__gt", "1", request)


def test_the_autocomplete_refuses_a_reverse_relation(client, channel):
    """`field_name=items` of an order names the items' relation to it: Django failed on
    it (500) for staff with a view permission."""
    client.force_login(staff_with(channel, "view_order", "view_orderitem"))
    for model, field in (("order", "items"), ("order", "captures"), ("customer", "orders")):
        response = client.get("/admin/autocomplete/", {
            "app_label": "orders", "model_name": model, "field_name": field, "term": ""})  # fmt: skip
        assert response.status_code == 403, field
    response = client.get("/admin/autocomplete/", {
        "app_label": "orders", "model_name": "orderitem", "field_name": "order", "term": ""})  # fmt: skip
    assert response.status_code == 200


def test_a_customer_is_searched_by_whole_email_and_keeps_its_id(client, channel):
    """Customers grow with the orders: 200 words of substring search over a million of
    them ran past every timeout. And a changed id saved a second customer."""
    order = make_order(channel=channel, items=1)
    customer = order.customer
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    found = client.get("/admin/orders/customer/", {"q": customer.email}).content.decode()
    assert f"/admin/orders/customer/{customer.pk}/change/" in found
    partial = client.get("/admin/orders/customer/", {"q": customer.email[:5]}).content.decode()
    assert f"/admin/orders/customer/{customer.pk}/change/" not in partial
    url = f"/admin/orders/customer/{customer.pk}/change/"
    data = change_form(client, url)
    response = client.post(url, {**data, "id": customer.pk + 1000, "first_name": "Ada"})
    assert response.status_code == 302
    assert list(Customer.objects.values_list("pk", "first_name")) == [(customer.pk, "Ada")]
    url = f"/admin/orders/channel/{channel.pk}/change/"
    response = client.post(url, {**change_form(client, url), "id": channel.pk + 1000})
    assert response.status_code == 302
    assert list(Channel.objects.values_list("pk", flat=True)) == [channel.pk]


def test_a_search_of_many_words_finds_nothing_and_reads_nothing(client, channel):
    staff = staff_with(channel, "view_user")
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    few = client.get("/admin/auth/user/", {"q": staff.username}).content.decode()
    assert f"/admin/auth/user/{staff.pk}/change/" in few
    ten = client.get("/admin/auth/user/", {"q": " ".join([staff.username] * 10)})
    assert f"/admin/auth/user/{staff.pk}/change/" in ten.content.decode()
    with CaptureQueriesContext(connection) as queries:
        many = client.get("/admin/auth/user/", {"q": " ".join([staff.username] * 11)})
    assert f"/admin/auth/user/{staff.pk}/change/" not in many.content.decode()
    assert not any("LIKE" in query["sql"] for query in queries.captured_queries)


@pytest.mark.parametrize("model", ["order", "orderitem", "customer"])
def test_a_large_list_has_no_delete_of_everything_selected(client, channel, model):
    """Delete selected with "select all" read every row into one worker: 300,000 orders
    took 15 s and a 503, a million customers killed the worker."""
    order = make_order(channel=channel, items=1)
    lonely = Customer.objects.create(id=999_001, email="no-orders@example.com")  # deletable
    row = {"order": order, "orderitem": order.items.get(), "customer": lonely}[model]
    counts = {"orders": Order, "orderitems": OrderItem, "customers": Customer}
    before = {name: model.objects.count() for name, model in counts.items()}
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    url = f"/admin/orders/{model}/"
    response = client.get(url)
    assert response.status_code == 200
    assert b'value="delete_selected"' not in response.content
    client.post(url, {"action": "delete_selected", "select_across": "1", "index": "0",
                      "_selected_action": str(row.pk), "post": "yes"})  # fmt: skip
    assert {name: model.objects.count() for name, model in counts.items()} == before


def test_a_list_of_exactly_the_cap_is_counted_not_capped(client, channel, monkeypatch):
    """A count says "10,000+" when there are more than 10,000: exactly 10,000 are counted."""
    monkeypatch.setattr("omnitron.admin.large_tables.COUNT_CAP", 3)
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    for _ in range(3):
        make_order(channel=channel, items=0)
    page = client.get("/admin/orders/order/")
    assert page.context["cl"].result_count == 3
    assert "3 orders" in page.content.decode()
    assert "2+ " not in page.content.decode()


def test_search_takes_an_email_as_written_and_a_pasted_term_without_its_spaces(client, channel):
    """docs/operations.md: `EVE@EXAMPLE.COM` does not find `eve@example.com`. A number
    pasted with a space around it is still the whole number."""
    order = make_order(channel=channel, number="PASTED-1", items=1)
    email = order.customer.email
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    upper = client.get("/admin/orders/order/", {"q": email.upper()})
    assert upper.context["cl"].result_count == 0
    for url in ("/admin/orders/order/", "/admin/orders/orderitem/"):
        padded = client.get(url, {"q": " PASTED-1 "})
        assert padded.context["cl"].result_count == 1, url


def test_a_selection_of_a_pk_and_something_else_changes_nothing(client, channel):
    """One value that is not a pk among real ones is refused as a whole: compared with
    the pk column in the query, it failed there (500)."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    response = client.post("/admin/orders/channel/", {
        "action": "delete_selected", "_selected_action": [str(channel.pk), "abc"]})  # fmt: skip
    assert response.status_code == 302
    assert Channel.objects.filter(pk=channel.pk).exists()


def test_a_sort_by_the_column_just_past_the_last_is_ignored(client, channel):
    make_order(channel=channel, number="SORTED-1", items=1)
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    columns = len(admin.site.get_model_admin(Order).list_display)
    for sort in (str(columns), f"-{columns}"):
        response = client.get("/admin/orders/order/", {"o": sort})
        assert response.status_code == 200, sort
        assert "SORTED-1" in response.content.decode()


def test_a_day_of_a_date_filter_reads_that_days_rows(client, channel):
    """A day of the orders' (or captures') date filter, `?date_placed__year=..&__month=..
    &__day=..` (the captures list's day links), was compared part by part: PostgreSQL
    read every row of the year, and of the whole table for a month or a day without
    its year (a day of 100,000 captures: 0.4 s, growing; helper 133). It is the day's
    range on the column's index, as Django reads its date hierarchy's."""
    from datetime import UTC, datetime, timedelta

    from tests.events.test_growth import rows_examined
    from tests.factories import CustomerFactory, OrderFactory

    template = OrderFactory.build(channel=channel, customer=CustomerFactory())
    fields = {f.attname: getattr(template, f.attname) for f in Order._meta.concrete_fields
              if not f.primary_key and f.attname != "date_placed"}  # fmt: skip
    start = datetime(2026, 1, 1, tzinfo=UTC)
    Order.objects.bulk_create(
        Order(**{**fields, "number": f"DAY-{n:05d}", "date_placed": start + timedelta(hours=n)})
        for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    day = "date_placed__year=2026&date_placed__month=3&date_placed__day=15"
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/orders/order/?{day}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 24
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "orders_order"' in q["sql"]]
    assert listed
    assert all(rows_examined(sql, "orders_order") <= 100 for sql in listed)
    # A month without its year, a day without its month, or a day past the calendar's
    # end (9999-12-31's) is no filter of the list (Django's error page), not a 500.
    for parts in ("date_placed__month=3", "date_placed__day=15",
                  "date_placed__year=2026&date_placed__day=15",
                  "date_placed__year=9999&date_placed__month=12&date_placed__day=31"):  # fmt: skip
        assert client.get(f"/admin/orders/order/?{parts}")["Location"].endswith("?e=1")


def test_the_jobs_list_reads_a_page_whatever_the_backlog(client, db, monkeypatch):
    """procrastinate's jobs list (superusers') counted every job, twice, and read every
    job once for each of five filters' distinct values (queue, task, lock, queueing lock,
    priority): 0.77 s a page at 300,000 failed jobs, a receiver's backlog (helper 134).
    It counts up to the cap and its queue and task filters list the registered ones."""
    from procrastinate.contrib.django.models import ProcrastinateJob

    from events.sql import DELIVER_LANE_TASK, WEBHOOK_QUEUE
    from tests.events.test_growth import rows_examined

    monkeypatch.setattr("omnitron.admin.large_tables.COUNT_CAP", 100)
    jobs = ProcrastinateJob._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {jobs} (queue_name, task_name, lock, args, status, attempts)
            SELECT %(queue)s, %(task)s, 'webhook:' || g %% 50 || ':' || g %% 16, '{{}}', 'failed', 1
              FROM generate_series(1, 3000) g""", {"queue": WEBHOOK_QUEUE, "task": DELIVER_LANE_TASK})  # fmt: skip
        cursor.execute(f"ANALYZE {jobs}")
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/procrastinate/procrastinatejob/").content.decode()
    listed = [q["sql"] for q in queries.captured_queries if f'FROM "{jobs}"' in q["sql"]]
    assert listed
    assert max(rows_examined(sql, jobs) for sql in listed) <= 101
    assert "100+ " in page
    assert f"?task_name={DELIVER_LANE_TASK}" in page  # the registered tasks and queues
    assert f"?queue_name={WEBHOOK_QUEUE}" in page
    for query in (f"task_name={DELIVER_LANE_TASK}", f"queue_name={WEBHOOK_QUEUE}"):
        filtered = client.get(f"/admin/procrastinate/procrastinatejob/?{query}")
        assert filtered.status_code == 200
        assert "100+ " in filtered.content.decode()
    none = client.get("/admin/procrastinate/procrastinatejob/?queue_name=maintenance")
    assert none.context["cl"].result_count == 0


# A field's value as a page shows it: a list's column and an inline's cell, or a
# change page's read-only field.
def _shown(page: str, field: str) -> list[str]:
    shown = re.compile(
        rf'field-{field}">\s*(?:<p>)?([^<]*)</'
        rf'|field-{field}">(?:(?!</label>).)*</label>\s*<div class="readonly">([^<]*)<',
        re.S,
    )
    return [(cell or read_only).strip() for cell, read_only in shown.findall(page)]


def _shown_keys(page: str) -> list[str]:
    return _shown(page, "idempotency_key")


def test_a_capture_without_an_idempotency_key_is_told_from_one_with_the_key_dash(
    client, operator, channel, api_client
):
    """A reconciliation compares the key a capture was sent with. The JSON answers
    null for none, the CSV an empty cell; the admin showed Django's "-" for none, which
    is also a key any API client may send (visible ASCII): two captures, one with
    the key "-" and one without, looked the same in the list, on their pages and on
    their order's page."""
    order = make_order(channel=channel, items=2)
    keyed, unkeyed = order.items.order_by("pk")
    assert capture(api_client, order, [keyed.pk], key="-").status_code == 200
    assert capture(api_client, order, [unkeyed.pk]).status_code == 200
    with_dash = Capture.objects.get(idempotency_key="-")
    without = Capture.objects.get(idempotency_key__isnull=True)
    client.force_login(operator)
    listed = _shown_keys(client.get("/admin/capture/capture/").text)
    assert sorted(listed) == sorted(["-", "—"]), listed  # none: an em dash, not ASCII
    for shown_capture, key in ((with_dash, "-"), (without, "—")):
        page = client.get(f"/admin/capture/capture/{shown_capture.pk}/change/").text
        assert _shown_keys(page) == [key], _shown_keys(page)
    inline = _shown_keys(client.get(f"/admin/orders/order/{order.pk}/change/").text)
    assert sorted(inline) == sorted(["-", "—"]), inline


def test_a_captures_currency_is_shown_as_its_orders(client, operator, channel, api_client):
    """The order's pages show `TRY`; its captures' rows, list and page showed the
    stored `try` beside it."""
    order = make_order(channel=channel, items=1, currency="try")
    assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    shown = Capture.objects.get(order=order)
    client.force_login(operator)
    listed = client.get("/admin/capture/capture/").text
    assert _shown(listed, "currency") == ["TRY"]
    page = client.get(f"/admin/capture/capture/{shown.pk}/change/").text
    assert _shown(page, "currency") == ["TRY"]
    order_page = client.get(f"/admin/orders/order/{order.pk}/change/").text
    assert re.findall(r'<td class="field-currency">\s*<p>([^<]*)</p>', order_page) == ["TRY"]


@pytest.mark.parametrize(
    ("path", "query", "table"),
    [("orders/order", "status__exact=550", "orders_order"),
     ("orders/orderitem", "status__exact=550", "orders_orderitem"),
     ("capture/capture", "channel__id__exact={small}", "capture_capture")],
)  # fmt: skip
def test_a_filter_few_rows_match_reads_them_in_the_generic_plan(client, db, path, query, table):
    """The orders' and items' status filters, and the captures' channel filter, for
    three rows beside 2,000 of another status and channel. Bound as parameters, their statements
    got, once prepared (psycopg's fifth run), one generic plan for every value: a walk
    of the list's order, or of the table, testing each row (on 600,000 orders and
    300,000 captures, the superuser's count read every row). A value is written into
    the statement, and planned with its own statistics: the page and its count read
    the three rows."""
    from tests.api.test_read_api import copies, rows_read

    big, small = ChannelFactory(), ChannelFactory()
    placed = timezone.now() - timezone.timedelta(days=30)
    few = [make_order(channel=small, items=1, status="550", date_placed=placed) for _ in range(3)]
    template = make_order(channel=big, items=1, status="400")
    copies(Order, template.pk, 2000, {
        "number": "number || '-' || n", "date_placed": "date_placed + n * interval '1 s'",
    })  # fmt: skip
    copies(OrderItem, template.items.get().pk, 2000, {})
    OrderItem.objects.filter(order__in=few).update(status="550")
    with connection.cursor() as cursor:  # a capture of each order
        cursor.execute(
            "INSERT INTO capture_capture (order_id, user_id, created_at, amount, currency, "
            "request_id) SELECT o.id, %s, o.date_placed, 1, o.currency, '' FROM orders_order o",
            [make_api_user().pk],
        )
        cursor.execute("ANALYZE capture_capture, orders_orderitem")
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    sent = []

    def record(execute, statement, params, many, context):
        sent.append((statement, params))
        return execute(statement, params, many, context)

    with connection.execute_wrapper(record):
        response = client.get(f"/admin/{path}/?{query.format(small=small.pk)}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == len(few)
    listed = [(s, p) for s, p in sent if f'FROM "{table}"' in s]
    assert len(listed) >= 2  # the count and the page
    for statement, params in listed:  # at most a page (the three, maybe once per channel
        # joined), where the generic plan read all 2,003
        assert rows_read(statement, params, table, filtered=True) <= 100
