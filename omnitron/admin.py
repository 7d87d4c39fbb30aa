"""Admin lists that cost the same with millions of rows.

Django's change list counts every row it could show, twice (the filtered count and
the total), and its search compares substrings (`icontains`), which reads every row:
on 2 million orders that is seconds per page. `LargeTableAdmin` counts at most
`COUNT_CAP` rows and searches whole values on indexed columns. docs/operations.md
says what operators see."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Q
from django.utils.functional import cached_property

COUNT_CAP = 10_000
# The query-string lookups the list filters make (field, relation, date and empty
# filters), and the longest value one may compare.
FILTER_SUFFIXES = ("exact", "isnull", "isempty", "gte", "lt", "id__exact")
DATE_PARTS = {"year": range(1, 10_000), "month": range(1, 13), "day": range(1, 32)}
MAX_LOOKUP_VALUE = 256
# At most this many related rows (customers with an email, orders with a number) are
# looked up for one search term.
RELATED_MATCHES = 1_000


class CappedCount(int):
    """A count that stopped at the cap: compares as the cap plus one, shows as
    "10,000+" wherever the admin prints it."""

    def __str__(self) -> str:
        return f"{self - 1:,}+"


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (`SELECT count(*) FROM (... LIMIT n)`): the
    pages past the cap are not linked; search and filters narrow a list instead."""

    @cached_property
    def count(self) -> int:
        found = self.object_list.order_by()[: COUNT_CAP + 1].count()
        return CappedCount(found) if found > COUNT_CAP else found


class LargeTableAdmin(admin.ModelAdmin):
    """A change list for a table that grows with every order or capture.

    `search_fields` match a term exactly, each on an indexed column; a field across
    a relation (`customer__email`) is looked up first and matched by id, so the
    whole search stays one index lookup per field."""

    paginator = CappedCountPaginator
    show_full_result_count = False

    def lookup_allowed(self, lookup, value, request=None):
        """Only the list's own filters, with a value a column can be compared with.
        Django also takes any lookup on a local field from the query string:
        `number__regex=...` kept PostgreSQL busy until the statement timeout, and a NUL
        or an out-of-range year failed in the database (500). A refused lookup is
        Django's 400."""
        value = str(value)
        if "\x00" in value or len(value) > MAX_LOOKUP_VALUE:
            return False
        offered = set()
        for entry in self.get_list_filter(request):
            if isinstance(entry, type) and issubclass(entry, admin.SimpleListFilter):
                offered.add(entry.parameter_name)
                continue
            path = entry[0] if isinstance(entry, tuple | list) else entry
            offered.update(f"{path}__{suffix}" for suffix in FILTER_SUFFIXES)
            if isinstance(self.model._meta.get_field(path), models.DateField):
                # A day, month or year of a date filter's column, within the calendar.
                path_part = lookup.removeprefix(f"{path}__")
                if path_part in DATE_PARTS:
                    return value.isdigit() and int(value) in DATE_PARTS[path_part]
        return lookup in offered and super().lookup_allowed(lookup, value, request)

    def response_action(self, request, queryset):
        # A selection of anything but pks (`_selected_action=abc`) failed in the query.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(pk.isascii() and pk.isdigit() and len(pk) < 20 for pk in selected):
            self.message_user(request, "That is not a selection of this list.", messages.ERROR)
            return None
        return super().response_action(request, queryset)

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
