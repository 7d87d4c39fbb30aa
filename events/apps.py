from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened, recorded as rows in the transaction that did it (an outbox), and
    sent on: signed webhooks with retries, and the event feed."""

    name = "events"
    verbose_name = "Events and webhooks"

    def ready(self):
        from omnitron.metrics import add_scrape_collector

        from .metrics import BacklogCollector

        add_scrape_collector(BacklogCollector())
