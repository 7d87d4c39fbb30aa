"""Keyset pages for the list endpoints: `{"next", "results"}`, `?page_size=` and an
opaque `?cursor=` that `next` carries.

A page is "the rows after this one in the list's order", a condition an index
answers: the first page and the ten-thousandth cost the same, however many rows the
table holds. No `count`: counting is a scan of every visible row, and it grows with
the table (at 2 million orders it is most of a list request's time; make bench's
bigdata scenario measures it). A row inserted or changed while a client pages is
never served twice, and rows that sort after the cursor are never skipped.

The order is the model's `Meta.ordering`, which must end with the primary key and
go one way (all ascending or all descending), so a row's position is unique."""

import base64
import json
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from omnitron.limits import MAX_BIGINT, MIN_BIGINT

from .error_codes import FieldErrorCode
from .serializers import StrictIntegerField


def _key(ordering: list[str]) -> tuple[list[str], bool]:
    """The ordering's field names, and whether it is descending."""
    names = [name.lstrip("-") for name in ordering]
    descending = {name.startswith("-") for name in ordering}
    if len(descending) != 1 or names[-1] not in ("id", "pk"):
        raise ValueError(f"keyset ordering must end with the pk and go one way: {ordering}")
    return names, descending.pop()


def _position(field, text):
    """A value of a cursor this list gave out: exactly the text `value_to_string` wrote
    for a row (a date-time in UTC, a pk within bigint). Another spelling of a value,
    another type, or a value no row can hold is not a position in the list."""
    if not isinstance(text, str):
        raise TypeError
    value = field.to_python(text)
    if isinstance(value, int) and not MIN_BIGINT <= value <= MAX_BIGINT:
        raise ValueError
    if isinstance(value, datetime) and value.utcoffset() != timedelta(0):
        raise ValueError
    if field.value_to_string(SimpleNamespace(**{field.attname: value})) != text:
        raise ValueError
    return value


class Pagination(BasePagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        model = queryset.model
        names, descending = _key(list(model._meta.ordering))
        fields = [model._meta.pk if n == "pk" else model._meta.get_field(n) for n in names]
        queryset = queryset.order_by(*model._meta.ordering)
        after = self.decode_cursor(request, fields)
        if after is not None:
            columns = ", ".join(f'"{model._meta.db_table}"."{f.column}"' for f in fields)
            placeholders = ", ".join(["%s"] * len(fields))
            operator = "<" if descending else ">"
            # A row comparison: one index range, not an OR of one condition per column.
            beyond = RawSQL(f"({columns}) {operator} ({placeholders})", after,
                            output_field=BooleanField())  # fmt: skip
            queryset = queryset.filter(beyond)
        rows, more = self.rows(queryset, view)
        self.next_position = (
            [f.value_to_string(rows[-1]) for f in fields] if more and rows else None
        )
        return rows

    def rows(self, queryset, view) -> tuple[list, bool]:
        """The page's rows, and whether a row follows them. A list whose rows differ
        in size names, on its view, `page_parts`: an expression counting a row's parts
        (a capture's items), and the most parts a page holds. Its page then ends
        before the row that would pass that (the first row always comes), and only
        the page's rows are read whole, their parts with them. A view may also name
        `page_weight`: a function giving the rows kept so far (pks) each a weight (a
        capture's characters of attributes), read only for those, and the most a page
        holds; the page then ends before the row that would pass that too."""
        parts = getattr(view, "page_parts", None)
        if parts is None:
            rows = list(queryset[: self.page_size + 1])
            return rows[: self.page_size], len(rows) > self.page_size
        count, most = parts
        sizes = queryset.prefetch_related(None).annotate(_parts=count).values_list("pk", "_parts")
        kept, total, more = [], 0, False
        for pk, size in sizes[: self.page_size + 1]:
            total += size or 0
            if len(kept) == self.page_size or (kept and total > most):
                more = True
                break
            kept.append(pk)
        weighed = getattr(view, "page_weight", None)
        if weighed is not None:  # (for one row too: the same statements for any page)
            weigh, most = weighed
            weights, total = weigh(kept, using=queryset.db), 0
            for index, pk in enumerate(kept):
                total += weights.get(pk, 0)
                if index and total > most:
                    kept, more = kept[:index], True
                    break
        by_pk = {row.pk: row for row in queryset.filter(pk__in=kept)}
        return [by_pk[pk] for pk in kept if pk in by_pk], more

    def get_page_size(self, request) -> int:
        """`page_size` when given: a whole number from 1 in ASCII digits (0, -1, 1.5,
        abc or other scripts' digits are a 400 naming it); above max_page_size it is
        read as max_page_size. Empty, it is not given, as every filter's empty value."""
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        try:
            size = StrictIntegerField(min_value=1).run_validation(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({self.page_size_query_param: exc.detail}) from None
        return min(size, self.max_page_size)

    def decode_cursor(self, request, fields) -> list | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:  # empty: not given, as every filter's empty value
            return None
        try:
            values = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
            if not isinstance(values, list) or len(values) != len(fields):
                raise ValueError
            if self.encode_cursor(values) != raw:  # base64 skips stray characters
                raise ValueError
            return [_position(field, text) for field, text in zip(fields, values, strict=True)]
        except (ValueError, TypeError, OverflowError, RecursionError, DjangoValidationError):
            error = FieldErrorCode.INVALID
            raise serializers.ValidationError(
                {self.cursor_query_param: ["Not a cursor this list gave out."]}, code=error.code
            ) from None

    def encode_cursor(self, position: list) -> str:
        raw = json.dumps(position, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def get_next_link(self) -> str | None:
        if self.next_position is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param,
                                   self.encode_cursor(self.next_position))  # fmt: skip

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page; null on the last one.",
                },  # fmt: skip
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: take it from the previous page's `next`.",
                "schema": {"type": "string"},
            },  # fmt: skip
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, {self.page_size} by default, at most "
                f"{self.max_page_size} (more is read as {self.max_page_size}); anything "
                "but a whole number from 1 is a 400.",
                "schema": {"type": "integer", "minimum": 1},
            },  # fmt: skip
        ]
