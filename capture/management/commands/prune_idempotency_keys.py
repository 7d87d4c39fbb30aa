from django.core.management.base import BaseCommand

from capture.idempotency import idempotency_prune
from capture.rules import IDEMPOTENCY_KEY_TTL_HOURS


class Command(BaseCommand):
    help = (
        f"Delete stored Idempotency-Key answers older than {IDEMPOTENCY_KEY_TTL_HOURS} hours "
        "(the worker runs it hourly)."
    )

    def handle(self, *args, **options):
        deleted = idempotency_prune()
        self.stderr.write(f"Pruned {deleted} expired idempotency record(s).")
