import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import ProgrammingError

from capture.integrity import capture_audit_problems


class Command(BaseCommand):
    help = (
        "Check that the capture audit adds up: every capture's amount is the sum of its "
        "items' prices, every capture item is an item of its capture's order at the "
        "same price and currency, captures carry their order's currency, captures, items "
        "and events carry their order's channel, an item is captured exactly when it has a "
        "capture item, every capture has exactly one order.captured event and every such "
        "event a capture, no event's transaction id is ahead of the database's (the "
        "event feed would stop at it), and the triggers that keep captured records as "
        "they were are in place and enabled. Exits 1, naming the rows (20 of each kind, "
        "then 'and more') or the triggers, when one does not."
    )

    def handle(self, *args, **options):
        try:
            problems = capture_audit_problems()
        except ProgrammingError as exc:  # one line naming what to do, not a traceback
            reason = str(exc).splitlines()[0]
            if isinstance(exc.__cause__, psycopg.errors.UndefinedTable):
                advice = "is it the service's database, and migrated (manage.py migrate)?"
            elif isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                advice = "run it as a role that may read every capture table."
            else:
                advice = "the database is not as the migrations made it."
            raise CommandError(f"The capture audit could not be checked ({reason}): "
                               f"{advice}") from None  # fmt: skip
        for line in problems:
            self.stderr.write(line)
        if problems:
            raise CommandError(f"{len(problems)} check(s) of the capture audit failed.")
        self.stdout.write("Every capture adds up.")
