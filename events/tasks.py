"""The worker's tasks (procrastinate, PostgreSQL-based), run by `python manage.py
webhook_worker` (procrastinate's worker, started again when it loses the database).
A capture's statement queues a job for each lane of its deliveries (events/sql.py); a
job sends every due delivery of its lane; a dispatcher queues the lanes whose retries
fall due."""

from django.conf import settings
from django.db import connection
from procrastinate.contrib.django import app
from procrastinate.jobs import Status

from .delivery import webhook_lane_flush
from .sql import DELIVER_LANE_TASK, QUEUE_DUE_LANES, WEBHOOK_QUEUE


# Named as procrastinate would name it anyway: the capture's statement queues its jobs by name.
@app.task(queue=WEBHOOK_QUEUE, name=DELIVER_LANE_TASK, pass_context=True)
def deliver_lane(context, subscription_id: int, lane: int) -> int:
    """Every due delivery of one lane of one subscription (events/delivery.py), while
    this job holds the lane."""
    return webhook_lane_flush(subscription_id=subscription_id, lane=lane, job_id=context.job.id)


@app.periodic(cron="* * * * * *")  # every second
@app.task(queue="maintenance", queueing_lock="dispatch_due_deliveries")
def dispatch_due_deliveries(timestamp: int) -> None:
    """Queue the lanes with deliveries due: retries whose time has come, redeliveries,
    and lanes whose job a dead worker held."""
    with connection.cursor() as cursor:
        cursor.execute(QUEUE_DUE_LANES, {"queue": WEBHOOK_QUEUE, "task": deliver_lane.name})


@app.periodic(cron="* * * * * */10")  # every 10 seconds
@app.task(queue="maintenance", queueing_lock="release_stalled_jobs", pass_context=True)
async def release_stalled_jobs(context, timestamp: int) -> None:
    """Jobs of a worker that died (no heartbeat for WEBHOOK_STALLED_SECONDS) are ended
    as failed, which frees their lane: the dispatcher queues it again, and its
    deliveries, still pending, are sent again with the same webhook-id. (Retrying the
    job itself could collide with the lane's next queued job.)"""
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.WEBHOOK_STALLED_SECONDS
    ):
        await manager.finish_job(job, status=Status.FAILED, delete_job=False)
