"""Periodic jobs of the API plumbing, run by the worker (procrastinate) instead of cron."""

from procrastinate.contrib.django import app

from .throttling import rate_counters_prune


@app.periodic(cron="23 * * * *")  # hourly
@app.task(queue="maintenance", queueing_lock="prune_rate_counters")
def prune_rate_counters(timestamp: int) -> int:
    """Delete rate limit counters untouched for two days."""
    return rate_counters_prune()
