"""Metrics from a live multi-worker gunicorn and a webhook worker, after real traffic:
the numbers add up; /metrics answers only allowed addresses; labels stay bounded;
the shipped dashboard and alert rules parse and use metrics that exist."""

import json
import os
import re
import signal
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import yaml
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from events.models import DeliveryState, Event, WebhookDelivery, WebhookSubscription
from events.services import webhook_deliveries_redeliver, webhook_subscription_create_or_update
from omnitron import metrics_files
from omnitron.db import router as db_router
from tests.events.helpers import receiving
from tests.helpers import capture
from tests.live import ROOT, free_port, gunicorn, manage, server_env, worker
from tests.reliability.helpers import seed, token_for
from tests.test_metrics_files import ended_pid, key, write

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(base: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one scrape."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict, name: str, **labels) -> float:
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and labels.items() <= dict(sample_labels).items())  # fmt: skip


def test_the_numbers_add_up_across_workers_and_processes(tmp_path):
    orders = seed(orders=40, items=2, prefix="METRICS")
    token = token_for("wms", all_channels=True)
    env = server_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path), DJANGO_CONN_MAX_AGE=60,
                     WEBHOOK_STALLED_SECONDS=3)  # fmt: skip
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    with receiving() as receiver, worker(env=env), gunicorn(workers=3, env=env) as (base, _):
        webhook_subscription_create_or_update(url=receiver.url, event_types=["order.captured"])
        capture = f"{base}/api/v1/capture-order/"
        bodies = [{"order": o["number"], "order_items": [{"pk": i["pk"]} for i in o["items"]]}
                  for o in orders]  # fmt: skip
        for n, body in enumerate(bodies):
            headers = {"Idempotency-Key": f"m-{n}"} if n < 10 else {}
            assert session.post(capture, json=body, headers=headers, timeout=10).status_code == 200
        replays = [session.post(capture, json=bodies[n], headers={"Idempotency-Key": f"m-{n}"})
                   for n in range(10)]  # fmt: skip
        refused = [session.post(capture, json=body, timeout=10) for body in bodies[:7]]
        assert session.get(f"{base}/api/v1/orders/99999999/").status_code == 404
        receiver.wait_for(40)
        time.sleep(1)
        samples = scrape(base)
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in replays)
    assert all(r.json()["code"] == "already_captured" for r in refused)
    assert total(samples, "omnitron_captures_total") == 40
    assert total(samples, "omnitron_captured_items_total") == 80
    assert Decimal(str(total(samples, "omnitron_captured_amount_total", currency="try"))) > 0
    assert total(samples, "omnitron_capture_refusals_total", code="already_captured") == 7
    assert total(samples, "omnitron_idempotent_replays_total") == 10
    # One capture at a time: no order changes between a capture's read and its write.
    assert ("omnitron_capture_rereads_total", ()) in samples
    assert total(samples, "omnitron_capture_rereads_total") == 0
    assert total(samples, "omnitron_api_errors_total", code="already_captured", status="400") == 7
    assert total(samples, "omnitron_api_errors_total", code="not_found", status="404") == 1
    captured = total(samples, "omnitron_http_requests_total", route="capture-order",
                     status_class="2xx")  # fmt: skip
    assert captured == 50  # 40 captures and 10 replays
    assert total(samples, "omnitron_http_request_duration_seconds_count",
                 route="capture-order") == 57  # fmt: skip
    assert total(samples, "omnitron_webhook_deliveries_total", outcome="delivered") == 40
    assert total(samples, "omnitron_webhook_delivery_lag_seconds_count") == 40
    assert total(samples, "omnitron_webhook_backlog") == 0
    # Bounded labels: route names, status classes, registered codes; no ids, no numbers.
    routes = {dict(labels).get("route") for (name, labels) in samples
              if name == "omnitron_http_requests_total"}  # fmt: skip
    assert routes <= {"capture-order", "order-detail", "/healthz", "/readyz", "metrics"}
    assert not any(re.search(r"METRICS-|wms", str(labels)) for _, labels in samples)


