"""Periodic jobs of the capture app, run by the worker (procrastinate) instead of cron."""

from procrastinate.contrib.django import app

from .idempotency import idempotency_prune


@app.periodic(cron="17 * * * *")  # hourly
@app.task(queue="maintenance", queueing_lock="prune_idempotency_keys")
def prune_idempotency_keys(timestamp: int) -> int:
    """Delete Idempotency-Key answers past their IDEMPOTENCY_KEY_TTL_HOURS."""
    return idempotency_prune()
