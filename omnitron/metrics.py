"""Prometheus metrics, served at GET /metrics on the app's own port: the requests,
errors and database faults here; the capture's in capture/metrics.py and the
webhooks' in events/metrics.py, which import this module first.

With PROMETHEUS_MULTIPROC_DIR set before the first import of prometheus_client
(gunicorn.conf.py sets it; `make run` and the Docker image share it with the webhook
worker), every process writes its samples to files there and /metrics adds them up:
every gunicorn worker and every webhook worker on the machine are counted. Labels
have bounded values only: route names, status classes, error codes (the registry's),
currencies (the model's choices), delivery outcomes: never an order number, a user
or a path with an id.

/metrics answers only the addresses or networks in METRICS_ALLOWED_IPS (404 to others);
the proxy in front of the app never forwards it."""

import atexit
import functools
import ipaddress
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from omnitron import metrics_files
from omnitron.api.error_codes import ApiErrorCode
from omnitron.db import router as db_router

ENABLED = settings.METRICS_ENABLED
MULTIPROCESS = settings.METRICS_MULTIPROCESS
if MULTIPROCESS:
    # Files named by host and pid (metrics_files.process_name), folded into the
    # directory's archives when the process ends: by itself here (forked gunicorn
    # workers inherit this), or by gunicorn's master for a worker killed.
    values.ValueClass = values.MultiProcessValue(metrics_files.process_name)
    atexit.register(lambda: metrics_files.tidy(metrics_files.process_name()))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "omnitron_http_requests_total", "Answered requests.", ["route", "method", "status_class"]
)
LATENCY = Histogram(
    "omnitron_http_request_duration_seconds",
    "Time to answer a request.",
    ["route", "status_class"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter(
    "omnitron_api_errors_total",
    "Error answers, by status and code (order_locked, throttled, database_unavailable...).",
    ["status", "code"],
)
DATABASE_ERRORS = Counter(
    "omnitron_database_connection_errors_total",
    "Requests answered 503 because PostgreSQL was unreachable or too slow.",
)
REPLICA_FALLBACKS = Counter(
    "omnitron_replica_fallbacks_total",
    "Reads sent to the primary because the replica was unreachable.",
)
# The methods a label names; any other a client makes up is "other" (each new label
# value is a series kept for ever: 10,000 made-up methods tripled /metrics).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(*, route: str, method: str, status: int, seconds: float, code: str | None):
    if not ENABLED:
        return
    status_class = f"{status // 100}xx"
    REQUESTS.labels(route, method if method in METHODS else "other", status_class).inc()
    LATENCY.labels(route, status_class).observe(seconds)
    if status >= 400 and code:
        ERRORS.labels(str(status), code).inc()


def count(counter: Counter, *labels: str) -> None:
    """Count one of something, when metrics are on."""
    if ENABLED:
        (counter.labels(*labels) if labels else counter).inc()


# The read replica's router calls this once per request it sent to the primary instead.
db_router.on_fallback.append(lambda: count(REPLICA_FALLBACKS))


# Collectors that read at scrape time (events/metrics.py: the webhook backlog), added
# by their app's ready(). With MULTIPROCESS each scrape registers them afresh: their
# values are read now, not summed from files.
SCRAPE_COLLECTORS: list = []


def add_scrape_collector(collector) -> None:
    SCRAPE_COLLECTORS.append(collector)
    if not MULTIPROCESS:
        REGISTRY.register(collector)


def scraper_allowed(address: str | None) -> bool:
    """Whether METRICS_ALLOWED_IPS (addresses or networks, 10.0.0.0/8) holds the
    address: a Prometheus container on a compose network has an address of its
    network's, not one known in advance. An IPv4 client of a server listening on
    IPv6 (`HOST=::`) arrives as `::ffff:10.0.0.5`: it is allowed as 10.0.0.5 too."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    forms = {ip, getattr(ip, "ipv4_mapped", None) or ip}
    networks = _allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))
    return any(form in network for form in forms for network in networks)


@functools.cache
def _allowed_networks(entries: tuple[str, ...]) -> list:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


@csrf_exempt  # it takes no method that changes anything: a POST is the 405 below
def metrics_view(request):
    # A request a proxy forwarded (X-Forwarded-For) comes from the proxy's address,
    # which may be allowed: the proxy forwards no /metrics, but the methods nginx
    # refuses itself (TRACE) it hands to the app, whose 405 named the metrics' methods.
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META
    if forwarded or not scraper_allowed(request.META.get("REMOTE_ADDR")):
        not_found = ApiErrorCode.NOT_FOUND
        return JsonResponse(not_found.example(), status=not_found.status_code)
    if request.method not in ("GET", "HEAD"):
        # A POST was Django's CSRF page (HTML), and TRACE or OPTIONS the metrics.
        refused = ApiErrorCode.METHOD_NOT_ALLOWED
        response = JsonResponse(refused.example(method=request.method), status=refused.status_code)
        response["Allow"] = "GET, HEAD"
        return response
    if not MULTIPROCESS:
        return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    # Every process's samples, from their files, none being folded meanwhile; then the
    # collectors that read the database, without the lock (a worker's exit, and
    # gunicorn's master folding a killed one's files, wait for it).
    files = CollectorRegistry()
    multiprocess.MultiProcessCollector(files)
    with metrics_files.locked(os.environ["PROMETHEUS_MULTIPROC_DIR"], exclusive=False):
        text = generate_latest(files)
    now = CollectorRegistry()
    for collector in SCRAPE_COLLECTORS:
        now.register(collector)
    return HttpResponse(text + generate_latest(now), content_type=CONTENT_TYPE_LATEST)