def workers_of(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def files_of(directory: Path, pid: int) -> list[Path]:
    return list(directory.glob(f"*_{metrics_files.process_name(pid)}.db"))


def replaced(master: int, gone: int, timeout: float = 30) -> set[int]:
    """The master's two workers once `gone` is not one of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = workers_of(master)
        if gone not in workers and len(workers) == 2:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"worker {gone} was not replaced")


def test_ended_processes_leave_their_counts_and_not_their_files(tmp_path):
    """Every process wrote files of its own to PROMETHEUS_MULTIPROC_DIR, kept after it
    ended: every replaced worker and every manage.py command (the image sets the
    directory for all of them) added one or two, and at 4,064 files a scrape took
    230 to 350 ms. An ended process's counts are folded into the archives; the
    directory holds the files of running processes and three archives."""
    env = server_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    with gunicorn(workers=2, env=env) as (base, server):
        master = server.popen.pid

        def healthz_count() -> float:
            return total(scrape(base), "omnitron_http_requests_total", route="/healthz")

        killed, stopped = sorted(replaced(master, gone=0))
        for _ in range(200):  # until each worker has counted requests in its files
            assert requests.get(f"{base}/healthz", headers={"Connection": "close"}).ok
            if all(files_of(tmp_path, pid) for pid in (killed, stopped)):
                break
        else:
            raise AssertionError("a worker served no request")
        before = healthz_count()
        os.kill(killed, signal.SIGKILL)  # as gunicorn's timeout or the OOM killer would
        replaced(master, killed)
        os.kill(stopped, signal.SIGTERM)  # a graceful exit: it folds its own
        workers = replaced(master, stopped)
        assert manage("check", PROMETHEUS_MULTIPROC_DIR=str(tmp_path)).returncode == 0
        for _ in range(5):
            assert requests.get(f"{base}/healthz").ok
        after = healthz_count()
        files = sorted(path.name for path in tmp_path.glob("*.db"))
    assert after == before + 5
    running = {metrics_files.process_name(pid) for pid in {master, *workers}}
    for name in files:
        kind, _, process = name.removesuffix(".db").partition("_")
        assert process in running | {"archive"}, files
    assert {"counter_archive.db", "histogram_archive.db"} <= set(files)


def test_the_webhook_backlog_is_the_pending_deliveries_and_the_oldests_age(
    api_client, order, client
):
    webhook_subscription_create_or_update(url="http://127.0.0.1:9/hook",
                                          event_types=["order.captured"])  # fmt: skip
    for item in order.items.all()[:2]:
        assert capture(api_client, order, [item.pk]).status_code == 200
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    families = text_string_to_metric_families(client.get("/metrics").content.decode())
    samples = {s.name: s.value for family in families for s in family.samples}
    assert samples["omnitron_webhook_backlog"] == 2
    assert 300 <= samples["omnitron_webhook_backlog_oldest_seconds"] < 360
    # An inactive subscription's deliveries are never tried: they paged for ever.
    inactive = webhook_subscription_create_or_update(url="http://127.0.0.1:9/off",
                                                     event_types=["order.captured"])[0]  # fmt: skip
    WebhookDelivery.objects.create(event=Event.objects.first(), subscription=inactive,
                                   created_at=timezone.now() - timedelta(days=3))  # fmt: skip
    WebhookSubscription.objects.filter(pk=inactive.pk).update(is_active=False)
    families = text_string_to_metric_families(client.get("/metrics").content.decode())
    samples = {s.name: s.value for family in families for s in family.samples}
    assert samples["omnitron_webhook_backlog"] == 2
    assert samples["omnitron_webhook_backlog_oldest_seconds"] < 360
    WebhookDelivery.objects.update(state=DeliveryState.DELIVERED)
    families = text_string_to_metric_families(client.get("/metrics").content.decode())
    samples = {s.name: s.value for family in families for s in family.samples}
    assert (
        samples["omnitron_webhook_backlog"],
        samples["omnitron_webhook_backlog_oldest_seconds"],
    ) == (0, 0)


def test_failed_deliveries_are_counted_until_sent_again_or_a_week_old(api_client, order, client):
    """A delivery that failed after every retry is a capture the receiver never heard
    of: counted (for the WebhookDeliveriesFailing alert) until it is sent again."""
    webhook_subscription_create_or_update(url="http://127.0.0.1:9/hook",
                                          event_types=["order.captured"])  # fmt: skip
    for item in order.items.all()[:3]:
        assert capture(api_client, order, [item.pk]).status_code == 200
    first, second, third = WebhookDelivery.objects.order_by("pk")
    # Failed now, however long ago they were created (retries can last weeks), and the
    # third 8 days ago.
    WebhookDelivery.objects.update(state=DeliveryState.FAILED, failed_at=timezone.now(),
                                   created_at=timezone.now() - timedelta(days=30))  # fmt: skip
    WebhookDelivery.objects.filter(pk=third.pk).update(failed_at=timezone.now() - timedelta(days=8))

    def failed():
        families = text_string_to_metric_families(client.get("/metrics").content.decode())
        return {s.name: s.value for f in families for s in f.samples}["omnitron_webhook_failed"]

    assert failed() == 2
    webhook_deliveries_redeliver(deliveries=WebhookDelivery.objects.filter(pk=first.pk))
    assert WebhookDelivery.objects.get(pk=first.pk).failed_at is None
    assert failed() == 1
    WebhookSubscription.objects.update(is_active=False)
    assert failed() == 0


def test_a_made_up_method_is_counted_as_other(client):
    """Labels take bounded values only: a method any client can invent would add a
    series for ever with each new name."""
    assert client.generic("FOOBARQ", "/api/v1/orders/").status_code == 405
    families = text_string_to_metric_families(client.get("/metrics").content.decode())
    methods = {s.labels["method"] for family in families for s in family.samples
               if s.name == "omnitron_http_requests_total"}  # fmt: skip
    assert "FOOBARQ" not in methods
    assert "other" in methods


def test_metrics_answer_only_the_allowed_addresses(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.9.9.9", "172.16.0.0/12"]
    assert client.get("/metrics").status_code == 404  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.9.9.9").status_code == 200
    # A network: a Prometheus container's address on a compose network.
    assert client.get("/metrics", REMOTE_ADDR="172.18.0.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="172.32.0.1").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="not an address").status_code == 404


def test_an_ipv4_client_of_a_server_on_ipv6_is_its_ipv4_address(client, settings):
    """gunicorn bound to `::` sees an IPv4 scraper as ::ffff:127.0.0.1, which was
    outside 127.0.0.1/32: a 404 to the Prometheus the defaults allow."""
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "::1", "172.16.0.0/12"]
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:172.18.0.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.0.0.1").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="::2").status_code == 404
    # A list naming the mapped form, as gunicorn on :: showed the address, still answers.
    settings.METRICS_ALLOWED_IPS = ["::ffff:172.16.0.0/108"]
    assert client.get("/metrics", REMOTE_ADDR="::ffff:172.18.0.5").status_code == 200


def test_a_request_a_proxy_forwarded_is_not_answered_metrics(client):
    """The proxy comes from an allowed address (loopback), and hands the app the
    methods nginx refuses itself (TRACE): its 405 named the metrics' methods to anyone."""
    assert client.get("/metrics").status_code == 200
    for method in ("get", "trace"):
        response = getattr(client, method)("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_metrics_take_only_get_and_head():
    """A POST was Django's CSRF page (HTML, no code); TRACE and OPTIONS answered the
    metrics."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert client.head("/metrics").status_code == 200
    for method in ("post", "put", "delete", "options", "trace"):
        response = getattr(client, method)("/metrics")
        assert response.status_code == 405, method
        assert response.json()["code"] == "method_not_allowed"
        assert response["Allow"] == "GET, HEAD"


def test_metrics_are_scraped_while_the_database_is_down(tmp_path):
    """The backlog gauges read PostgreSQL at scrape time: with it down, /metrics was
    the admin's HTML 503, and the counter the DatabaseUnreachable alert watches was
    never scraped. Now the backlog is left out and the rest is served."""
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    env = server_env(DATABASE_URL=dead, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    with gunicorn(workers=1, env=env) as (base, _):
        answer = requests.get(f"{base}/api/v1/orders/", headers={"Authorization": "Token x"},
                              timeout=10)  # fmt: skip
        assert answer.status_code == 503
        # Readiness probes count too: the alert fires with no traffic but the probes'.
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 503
        metrics = requests.get(f"{base}/metrics", timeout=10)
    assert metrics.status_code == 200
    samples = {s.name: s.value for family in text_string_to_metric_families(metrics.text)
               for s in family.samples}  # fmt: skip
    assert samples["omnitron_database_connection_errors_total"] == 2
    assert "omnitron_webhook_backlog" not in samples


def test_a_read_sent_to_the_primary_instead_of_the_replica_is_counted(client):
    """omnitron/db/router.py calls its on_fallback hooks once per such request."""

    def fallbacks() -> float:
        families = text_string_to_metric_families(client.get("/metrics").content.decode())
        samples = {s.name: s.value for family in families for s in family.samples}
        return samples.get("omnitron_replica_fallbacks_total", 0)

    before = fallbacks()
    for hook in db_router.on_fallback:
        hook()
    assert fallbacks() == before + 1


def test_the_dashboard_and_the_alert_rules_parse_and_use_real_metrics():
    from capture import metrics as capture_metrics
    from events import metrics as events_metrics
    from omnitron import metrics

    modules = (metrics, capture_metrics, events_metrics)
    names = {m._name for module in modules for m in vars(module).values() if hasattr(m, "_name")}
    names |= {family.name for family in events_metrics.BacklogCollector().describe()}
    dashboard = json.loads((ROOT / "deploy" / "monitoring" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load((ROOT / "deploy" / "monitoring" / "alerts.yml").read_text())
    alerts = [r for group in rules["groups"] for r in group["rules"]]
    assert {a["alert"] for a in alerts} >= {"CaptureErrorRateHigh", "CaptureLatencyP99High",
                                            "WebhookBacklogGrowing"}  # fmt: skip
    assert all(a["labels"]["severity"] and a["annotations"]["summary"] for a in alerts)
    used = {re.sub(r"_(bucket|count|sum|total)$", "", n)
            for expr in exprs + [a["expr"] for a in alerts]
            for n in re.findall(r"omnitron_[a-z_]+", expr)}  # fmt: skip
    known = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in names}
    assert used
    assert used <= known, used - known
    assert len(exprs) >= 8


def test_a_scrape_waiting_on_the_database_keeps_no_fold_waiting(tmp_path):
    """A scrape holds the directory's lock, shared, while it runs every collector,
    the webhook backlog's queries too; gunicorn's master folds a killed worker's
    files with the lock exclusive, in its main loop (child_exit). With the deliveries
    table locked (a migration, a VACUUM FULL) each scrape held the lock up to the lock
    timeout, and scrapes that overlap (two Prometheus servers, or two scraping
    workers) held it for as long as the table stayed locked: a killed worker of a
    three-worker server was replaced after 13.6 s of a 15 s lock, and meanwhile the
    master stopped no stuck worker and handled no signal. Only the files need the
    lock, not the database."""
    env = server_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    with gunicorn(workers=2, env=env) as (base, _):
        scrape(base)
        name = metrics_files.process_name(ended_pid())  # a worker just killed
        write(tmp_path / f"counter_{name}.db", {key("requests"): 1})
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOCK TABLE {WebhookDelivery._meta.db_table} IN ACCESS EXCLUSIVE MODE"
                )
            scraping = threading.Thread(target=scrape, args=(base,))
            scraping.start()
            time.sleep(0.5)  # the scrape waits on the table (the tests' lock timeout: 2 s)
            started = time.monotonic()
            metrics_files.fold(str(tmp_path), name)
            waited = time.monotonic() - started
        scraping.join()
    assert waited < 0.5, f"the fold waited {waited:.1f} s for a scrape's database query"
