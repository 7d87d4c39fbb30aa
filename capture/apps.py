from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "capture"
    verbose_name = "Capture"

    def ready(self):
        from . import events  # noqa: F401  registers the order.captured event type
