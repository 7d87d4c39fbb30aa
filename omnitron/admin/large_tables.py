"""Admin lists that cost the same with millions of rows (omnitron/admin/__init__.py)."""

import re

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Q
from django.utils.functional import cached_property

from .checked_input import CheckedInputMixin

COUNT_CAP = 10_000
# At most this many related rows (customers with an email, orders with a number) are
# looked up for one search term.
RELATED_MATCHES = 1_000


class CappedCount(int):
    """A count that stopped at the cap: compares as the cap plus one, shows as
    "10,000+" wherever the admin prints it."""

    def __str__(self) -> str:
        return f"{self - 1:,}+"


def capped_count(queryset) -> int:
    """The queryset's rows, counted up to COUNT_CAP + 1 (`SELECT count(*) FROM (...
    LIMIT n)`): a CappedCount past the cap."""
    found = queryset.order_by()[: COUNT_CAP + 1].count()
    return CappedCount(found) if found > COUNT_CAP else found


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: the pages past the cap are not linked; search
    and filters narrow a list instead."""

    @cached_property
    def count(self) -> int:
        return capped_count(self.object_list)


class SortableByChangeList(ChangeList):
    """Sorts only by the ModelAdmin's `sortable_by` columns: Django leaves them out of
    the column headers, but takes any column from the query string (`?o=5`). A column
    it may not sort by is left out of `?o=`, and with none left the list keeps its own
    order (Django's dropped it for the primary key's: `?o=5` turned the orders, newest
    placed first, into newest created first)."""

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)

    def get_ordering(self, request, queryset):
        taken = [p for p in self.params.get(ORDER_VAR, "").split(".") if self._sorts_by(p)]
        if taken:
            self.params[ORDER_VAR] = ".".join(taken)
        else:
            self.params.pop(ORDER_VAR, None)
        return super().get_ordering(request, queryset)

    def get_filters(self, request):
        """A month or a day of a date filter's column (`created_at__year=2026&
        created_at__month=11&created_at__day=29`) read as a range of the column, on
        its index, by Django's own reading of a date hierarchy's parts: compared part
        by part, PostgreSQL read every row of the year (a day of 100,000 captures:
        0.4 s, growing), and of the table without the year: a day without its month
        or a month without its year is refused."""
        column = next((path for path in self._date_filter_columns()
                       if f"{path}__month" in self.params or f"{path}__day" in self.params),
                      None)  # fmt: skip
        if column is None or self.date_hierarchy:
            return super().get_filters(request)
        # Only while the filters are read (after the lookups are checked): a date
        # hierarchy shown above the list reads every row for its dates.
        self.date_hierarchy = column
        try:
            filters = super().get_filters(request)
        except OverflowError as exc:  # the calendar's last month or day: its end is past it
            raise IncorrectLookupParameters(exc) from exc
        finally:
            self.date_hierarchy = None
        given = {part for part in ("year", "month", "day") if f"{column}__{part}" in self.params}
        if given not in ({"year", "month"}, {"year", "month", "day"}):
            raise IncorrectLookupParameters(f"{column}: a day needs its month, a month its year.")
        return filters

    def _date_filter_columns(self) -> list[str]:
        paths = [entry[0] if isinstance(entry, tuple | list) else entry
                 for entry in self.list_filter if not isinstance(entry, type)]  # fmt: skip
        return [path for path in paths if "__" not in path
                and isinstance(self.model._meta.get_field(path), models.DateField)]  # fmt: skip

    def _sorts_by(self, param: str) -> bool:
        """Whether `param` (an entry of `?o=`: a column's index, `-` for descending)
        names a column this list sorts by."""
        index = param.rpartition("-")[2]
        if not re.fullmatch("[0-9]{1,4}", index) or int(index) >= len(self.list_display):
            return False
        return bool(self.get_ordering_field(self.list_display[int(index)]))


class ExactSearchMixin:
    """`search_fields` match a term exactly, each on an indexed column; a field across
    a relation (`customer__email`) is looked up first and matched by id, so the whole
    search stays one index lookup per field."""

    searches_whole_terms = True  # for CheckedInputMixin's check of a term

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q()
        for path in self.get_search_fields(request):
            relation, _, field = path.partition("__")
            if not field:
                matches |= Q(**{path: term})
                continue
            related = queryset.model._meta.get_field(relation).related_model
            ids = related._default_manager.filter(**{field: term}).values_list("pk", flat=True)
            matches |= Q(**{f"{relation}__in": list(ids[:RELATED_MATCHES])})
        return queryset.filter(matches), False


class LargeTableAdmin(CheckedInputMixin, ExactSearchMixin, admin.ModelAdmin):
    """A change list for a table that grows with every order or capture.

    It is in its model's order, on an index, and sorts by no column: a sort by a
    column without an index reads and sorts the whole table (1.9 s at 664,000 items,
    and ten of them kept every worker busy). Its search matches whole values
    (ExactSearchMixin), after CheckedInputMixin's check of the term."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    sortable_by = ()
    # No "Show counts" (?_facets=True): it counts every row of the table for each
    # filter's choices, the whole-table count the capped paginator avoids.
    show_facets = admin.ShowFacets.NEVER

    def get_actions(self, request):
        # "Delete selected" with "select all" loaded every row of the list into one
        # worker (300,000 orders: 15 s and a 503; a million customers: the worker was
        # killed).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_changelist(self, request, **kwargs):
        return SortableByChangeList
