import json
import sys

from django.core.management.base import BaseCommand, CommandError

from orders.importing import import_document_parse
from orders.services import ImportInvalid, orders_import


class Command(BaseCommand):
    help = (
        "Import channels, customers and orders from a JSON file ('-' reads stdin), all or "
        "nothing. Prints {created, skipped} as JSON on stdout; messages go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the JSON file, or - for stdin")

    def handle(self, *args, **options):
        data = self._read(options["file"])
        show_progress = self.stderr.isatty()
        try:
            result = orders_import(data=data, progress=self._progress if show_progress else None)
        except ImportInvalid as exc:
            for line in exc.errors:
                self.stderr.write(line)
            raise CommandError(
                f"Import refused: {len(exc.errors)} problem(s), listed above."
            ) from exc
        if show_progress:
            self.stderr.write("")
        self.stdout.write(json.dumps(result.as_dict()))
        self.stderr.write(
            f"Imported {len(result.created)} order(s), skipped {len(result.skipped)} existing."
        )

    def _read(self, path):
        """The file's JSON (import_document_parse), read as bytes from stdin too, where
        invalid UTF-8 had become lone surrogates."""
        try:
            if path == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as handle:
                    raw = handle.read()
            return import_document_parse(raw)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise CommandError(f"{path} is not valid JSON: {exc}") from exc
        except RecursionError:
            raise CommandError(f"{path} is nested too deeply to read.") from None

    def _progress(self, stage, done, total):
        self.stderr.write(f"\r{stage}: {done}/{total}", ending="")
