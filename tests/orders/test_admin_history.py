"""The admin's history of changes (Django's `django_admin_log`, a row per change, kept
for good): an object's History page and the index page's "Recent actions" read the
rows they show, however many changes the log holds. The log is filled in SQL
(generate_series), as bench/bigdata.py fills a year, and each statement's rows
examined are counted with EXPLAIN ANALYZE (tests/events/test_growth.py)."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order
from tests.events.test_growth import rows_examined
from tests.factories import make_api_user, make_order

pytestmark = pytest.mark.django_db

LOG = LogEntry._meta.db_table
OTHER_CHANGES = 5000


def log_changes(user, object_ids: str, count: int, label: str):
    """`count` changes by `user` of orders named by the SQL expression `object_ids` (of
    `g`, 1 to count), a second apart, the last one a minute ago; `label` and `g` are
    each change's text."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {LOG} (action_time, user_id, content_type_id, object_id, object_repr,
                               action_flag, change_message)
            SELECT now() - interval '1 minute' - (%(count)s - g) * interval '1 second',
                   %(user)s, %(type)s, ({object_ids})::text, %(label)s || g, %(flag)s, '[]'
              FROM generate_series(1, %(count)s) g""",
            {"count": count, "user": user.pk, "type": ContentType.objects.get_for_model(Order).pk,
             "label": label, "flag": CHANGE},
        )  # fmt: skip
        cursor.execute(f"ANALYZE {LOG}")


def log_statements(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries if f'FROM "{LOG}"' in q["sql"]]
    assert statements
    return response, statements


def test_an_objects_history_reads_its_own_changes(client):
    """An order's History page (`/admin/orders/order/<pk>/history/`) looked for the
    order's changes among every change of every order: the log has no index on the
    object, so with 1,000,000 changes each of its two statements read them all (0.1 s
    each, growing; helper 134). It reads the order's own on admin_log_object_idx."""
    operator = make_api_user(is_superuser=True, is_staff=True)
    order = make_order(items=1)
    log_changes(operator, "1000000 + g", OTHER_CHANGES, "Other order ")
    log_changes(operator, str(order.pk), 3, "This order ")
    client.force_login(operator)
    response, statements = log_statements(client, f"/admin/orders/order/{order.pk}/history/")
    shown = [entry.object_repr for entry in response.context["action_list"]]
    assert shown == ["This order 1", "This order 2", "This order 3"]  # oldest first
    assert max(rows_examined(sql, LOG) for sql in statements) <= 10


def test_recent_actions_read_the_users_last_ten(client):
    """The index page's "Recent actions" are the user's last ten changes: PostgreSQL
    read and sorted every change of the user for them (1,000,000 changes: 0.6-0.9 s
    for every visit to /admin/, growing; helper 134). They are read backwards on
    admin_log_user_time_idx."""
    operator = make_api_user(is_superuser=True, is_staff=True)
    log_changes(operator, "1000000 + g", OTHER_CHANGES, "Change number ")
    log_changes(make_api_user(is_superuser=True, is_staff=True), "g", 100, "Another's ")
    client.force_login(operator)
    response, statements = log_statements(client, "/admin/")
    page = response.content.decode()
    shown = [f"Change number {n}" for n in range(OTHER_CHANGES - 9, OTHER_CHANGES + 1)]
    assert all(f"{name}<" in page for name in shown)
    assert f"Change number {OTHER_CHANGES - 10}<" not in page
    assert "Another&#x27;s" not in page
    assert max(rows_examined(sql, LOG) for sql in statements) <= 10
