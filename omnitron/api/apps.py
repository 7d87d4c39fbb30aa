from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The API's shared plumbing; its one model holds the rate limit counters."""

    name = "omnitron.api"
    label = "api"
    verbose_name = "API"
