from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self):
        from . import schema  # noqa: F401 (registers its drf-spectacular extension)
