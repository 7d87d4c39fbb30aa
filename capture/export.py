"""The reconciliation export: captured items as CSV, one row per item, for finance to
match against the payment provider's settlement files. The API's capture list answers
it for `Accept: text/csv` or `?format=csv` (capture/views.py), the admin's capture list
as an action (capture/admin.py); both stream the same rows in constant memory."""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework import renderers

from .exceptions import ExportTooLarge
from .models import Capture
from .rules import MAX_EXPORT_ROWS
from .selectors import CAPTURED_ITEM_COLUMNS, captured_item_count, captured_item_rows

# Named by when it was made, in UTC (`captures-20261130T084512Z.csv`): each export a
# file of its own in finance's downloads, not `captures (3).csv`.
FILENAME = "captures-{:%Y%m%dT%H%M%SZ}.csv"
# Rows are written to a buffer that is sent, then emptied, once it holds this much.
FLUSH_BYTES = 64 * 1024


# A spreadsheet takes a cell that starts with one of these for a formula. Text cells
# come from API clients (Idempotency-Key) and the channels' systems (order numbers,
# SKUs): such a one is written with an apostrophe first, which spreadsheets show as
# text (OWASP's advice against CSV injection). The JSON list has every value as is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A spreadsheet set to split cells on `;` (where `,` is the decimal comma: Turkish,
# German, French settings) or on tabs starts a cell after each one, wherever it is in
# ours, and a row after each line break (our quotes mean nothing to it): a formula
# start there gets the apostrophe too (`k;=1+1` is written `k;'=1+1`).
FORMULA_AFTER_A_SPLIT = re.compile(r"([;\t\r\n])(?=[=+\-@\t\r])")


def _cell(value):
    """A date-time in UTC, ISO 8601 with `Z`, as the JSON answers write it; text a
    spreadsheet would run, after an apostrophe; anything else as csv writes it
    (decimals as stored, `150.00`; None empty)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        value = FORMULA_AFTER_A_SPLIT.sub(r"\1'", value)
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return value


class CSVRenderer(renderers.BaseRenderer):
    """text/csv, chosen by DRF's content negotiation (`Accept: text/csv` or
    `?format=csv`). It renders rows as a stream of bytes, for a StreamingHttpResponse:
    the whole file is never in memory."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Iterable[Iterable], accepted_media_type=None, renderer_context=None):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in data:
            writer.writerow([_cell(value) for value in row])
            if buffer.tell() >= FLUSH_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()


def captures_csv_response(captures: QuerySet[Capture]) -> StreamingHttpResponse:
    """The items of these captures as a CSV attachment, header row first, streamed.
    Raises ExportTooLarge, before anything is sent, for more than MAX_EXPORT_ROWS items:
    a status cannot change once the rows flow, and a file cut short at the server's
    timeout looked whole."""
    if captured_item_count(captures, at_most=MAX_EXPORT_ROWS + 1) > MAX_EXPORT_ROWS:
        raise ExportTooLarge(limit=MAX_EXPORT_ROWS)
    rows: Iterator = chain([tuple(CAPTURED_ITEM_COLUMNS)], captured_item_rows(captures))
    renderer = CSVRenderer()
    return StreamingHttpResponse(
        renderer.render(rows),
        content_type=f"{renderer.media_type}; charset={renderer.charset}",
        headers={
            "Content-Disposition": f'attachment; filename="{FILENAME.format(timezone.now())}"'
        },
    )
