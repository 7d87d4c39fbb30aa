import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from capture.rules import CAPTURABLE_ORDER_STATUSES, NON_CAPTURABLE_ITEM_STATUSES
from orders.importing import import_document_parse
from orders.models import Order
from orders.services import api_user_create_or_update, orders_import

DEMO_FILE = Path(settings.BASE_DIR) / "demo" / "orders.json"


class Command(BaseCommand):
    help = (
        "Load the demo orders (through the import, so re-running duplicates nothing), "
        "ensure the demo user, and print its token and a ready-to-paste capture."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo")

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            # The image carries this command too: demo / demo as a superuser of every
            # channel has no place in a shop's database.
            raise CommandError(
                "load_demo makes a superuser with a known password: only with the "
                "development or test settings (DEMO_DATA_ALLOWED), not these."
            )
        result = orders_import(data=import_document_parse(DEMO_FILE.read_bytes()))
        token = api_user_create_or_update(
            username=options["username"],
            all_channels=True,
            password=options["password"],
            superuser=True,
        )
        base = options["base_url"].rstrip("/")
        lines = [
            f"Demo data: {len(result.created)} order(s) loaded, "
            f"{len(result.skipped)} already there.",
            f"Admin:     {base}/admin/  (user {options['username']}, password "
            f"{options['password']})",
            f"Token:     {token.key}",
        ]
        order = self._capturable_order()
        if order is not None:
            item = (
                order.items.filter(captured_at__isnull=True)
                .exclude(status__in=NON_CAPTURABLE_ITEM_STATUSES)
                .first()
            )
            body = json.dumps(
                {"order": order.number, "order_items": [{"pk": item.pk, "attributes": {}}]}
            )
            lines += [
                "Capture an item:",
                f"  curl -s -X POST {base}/api/v1/capture-order/ \\",
                f"    -H 'Authorization: Token {token.key}' \\",
                "    -H 'Content-Type: application/json' \\",
                f"    -H 'Idempotency-Key: demo-{item.pk}' \\",
                f"    -d '{body}'",
            ]
        else:
            lines.append("Every demo item is captured: `make db-destroy` starts afresh.")
        self.stdout.write("\n".join(lines))

    def _capturable_order(self):
        # An order number that exists once, so the curl needs no `channel`.
        unique_numbers = (
            Order.objects.values("number").annotate(n=Count("id")).filter(n=1).values("number")
        )
        return (
            Order.objects.filter(
                number__startswith="DEMO-",
                number__in=unique_numbers,
                status__in=CAPTURABLE_ORDER_STATUSES,
                items__captured_at__isnull=True,
            )
            .exclude(items__status__in=NON_CAPTURABLE_ITEM_STATUSES)
            .order_by("number")
            .first()
        )
