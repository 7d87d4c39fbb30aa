import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import ProgrammingError

from capture.selectors import capture_audit_problems


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
        except ProgrammingError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.UndefinedTable):
                raise  # a role that may not read the tables, say: not "migrate"
            reason = str(exc).splitlines()[0]  # a database never migrated: one line
            raise CommandError(f"The database has no capture audit to check ({reason}): "
                               "run manage.py migrate first.") from None  # fmt: skip
        for line in problems:
            self.stderr.write(line)
        if problems:
            raise CommandError(f"{len(problems)} check(s) of the capture audit failed.")
        self.stdout.write("Every capture adds up.")
