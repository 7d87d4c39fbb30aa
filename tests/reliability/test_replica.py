"""A read replica (omnitron/db/router.py): a real streaming replica of the test cluster
(`scripts/pg.sh` with PG_PRIMARY_PORT: pg_basebackup -R, hot standby) serves the read
endpoints; the capture, authentication and every write stay on the primary; and a
replica that stops, or dies in the middle of a request, costs no request."""

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from unittest.mock import patch
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from django.db import connection, connections, router, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from omnitron.db import router as db_router
from orders.models import Order
from tests.helpers import capture as post_capture
from tests.helpers import throttle_rates
from tests.live import database_url, free_port, gunicorn, server_env
from tests.reliability.helpers import PG, own_cluster, seed, token_for

pytestmark = pytest.mark.django_db(transaction=True)

READS = ["orders/", "orders/{order}/", "order_items/", "order_items/{item}/", "captures/",
         "captures/{capture}/", "events/"]  # fmt: skip
APP_TABLES = ('"orders_', '"capture_', "orders_", "capture_")


@pytest.fixture(scope="module")
def replica(django_db_setup, django_db_blocker):
    """A hot standby of the test cluster, with pg_stat_statements in the test database
    (created on the primary, replicated): yields (pg.sh's environment, its URL)."""
    s = connection.settings_dict
    with django_db_blocker.unblock(), psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    try:
        with own_cluster(PG_PRIMARY_PORT=str(s["PORT"]), PG_DATABASE=s["NAME"]) as cluster:
            yield cluster
    finally:
        with psycopg.connect(database_url(), autocommit=True) as conn:
            conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")


@pytest.fixture(autouse=True)
def closed_breaker(monkeypatch):
    monkeypatch.setattr(db_router, "_down_until", 0.0)


def wait_for_replay(replica_url: str, timeout: float = 15) -> None:
    """Until the replica has replayed everything the primary has committed so far. A
    replica is sent the WAL the primary has flushed, and the tests' cluster commits
    asynchronously (scripts/pg.sh, PG_FAST): its WAL writer flushes up to the last
    commit, so a record written after it (a checkpoint's, the background writer's)
    could wait unflushed, and unsent, past the timeout (waiting for the insert position
    failed a clean run), and the flushed position read right after a commit can be
    short of it. A commit with synchronous_commit on of a transaction that wrote WAL
    flushes everything before it; the replica is waited for up to there."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = on")
        cursor.execute("SELECT pg_logical_emit_message(true, 'omnitron-tests', 'flush')")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_flush_lsn()")
        (target,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]:  # fmt: skip
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


def reset_statements(*urls: str) -> None:
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")


def statements(url: str) -> list[str]:
    """The statements this server ran in the test database since the last reset."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND query NOT ILIKE '%%pg_stat_statements%%'"
        ).fetchall()
    return [row[0] for row in rows]


def touches_app_tables(query: str) -> bool:
    return any(table in query for table in APP_TABLES)


@contextlib.contextmanager
def replica_alias(port: int):
    """The "replica" connection and the router in this process, as settings make them
    with DATABASE_REPLICA_URL (the test database, on `port`). The connection is made
    here, not from settings, which Django's test case would refuse."""
    default = connections["default"]
    replica = type(default)({**default.settings_dict, "PORT": port}, db_router.REPLICA)
    connections[db_router.REPLICA] = replica
    try:
        with override_settings(DATABASE_ROUTERS=["omnitron.db.router.ReplicaRouter"]):
            yield replica
    finally:
        replica.close()
        del connections[db_router.REPLICA]


@pytest.fixture
def fallbacks(monkeypatch):
    """The on_fallback hook's calls, counted."""
    calls = []
    monkeypatch.setattr(db_router, "on_fallback", [lambda: calls.append(1)])
    return calls


