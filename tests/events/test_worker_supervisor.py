"""webhook_worker's supervisor: it starts procrastinate's worker again whatever stopped
it, logging a lost database as a warning and anything else with its traceback."""

import asyncio
import logging
import os
import signal

import psycopg
import pytest
from django.core.management import CommandError, call_command
from procrastinate.exceptions import ConnectorException

from events import worker
from events.management.commands import webhook_worker


@pytest.fixture
def runs(monkeypatch):
    """The supervised worker fails with each exception in turn, then gets SIGTERM."""
    failures = []

    async def run_worker(options):
        if failures:
            raise failures.pop(0)
        os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's handler stops it
        await asyncio.sleep(10)

    monkeypatch.setattr(webhook_worker, "run_worker", run_worker)
    monkeypatch.setattr(webhook_worker, "MAX_DELAY_SECONDS", 0)
    yield failures
    worker.STOPPING.clear()  # set by the SIGTERM, read by every lane job after it


def test_a_lost_database_is_a_warning_and_anything_else_an_error_with_its_traceback(runs, caplog):
    runs[:] = [psycopg.OperationalError("connection refused"), ValueError("bad setting")]
    caplog.set_level(logging.INFO, logger="events.worker")
    asyncio.run(webhook_worker.supervise({}))
    records = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert records == [
        ("WARNING", "The webhook worker stopped (OperationalError: connection refused); "
                    "it starts again in 1 s.", False),
        ("ERROR", "The webhook worker failed.", True),
        ("WARNING", "The webhook worker stopped (ValueError: bad setting); it starts again "
                    "in 0 s.", False),
    ]  # fmt: skip
    assert runs == []  # started a third time, after both failures


def test_a_worker_that_keeps_stopping_says_so_as_an_error(runs, caplog, monkeypatch):
    """A restart of the database passes as warnings; one that is not back after
    OUTAGE_ERROR_SECONDS (or a wrong DATABASE_URL) left only warnings in the log while
    no webhook was sent."""
    monkeypatch.setattr(webhook_worker, "OUTAGE_ERROR_SECONDS", 0.5)
    wrapped = ConnectorException()  # as procrastinate raises it: its cause named
    wrapped.__cause__ = psycopg.OperationalError("connection refused\n  (port 1)")
    runs[:] = [psycopg.OperationalError("connection refused"), wrapped]
    caplog.set_level(logging.INFO, logger="events.worker")
    asyncio.run(webhook_worker.supervise({}))
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records == [
        ("WARNING", "The webhook worker stopped (OperationalError: connection refused); "
                    "it starts again in 1 s."),
        ("ERROR", "The webhook worker stopped (OperationalError: connection refused (port 1)) "
                  "and has not run steadily for 1 s: no webhook is sent meanwhile. It starts "
                  "again in 0 s."),
    ]  # fmt: skip


@pytest.mark.parametrize("concurrency", ["0", "-3", "two", "257", "99999999999"])
def test_a_concurrency_out_of_range_is_refused(concurrency):
    """--concurrency 0 ran the default's 8 slots, and -3 was handed to procrastinate."""
    with pytest.raises(CommandError, match="is not a number from 1 to 256"):
        call_command("webhook_worker", "--concurrency", concurrency)
