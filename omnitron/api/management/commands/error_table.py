from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from omnitron.api.error_codes import markdown_table

START, END = "<!-- error-table:start -->", "<!-- error-table:end -->"
DOC = Path(settings.BASE_DIR) / "docs" / "api.md"


def with_table(text: str) -> str:
    """The page with the registry's table between its two markers."""
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not (start and end):
        raise CommandError(f"{DOC} needs the lines {START} and {END}")
    return f"{before}{START}\n{markdown_table()}{END}{after}"


class Command(BaseCommand):
    help = "Write the error table of docs/api.md from the error code registries."

    def handle(self, *args, **options):
        DOC.write_text(with_table(DOC.read_text()))
        self.stderr.write(f"Error table written to {DOC}")