def test_reads_are_served_by_the_replica_and_captures_by_the_primary(replica):
    _, replica_url = replica
    order = seed(orders=1, items=3, prefix="REPL")[0]
    token = token_for("reader", all_channels=True)
    headers = {"Authorization": f"Token {token}"}
    env = server_env(DATABASE_REPLICA_URL=replica_url, DJANGO_CONN_MAX_AGE=60)
    with gunicorn(workers=1, env=env) as (base, server):
        capture = {"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]}
        keyed = {**headers, "Idempotency-Key": "replica-1"}
        first = requests.post(f"{base}/api/v1/capture-order/", json=capture, headers=keyed)
        assert first.status_code == 200
        wait_for_replay(replica_url)
        reset_statements(database_url(), replica_url)
        captures = requests.get(f"{base}/api/v1/captures/", headers=headers).json()["results"]
        ids = {"order": order["pk"], "item": order["items"][0]["pk"], "capture": captures[0]["pk"]}
        for path in READS:
            response = requests.get(f"{base}/api/v1/{path.format(**ids)}", headers=headers)
            assert response.status_code == 200, (path, response.text)
        events = requests.get(f"{base}/api/v1/events/", headers=headers).json()["results"]
        assert [event["type"] for event in events] == ["order.captured"]
        on_primary, on_replica = statements(database_url()), statements(replica_url)
        assert any(touches_app_tables(query) for query in on_replica)
        for table in ("orders_order", "orders_orderitem", "capture_capture", "events_event"):
            assert any(table in query for query in on_replica), table
        # The primary authenticated every request and stored the rendered event payload,
        # and read nothing of orders or captures.
        assert any("authtoken_token" in query for query in on_primary)
        assert any("UPDATE events_event" in query for query in on_primary)
        assert not any(touches_app_tables(query) for query in on_primary), on_primary

        reset_statements(database_url(), replica_url)
        replay = requests.post(f"{base}/api/v1/capture-order/", json=capture, headers=keyed)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        second = {"order": order["number"], "order_items": [{"pk": order["items"][1]["pk"]}]}
        assert requests.post(f"{base}/api/v1/capture-order/", json=second,
                             headers=headers).status_code == 200  # fmt: skip
        assert any("capture_capture" in query for query in statements(database_url()))
        assert not any(touches_app_tables(query) for query in statements(replica_url))
        log = server.stop()
    reads = [json.loads(line).get("db_reads") for line in log.splitlines()
             if line.startswith("{") and '"GET"' in line]  # fmt: skip
    assert reads
    assert set(reads) == {"replica"}, reads


def test_the_router_reads_from_the_replica_only_where_allowed(replica):
    _, replica_url = replica
    seed(orders=1, items=1, prefix="ROUTE")
    wait_for_replay(replica_url)
    with replica_alias(urlsplit(replica_url).port):
        assert router.db_for_read(Order) == "default"  # not a read view

        def read():
            alias = router.db_for_read(Order)
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                in_recovery = cursor.fetchone()[0]
            with transaction.atomic():
                in_transaction = router.db_for_read(Order)
            return alias, in_recovery, in_transaction, Order.objects.count()

        (alias, in_recovery, in_transaction, count), where = db_router.replica_reads(read)
        assert (alias, in_recovery, where) == ("replica", True, "replica")
        assert in_transaction == "default"
        assert count == 1
        assert router.db_for_write(Order) == "default"


def test_an_unreachable_replica_falls_back_to_the_primary_and_is_counted(fallbacks, caplog,
                                                                         settings):  # fmt: skip
    settings.DB_REPLICA_RETRY_SECONDS = 30
    seed(orders=2, items=1, prefix="DOWN")
    with replica_alias(free_port()):  # nothing listens there
        for _ in range(3):
            numbers, where = db_router.replica_reads(lambda: list(Order.objects.all()))
            assert (len(numbers), where) == (2, "primary_fallback")
    assert len(fallbacks) == 3  # one per request
    warnings = [r for r in caplog.records if r.name == "omnitron.db"]
    assert len(warnings) == 1  # the breaker kept the replica out after the first failure


def backend_killer(replica_url: str) -> tuple[list, Callable]:
    """An execute wrapper under which the replica's server process ends just as the
    first read arrives, and the list it appends that kill's outcome to."""
    killed = []

    def kill_the_backend(execute, sql, params, many, context):
        if not killed:
            pid = context["connection"].connection.info.backend_pid
            with psycopg.connect(replica_url, autocommit=True) as admin:
                killed.append(admin.execute("SELECT pg_terminate_backend(%s, 5000)",
                                            [pid]).fetchone()[0])  # fmt: skip
        return execute(sql, params, many, context)

    return killed, kill_the_backend


def reader_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('reader', all_channels=True)}")
    return client


def test_a_replica_dying_mid_request_is_read_again_from_the_primary(replica, fallbacks,
                                                                    monkeypatch):  # fmt: skip
    _, replica_url = replica
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)  # see replica_alias
    order = seed(orders=1, items=2, prefix="MID")[0]
    wait_for_replay(replica_url)
    client = reader_client()
    killed, kill_the_backend = backend_killer(replica_url)
    with replica_alias(urlsplit(replica_url).port) as replica_connection:
        with replica_connection.execute_wrapper(kill_the_backend):
            response = client.get("/api/v1/orders/")
        assert killed == [True]
        assert response.status_code == 200
        assert [o["number"] for o in response.json()["results"]] == [order["number"]]
        assert len(fallbacks) == 1
        assert client.get("/api/v1/orders/").status_code == 200  # breaker open: primary
        assert len(fallbacks) == 2


def test_a_request_read_again_from_the_primary_counts_once_toward_the_rate_limit(
    replica, monkeypatch
):
    """The request ran again on the primary ran its token statement again, which
    counted it toward the user's limit a second time: a client's second read of a
    limit of two was refused 429 when the replica died under it (helper 119)."""
    _, replica_url = replica
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)  # see replica_alias
    seed(orders=1, items=1, prefix="RATE")
    wait_for_replay(replica_url)
    client = reader_client()
    killed, kill_the_backend = backend_killer(replica_url)
    with throttle_rates(read="2/min"), replica_alias(urlsplit(replica_url).port) as replica_db:
        assert client.get("/api/v1/orders/").status_code == 200  # 1 of 2
        with replica_db.execute_wrapper(kill_the_backend):
            second = client.get("/api/v1/orders/")  # 2 of 2, run twice
        assert killed == [True]
        assert second.status_code == 200, second.content
        assert client.get("/api/v1/orders/").status_code == 429  # 3 of 2


