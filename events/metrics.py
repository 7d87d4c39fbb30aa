"""The webhooks' metrics, served at /metrics with the rest (omnitron/metrics.py, which
is imported first: it sets up the processes' shared sample files): the worker's
attempts by outcome and their lag, counted as they happen; the backlog and the
deliveries that failed for good, read from PostgreSQL at scrape time."""

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from omnitron.metrics import ENABLED

from .models import DeliveryState, WebhookDelivery

logger = logging.getLogger(__name__)

DELIVERIES = Counter(
    "omnitron_webhook_deliveries_total",
    "Webhook attempts, by outcome (delivered, retry, failed).",
    ["outcome"],
)
DELIVERY_LAG = Histogram(
    "omnitron_webhook_delivery_lag_seconds",
    "From an event's time to its delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 3600),
)


def observe_delivery(outcome: str, lag_seconds: float | None = None) -> None:
    if ENABLED:
        DELIVERIES.labels(outcome).inc()
        if lag_seconds is not None:
            DELIVERY_LAG.observe(lag_seconds)


# Failed deliveries count for a week after they failed (their last attempt, however
# long their retries took): long enough to be seen and sent again, and an operator who
# chose not to resend them sees the alert end.
FAILED_WINDOW = timedelta(days=7)


class BacklogCollector:
    """The webhook deliveries still pending for active subscriptions, and how old the
    oldest is; and those that failed after every retry in the last FAILED_WINDOW and
    were not sent again (a capture the payment service or the ERP has not heard of).
    An inactive subscription's are never tried: counted, they paged the
    WebhookBacklogGrowing alert for ever."""

    def describe(self):
        # What registering asks for, so that it does not run the query.
        return [
            GaugeMetricFamily("omnitron_webhook_backlog", ""),
            GaugeMetricFamily("omnitron_webhook_backlog_oldest_seconds", ""),
            GaugeMetricFamily("omnitron_webhook_failed", ""),
        ]

    def collect(self):
        active = WebhookDelivery.objects.filter(subscription__is_active=True)
        try:
            backlog = active.filter(state=DeliveryState.PENDING).aggregate(
                pending=Count("id"), oldest=Min("created_at")
            )
            failed = active.filter(
                state=DeliveryState.FAILED, failed_at__gte=timezone.now() - FAILED_WINDOW
            ).count()
        except DatabaseError as exc:
            # Left out of this scrape, not the scrape's end: with the database down the
            # counters that tell of it (omnitron_database_connection_errors_total, for
            # the DatabaseUnreachable alert) were lost in an HTML 503.
            logger.warning("The webhook backlog is left out of /metrics: %s", exc)
            return
        oldest = backlog["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "omnitron_webhook_backlog",
            "Webhook deliveries of active subscriptions not delivered yet.",
            value=backlog["pending"],
        )
        yield GaugeMetricFamily(
            "omnitron_webhook_backlog_oldest_seconds",
            "Age of the oldest pending webhook delivery of an active subscription.",
            value=max(age, 0.0),
        )
        yield GaugeMetricFamily(
            "omnitron_webhook_failed",
            "Webhook deliveries of active subscriptions that failed after every retry in "
            f"the last {FAILED_WINDOW.days} days and were not sent again.",
            value=failed,
        )
