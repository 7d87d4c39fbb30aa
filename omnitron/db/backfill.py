"""Giving a large live table a new NOT NULL column, for migrations, without stopping
the shop: the rows are filled in batches of their own short transactions, so
captures and imports go on meanwhile, and NOT NULL is set without scanning the
table under a lock that blocks them.

The order of a migration that uses these (orders/0008, capture/0007):
1. the column is added, nullable (no rewrite, no scan);
2. a trigger fills it in every row written from then on, whatever code writes it
   (the code of the release before keeps running while the migration does);
3. `fill_in_batches` fills the rows that were there before;
4. `set_not_null`;
5. `create_index_concurrently`, for the index that reads it.
A step that fails can be run again: each one is idempotent. The steps that read the
whole table run without the connection's statement timeout (DB_STATEMENT_TIMEOUT_MS
is meant for requests: 15 s by default).

Migrations that have landed import these functions, and a migration never changes
once it has landed: change what a function here does only in a way every migration
that uses it still wants, and add a new function for anything else."""

import time

import psycopg.errors
from django.db import OperationalError, transaction

BATCH = 10_000
# An exclusive lock is waited for a third of the app's lock_timeout at a time
# (DB_LOCK_TIMEOUT_MS, the connection's own), at most LOCK_WAIT_MS (lock_wait_ms): a capture queues
# behind a waiting ALTER, and with 10 s of waiting behind a long reader (a backup, a
# report) every capture of those seconds answered 409 order_locked. It is tried
# again, LOCK_TRIES times.
LOCK_WAIT_MS = 1000
LOCK_TRIES = 30
LOCK_PAUSE = 0.5  # seconds between tries: the queued captures go through meanwhile
DEADLOCK_MARGIN_MS = 100
# CREATE (and DROP) INDEX CONCURRENTLY lock nothing a capture waits for, then wait for
# every transaction older than the build to end (a backup, a report): that wait holds
# no one up, so it is not cut at the app's lock_timeout. Cut at 3 s, a build behind a
# 40-second report failed (an outside test upgrading a live shop), leaving an INVALID
# index and, in events/0006, a migration that could not be run again (its column was
# added). After this long the step fails.
INDEX_BUILD_WAIT_MS = 30 * 60 * 1000


def fill_in_batches(connection, *, table: str, update: str, around: tuple = ((), ())):
    """Run `update` for each range of `BATCH` primary keys of `table`, each range in
    its own transaction. `update` names the range as `%(low)s` and `%(high)s`
    (inclusive). `around` is the statements to run before and after it, inside that
    transaction."""
    before, after = around
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {table}")
        low, high = cursor.fetchone()
    if low is None:
        return
    for start in range(low, high + 1, BATCH):
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for statement in before:
                cursor.execute(statement)
            cursor.execute(update, {"low": start, "high": start + BATCH - 1})
            for statement in after:
                cursor.execute(statement)


def set_not_null(connection, *, table: str, column: str):
    """SET NOT NULL without scanning the table under an exclusive lock: PostgreSQL
    skips the scan when a validated CHECK already proves it, and validating a CHECK
    scans under a lock that lets reads and writes go on. The exclusive locks taken
    here are each held for a moment; each is waited for lock_wait_ms() at a time, up
    to LOCK_TRIES times, then the step fails (and the migration can be run again)."""
    check = f"{table}_{column}_not_null"
    for statement in (
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}",
        f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID",
        f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}",
        f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL",
        f"ALTER TABLE {table} DROP CONSTRAINT {check}",
    ):
        with_short_lock_waits(connection, statement)


