"""The webhook backlog and the deliveries that failed for good, for /metrics
(omnitron/metrics.py), read from PostgreSQL at scrape time."""

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import DeliveryState, WebhookDelivery

logger = logging.getLogger(__name__)


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
