from django.core.management.base import BaseCommand

from capture.idempotency import idempotency_prune


class Command(BaseCommand):
    help = "Delete stored Idempotency-Key answers older than 24 hours (run it hourly)."

    def handle(self, *args, **options):
        deleted = idempotency_prune()
        self.stderr.write(f"Pruned {deleted} expired idempotency record(s).")
