"""SQL that records events inside another statement: the change, its event, and the
jobs that will deliver the event all commit together or not at all, in one round
trip (capture/sql.py folds these into the capture's write)."""

from .models import (
    LANES_PER_SUBSCRIPTION,
    DeliveryState,
    Event,
    WebhookDelivery,
    WebhookSubscription,
)

EVENTS = Event._meta.db_table
DELIVERIES = WebhookDelivery._meta.db_table
SUBSCRIPTIONS = WebhookSubscription._meta.db_table
EVENT_SEQUENCE = f"{EVENTS}_seq"  # created by migration 0002
# The state the due deliveries' partial indexes (delivery_due_idx, delivery_lane_due_idx) are on.
PENDING = DeliveryState.PENDING.value


PROCRASTINATE_JOBS = "procrastinate_jobs"
WEBHOOK_QUEUE = "webhooks"  # the lanes' jobs (events/tasks.py)
DELIVER_LANE_TASK = "events.tasks.deliver_lane"  # their task's name (events/tasks.py)

# Whether a lane's job waits in the webhook queue that could run now (its lane's job is
# not running): an idle lane's job ends then, and gives its worker slot up.
LANE_JOB_WAITING = f"""
    SELECT EXISTS (
        SELECT 1 FROM {PROCRASTINATE_JOBS} job
         WHERE job.status = 'todo' AND job.queue_name = %(queue)s
           AND (job.scheduled_at IS NULL OR job.scheduled_at <= now())
           AND NOT EXISTS (SELECT 1 FROM {PROCRASTINATE_JOBS} running
                            WHERE running.lock = job.lock AND running.status = 'doing'))"""


def lane_jobs_sql(source: str, sending: str = "sub.timeouts_in_a_row = 0") -> str:
    """Queue a delivery job (queue %(queue)s, task %(task)s) for each lane in `source`
    (rows of subscription_id, lane) that has no job queued or running and whose
    subscription (`sub`) is `sending`: by default, one whose receiver has not timed out
    since it last answered (the dispatcher queues the others' lanes). A lane's job
    sends every due delivery of its lane and keeps looking for more while they come
    (events/delivery.py), so under load a lane has one long job, and a capture queues
    nothing. Procrastinate's `lock` lets one job per lane run at a time, so no delivery
    is ever sent twice at once. A delivery written just as its lane's job ends is
    picked up by the dispatcher a second later. Written against procrastinate's table
    (`ON CONFLICT DO NOTHING` on its unique queueing lock), which its defer function
    cannot do."""
    return f"""
        INSERT INTO {PROCRASTINATE_JOBS} (queue_name, task_name, lock, queueing_lock, args)
        SELECT DISTINCT %(queue)s, %(task)s, name, name,
               jsonb_build_object('subscription_id', sub.id, 'lane', lane)
          FROM {source} s JOIN {SUBSCRIPTIONS} sub ON sub.id = s.subscription_id,
               LATERAL (SELECT 'webhook:' || sub.id || ':' || lane AS name) n
         WHERE {sending} AND NOT EXISTS (SELECT 1 FROM {PROCRASTINATE_JOBS} job
                                         WHERE job.lock = name AND job.status = 'doing')
        ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING"""


def record_event_params(event_type: str) -> dict:
    """The parameters of record_event_ctes' SQL for events of this type, but %(now)s."""
    return {"event_type": event_type, "queue": WEBHOOK_QUEUE, "task": DELIVER_LANE_TASK}


def record_event_ctes(source: str) -> str:
    """CTEs (to follow a `WITH`) that record an event of type %(event_type)s at
    %(now)s for each row of the CTE `source` (columns channel_id, object_id,
    snapshot), a delivery due now for each active subscription that wants it, and a
    job for each lane of those deliveries that has none queued: the change, its event
    and their delivery commit together or not at all, in the caller's round trip.
    Its parameters but %(now)s: record_event_params."""
    return f"""
    event AS (
        INSERT INTO {EVENTS} (id, seq, txid, type, created_at, channel_id, object_id, snapshot)
        SELECT 'evt_' || lpad(to_hex(n.txid), 16, '0') || lpad(to_hex(n.seq), 16, '0'),
               n.seq, n.txid, %(event_type)s, %(now)s, s.channel_id, s.object_id, s.snapshot
          FROM {source} s,
               LATERAL (SELECT pg_current_xact_id()::text::bigint AS txid,
                               nextval('{EVENT_SEQUENCE}') AS seq) n
        RETURNING id, channel_id
    ),
    delivery AS (
        INSERT INTO {DELIVERIES} (event_id, subscription_id, state, attempts, created_at,
                                  next_attempt_at, last_outcome)
        SELECT event.id, sub.id, '{PENDING}', 0, %(now)s, %(now)s, ''
          FROM event
          JOIN {SUBSCRIPTIONS} sub
            ON sub.is_active AND %(event_type)s = ANY(sub.event_types)
           AND (cardinality(sub.channel_ids) = 0 OR event.channel_id = ANY(sub.channel_ids))
        RETURNING subscription_id, mod(id, {LANES_PER_SUBSCRIPTION}) AS lane
    ),
    lane_job AS ({lane_jobs_sql("delivery")})"""


