"""Log filters for the webhook worker's task queue (procrastinate), in the console
handler of the settings' LOGGING: records of what the worker recovers from by itself
are written as warnings, without the traceback, so that the error log holds only what
someone must act on. Sentry reads a record after the handlers, so it takes them as
warnings too."""

import logging

import psycopg

from omnitron.api.exceptions import broken_exchange


class LostDatabaseIsAWarning(logging.Filter):
    """The task queue logs losing the database (a restart, a failover ends every
    connection, and connecting fails until it is back) as errors with tracebacks: the
    job that was running and the listener that stops the worker, at each restart.
    `manage.py webhook_worker` starts the worker again and says so, as a warning, and as
    an ERROR once it has not run steadily for OUTAGE_ERROR_SECONDS (an outage, or a
    database never reachable); the job's deliveries are sent again. A job whose end
    could not be recorded as the worker stopped is asyncio's "Task exception was never
    retrieved" (a scheduled job's, in one run of tests/events/test_webhooks_live.py in
    seven). Any other error of the task queue stays one (a statement timeout, a job's
    own failure)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (_task_queues(record) and record.levelno > logging.WARNING
                and record.exc_info and _lost_database(record.exc_info[1])):  # fmt: skip
            _as_warning(record, f"{record.getMessage()} (the database went away)")
        return True


def _task_queues(record: logging.LogRecord) -> bool:
    """The task queue's own record, or asyncio's about one of its jobs' tasks."""
    return record.name.startswith("procrastinate") or (
        record.name == "asyncio" and "name='process job " in record.getMessage()
    )


class StalledJobEndIsAWarning(logging.Filter):
    """A lane job ended as stalled (its worker froze past WEBHOOK_STALLED_SECONDS) stops
    when its worker wakes, as designed (events/delivery.py warns of it), and the task
    queue then fails to finish a job it no longer holds: asyncio logged that as an
    error with a traceback ("Task exception was never retrieved")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name == "asyncio" and record.levelno > logging.WARNING and record.exc_info
                and _finishing_a_job_not_held(record.exc_info[1])):  # fmt: skip
            _as_warning(
                record, "A job ended as stalled could not be finished: its lane is another job's."
            )
        return True


def _as_warning(record: logging.LogRecord, message: str) -> None:
    record.msg, record.args = message, ()
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    record.exc_info = record.exc_text = None


# SQLSTATEs of a connection that ended or could not be made: class 08 (connection
# exceptions), and the server shutting down or starting up (57P01 to 57P03).
_LOST = ("08", "57P01", "57P02", "57P03")


def _chain(error: BaseException | None):
    """The error and those it was raised from."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _lost_database(error: BaseException | None) -> bool:
    """Whether the error, or one it was raised from, is the database out of reach: a
    connection the server ended or refused, one closed under the client (psycopg's
    InterfaceError), or one that broke or could not be made (no SQLSTATE; psycopg's
    InternalError of a broken exchange, as through PgBouncer when PostgreSQL ended the
    server connection)."""
    for link in _chain(error):
        if isinstance(link, psycopg.InterfaceError):
            return True
        if broken_exchange(link):
            return True
        if isinstance(link, psycopg.OperationalError):
            return link.sqlstate is None or link.sqlstate.startswith(_LOST)
    return False


def _finishing_a_job_not_held(error: BaseException | None) -> bool:
    return any(
        isinstance(link, psycopg.errors.RaiseException)
        and 'not in "doing" or "todo" status' in str(link)
        for link in _chain(error)
    )
