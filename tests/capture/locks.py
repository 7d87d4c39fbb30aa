"""Hold PostgreSQL row locks from a connection of the test's own, to make a capture
wait exactly where a concurrent one would."""

import contextlib
import threading
import time

import psycopg
from django.db import connection


def _connect():
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"])


@contextlib.contextmanager
def holding_order_lock(order):
    """Lock the order's row FOR UPDATE until the block ends."""
    conn = _connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM orders_order WHERE id = %s FOR UPDATE", [order.pk])
        yield
    finally:
        conn.rollback()
        conn.close()


def in_a_thread(call):
    """Start `call` in a thread with a database connection of its own (closed when it
    ends), as another app process would run it; returns a function that waits for it
    and answers what `call` returned."""
    results = {}

    def run():
        try:
            results["value"] = call()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()

    def result(timeout: float = 30):
        thread.join(timeout=timeout)
        return results["value"]

    return result


@contextlib.contextmanager
def committed_once_waited_for(sql: str, params: list):
    """Run `sql` in a transaction of the test's own, which keeps the rows it wrote
    locked; what the block starts waits for them, and the transaction commits once a
    backend waits (the block's work then goes on against the committed rows)."""
    conn = _connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
        yield
        wait_for_lock_waiters(1)
        conn.commit()
    finally:
        conn.close()


def wait_for_lock_waiters(count: int, timeout: float = 10) -> None:
    """Wait until `count` backends are waiting for a row lock."""
    conn = _connect()
    conn.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0] >= count:
                    return
            time.sleep(0.02)
    finally:
        conn.close()
    raise TimeoutError(f"{count} lock waiter(s) never appeared")
