"""The worker's tasks (procrastinate, PostgreSQL-based: `python manage.py procrastinate
worker`). A delivery's first job is queued by the capture's own statement
(events/sql.py); each retry is a job scheduled by the attempt before it."""

from django.conf import settings
from procrastinate.contrib.django import app

from .services import webhook_delivery_attempt

WEBHOOK_QUEUE = "webhooks"


@app.task(queue=WEBHOOK_QUEUE)
def deliver(delivery_id: int) -> None:
    """One attempt of one delivery (events/services.py)."""
    webhook_delivery_attempt(delivery_id=delivery_id)


@app.periodic(cron="* * * * * */10")  # every 10 seconds
@app.task(queue="maintenance", queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context, timestamp: int) -> None:
    """Jobs of a worker that died (no heartbeat for WEBHOOK_STALLED_SECONDS) run
    again: a delivery killed mid-attempt is sent again, with the same webhook-id."""
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.WEBHOOK_STALLED_SECONDS
    ):
        await manager.retry_job(job)