def test_the_csv_export_streams_its_rows_from_the_replica_as_the_rest_of_its_request(replica):
    """The export's count read the replica, its rows the primary: they stream after the
    view has returned, when the request's reads were no longer routed, and the heaviest
    read of the API ran on the primary, in a transaction as long as the stream
    (helper 119)."""
    _, replica_url = replica
    order = seed(orders=1, items=2, prefix="CSV")[0]
    client = reader_client()
    assert post_capture(client, order["number"], [order["items"][0]["pk"]]).status_code == 200
    wait_for_replay(replica_url)
    read = {"default": [], "replica": []}

    def recorder(alias):
        def record(execute, sql, params, many, context):
            read[alias].append(sql)
            return execute(sql, params, many, context)

        return record

    with (
        replica_alias(urlsplit(replica_url).port) as replica_db,
        patch.object(db_router, "replica_configured", lambda: True),
        connection.execute_wrapper(recorder("default")),
        replica_db.execute_wrapper(recorder("replica")),
    ):
        response = client.get("/api/v1/captures/", HTTP_ACCEPT="text/csv")
        body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert order["number"].encode() in body
    item_reads = {alias: [sql for sql in statements if 'FROM "capture_captureitem"' in sql]
                  for alias, statements in read.items()}  # fmt: skip
    assert len(item_reads["replica"]) == 2, item_reads  # the count, then the rows
    assert not item_reads["default"], item_reads["default"]


def test_stopping_the_replica_under_read_traffic_loses_no_request(replica):
    pg_env, replica_url = replica
    order = seed(orders=2, items=2, prefix="STOP")[0]
    token = token_for("reader", all_channels=True)
    wait_for_replay(replica_url)
    env = server_env(DATABASE_REPLICA_URL=replica_url, DJANGO_CONN_MAX_AGE=60,
                     DB_REPLICA_RETRY_SECONDS=1)  # fmt: skip
    outcomes, stop = [], threading.Event()
    with gunicorn(workers=2, env=env) as (base, server):
        ids = {"order": order["pk"], "item": order["items"][0]["pk"]}
        paths = [p for p in READS if "{capture}" not in p]

        def traffic(offset):
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            n = offset
            while not stop.is_set():
                path = paths[n % len(paths)].format(**ids)
                try:
                    outcomes.append(session.get(f"{base}/api/v1/{path}", timeout=30).status_code)
                except requests.RequestException as exc:
                    outcomes.append(repr(exc))
                n += 1

        threads = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            before_stop = len(outcomes)
            subprocess.run([PG, "stop"], env=pg_env, check=True, capture_output=True)
            time.sleep(2)
            during_stop = len(outcomes)
            subprocess.run([PG, "start"], env=pg_env, check=True, capture_output=True)
            time.sleep(2.5)  # the breaker (1 s) closes; reads go back to the replica
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        log = server.stop()

    assert 0 < before_stop < during_stop, "requests were answered before and during the stop"
    assert set(outcomes) == {200}, [o for o in outcomes if o != 200][:5]
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    reads = [line.get("db_reads") for line in lines if line.get("method") == "GET"]
    assert "primary_fallback" in reads, "reads fell back while the replica was down"
    last_fallback = len(reads) - 1 - reads[::-1].index("primary_fallback")
    assert reads[0] == "replica"
    assert "replica" in reads[last_fallback:], "reads went back to the replica once it was up"
    assert any(line["message"].startswith("Read replica unavailable") for line in lines)


def test_the_erps_patch_reads_and_writes_the_primary_while_the_replica_lags(replica):
    """Only GET and HEAD of the read endpoints read from the replica: the ERP's PATCH of an
    order it has just pulled is served from the primary, even with the replica behind
    (replay paused here), where the order does not exist yet."""
    _, replica_url = replica
    env = server_env(DATABASE_REPLICA_URL=replica_url, DJANGO_CONN_MAX_AGE=60)
    with gunicorn(workers=1, env=env) as (base, _):
        wait_for_replay(replica_url)
        with psycopg.connect(replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        try:
            order = seed(orders=1, items=1, prefix="LAG")[0]
            token = token_for("erp", all_channels=True, can_mark_sent=True)
            headers = {"Authorization": f"Token {token}"}
            marked = requests.patch(f"{base}/api/v1/orders/{order['pk']}/",
                                    json={"is_send": True}, headers=headers)  # fmt: skip
            assert marked.status_code == 200, marked.text
            assert marked.json()["is_send"] is True
        finally:
            with psycopg.connect(replica_url, autocommit=True) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
    assert Order.objects.get(pk=order["pk"]).is_send is True
