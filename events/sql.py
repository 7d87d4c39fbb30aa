"""SQL that records events inside another statement: the change, its event, and the
jobs that will deliver the event all commit together or not at all, in one round
trip (capture/sql.py folds these into the capture's write)."""

from .models import Event, WebhookDelivery, WebhookSubscription

EVENTS = Event._meta.db_table
DELIVERIES = WebhookDelivery._meta.db_table
SUBSCRIPTIONS = WebhookSubscription._meta.db_table
EVENT_SEQUENCE = f"{EVENTS}_seq"  # created by migration 0001
# Deliveries of one subscription run in at most this many parallel lanes: a slow or
# failing receiver holds a few worker slots at most, never all of them.
LANES_PER_SUBSCRIPTION = 4


def record_event_ctes(source: str) -> str:
    """CTEs (to follow a `WITH`) that record an event of type %(event_type)s at
    %(now)s for each row of the CTE `source` (columns channel_id, object_id,
    snapshot), a pending delivery for each active subscription that wants it, and a
    procrastinate job (queue %(queue)s, task %(task)s) for each delivery, through
    procrastinate's own SQL API. The statement must select from `delivery_job`
    (JOB_COUNT), or PostgreSQL skips it."""
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
                                  last_outcome)
        SELECT event.id, sub.id, 'pending', 0, %(now)s, ''
          FROM event
          JOIN {SUBSCRIPTIONS} sub
            ON sub.is_active AND %(event_type)s = ANY(sub.event_types)
           AND (cardinality(sub.channel_ids) = 0 OR event.channel_id = ANY(sub.channel_ids))
        RETURNING id, subscription_id
    ),
    delivery_job AS (
        SELECT procrastinate_defer_jobs_v1(array_agg(ROW(
                   %(queue)s, %(task)s, 0,
                   'webhook:' || subscription_id || ':' || mod(id, {LANES_PER_SUBSCRIPTION}),
                   NULL, jsonb_build_object('delivery_id', id), NULL
               )::procrastinate_job_to_defer_v1)) AS ids
          FROM delivery
        HAVING count(*) > 0
    )"""


JOB_COUNT = "(SELECT count(*) FROM delivery_job)"


def delivery_lock(subscription_id: int, delivery_id: int) -> str:
    """The procrastinate lock of a delivery's jobs, as record_event_ctes writes it."""
    return f"webhook:{subscription_id}:{delivery_id % LANES_PER_SUBSCRIPTION}"


# Every transaction with a smaller id has finished: the events those wrote are final,
# and no event the feed has not served yet can sort before them.
FINISHED_TRANSACTIONS_BELOW = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
