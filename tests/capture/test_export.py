"""The reconciliation export: captured items as CSV from the capture list (Accept or
?format=csv) and from the admin, scoped and filtered like the JSON list, streamed in
constant memory (measured on a live server exporting 100,000 items)."""

import csv
import io
import itertools
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import Capture
from capture.selectors import captured_item_rows
from orders.models import Order
from tests.api.test_read_api import copies, rows_read
from tests.factories import (
    ChannelFactory,
    CustomerFactory,
    OrderItemFactory,
    make_api_user,
    make_order,
)
from tests.helpers import capture, client_for, throttle_rates
from tests.live import gunicorn

URL = "/api/v1/captures/"
HEADER = [
    "capture_id", "created_at", "order_number", "channel", "order_item_id", "sku", "price",
    "currency", "username", "idempotency_key", "request_id",
]  # fmt: skip


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = re.fullmatch(r'attachment; filename="captures-(\d{8}T\d{6}Z)\.csv"',
                               response["Content-Disposition"])  # fmt: skip
    made = datetime.strptime(disposition[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs(timezone.now() - made) < timedelta(minutes=1)  # named by when it was made
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def exported(client, query="", **headers) -> list[list[str]]:
    """The data rows of the CSV export, after checking its header."""
    header, *rows = csv_rows(client.get(f"{URL}?format=csv&{query}", **headers))
    assert header == HEADER
    return rows


@pytest.fixture
def captured(api_client, order):
    """Two captures of the api user's order (one with a key, one of a 0.10 item) and a
    capture in a channel the user does not have."""
    first, second, _ = order.items.order_by("pk")
    cheap = OrderItemFactory(order=order, price=Decimal("0.10"), product_sku="SKU-CHEAP")
    assert capture(api_client, order, [first.pk, second.pk], key="wms-1").status_code == 200
    assert capture(api_client, order, [cheap.pk]).status_code == 200
    foreign = make_order(channel=ChannelFactory(), number="FOREIGN-1", items=1)
    owner = make_api_user(channels=[foreign.channel])
    assert capture(client_for(owner), foreign, [foreign.items.get().pk]).status_code == 200
    return order, [first, second, cheap]


def test_csv_has_a_row_per_captured_item_with_every_column(api_client, api_user, captured):
    order, (first, second, cheap) = captured
    listed = {c["pk"]: c for c in api_client.get(URL).json()["results"]}
    keyed, unkeyed = sorted(listed.values(), key=lambda c: c["pk"])

    def row(capture_json, item):
        return [
            str(capture_json["pk"]), capture_json["created_at"], order.number,
            str(order.channel_id), str(item.pk), item.product_sku, f"{item.price:.2f}", order.currency,
            api_user.username, capture_json["idempotency_key"] or "", capture_json["request_id"],
        ]  # fmt: skip

    rows = exported(api_client)
    assert rows == [row(keyed, first), row(keyed, second), row(unkeyed, cheap)]
    assert rows[2][6] == "0.10"  # prices as stored, never through a float
    assert rows[0][1].endswith("Z")  # UTC, as the JSON answers write it
    assert rows[0][9] == "wms-1"
    assert rows[0][10]  # the request id of the capture request


@pytest.mark.parametrize("key", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)"])
def test_text_a_spreadsheet_would_run_is_exported_as_text(api_client, order, key):
    """An Idempotency-Key comes from any API client, and the export is opened by the
    back office in a spreadsheet: a formula there is written with an apostrophe first."""
    first = order.items.first()
    assert capture(api_client, order, [first.pk], key=key).status_code == 200
    (row,) = exported(api_client)
    assert row[9] == "'" + key
    assert api_client.get(URL).json()["results"][0]["idempotency_key"] == key  # JSON as is


@pytest.mark.parametrize(
    ("key", "written"),
    [("k;=1+1", "k;'=1+1"), ("x;@SUM(A1);-1", "x;'@SUM(A1);'-1"), ("=a;+b", "'=a;'+b"),
     ("a;b", "a;b"), ("wms;1", "wms;1")],
)  # fmt: skip
def test_a_formula_after_a_semicolon_is_exported_as_text(api_client, order, key, written):
    """A spreadsheet that splits on `;` (Turkish, German or French settings, where `,` is
    the decimal comma) starts a cell after each one: `k;=1+1` ran `=1+1`."""
    assert capture(api_client, order, [order.items.first().pk], key=key).status_code == 200
    (row,) = exported(api_client)
    assert row[9] == written
    assert api_client.get(URL).json()["results"][0]["idempotency_key"] == key  # JSON as is


def test_accept_header_and_format_parameter_give_the_same_csv(api_client, captured):
    by_accept = csv_rows(api_client.get(URL, HTTP_ACCEPT="text/csv"))
    by_format = csv_rows(api_client.get(f"{URL}?format=csv"))
    assert by_accept == by_format
    assert len(by_accept) == 4
    # Anything else is the JSON list, as before.
    for accept in (
        "*/*",
        "application/json",
        "application/json, text/csv",
        "application/json;q=0.1, text/csv",
    ):  # q values aside (DRF's rules)
        response = api_client.get(URL, HTTP_ACCEPT=accept)
        assert response["Content-Type"] == "application/json"
        assert len(response.json()["results"]) == 2


def test_other_channels_never_appear_and_a_superuser_sees_all(api_client, captured):
    order, _ = captured
    assert {row[2] for row in exported(api_client)} == {order.number}
    admin = make_api_user(is_superuser=True)
    assert {row[2] for row in exported(client_for(admin))} == {order.number, "FOREIGN-1"}


def test_one_channels_captures_are_exported_alone(api_client, captured):
    """A merchant account's settlement is one channel's: the list had no channel filter,
    and a user of several channels split the CSV by hand."""
    order, _ = captured
    admin = client_for(make_api_user(is_superuser=True))
    foreign = Order.objects.get(number="FOREIGN-1")
    assert {row[2] for row in exported(admin, f"channel={order.channel_id}")} == {order.number}
    assert {row[2] for row in exported(admin, f"channel={foreign.channel_id}")} == {"FOREIGN-1"}
    listed = admin.get(f"{URL}?channel={foreign.channel_id}").json()["results"]
    assert [capture["order"] for capture in listed] == [foreign.pk]
    # Another channel's captures stay out of sight, named or not.
    assert exported(api_client, f"channel={foreign.channel_id}") == []
    response = api_client.get(f"{URL}?channel=abc")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_filters_apply_to_json_and_csv_alike(api_client, channel, captured):
    order, _ = captured
    other = make_order(channel=channel, items=1)
    assert capture(api_client, other, [other.items.get().pk]).status_code == 200
    recent = Capture.objects.get(order=other)
    # A capture three days old (without items: the API captures only now).
    old = Capture.objects.create(order=order, user=recent.user, amount=0, currency="TRY",
                                 created_at=timezone.now() - timedelta(days=3))  # fmt: skip

    def both(query):
        listed = [c["pk"] for c in api_client.get(f"{URL}?{query}").json()["results"]]
        in_csv = sorted({int(row[0]) for row in exported(api_client, query)})
        return sorted(listed), in_csv

    day_ago = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    listed, in_csv = both(f"created_at__gte={day_ago}")
    assert old.pk not in listed
    assert recent.pk in listed
    assert in_csv == listed
    assert both(f"created_at__lte={day_ago}") == ([old.pk], [])  # no items, no rows
    assert both(f"order={other.pk}") == ([recent.pk], [recent.pk])
    stamp = recent.created_at.isoformat().replace("+", "%2B")  # an offset works as `Z` does
    both_ends = f"created_at__gte={stamp}&created_at__lte={stamp}"
    assert both(both_ends) == ([recent.pk], [recent.pk])


@pytest.mark.parametrize(
    ("query", "field"),
    [("created_at__gte=yesterday", "created_at__gte"),
     ("created_at__lte=2025-13-01T00:00:00Z", "created_at__lte"),
     ("created_at__gte=0001-01-01T00:00:00%2B01:00", "created_at__gte"),  # before year 1 in UTC
     ("created_at__lte=9999-12-31T23:59:59-01:00", "created_at__lte"),  # after 9999 in UTC
     ("order=abc", "order")],
)  # fmt: skip
@pytest.mark.parametrize("as_csv", [False, True])
def test_a_bad_filter_is_a_coded_json_400_even_when_csv_is_asked(api_client, query, field, as_csv):
    headers = {"HTTP_ACCEPT": "text/csv"} if as_csv else {}
    response = api_client.get(f"{URL}?{query}", **headers)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "invalid"
    assert field in response.json()


def test_an_export_of_more_items_than_one_answer_sends_is_refused_before_any_row(
    api_client, captured, monkeypatch
):
    """Five unfiltered exports of 980,000 items ran past gunicorn's timeout, cut short
    into 200s whose files looked whole. Over the limit (here 2 items instead of
    250,000) the export is a 400 before anything is sent; a date range narrows it."""
    from capture import export

    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 2)
    refused = api_client.get(URL, HTTP_ACCEPT="text/csv")  # 3 items
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/json"
    assert refused.json() == {
        "code": "export_too_large",
        "detail": "The export holds more than 2 rows: narrow it with the list's filters "
        "(a date range).",
    }
    order, (first, second, cheap) = captured
    newest = order.captures.order_by("pk").last()
    since = newest.created_at.isoformat().replace("+00:00", "Z")
    assert [row[4] for row in exported(api_client, f"created_at__gte={since}")] == [str(cheap.pk)]


@pytest.mark.parametrize(
    ("query", "code"),
    [("cursor=abc", "unknown_parameter"), ("page_size=abc", "invalid"), ("page_size=0", "min_value")],
)  # fmt: skip
def test_the_export_takes_no_cursor_and_checks_page_size_as_the_list(api_client, captured, query,
                                                                     code):  # fmt: skip
    """The export is not paginated: a cursor sent to resume one was ignored, and the
    file held every row again; a page_size that is not one was ignored too."""
    response = api_client.get(f"{URL}?format=csv&{query}")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert query.split("=")[0] in response.json()
    if code == "unknown_parameter":  # the list takes a cursor: not "no such parameter"
        assert response.json()["cursor"] == [
            "The CSV export is not paged and takes no cursor: it holds every row; narrow it "
            "by date."
        ]


@pytest.mark.parametrize("query", ["cursor=", "page_size=", "page_size=1"])
def test_an_empty_cursor_or_a_page_size_still_exports_every_row(api_client, captured, query):
    assert len(exported(api_client, query)) == len(exported(api_client)) == 3


def test_csv_needs_a_token_and_other_operations_stay_json(client, db, api_client):
    response = client.get(URL, HTTP_ACCEPT="text/csv")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    # The CSV form is the list's only; a capture by pk is JSON. A format an operation
    # does not answer is 406, as an Accept header's (it was a 404, as if the path were
    # not there).
    for url in (f"{URL}1/?format=csv", f"{URL}?format=xml", "/api/v1/orders/?format=csv"):
        response = api_client.get(url)
        assert (response.status_code, response.json()["code"]) == (406, "not_acceptable"), url
    assert api_client.get("/api/v1/orders/?format=json").status_code == 200


def test_format_in_the_url_wins_over_accept_and_an_empty_accept_takes_anything(api_client):
    """An SDK sends `Accept: application/json` on every request: the documented
    `?format=csv` answered it 406. An empty `Accept` was 406 too."""
    csv = api_client.get(f"{URL}?format=csv", HTTP_ACCEPT="application/json")
    assert (csv.status_code, csv["Content-Type"].split(";")[0]) == (200, "text/csv")
    as_json = api_client.get(f"{URL}?format=json", HTTP_ACCEPT="text/csv")
    assert (as_json.status_code, as_json["Content-Type"]) == (200, "application/json")
    empty = api_client.get("/api/v1/orders/", HTTP_ACCEPT="")
    assert (empty.status_code, empty["Content-Type"]) == (200, "application/json")
    refused = api_client.get("/api/v1/orders/", HTTP_ACCEPT="text/html")
    assert (refused.status_code, refused.json()["code"]) == (406, "not_acceptable")


def test_rows_are_read_through_a_server_side_cursor_in_chunks(api_user, channel):
    client = client_for(api_user)
    for _ in range(3):
        order = make_order(channel=channel, items=2)
        capture(client, order, list(order.items.values_list("pk", flat=True)))
    with CaptureQueriesContext(connection) as queries:
        rows = list(captured_item_rows(Capture.objects.all(), chunk_size=4))
    assert len(rows) == 6  # 4, then 2
    assert [row[4] for row in rows] == sorted(row[4] for row in rows)  # in capture order
    assert sum("SELECT" in query["sql"] for query in queries) == 1  # one query, fetched in chunks


def test_rows_on_either_side_of_a_flush_are_each_exported_once_in_order():
    """The CSV is sent in pieces of about FLUSH_BYTES (the buffer is sent, then
    emptied): every row of a file several pieces long is in it once, whole, in order,
    the last piece's too. (Only the 100,000-item live test below crossed one.)"""
    from capture.export import FLUSH_BYTES, CSVRenderer

    rows = [(n, f"SKU-{n:06}", "x" * 50) for n in range(3 * FLUSH_BYTES // 60)]
    pieces = list(CSVRenderer().render(iter(rows)))
    assert len(pieces) >= 4  # three flushes, then the rest
    assert all(FLUSH_BYTES <= len(piece) < FLUSH_BYTES + 100 for piece in pieces[:-1])
    body = b"".join(pieces).decode()
    assert list(csv.reader(io.StringIO(body))) == [[str(n), sku, x] for n, sku, x in rows]


# The admin.


@pytest.fixture
def operator(channel):
    user = make_api_user(channels=[channel], is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_capture"))
    return user


def admin_export(client, pks, query=""):
    action = {"action": "export_csv", "_selected_action": [str(pk) for pk in pks]}
    return client.post(f"/admin/capture/capture/{query}", action)


def test_admin_exports_the_selected_captures_as_the_api_does(client, api_client, operator,
                                                             captured):  # fmt: skip
    order, _ = captured
    client.force_login(operator)
    mine = list(order.captures.order_by("pk").values_list("pk", flat=True))
    foreign = Capture.objects.get(order__number="FOREIGN-1").pk

    rows = csv_rows(admin_export(client, mine))
    assert rows == csv_rows(api_client.get(URL, HTTP_ACCEPT="text/csv"))
    assert [int(row[0]) for row in rows[1:]] == [mine[0], mine[0], mine[1]]
    # One capture, and never another channel's even when its pk is posted.
    assert {int(row[0]) for row in csv_rows(admin_export(client, [mine[1], foreign]))[1:]} == {
        mine[1]
    }


def test_admin_export_of_too_many_items_says_so_on_the_list(client, operator, captured,
                                                             monkeypatch):  # fmt: skip
    from capture import export

    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 2)
    order, _ = captured
    client.force_login(operator)
    page = admin_export(client, order.captures.values_list("pk", flat=True), "?")
    assert page.status_code == 302  # back to the list, with the message
    listed = client.get(page["Location"]).content.decode()
    assert "The export holds more than 2 rows" in listed


def test_admin_lists_captures_by_date(client, operator, captured):
    client.force_login(operator)
    today = timezone.now()
    day = (
        f"created_at__year={today.year}&created_at__month={today.month}&created_at__day={today.day}"
    )
    page = client.get(f"/admin/capture/capture/?{day}")
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2
    assert "Export selected captures as CSV" in page.content.decode()
    last_year = client.get(f"/admin/capture/capture/?created_at__year={today.year - 1}")
    assert last_year.context["cl"].result_count == 0
    # "Select all" with a date filter exports what the filter shows.
    action = {"action": "export_csv", "select_across": "1", "_selected_action": ["0"]}
    rows = csv_rows(client.post(f"/admin/capture/capture/?{day}", action))
    assert len(rows) == 1 + 3


# Memory: a live server exports 100,000 captured items with a flat footprint.

ITEMS = 100_000
ITEMS_PER_ORDER = 4
# The worker may grow at most this much over its idle size while exporting 13 MB of
# CSV. Streaming holds one fetch of 2,000 rows and a 64 KB buffer: measured +5 MB.
# Writing the whole CSV to one buffer measured +44 MB, holding every row +110 MB.
GROWTH_BOUND_MB = 16

# The seed, in SQL: orders, their items (captured), a capture per order and a capture
# item per item, with realistic lengths (UUID-like request ids). The capture tables'
# triggers refuse UPDATE and DELETE, not INSERT; the test's teardown truncates.
SEED = [
    """
INSERT INTO orders_order (number, channel_id, customer_id, date_placed, status, currency,
    amount, discount_amount, shipping_amount, refund_amount, discount_refund_amount,
    shipping_refund_amount, installment_interest_amount, shipping_interest_amount, is_send,
    cancellation_info, client_type, has_gift_box, delivery_range, extra_field,
    created_date, modified_date)
SELECT 'BULK-' || lpad(n::text, 8, '0'), %(channel)s, %(customer)s, now(), '500', 'TRY',
       200, 0, 0, 0, 0, 0, 0, 0, false, '{}', 'default', false, '{}', '{}', now(), now()
  FROM generate_series(1, %(orders)s) n""",
    # The triggers of the inserts below read the orders (the rows' channel) with a plan
    # this connection may have made for a table of a few rows (an earlier test's): a
    # read of every order for each of the 100,000 items (minutes, or the statement
    # timeout). ANALYZE makes them plan again, for the table as it is now.
    "ANALYZE orders_order",
    """
INSERT INTO orders_orderitem (order_id, product_sku, price, retail_price, tax_rate,
    discount_amount, price_currency, status, attributes, extra_field, captured_at,
    created_date, modified_date)
SELECT o.id, 'SKU-' || o.id || '-' || k, 49.99 + k, 60, 0, 0, 'TRY', '500', '{}', '{}',
       now(), now(), now()
  FROM orders_order o, generate_series(1, %(per_order)s) k WHERE o.channel_id = %(channel)s""",
    "ANALYZE orders_orderitem",
    """
INSERT INTO capture_capture (order_id, user_id, created_at, amount, currency,
    idempotency_key, request_id)
SELECT o.id, %(user)s, now() - (o.id * interval '1 second'), 200, 'TRY',
       'wms-shipment-' || o.id, md5(o.id::text)
  FROM orders_order o WHERE o.channel_id = %(channel)s ORDER BY o.id""",
    "ANALYZE capture_capture",
    """
INSERT INTO capture_captureitem (capture_id, order_item_id, price, attributes_before,
    attributes_after)
SELECT c.id, i.id, i.price, '{}', '{}'
  FROM capture_capture c JOIN orders_orderitem i ON i.order_id = c.order_id ORDER BY i.id""",
    "ANALYZE orders_order, orders_orderitem, capture_capture, capture_captureitem",
]


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def only_worker(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.django_db(transaction=True)
def test_a_live_server_streams_100000_items_in_constant_memory():
    channel = ChannelFactory()
    user = make_api_user(channels=[channel], username="finance")
    customer = CustomerFactory()
    params = {"channel": channel.pk, "customer": customer.pk, "user": user.pk,
              "orders": ITEMS // ITEMS_PER_ORDER, "per_order": ITEMS_PER_ORDER}  # fmt: skip
    with connection.cursor() as cursor:
        for statement in SEED:
            cursor.execute(statement, params)
    headers = {"Authorization": f"Token {user.auth_token.key}", "Accept": "text/csv"}

    with gunicorn(workers=1) as (base, server):
        worker = only_worker(server.popen.pid)
        # Warm up: the same code path, a few rows (imports, connection, first queries).
        small = requests.get(f"{base}{URL}", params={"created_at__gte": timezone.now()},
                             headers=headers, stream=True, timeout=30)  # fmt: skip
        assert small.status_code == 200
        assert len(small.content.splitlines()) == 1  # the header
        idle_kb = memory_kb(worker, "VmRSS")
        sampled_kb, streaming = [idle_kb], threading.Event()

        def sample():
            while not streaming.wait(0.05):
                sampled_kb.append(memory_kb(worker, "VmRSS"))

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        try:
            response = requests.get(f"{base}{URL}", headers=headers, stream=True, timeout=60)
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
            size, lines, head = 0, 0, b""
            for chunk in response.iter_content(64 * 1024):
                head = head or chunk
                size += len(chunk)
                lines += chunk.count(b"\n")
        finally:
            streaming.set()
            sampler.join()
        seconds = time.monotonic() - started
        peak_kb = memory_kb(worker, "VmHWM")  # the worker's peak RSS since it started

    growth_mb = (max(peak_kb, *sampled_kb) - idle_kb) / 1024
    print(f"exported {lines - 1} rows, {size / 2**20:.1f} MB in {seconds:.1f} s; worker "
          f"idle {idle_kb / 1024:.0f} MB, peak {peak_kb / 1024:.0f} MB, +{growth_mb:.1f} MB")  # fmt: skip
    assert lines == 1 + ITEMS
    header, first = list(csv.reader(io.StringIO(head.decode())))[:2]
    assert header == HEADER
    assert first[6] == "50.99"  # the first item's price
    assert growth_mb < GROWTH_BOUND_MB


def test_the_admins_export_counts_toward_the_users_export_limit(client, api_client, operator,
                                                                captured):  # fmt: skip
    """Staff exporting at once took every worker as the API's exports did (an outside
    test): the same limit, per user, whichever way the export is asked for."""
    order, _ = captured
    client.force_login(operator)
    mine = list(order.captures.values_list("pk", flat=True))
    with throttle_rates(export="1/min"):
        first = admin_export(client, mine)
        second = admin_export(client, mine)
        others = api_client.get(URL, HTTP_ACCEPT="text/csv")  # another user's limit
    assert first["Content-Type"].startswith("text/csv")
    assert second.status_code == 302
    page = client.get(second["Location"]).content.decode()
    assert "Too many exports at once: try again in " in page
    assert others.status_code == 200


def test_an_export_of_exactly_the_most_items_is_sent_whole(api_client, captured, monkeypatch):
    """Up to MAX_EXPORT_ROWS items are exported (README: up to 250,000): the limit
    itself is still one answer, here 3 items under a limit of 3."""
    from capture import export

    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 3)
    response = api_client.get(URL, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert len(exported(api_client)) == 3


def explained(statement: str, params, table: str, *, generic: bool) -> int:
    """The most rows a scan of `table` reads (returned and filtered out, over its
    loops) when the statement runs: in the plan for its values, or in the generic one
    PostgreSQL may keep for it once psycopg prepares it."""
    if generic:
        return rows_read(statement, params, table, filtered=True)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
        (plan,) = cursor.fetchone()[0]

    def most(node) -> int:
        here = 0
        if "Scan" in node["Node Type"] and node.get("Relation Name") == table:
            here = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node[
                "Actual Loops"
            ]
        return max([here, *(most(child) for child in node.get("Plans", []))])

    return most(plan["Plan"])


@pytest.mark.parametrize("generic", [False, True])
def test_a_days_export_reads_that_days_items_whatever_the_table_holds(db, generic):
    """A day's file among a year of captures (the export's use: docs/api.md). Its rows
    were a semi-join of every captured item with the day's captures: PostgreSQL read
    the whole items table and hashed it (at 300,000 captured items, 0.4 s for a day of
    1,644; more at a year's million), and the generic plan read every order too (the
    count before it, every captured item). Here
    the day holds 20 captures of 2,000: items, orders and their items are read for the
    day's rows only."""
    channel = ChannelFactory()
    client = client_for(make_api_user(channels=[channel]))
    template = make_order(channel=channel, items=0)
    copies(Order, template.pk, 2000, {"number": "number || '-' || n"})
    orders = list(Order.objects.filter(channel=channel).exclude(pk=template.pk)
                  .values_list("pk", flat=True))  # fmt: skip
    start = timezone.now() - timedelta(days=365)
    with connection.cursor() as cursor:  # an item of each, captured a minute apart
        cursor.execute(
            "INSERT INTO orders_orderitem (order_id, product_sku, price, retail_price, tax_rate, "
            "discount_amount, price_currency, status, attributes, extra_field, captured_at, "
            "created_date, modified_date) SELECT o.id, 'SKU', 1, 1, 0, 0, o.currency, o.status, "
            "'{}', '{}', now(), now(), now() FROM orders_order o WHERE o.id = ANY(%s)",
            [orders],
        )
        cursor.execute(
            "INSERT INTO capture_capture (order_id, user_id, created_at, amount, currency, "
            "request_id) SELECT o.id, %s, %s::timestamptz + o.id * interval '1 minute', 1, "
            "o.currency, '' FROM orders_order o WHERE o.id = ANY(%s)",
            [make_api_user().pk, start, orders],
        )
        cursor.execute(
            "INSERT INTO capture_captureitem (capture_id, order_item_id, price, "
            "attributes_before, attributes_after) SELECT c.id, i.id, 1, '{}', '{}' "
            "FROM capture_capture c JOIN orders_orderitem i ON i.order_id = c.order_id "
            "WHERE c.order_id = ANY(%s)",
            [orders],
        )
        cursor.execute("ANALYZE orders_order, orders_orderitem, capture_capture, "
                       "capture_captureitem")  # fmt: skip
    day = Capture.objects.filter(channel=channel).order_by("created_at")[:20]
    end = list(day)[-1].created_at
    sent = []

    def record(execute, statement, params, many, context):
        sent.append((statement, params))
        return execute(statement, params, many, context)

    with connection.execute_wrapper(record):
        rows = exported(client, f"created_at__lte={quote(end.isoformat())}")
    assert sorted(int(row[0]) for row in rows) == sorted(c.pk for c in day)
    read = [(s, p) for s, p in sent if 'FROM "capture_captureitem"' in s]
    assert len(read) == 2  # the count (the export's limit), then the rows
    # (The captures, 2,000 rows here, may be read whole for the join: on the 600,000-
    # order fill they are looked up by pk, one per item.)
    # The day's 20 rows of each (maybe once per user the join reads), not the 2,000.
    for (statement, params), table in itertools.product(
        read, ("capture_captureitem", "orders_order", "orders_orderitem")
    ):
        assert explained(statement, params, table, generic=generic) <= 100, (table, statement)
