import time

from django.core.management.base import BaseCommand

from omnitron.api.models import RateCounter

# The longest rate window is an hour; keep a day for inspection.
KEEP_SECONDS = 24 * 3600


class Command(BaseCommand):
    help = "Delete rate limit counters of windows older than a day (run it hourly)."

    def handle(self, *args, **options):
        deleted, _ = RateCounter.objects.filter(
            window_start__lt=time.time() - KEEP_SECONDS
        ).delete()
        self.stderr.write(f"Pruned {deleted} rate counter(s).")
