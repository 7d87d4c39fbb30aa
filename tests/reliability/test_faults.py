"""Faults: PostgreSQL stopping under traffic, a worker killed mid-capture, and the
timeouts that keep a request from waiting forever."""

import json
import os
import signal
import subprocess
import threading
import time

import psycopg
import pytest
import requests
from django.db import connection

from capture.models import Capture, IdempotencyRecord
from orders.models import OrderItem
from scripts.gen_orders import document
from tests.capture.locks import wait_for_lock_waiters
from tests.helpers import PRODUCTION_SECRET_KEY
from tests.live import ROOT, VENV_BIN, gunicorn, server_env, wait_until_ready
from tests.reliability import helpers
from tests.reliability.helpers import PG, assert_captures_add_up, seed, token_for


def worker_pids(master_pid: int, expect: int | None = None) -> set[int]:
    """The gunicorn master's workers (waiting until `expect` of them have started)."""
    deadline = time.monotonic() + 20
    while True:
        out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True)
        pids = {int(pid) for pid in out.stdout.split()}
        if expect is None or len(pids) >= expect or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


@pytest.fixture
def own_cluster():
    """A PostgreSQL cluster of this test's own, to stop and start at will."""
    with helpers.own_cluster(PG_FAST="1", PG_DATABASE="faults") as cluster:
        yield cluster


def test_database_restart_under_traffic_fails_fast_and_recovers(own_cluster):
    pg_env, url = own_cluster
    # Persistent connections, as in production: they must survive the restart.
    env = server_env(DATABASE_URL=url, DJANGO_CONN_MAX_AGE=60)

    def manage(*args, stdin=None):
        return subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=ROOT, env=env,
                              input=stdin, capture_output=True, text=True, check=True).stdout  # fmt: skip

    manage("migrate", "--noinput", "-v", "0")
    created = json.loads(
        manage("import_orders", "-", stdin=json.dumps(document(orders=400, items=1, prefix="F")))
    )["created"]
    token = manage("create_api_user", "wms", "--all-channels").strip()
    outcomes, stop = [], threading.Event()

    with gunicorn(workers=2, env=env) as (base, server):
        workers_before = worker_pids(server.popen.pid, expect=2)

        def traffic():
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            for order in created:
                if stop.is_set():
                    return
                pk = order["items"][0]["pk"]
                started = time.monotonic()
                response = session.post(
                    f"{base}/api/v1/capture-order/",
                    json={"order": order["number"], "order_items": [{"pk": pk}]},
                    headers={"Idempotency-Key": f"fault-{pk}"}, timeout=30,
                )  # fmt: skip
                outcomes.append((time.monotonic() - started, response.status_code,
                                 response.json().get("code"), pk))  # fmt: skip
                time.sleep(0.02)

        thread = threading.Thread(target=traffic)
        thread.start()
        time.sleep(1.5)
        subprocess.run([PG, "stop"], env=pg_env, check=True, capture_output=True)
        down_since = len(outcomes)
        time.sleep(2)
        subprocess.run([PG, "start"], env=pg_env, check=True, capture_output=True)
        up_since = len(outcomes)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            status == 200 for _, status, _, _ in outcomes[up_since:]
        ):
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        thread.join(timeout=60)
        workers_after = worker_pids(server.popen.pid)
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200

    statuses = [status for _, status, _, _ in outcomes]
    assert 200 in statuses[:down_since], "captures succeeded before the stop"
    unavailable = [o for o in outcomes if o[1] == 503]
    assert unavailable, "requests while the database was down answered 503"
    assert {code for _, _, code, _ in unavailable} == {"database_unavailable"}
    assert max(elapsed for elapsed, *_ in unavailable) < 5, "503s must come fast"
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses[up_since:], "the same processes serve again after the restart"
    assert workers_before == workers_after, "no worker was restarted"
    # Every capture that answered 200 is in the database; no other left a trace.
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id FROM orders_orderitem WHERE captured_at IS NOT NULL")
        captured = {row[0] for row in cursor.fetchall()}
    conn.close()
    assert captured == {pk for _, status, _, pk in outcomes if status == 200}
    assert_captures_add_up(url)


