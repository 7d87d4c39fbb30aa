"""bench/seeding.py's importer: one process that imports order documents through the
project's import service (what `manage.py import_orders` runs), one JSON document per
line of stdin, answering each with a line of JSON ({created, skipped}). Django starts
once for all of a benchmark's batches instead of once per batch (1.4 s each here).
It stops at the end of its stdin."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django  # noqa: E402


def main() -> None:
    django.setup()
    from django.db import connections

    from orders.importing import import_document_parse
    from orders.services import orders_import

    for line in sys.stdin.buffer:
        result = orders_import(data=import_document_parse(line))
        # No idle connection between batches: the benchmark measures PostgreSQL's
        # processes, and some of its steps want the database to themselves.
        connections.close_all()
        print(json.dumps(result.as_dict()), flush=True)


if __name__ == "__main__":
    main()