# The lanes with deliveries due now, for the worker's dispatcher (retries, and lanes
# whose job a dead worker held). Of a subscription whose receiver timed out: none while
# it is paused, then only the lane of its first due delivery (by next attempt, then
# id), which probes the receiver (events/delivery.py's _due picks the same one). Read
# first on the pending deliveries' index (subscription, next attempt): the oldest by
# id read every due delivery of the subscription, 17 ms at 110,000 and growing.
FIRST_DUE = f"""(SELECT id FROM {DELIVERIES} WHERE subscription_id = sub.id
                  AND state = '{PENDING}' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at, id LIMIT 1)"""
_PROBING = f"sub.paused_until <= now() AND lane = mod({FIRST_DUE}, {LANES_PER_SUBSCRIPTION})"
# Each lane of each active subscription looks for one due delivery on an index (a
# LIMIT 1, which the planner does not turn into a join over every due delivery, as it
# did an EXISTS): reading every due delivery cost the every-second dispatcher 145 ms
# at 557,000 held back by paused receivers (an outside test), and grew with them;
# 0.1 ms at 550,000 now (EXPLAIN ANALYZE, a /tmp script, 2026-11-30).
QUEUE_DUE_LANES = f"""
    WITH due AS (
        SELECT sub.id AS subscription_id, lane
          FROM {SUBSCRIPTIONS} sub, generate_series(0, {LANES_PER_SUBSCRIPTION - 1}) AS lane,
               LATERAL (SELECT 1 FROM {DELIVERIES} d
                         WHERE d.subscription_id = sub.id AND d.state = '{PENDING}'
                           AND d.next_attempt_at <= now()
                           AND mod(d.id, {LANES_PER_SUBSCRIPTION}) = lane
                         LIMIT 1) AS one_due
         WHERE sub.is_active
    )
    {lane_jobs_sql("due", f"(sub.timeouts_in_a_row = 0 OR ({_PROBING}))")}"""


# A batch of attempts' outcomes, in one statement: of the deliveries still as the job
# read them (pending, with one attempt fewer), whose ids it returns. One that changed
# meanwhile was sent and recorded by another job of its lane (this one's worker froze
# past WEBHOOK_STALLED_SECONDS): its record stays that job's.
RECORD_OUTCOMES = f"""
    UPDATE {DELIVERIES} d
       SET attempts = o.attempts, state = o.state, delivered_at = o.delivered_at,
           next_attempt_at = o.next_attempt_at, failed_at = o.failed_at,
           last_outcome = o.outcome
      FROM unnest(%(ids)s::bigint[], %(attempts)s::int[], %(states)s::text[],
                  %(delivered_at)s::timestamptz[], %(next_attempt_at)s::timestamptz[],
                  %(failed_at)s::timestamptz[], %(outcomes)s::text[])
           AS o(id, attempts, state, delivered_at, next_attempt_at, failed_at, outcome)
     WHERE d.id = o.id AND d.state = '{PENDING}' AND d.attempts = o.attempts - 1
    RETURNING d.id"""

# Whether a job still runs: one ended as stalled (its worker gave no sign of life for
# WEBHOOK_STALLED_SECONDS) no longer holds its lane, whose next job may be running.
JOB_RUNNING = f"""
    SELECT EXISTS (SELECT 1 FROM {PROCRASTINATE_JOBS} WHERE id = %(id)s AND status = 'doing')"""


# Events of finished transactions (every transaction with a smaller id than the
# oldest one running has finished: the events those wrote are final, and no event the
# feed has not served yet can sort before them), and the reader's own.
SETTLED = """(txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
              OR txid = pg_current_xact_id_if_assigned()::text::bigint)"""
