"""One JSON log line per request, and a request id from the client to the audit."""

import io
import json
import logging
import re

import psycopg
import pytest
import requests
from django.test import override_settings

from capture.models import Capture
from events.logfilters import LostDatabaseIsAWarning, StalledJobEndIsAWarning
from omnitron.observability import JSONFormatter
from tests.helpers import CAPTURE_URL, capture
from tests.live import gunicorn


@pytest.fixture
def request_lines(caplog):
    caplog.set_level(logging.INFO, logger="omnitron.request")
    formatter = JSONFormatter()

    def lines():
        return [
            json.loads(formatter.format(record))
            for record in caplog.records
            if record.name == "omnitron.request"
        ]

    return lines


def test_a_given_request_id_is_echoed_logged_and_kept_in_the_audit(
    api_client, order, request_lines
):
    pk = order.items.first().pk
    response = api_client.post(CAPTURE_URL, {"order": order.number, "order_items": [{"pk": pk}]},
                               format="json", HTTP_X_REQUEST_ID="wms-batch-17/3")  # fmt: skip
    assert response.status_code == 200
    assert response["X-Request-ID"] == "wms-batch-17/3"
    assert Capture.objects.get().request_id == "wms-batch-17/3"
    (line,) = request_lines()
    assert line["request_id"] == "wms-batch-17/3"
    assert line["method"] == "POST"
    assert line["path"] == CAPTURE_URL
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["user_id"] == order.items.first().order.channel.memberships.get().user_id
    assert line["order"] == order.number
    assert re.match(r"\d{4}-\d\d-\d\dT", line["time"])


def test_an_error_line_has_the_code_and_a_generated_id(api_client, order, request_lines):
    capture(api_client, order, [order.items.first().pk])
    response = capture(api_client, order, [order.items.first().pk])
    line = request_lines()[-1]
    assert line["status"] == 400
    assert line["code"] == "already_captured"
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize(
    "bad", ["x" * 200, "with space", "ümlaut", "=HYPERLINK(1)", "-1+1", "@x", '"><b>', "a\\b"]
)
def test_an_unusable_request_id_is_replaced(client, db, bad):
    response = client.get("/api/v1/orders/", HTTP_X_REQUEST_ID=bad)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_logs_never_hold_a_token_a_password_or_a_body(api_client, api_user, order, caplog, client):
    caplog.set_level(logging.DEBUG)
    secret_attribute = "do-not-log-this-attribute"
    captured = api_client.post(CAPTURE_URL, {"order": order.number,
                                  "order_items": [{"pk": order.items.first().pk,
                                                   "attributes": {"note": secret_attribute}}]},
                    format="json")  # fmt: skip
    logged_in = client.post("/api/v1/auth/login/", {"username": api_user.username,
                                                    "password": "pw-123456"},
                            content_type="application/json")  # fmt: skip
    # The attribute was taken and stored, and the login answered: both went all the way
    # through the code that logs.
    assert captured.status_code == 200
    assert order.items.first().attributes["note"] == secret_attribute
    assert logged_in.status_code == 200
    assert logged_in.json()["key"] == api_user.auth_token.key
    formatter = JSONFormatter()
    everything = "\n".join(formatter.format(record) for record in caplog.records)
    assert api_user.auth_token.key not in everything
    assert "pw-123456" not in everything
    assert secret_attribute not in everything
    assert '"path": "/api/v1/auth/login/"' in everything


@pytest.mark.django_db
@override_settings(ALLOWED_HOSTS=["capture.example.com"])
@pytest.mark.parametrize("path", ["/api/v1/active_user/", "/admin/login/"])
def test_a_refused_host_is_logged_as_a_warning_without_a_traceback(client, path):
    """Any client can send a Host the service does not serve: that is a 400 and a
    warning, not an error with a traceback for whoever watches the error log."""
    console = next(h for h in logging.getLogger().handlers if h.name == "console")
    written = io.StringIO()
    previous = console.setStream(written)
    try:
        response = client.get(path, HTTP_HOST="evil.example")
    finally:
        console.setStream(previous)
    assert response.status_code == 400
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    (refusal,) = [line for line in lines if line["logger"].startswith("django.security.")]
    assert refusal["logger"] == "django.security.DisallowedHost"
    assert refusal["level"] == "warning"
    assert "evil.example" in refusal["message"]
    assert "exception" not in refusal