def capture_killed_while_waiting(base, server, body, headers) -> bool:
    """Send a capture to a one-worker server, SIGKILL the worker once the capture waits
    on a lock the test holds; whether the client saw its connection fail."""
    failures = []

    def doomed():
        try:
            requests.post(f"{base}/api/v1/capture-order/", json=body, headers=headers,
                          timeout=30)  # fmt: skip
        except requests.RequestException as exc:
            failures.append(exc)

    thread = threading.Thread(target=doomed)
    thread.start()
    wait_for_lock_waiters(1)
    (worker,) = worker_pids(server.popen.pid, expect=1)
    os.kill(worker, signal.SIGKILL)
    thread.join(timeout=30)
    return bool(failures)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_capture_commits_nothing():
    order = seed(orders=1, items=2, prefix="KILL")[0]
    token = token_for("wms", all_channels=True)
    user_id = Capture._meta.get_field("user").related_model.objects.get(username="wms").pk
    pk = order["items"][0]["pk"]
    body = {"order": order["number"], "order_items": [{"pk": pk}]}
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": "crash-1"}
    env = server_env(DB_LOCK_TIMEOUT_MS=30000)
    s = connection.settings_dict

    with gunicorn(workers=1, env=env) as (base, server):
        # An uncommitted row with the capture's own key: the capture does all its
        # writes, then waits on this row to store its answer, just before COMMIT.
        blocker = psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"])
        with blocker.cursor() as cursor:
            cursor.execute(
                "INSERT INTO capture_idempotencyrecord (user_id, key, request_fingerprint, "
                "status_code, response_body, created_at) VALUES (%s, %s, 'x', 200, '{}', now())",
                [user_id, "crash-1"],
            )
        assert capture_killed_while_waiting(base, server, body, headers), "no failure seen"
        blocker.rollback()
        blocker.close()

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'omnitron-capture' AND state LIKE 'idle in transaction%%'"
                )
                if cursor.fetchone()[0] == 0:
                    break
            time.sleep(0.1)
        assert OrderItem.objects.get(pk=pk).captured_at is None
        assert not Capture.objects.exists()
        assert not IdempotencyRecord.objects.exists()

        # gunicorn replaced the worker; the retry captures once, for real.
        wait_until_ready(f"{base}/healthz")
        retry = requests.post(f"{base}/api/v1/capture-order/", json=body, headers=headers,
                              timeout=30)  # fmt: skip
        assert retry.status_code == 200
        assert "Idempotent-Replayed" not in retry.headers
    assert Capture.objects.count() == 1
    assert_captures_add_up()


@pytest.mark.django_db
def test_every_app_connection_has_a_lock_and_a_statement_timeout():
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()[0]
        cursor.execute("SHOW statement_timeout")
        statement_timeout = cursor.fetchone()[0]
    assert lock_timeout == "2s"  # test settings; 3 s by default
    assert statement_timeout == "15s"
    production = subprocess.run(
        [str(VENV_BIN / "python"), "-c",
         "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['OPTIONS']['options'])"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
             "DJANGO_SECRET_KEY": PRODUCTION_SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "example.com"},
    )  # fmt: skip
    assert production.stdout.strip() == (
        "-c lock_timeout=3000 -c statement_timeout=15000 -c client_connection_check_interval=1000 "
        "-c jit=off"
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_its_capture_waits_for_a_lock_commits_nothing():
    """Without an Idempotency-Key the write is one statement in its own transaction:
    killed while it waited for the order's lock, the worker's statement still ran and
    committed once the lock was released, while the client (through nginx) had been
    answered 502 app_unavailable."""
    order = seed(orders=1, items=2, prefix="LOCKKILL")[0]
    token = token_for("wms", all_channels=True)
    pk = order["items"][0]["pk"]
    body = {"order": order["number"], "order_items": [{"pk": pk}]}
    headers = {"Authorization": f"Token {token}"}
    s = connection.settings_dict
    with gunicorn(workers=1, env=server_env(DB_LOCK_TIMEOUT_MS=30000)) as (base, server):
        blocker = psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"])
        with blocker.cursor() as cursor:
            cursor.execute("SELECT id FROM orders_order WHERE number = %s FOR UPDATE",
                           [order["number"]])  # fmt: skip
        assert capture_killed_while_waiting(base, server, body, headers), "no failure seen"
        time.sleep(2.5)  # past client_connection_check_interval
        blocker.rollback()
        blocker.close()
        time.sleep(1)
        assert OrderItem.objects.get(pk=pk).captured_at is None
        assert not Capture.objects.exists()
    assert_captures_add_up()


@pytest.mark.django_db(transaction=True)
def test_a_dead_connection_is_replaced_without_failing_the_request():
    """No health check round trip per request: a request whose reused connection turns
    out dead (here killed by PostgreSQL) reconnects and runs its first statement again."""
    order = seed(orders=1, items=1, prefix="DEAD")[0]
    token = token_for("wms", all_channels=True)
    headers = {"Authorization": f"Token {token}"}
    with gunicorn(workers=1, env=server_env(DJANGO_CONN_MAX_AGE=60)) as (base, _):
        assert requests.get(f"{base}/api/v1/active_user/", headers=headers).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'omnitron-capture' AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        again = requests.get(f"{base}/api/v1/active_user/", headers=headers)
        body = {"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]}
        captured = requests.post(f"{base}/api/v1/capture-order/", json=body, headers=headers)
    assert again.status_code == 200
    assert captured.status_code == 200
