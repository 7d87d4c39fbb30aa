from urllib.parse import urlsplit

import pytest
import requests
from django.test.client import Client

from tests.contract import check_response
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import client_for


@pytest.fixture(autouse=True)
def responses_match_the_schema(monkeypatch):
    """Every API answer in the suite is checked against the generated OpenAPI schema:
    the Django test client's, and those of live servers on loopback (requests)."""
    client_request = Client.request

    def checked_client_request(self, **request):
        response = client_request(self, **request)
        if not response.streaming:  # static files stream; the API never does
            check_response(
                response.request["REQUEST_METHOD"], response.request["PATH_INFO"],
                response.status_code, response.get("Content-Type", ""), response.content,
            )  # fmt: skip
        return response

    session_send = requests.Session.send

    def checked_send(self, prepared, **kwargs):
        response = session_send(self, prepared, **kwargs)
        url = urlsplit(prepared.url)
        if url.hostname == "127.0.0.1" and not kwargs.get("stream"):
            check_response(
                prepared.method, url.path, response.status_code,
                response.headers.get("Content-Type", ""), response.content,
            )  # fmt: skip
        return response

    monkeypatch.setattr(Client, "request", checked_client_request)
    monkeypatch.setattr(requests.Session, "send", checked_send)


# What a transactional test's teardown keeps: rows made once, by the migrations and
# post_migrate, that nothing in the suite changes.
KEPT_BY_FLUSH = {"django_content_type", "auth_permission"}


def truncating_what_has_rows(style, connection, reset_sequences=True, allow_cascade=False):
    """Django's flush, as a TRUNCATE of the tables that have rows (and those whose
    foreign keys name them), KEPT_BY_FLUSH aside. A TRUNCATE, not a DELETE: it leaves
    the table as new, statistics included (after DELETEs a table's statistics said a
    few rows, and the next test's 100,000 items each read the orders whole)."""
    tables = [table for table in connection.introspection.django_table_names(only_existing=True)
              if table not in KEPT_BY_FLUSH]  # fmt: skip
    quote = connection.ops.quote_name
    probes = " UNION ALL ".join(
        f"SELECT {n} WHERE EXISTS (SELECT FROM {quote(table)})" for n, table in enumerate(tables)
    )
    with connection.cursor() as cursor:
        cursor.execute(probes)
        filled = [quote(tables[n]) for (n,) in cursor.fetchall()]
    return [f"TRUNCATE {', '.join(filled)} CASCADE"] if filled else []


@pytest.fixture(scope="session", autouse=True)
def quick_flush():
    """A transactional test's teardown empties every table with Django's flush: a
    TRUNCATE of every table (a new file for each table and index), then the content
    types and permissions made again (post_migrate), 0.4 to 1 s a test, minutes of the
    suite. Only the tables a test filled are emptied, and those two kept."""
    from django.core.management.commands import flush

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(flush, "sql_flush", truncating_what_has_rows)
        patched.setattr(flush, "emit_post_migrate_signal", lambda *args, **kwargs: None)
        yield


@pytest.fixture
def channel(db):
    return ChannelFactory()


@pytest.fixture
def api_user(channel):
    return make_api_user(channels=[channel])


@pytest.fixture
def api_client(api_user):
    return client_for(api_user)


@pytest.fixture
def order(channel):
    return make_order(channel=channel, items=3)
