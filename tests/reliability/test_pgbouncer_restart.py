"""A PostgreSQL restart (or failover) through PgBouncer in transaction mode: a server
connection PostgreSQL ends while the app's transaction is between statements (a
capture with an Idempotency-Key, between storing its answer and COMMIT) makes the
COMMIT fail with psycopg's own InternalError ("received 2 results from command
'COMMIT'": PostgreSQL's FATAL, passed on by PgBouncer, then PgBouncer's own error),
not an OperationalError. It is the database outage it is: 503 database_unavailable
(docs/reliability.md), never a 500 (found from outside by a helper, 2026-11-30: 1
request in about 300 was a 500 under a loop of pg_terminate_backend through gunicorn
and PgBouncer; straight to PostgreSQL the same loop gave only 503s)."""

import time

import psycopg
import pytest
from django.db import connection
from django.test import RequestFactory

from omnitron.api.exceptions import DatabaseUnavailable, translate
from omnitron.db.middleware import DatabaseErrorMiddleware
from tests.live import database_url, pgbouncer

pytestmark = pytest.mark.django_db(transaction=True)


def commit_error_after_the_server_connection_ended(url: str) -> Exception:
    """The error Django raises for a COMMIT through PgBouncer once PostgreSQL ended the
    transaction's server connection."""
    conn = psycopg.connect(url, prepare_threshold=None)
    conn.execute("SELECT pg_try_advisory_xact_lock(42)")  # as the capture's transaction
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.3)
    try:
        with connection.wrap_database_errors:  # as Django's commit() wraps it
            try:
                conn.commit()
            finally:
                conn.close()
    except Exception as exc:  # noqa: BLE001
        return exc
    pytest.fail("COMMIT succeeded on a terminated server connection")


def test_a_commit_on_a_server_connection_postgresql_ended_is_database_unavailable():
    with pgbouncer() as (overrides, _):
        error = commit_error_after_the_server_connection_ended(overrides["DATABASE_URL"])
    assert isinstance(error.__cause__, psycopg.InternalError), repr(error.__cause__)
    assert isinstance(translate(error), DatabaseUnavailable)
    # The admin's pages answer it as the API does.
    middleware = DatabaseErrorMiddleware(lambda request: None)
    page = middleware.process_exception(RequestFactory().get("/admin/"), error)
    assert (page.status_code, page["Retry-After"]) == (503, "5")


def test_an_internal_error_postgresql_reports_stays_a_500():
    """PostgreSQL's own internal_error (SQLSTATE XX000) is a fault to look at, not an
    outage: it is left to the 500 handler, with its traceback."""
    with pytest.raises(Exception) as raised, connection.cursor() as cursor:  # noqa: PT011
        cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'broken' USING ERRCODE = 'XX000'; END $$")
    assert raised.value.__cause__.sqlstate == "XX000"
    assert translate(raised.value) is raised.value
