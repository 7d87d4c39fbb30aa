"""What an operator reads in /metrics and the logs, at the edges the main tests leave:
answers made before a view (app_busy, a method refused), the request id's bounds,
the lines written while a request runs, the probes' level, who may scrape."""

import io
import json
import logging
import re
import time
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from capture.models import Capture
from events.models import WebhookDelivery
from events.services import webhook_subscription_create_or_update
from omnitron.api.middleware import QUEUE_WAIT_LIMIT_SECONDS
from omnitron.limits import MAX_REQUEST_ID_LENGTH
from omnitron.observability import JSONFormatter
from tests.helpers import CAPTURE_URL, capture
from tests.live import ROOT, gunicorn, raw_request


@pytest.fixture
def request_records(caplog):
    caplog.set_level(logging.DEBUG, logger="omnitron.request")
    return lambda: [r for r in caplog.records if r.name == "omnitron.request"]


def scrape(client) -> list:
    response = client.get("/metrics")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.content.decode())
    return [sample for family in families for sample in family.samples]


def value(samples, name, **labels) -> float:
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))  # fmt: skip


def body(order) -> dict:
    return {"order": order.number, "order_items": [{"pk": order.items.first().pk}]}


def test_an_app_busy_answer_is_counted_and_logged_with_its_code(
    api_client, order, client, request_records
):
    """The RequestsQueuedTooLong alert watches omnitron_api_errors_total{code="app_busy"}:
    the 503 is answered before any view, from a plain JSON response."""
    before = value(scrape(client), "omnitron_api_errors_total", status="503", code="app_busy")
    late = api_client.post(CAPTURE_URL, body(order), format="json",
                           HTTP_X_REQUEST_START=f"t={time.time() - QUEUE_WAIT_LIMIT_SECONDS - 5:.3f}")  # fmt: skip
    assert late.status_code == 503
    after = value(scrape(client), "omnitron_api_errors_total", status="503", code="app_busy")
    assert after == before + 1
    (line,) = [r.fields for r in request_records() if r.fields["path"] == CAPTURE_URL]
    assert (line["status"], line["code"]) == (503, "app_busy")


def test_a_start_stamped_ahead_of_the_apps_clock_did_not_wait(api_client, order):
    ahead = f"t={time.time() + QUEUE_WAIT_LIMIT_SECONDS + 30:.3f}"
    answer = api_client.post(CAPTURE_URL, body(order), format="json", HTTP_X_REQUEST_START=ahead)
    assert answer.status_code == 200


def test_a_request_id_of_the_longest_length_is_kept_and_one_longer_replaced(api_client, order):
    longest = "r" * MAX_REQUEST_ID_LENGTH
    first, second = (item.pk for item in order.items.all()[:2])
    kept = api_client.post(CAPTURE_URL, {"order": order.number, "order_items": [{"pk": first}]},
                           format="json", HTTP_X_REQUEST_ID=longest)  # fmt: skip
    assert (kept.status_code, kept["X-Request-ID"]) == (200, longest)
    assert Capture.objects.get().request_id == longest

    replaced = api_client.post(CAPTURE_URL, {"order": order.number, "order_items": [{"pk": second}]},
                               format="json", HTTP_X_REQUEST_ID=longest + "r")  # fmt: skip
    assert replaced.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])
    assert Capture.objects.latest("pk").request_id == replaced["X-Request-ID"]


@pytest.mark.urls("tests.capture.failing_urls")
def test_lines_written_while_a_request_runs_carry_its_id_and_a_500_its_traceback(api_client):
    console = next(h for h in logging.getLogger().handlers if h.name == "console")
    written = io.StringIO()
    previous = console.setStream(written)
    try:
        response = api_client.post("/api/v1/boom/", {}, format="json",
                                   HTTP_X_REQUEST_ID="boom-17")  # fmt: skip
    finally:
        console.setStream(previous)
    assert response.status_code == 500
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    (error,) = [line for line in lines if line["level"] == "error"]
    assert error["request_id"] == "boom-17"
    assert "Traceback" in error["exception"]
    assert "something nobody expected" in error["exception"]


def test_probes_are_logged_at_debug_and_other_requests_at_info(client, db, request_records):
    for path in ("/healthz", "/readyz", "/api/v1/orders/"):
        client.get(path)
    levels = {r.fields["path"]: r.levelno for r in request_records()}
    assert levels == {"/healthz": logging.DEBUG, "/readyz": logging.DEBUG,
                      "/api/v1/orders/": logging.INFO}  # fmt: skip


def test_the_logged_path_holds_no_query_string(api_client, db, request_records):
    api_client.get("/api/v1/orders/", {"number": "NOT-IN-THE-LOG"})
    (line,) = [r.fields for r in request_records()]
    assert line["path"] == "/api/v1/orders/"
    assert "NOT-IN-THE-LOG" not in JSONFormatter().format(request_records()[0])


def test_options_is_counted_under_its_own_method(client, db):
    client.options("/api/v1/orders/")
    methods = {s.labels.get("method") for s in scrape(client)
               if s.name == "omnitron_http_requests_total"}  # fmt: skip
    assert "OPTIONS" in methods


def test_an_empty_allow_list_answers_no_one(client, settings):
    settings.METRICS_ALLOWED_IPS = []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete", "options"])
def test_metrics_are_not_found_by_any_method_from_an_address_not_allowed(client, settings, method):
    settings.METRICS_ALLOWED_IPS = ["10.9.9.9"]
    response = getattr(client, method)("/metrics")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert "Allow" not in response


def test_the_backlog_age_is_the_oldest_pending_deliverys(api_client, order, client):
    webhook_subscription_create_or_update(url="http://127.0.0.1:9/hook",
                                          event_types=["order.captured"])  # fmt: skip
    for item in order.items.all()[:2]:
        assert capture(api_client, order, [item.pk]).status_code == 200
    first, second = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    WebhookDelivery.objects.filter(pk=second.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    samples = scrape(client)
    assert value(samples, "omnitron_webhook_backlog") == 2
    assert 3600 <= value(samples, "omnitron_webhook_backlog_oldest_seconds") < 3660


def test_a_capture_whose_content_encoding_is_identity_is_read(api_client, order):
    answer = api_client.post(CAPTURE_URL, body(order), format="json",
                             HTTP_CONTENT_ENCODING="identity")  # fmt: skip
    assert answer.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_expectation_gunicorn_refuses_is_417_expectation_failed():
    with gunicorn(workers=1) as (base, _):
        answer = raw_request(base, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                   b"Expect: something-else\r\n\r\n")  # fmt: skip
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 417 ")
    assert json.loads(content) == {"detail": "Expectation Failed.", "code": "expectation_failed"}


def test_the_latency_alerts_threshold_is_a_bucket_bound(client, db):
    """histogram_quantile interpolates inside a bucket: without a bound at the alert's
    threshold, "p99 over 1 s" is a guess between the bounds around it."""
    rules = yaml.safe_load((ROOT / "deploy" / "monitoring" / "alerts.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"]
               if r["alert"] == "CaptureLatencyP99High"]  # fmt: skip
    threshold = float(re.search(r">\s*([0-9.]+)\s*$", rule["expr"].strip()).group(1))
    client.get("/healthz")
    bounds = {float(s.labels["le"]) for s in scrape(client)
              if s.name == "omnitron_http_request_duration_seconds_bucket"}  # fmt: skip
    assert threshold in bounds, sorted(bounds)