@pytest.mark.django_db(transaction=True)
def test_everything_a_server_prints_is_one_json_object_per_line():
    """gunicorn's own lines (starting, booting workers, the signal that stops it) were
    its plain text among the app's JSON."""
    with gunicorn(workers=1) as (base, server):
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{base}/api/v1/orders/", timeout=5).status_code == 401
    lines = [line for line in server.output().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    loggers = {entry["logger"] for entry in parsed}
    assert {"gunicorn.error", "omnitron.request"} <= loggers
    assert any("Booting worker" in entry["message"] for entry in parsed)


@pytest.mark.urls("tests.capture.failing_urls")
def test_an_unexpected_500_is_logged_once_within_its_request(api_client, caplog):
    """Django's handler logged the 500 again ("Internal Server Error: ...") after the
    middleware had returned, on a line without the request id."""
    caplog.set_level(logging.INFO)
    response = api_client.post("/api/v1/boom/", {}, format="json")
    assert response.status_code == 500
    errors = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]
    assert [name for name, _ in errors] == ["omnitron.api.exceptions"], errors


def test_a_readiness_probe_that_fails_is_no_error_line(client, caplog, monkeypatch):
    """Each 503 of /readyz was also Django's ERROR "Service Unavailable: /readyz", after
    the middleware, without a request id: one per probe while the database is down."""
    monkeypatch.setattr("omnitron.health.database_ready", lambda: False)
    caplog.set_level(logging.INFO)
    assert client.get("/readyz").status_code == 503
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def _record(error: BaseException) -> logging.LogRecord:
    try:
        raise RuntimeError("Database error.") from error  # as procrastinate wraps it
    except RuntimeError as wrapped:
        exc_info = (type(wrapped), wrapped, wrapped.__traceback__)
    return logging.LogRecord("procrastinate.worker", logging.ERROR, __file__, 1,
                             "Job %s ended with status: Error", ("x",), exc_info)  # fmt: skip


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (psycopg.errors.AdminShutdown("terminating connection"), logging.WARNING),
        (psycopg.OperationalError("server closed the connection unexpectedly"), logging.WARNING),
        (psycopg.InterfaceError("the connection is closed"), logging.WARNING),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
         logging.ERROR),
        # Reconnecting while the database restarts; the supervisor says ERROR when that
        # lasts (tests/events/test_worker_supervisor.py).
        (psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", '
                                  "port 5999 failed: Connection refused"), logging.WARNING),
        # A password the server refuses is no restart.
        (psycopg.errors.InvalidPassword("password authentication failed"), logging.ERROR),
        # Through PgBouncer, a server connection PostgreSQL ended in a transaction.
        (psycopg.InternalError("received 2 results from command 'COMMIT'"), logging.WARNING),
        (psycopg.errors.InternalError_("an internal error PostgreSQL reports"), logging.ERROR),
        (psycopg.InternalError("trying to dump a range element without information"),
         logging.ERROR),  # a bug of the app's, not the database lost
        (ValueError("a job's own failure"), logging.ERROR),
    ],
)  # fmt: skip
def test_the_task_queue_losing_the_database_is_a_warning_and_its_other_errors_are_errors(
    error, level
):
    """Each restart of the database wrote the task queue's errors with tracebacks (the
    running job's, the listener's) though the worker starts again by itself; a
    statement timeout or a job's own failure is still an error."""
    record = _record(error)
    assert LostDatabaseIsAWarning().filter(record)
    assert record.levelno == level
    assert (record.exc_info is None) == (level == logging.WARNING)
    if level == logging.WARNING:
        assert record.getMessage() == "Job x ended with status: Error (the database went away)"


def test_a_jobs_end_lost_with_the_database_is_a_warning():
    """A job that ended as the database went away could not record its end, and asyncio
    logged its task's error with a traceback ("never retrieved"): in one run of the
    worker's restart test in seven. Another task's lost database stays an error."""
    record = _record(psycopg.errors.AdminShutdown("terminating connection"))
    record.name, record.args = "asyncio", ()
    record.msg = ("Task exception was never retrieved\nfuture: <Task finished name='process "
                  "job capture.tasks.prune_idempotency_keys[5]' coro=<Worker._process_job()>")  # fmt: skip
    assert LostDatabaseIsAWarning().filter(record)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    assert record.getMessage().endswith("(the database went away)")
    other = _record(psycopg.errors.AdminShutdown("terminating connection"))
    other.name, other.args, other.msg = "asyncio", (), "Task exception was never retrieved"
    assert LostDatabaseIsAWarning().filter(other)
    assert other.levelno == logging.ERROR


def test_a_stalled_jobs_unfinishable_end_is_a_warning():
    """The task queue cannot finish a lane job ended as stalled that stopped when its
    worker woke (tests/events/test_stalled_lanes.py): asyncio logged an error with a
    traceback for each."""
    refused = psycopg.errors.RaiseException(
        'Job was not found or not in "doing" or "todo" status (job id: 410)'
    )
    record = _record(refused)
    record.name = "asyncio"
    assert StalledJobEndIsAWarning().filter(record)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    other = _record(psycopg.errors.RaiseException("something else"))
    other.name = "asyncio"
    assert StalledJobEndIsAWarning().filter(other)
    assert other.levelno == logging.ERROR
