"""Periodic jobs of the project's plumbing (rate counters, the admin's sessions, the task
queue's own jobs), run by the worker (procrastinate) instead of cron."""

from asgiref.sync import async_to_sync
from django.contrib.sessions.models import Session
from django.utils import timezone
from procrastinate.contrib.django import app

from omnitron.db.pruning import delete_in_batches

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
    """Delete the admin's expired sessions (as Django's clearsessions, in batches):
    nothing else does, and a session row is written for every admin login."""
    delete_in_batches(Session.objects.filter(expire_date__lt=timezone.now()))


@app.periodic(cron="41 3 * * *")  # daily
@app.task(queue="maintenance", queueing_lock="remove_ended_jobs")
def remove_ended_jobs(timestamp: int) -> None:
    """Delete the jobs that failed, were cancelled or aborted, ENDED_JOBS_KEPT_HOURS
    after they ended (a lane job whose worker stalled, a prune that failed): nothing
    else does. A successful job is deleted as it ends (the worker's `delete_jobs`), and
    a webhook delivery's state is its own row, not its job's. One statement
    (procrastinate's), over the jobs that stayed: successful ones never do."""
    async_to_sync(app.job_manager.delete_old_jobs)(
        nb_hours=ENDED_JOBS_KEPT_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
