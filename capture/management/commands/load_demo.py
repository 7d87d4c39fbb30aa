import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from capture.selectors import capturable_items
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
        item = self._capturable_item()
        if item is not None:
            body = json.dumps(
                {"order": item.order.number, "order_items": [{"pk": item.pk, "attributes": {}}]}
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

    def _capturable_item(self):
        """The first demo item a capture would take, of an order number that exists
        once (so the curl needs no `channel`)."""
        unique_numbers = (
            Order.objects.values("number").annotate(n=Count("id")).filter(n=1).values("number")
        )
        return (
            capturable_items()
            .filter(order__number__startswith="DEMO-", order__number__in=unique_numbers)
            .select_related("order")
            .order_by("order__number", "pk")
            .first()
        )
