from django.core.management.base import BaseCommand

from omnitron.api.throttling import rate_counters_prune


class Command(BaseCommand):
    help = "Delete rate limit counters untouched for two days (the worker runs it hourly)."

    def handle(self, *args, **options):
        self.stderr.write(f"Pruned {rate_counters_prune()} rate counter(s).")
