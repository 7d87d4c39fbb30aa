"""The webhook worker: procrastinate's worker, started again when it stops on its own.

Procrastinate's worker stops when it loses the database (its LISTEN connection or a
query fails): it expects a supervisor to start it again. Without one, a database
restart or failover stopped every webhook until someone noticed the backlog. This
command is that supervisor, in the worker's own process: after such a stop it waits
(1, 2, 4... up to MAX_DELAY_SECONDS, back to 1 after a run of a minute) and starts
the worker again with a new connection pool, until SIGTERM or SIGINT, which stop it
as procrastinate's own command does: running jobs finish first, and a second signal
ends the process at once."""

import argparse
import asyncio
import contextlib
import logging
import signal

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from procrastinate.contrib.django import app
from procrastinate.exceptions import ConnectorException

from events.worker import STOPPING
from omnitron import env, metrics_files

logger = logging.getLogger("events.worker")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
MAX_DELAY_SECONDS = 30
STEADY_SECONDS = 60  # a worker that ran this long starts again at once
# A worker that has kept stopping this long since it last ran steadily (or since it
# started) says so as an ERROR, not a warning: the database has been away that long, or
# was never reachable (a wrong DATABASE_URL), and no webhook is sent meanwhile. A
# restart or a failover passes well within it, as warnings only (the task queue's own
# errors for a lost connection are warnings too: events/logfilters.py).
OUTAGE_ERROR_SECONDS = 120
# How losing the database shows when the worker opens its pool or runs its queries.
DATABASE_ERRORS = (ConnectorException, psycopg.Error, OSError)


class Command(BaseCommand):
    help = (
        "Run the webhook worker (procrastinate's, with settings.PROCRASTINATE_WORKER_"
        "DEFAULTS); it starts again after losing the database, until SIGTERM or SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default=None, help="The worker's name in its logs.")
        parser.add_argument("--concurrency", type=positive_int, default=None,
                            help="Jobs run at once (default: WORKER_CONCURRENCY).")  # fmt: skip
        parser.add_argument("--queues", default="",
                            help="Comma-separated queues (default: every queue).")  # fmt: skip

    def handle(self, *args, name, concurrency, queues, **options):
        if settings.METRICS_MULTIPROCESS:  # the files of its host's processes killed before
            metrics_files.tidy()
        worker_options = {"install_signal_handlers": False}
        if name:
            worker_options["name"] = name
        if concurrency is not None:
            worker_options["concurrency"] = concurrency
        if queues:
            worker_options["queues"] = queue_names(queues)
        with app.replace_connector(app.connector.get_worker_connector()):
            asyncio.run(supervise(worker_options))


def positive_int(text: str) -> int:
    """--concurrency: 0 ran the default's 8 and a negative number was passed on."""
    most = settings.MAX_WORKER_CONCURRENCY
    try:
        return env.number("--concurrency", text, minimum=1, maximum=most)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to {most}.") from None


def queue_names(text: str) -> list[str]:
    """--queues: each a queue of this app's tasks. A typo (`webhook`) started a worker
    that sat idle, without a word: no webhook sent, nothing pruned."""
    known = sorted({task.queue for task in app.tasks.values()})
    names = [name.strip() for name in text.split(",")]
    if unknown := [name for name in names if name not in known]:
        raise CommandError(f"--queues: no task of this app uses {', '.join(map(repr, unknown))} "
                           f"(its queues: {', '.join(known)}).")  # fmt: skip
    return names


async def supervise(worker_options: dict) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    running: asyncio.Task | None = None

    def stop() -> None:
        # As procrastinate's own command: the first signal stops the worker gracefully,
        # and the default handlers come back, so a second one ends the process at once.
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        stopping.set()
        STOPPING.set()  # lane jobs end after their batch (events/worker.py)
        if running is not None:
            running.cancel()  # the worker stops taking jobs and waits for its running ones

    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop)
    STOPPING.clear()
    delay, outage_started = 1, None
    while not stopping.is_set():
        started = loop.time()
        running = asyncio.create_task(run_worker(worker_options))
        try:
            await running
            reason = "it ended by itself"
        except asyncio.CancelledError:
            if stopping.is_set():
                break
            raise
        except DATABASE_ERRORS as exc:  # the database is down: opening the app failed
            reason = stop_reason(exc)
        except Exception as exc:
            # A bug or a bad setting: its traceback goes to the log (an ERROR, for the
            # alerts), and the worker is started again as for a database loss, so a
            # failure that passes does not leave the webhooks stopped.
            logger.exception("The webhook worker failed.")
            reason = stop_reason(exc)
        if stopping.is_set():
            break
        now = loop.time()
        if now - started >= STEADY_SECONDS:  # it ran well: an outage starts now
            delay, outage_started = 1, now
        elif outage_started is None:  # it has not run steadily since it started
            outage_started = started
        down = now - outage_started
        if down < OUTAGE_ERROR_SECONDS:
            logger.warning("The webhook worker stopped (%s); it starts again in %s s.",
                           reason, delay)  # fmt: skip
        else:
            logger.error("The webhook worker stopped (%s) and has not run steadily for %d s: "
                         "no webhook is sent meanwhile. It starts again in %s s.",
                         reason, down, delay)  # fmt: skip
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)


def stop_reason(exc: BaseException) -> str:
    """The error on one line, procrastinate's wrapper left out ("ConnectorException:
    Database error." named no cause)."""
    if isinstance(exc, ConnectorException) and exc.__cause__ is not None:
        exc = exc.__cause__
    return " ".join(f"{type(exc).__name__}: {exc}".split())


async def run_worker(worker_options: dict) -> None:
    async with app.open_async():
        await app.run_worker_async(**worker_options)
