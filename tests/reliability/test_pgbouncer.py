"""PgBouncer in transaction mode (deploy/pgbouncer/pgbouncer.ini) between the app and
PostgreSQL: why the app needs DB_TIMEOUTS_ON_ROLE=1 and DB_PREPARED_STATEMENTS=0
there, and that the timeouts set on the role really hold a request through it.
tests/reliability/test_scale_out.py runs the concurrent captures through it too."""

import time

import psycopg
import pytest
import requests

from capture.models import IdempotencyRecord
from omnitron.settings.base import database_options
from tests.capture.locks import holding_order_lock
from tests.factories import make_api_user, make_order
from tests.live import POOLED_LOCK_TIMEOUT_MS, gunicorn, pgbouncer, server_env
from tests.reliability.helpers import assert_captures_add_up

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_held_order_lock_answers_409_order_locked_through_pgbouncer(channel):
    """No `options` reaches PostgreSQL through PgBouncer: the lock_timeout that turns a
    long wait into 409 order_locked comes from the role."""
    order = make_order(channel=channel, items=2)
    token = make_api_user(channels=[channel]).auth_token.key
    body = {"order": order.number, "order_items": [{"pk": order.items.first().pk}]}
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": "through-pgbouncer"}
    with (
        pgbouncer() as (overrides, _),
        gunicorn(workers=1, env=server_env(**overrides)) as (base, _),
    ):
        with psycopg.connect(overrides["DATABASE_URL"], prepare_threshold=None) as conn:
            timeouts = conn.execute("SELECT current_setting('lock_timeout'), "
                                    "current_setting('statement_timeout')").fetchone()  # fmt: skip
        assert timeouts == ("2s", "15s")
        url = f"{base}/api/v1/capture-order/"
        with holding_order_lock(order):
            started = time.monotonic()
            response = requests.post(url, json=body, headers=headers, timeout=30)
            waited = time.monotonic() - started
        assert (response.status_code, response.json()["code"]) == (409, "order_locked")
        assert POOLED_LOCK_TIMEOUT_MS / 1000 <= waited < 10
        assert not IdempotencyRecord.objects.exists()
        retry = requests.post(url, json=body, headers=headers, timeout=30)
        assert retry.status_code == 200
    assert_captures_add_up()


def test_pgbouncer_refuses_options_and_the_app_sends_none_with_timeouts_on_the_role(
    monkeypatch,
):
    refused = pytest.raises(psycopg.OperationalError, match="unsupported startup parameter")
    with pgbouncer() as (overrides, _), refused:
        psycopg.connect(overrides["DATABASE_URL"], options="-c lock_timeout=2000")
    options = database_options(lock_timeout_ms=2000, statement_timeout_ms=15000)
    assert options["options"] == (
        "-c lock_timeout=2000 -c statement_timeout=15000 -c client_connection_check_interval=1000 "
        "-c jit=off"
    )
    monkeypatch.setenv("DB_TIMEOUTS_ON_ROLE", "1")
    assert "options" not in database_options(lock_timeout_ms=2000, statement_timeout_ms=15000)


def test_prepared_statements_break_across_pooled_connections_unless_turned_off():
    """Two clients sharing one server connection: psycopg's prepared statements (what
    DB_PREPARED_STATEMENTS=1 turns on) collide; with prepare_threshold None (=0) they
    do not."""
    with pgbouncer(pool_size=1) as (overrides, _):
        url = overrides["DATABASE_URL"]
        with psycopg.connect(url, autocommit=True, prepare_threshold=0) as first:
            first.execute("SELECT 1 WHERE %s", [True])
            with (
                psycopg.connect(url, autocommit=True, prepare_threshold=0) as second,
                pytest.raises(psycopg.errors.DuplicatePreparedStatement),
            ):
                second.execute("SELECT 2 WHERE %s", [True])
        clients = [psycopg.connect(url, autocommit=True, prepare_threshold=None) for _ in range(2)]
        try:
            for n in range(10):
                assert clients[n % 2].execute("SELECT %s::int", [n]).fetchone() == (n,)
        finally:
            for client in clients:
                client.close()