def lock_wait_ms(connection) -> int:
    """How long one try waits for an exclusive lock: a third of the app's lock_timeout
    (at most LOCK_WAIT_MS), and longer than deadlock_timeout, since only after that
    does PostgreSQL cancel an autovacuum that holds the table: one that the fill's
    updates set off outlasted 15 tries of exactly deadlock_timeout, each holding the
    captures queued behind it for a second. Never as long as the app's own
    lock_timeout, which the captures queued behind a try wait for."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout')::interval, "
            "current_setting('deadlock_timeout')::interval"
        )
        app_wait, deadlock = (round(value.total_seconds() * 1000) for value in cursor.fetchone())
    if not app_wait:  # 0: none
        return max(LOCK_WAIT_MS, deadlock + DEADLOCK_MARGIN_MS)
    wait = max(min(LOCK_WAIT_MS, app_wait // 3), deadlock + DEADLOCK_MARGIN_MS)
    return max(min(wait, app_wait - DEADLOCK_MARGIN_MS), 10)


def with_short_lock_waits(connection, statement: str) -> None:
    """Run `statement`, which takes an exclusive lock for a moment, in its own
    transaction, waiting lock_wait_ms() at a time for the lock, up to LOCK_TRIES
    times: captures queued behind a waiting try go through between tries."""
    wait = lock_wait_ms(connection)
    for attempt in range(1, LOCK_TRIES + 1):
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {wait}")
                cursor.execute("SET LOCAL statement_timeout = 0")
                cursor.execute(statement)
            return
        except OperationalError as exc:
            if attempt == LOCK_TRIES or not isinstance(
                exc.__cause__, psycopg.errors.LockNotAvailable
            ):
                raise
        time.sleep(LOCK_PAUSE)


def create_index_concurrently(schema_editor, model, index):
    """CREATE INDEX CONCURRENTLY that can be run again. A build that failed or was
    cancelled leaves an INVALID index of its name, on which a plain second run would
    fail ("already exists"): it is dropped and built again. A valid one is kept."""
    create = str(index.create_sql(model, schema_editor, concurrently=True))
    _build_concurrently(schema_editor.connection, index.name, create)


def _build_concurrently(connection, name: str, create: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        found = cursor.fetchone()
    if found and found[0]:
        return
    _concurrently(connection, *([f'DROP INDEX CONCURRENTLY "{name}"'] if found else []), create)


def drop_index_concurrently(schema_editor, index):
    _concurrently(schema_editor.connection, f'DROP INDEX CONCURRENTLY IF EXISTS "{index.name}"')


def _concurrently(connection, *statements: str) -> None:
    """Run CONCURRENTLY statements, each its own transaction, without the connection's
    statement timeout and waiting up to INDEX_BUILD_WAIT_MS for the transactions they
    wait for."""
    with connection.cursor() as cursor:
        # For the session, not SET LOCAL as elsewhere: CONCURRENTLY cannot run inside a
        # transaction. Reset after, as the connection goes on to the next migration.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(f"SET lock_timeout = {INDEX_BUILD_WAIT_MS}")
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.execute("RESET statement_timeout")
            cursor.execute("RESET lock_timeout")


def drop_indexes_concurrently(indexes: dict[str, str]) -> list:
    """For a migration's database operations: drop each index, `{name: 'table
    (columns)'}`, CONCURRENTLY (writes go on) and IF EXISTS (a step that failed can be
    run again); reversed, each is built again CONCURRENTLY, as create_index_concurrently
    does (an INVALID one a failed build left is built again). Use it with
    SeparateDatabaseAndState: Django's own AlterField(db_index=False) also drops and
    re-adds the foreign key beside the index, which checks every row under a lock."""
    from django.db import migrations

    return [migrations.RunPython(_drop_step(name), _build_step(name, on))
            for name, on in indexes.items()]  # fmt: skip


def create_indexes_concurrently(indexes: dict[str, str]) -> list:
    """For a migration's operations, drop_indexes_concurrently reversed: build each
    index, `{name: 'table (columns)'}`, CONCURRENTLY (an INVALID one a failed build left
    is built again); reversed, each is dropped CONCURRENTLY. For another app's table (one
    of Django's), on which a migration of this project cannot AddIndexConcurrently."""
    from django.db import migrations

    return [migrations.RunPython(_build_step(name, on), _drop_step(name))
            for name, on in indexes.items()]  # fmt: skip


def _drop_step(name: str):
    def drop(apps, schema_editor):
        _concurrently(schema_editor.connection, f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')

    return drop


def _build_step(name: str, on: str):
    def build(apps, schema_editor):
        create = f'CREATE INDEX CONCURRENTLY "{name}" ON {on}'
        _build_concurrently(schema_editor.connection, name, create)

    return build
