"""Periodic jobs of the project's plumbing (rate counters, the admin's sessions, the task
queue's own jobs), run by the worker (procrastinate) instead of cron."""

from django.contrib.sessions.models import Session
from django.utils import timezone
from procrastinate.contrib.django import app

from omnitron.db.pruning import delete_in_batches, delete_sql_in_batches

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


# Procrastinate's own delete_old_jobs is one statement over every job and event: at
# 1.3 million failed jobs it ran past the 15 s statement timeout and deleted nothing,
# every day after (an outside test). This one deletes a batch at a time.
DELETE_ENDED_JOBS = """
    DELETE FROM procrastinate_jobs WHERE id IN (
        SELECT job.id FROM procrastinate_jobs job
         WHERE job.status IN ('failed', 'cancelled', 'aborted')
           AND (SELECT max(event.at) FROM procrastinate_events event WHERE event.job_id = job.id)
               < now() - make_interval(hours => %(hours)s)
         LIMIT %(batch)s)"""


@app.periodic(cron="41 3 * * *")  # daily
@app.task(queue="maintenance", queueing_lock="remove_ended_jobs")
def remove_ended_jobs(timestamp: int) -> int:
    """Delete the jobs that failed, were cancelled or aborted, ENDED_JOBS_KEPT_HOURS
    after they ended (their last event; a lane job whose worker stalled, a prune that
    failed), in batches, each its own transaction: nothing else does. A successful job
    is deleted as it ends (the worker's `delete_jobs`), and a webhook delivery's state
    is its own row, not its job's. Returns how many."""
    return delete_sql_in_batches(DELETE_ENDED_JOBS, {"hours": ENDED_JOBS_KEPT_HOURS})
