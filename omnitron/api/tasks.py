"""Periodic jobs of the API plumbing, run by the worker (procrastinate) instead of cron."""

from importlib import import_module

from asgiref.sync import async_to_sync
from django.conf import settings
from procrastinate.contrib.django import app

from .throttling import rate_counters_prune

# Failed, cancelled and aborted jobs are kept this long for a look, then removed.
ENDED_JOBS_KEPT_HOURS = 7 * 24


@app.periodic(cron="23 * * * *")  # hourly
@app.task(queue="maintenance", queueing_lock="prune_rate_counters")
def prune_rate_counters(timestamp: int) -> int:
    """Delete rate limit counters untouched for two days."""
    return rate_counters_prune()


@app.periodic(cron="29 * * * *")  # hourly
@app.task(queue="maintenance", queueing_lock="clear_expired_sessions")
def clear_expired_sessions(timestamp: int) -> None:
    """Delete the admin's expired sessions (Django's clearsessions): nothing else does,
    and a session row is written for every admin login."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


@app.periodic(cron="41 3 * * *")  # daily
@app.task(queue="maintenance", queueing_lock="remove_ended_jobs")
def remove_ended_jobs(timestamp: int) -> None:
    """Delete the jobs that failed, were cancelled or aborted, ENDED_JOBS_KEPT_HOURS
    after they ended (a lane job whose worker stalled, a prune that failed): nothing
    else does. A successful job is deleted as it ends (the worker's `delete_jobs`), and
    a webhook delivery's state is its own row, not its job's."""
    async_to_sync(app.job_manager.delete_old_jobs)(
        nb_hours=ENDED_JOBS_KEPT_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
