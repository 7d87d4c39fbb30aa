"""Deleting what has expired in batches, each its own short transaction on an index:
a backlog of millions (a worker down for days, an upgrade from a release that pruned
by cron) goes as surely as an hour's worth. One DELETE of two million expired
Idempotency-Key answers ran past the connection's 15 s statement timeout and deleted
nothing, every hour, and the table only grew."""

from django.db import connection, transaction

PRUNE_BATCH = 10_000


def delete_sql_in_batches(statement: str, params: dict) -> int:
    """Run `statement`, a DELETE of at most %(batch)s rows (PRUNE_BATCH), each run its
    own transaction, until one deletes fewer; for tables the ORM may not write (the
    task queue's). Returns how many."""
    deleted, batch = 0, PRUNE_BATCH
    while batch == PRUNE_BATCH:  # a batch short of it was the last
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute(statement, {**params, "batch": PRUNE_BATCH})
            batch = cursor.rowcount
        deleted += batch
    return deleted


def delete_in_batches(queryset) -> int:
    """Delete the rows of `queryset` (filtered on an indexed column), PRUNE_BATCH at a
    time, each batch a transaction of its own; returns how many. A row is deleted only
    if it still matches when its batch is deleted."""
    deleted = 0
    while True:
        with transaction.atomic(durable=True):
            pks = list(queryset.values_list("pk", flat=True)[:PRUNE_BATCH])
            if not pks:
                return deleted
            count, _ = queryset.filter(pk__in=pks).delete()
        deleted += count
