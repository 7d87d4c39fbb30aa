"""The admin's shared plumbing: what every admin page takes from a request, and lists
that cost the same with millions of rows.

Every ModelAdmin registered on the site, this project's and other apps' (auth,
authtoken, procrastinate), takes its input through `CheckedInputMixin` (AdminSite
below, made the default site by omnitron.apps.AdminConfig): from the query string only
the lookups its list filters make, with values their columns hold; as an object id or
an action's selection only values of the pk; and in a form (its inlines' too,
`CheckedFormFieldsMixin`) only JSON that PostgreSQL's jsonb stores, and a related row
shown again only when the posted value can be one.

Django's change list counts every row it could show, twice (the filtered count and
the total), and its search compares substrings (`icontains`), which reads every row:
on 2 million orders that is seconds per page. `LargeTableAdmin` counts at most
`COUNT_CAP` rows and searches whole values on indexed columns. docs/operations.md
says what operators see."""

import functools
import json
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.views import autocomplete
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import ProtectedError, Q, RestrictedError
from django.forms.fields import InvalidJSONInput
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import smart_split

from omnitron.exactjson import jsonb_refusal
from omnitron.limits import MAX_JSON_DEPTH

COUNT_CAP = 10_000
# The query-string lookups the list filters make (field, relation, date and empty
# filters), and the longest value one may compare.
FILTER_SUFFIXES = ("exact", "isnull", "isempty", "gte", "lt", "id__exact")
COMPARED = ("exact", "gte", "lt")  # those that compare the column with the value
DATE_PARTS = {"year": range(1, 10_000), "month": range(1, 13), "day": range(1, 32)}
MAX_LOOKUP_VALUE = 256
MAX_NEW_INLINE_ROWS = 100  # rows one save of a page may add to an inline
# At most this many related rows (customers with an email, orders with a number) are
# looked up for one search term.
RELATED_MATCHES = 1_000
MAX_SEARCH_WORDS = 10  # words in one search of Django's own (substrings, word by word)


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


class StorableJSONField(forms.JSONField):
    """Django's JSON form field, refusing what jsonb cannot store (a NUL, a lone
    surrogate, NaN, 1e999999), what Python cannot decode (an integer of over 4,300
    digits without the exact decoder), nesting deeper than MAX_JSON_DEPTH (the page
    writes the value again, deeper in the stack) and null for a column that is not
    nullable: each failed in the database or in the page (500)."""

    def __init__(self, *, allow_null=False, **kwargs):
        self.allow_null = allow_null
        super().__init__(**kwargs)

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except (ValueError, RecursionError):  # an integer of over 4,300 digits; deep nesting
            raise ValidationError("Enter a valid JSON value.", code="invalid") from None
        if self.disabled:
            return converted
        # null, or an empty box; a field left out of the post keeps its value (Django
        # leaves a field with a default alone when the post does not name it).
        if converted is None and value is not None and not self.allow_null:
            raise ValidationError("Enter a JSON value other than null ({} for none).",
                                  code="invalid")  # fmt: skip
        if reason := jsonb_refusal(converted, max_depth=MAX_JSON_DEPTH):
            raise ValidationError(reason, code="invalid")
        return converted

    def bound_data(self, data, initial):
        # The page shows what was posted; a value jsonb refuses is shown as its text
        # (a lone surrogate cannot even be written into the page).
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            value = json.loads(data, cls=self.decoder)
        except (ValueError, RecursionError):
            return InvalidJSONInput(data)
        return InvalidJSONInput(data) if jsonb_refusal(value, max_depth=MAX_JSON_DEPTH) else value


class CheckedAutocompleteSelect(widgets.AutocompleteSelect):
    """Django's autocomplete widget looks the posted value up to show it again when
    the form has errors: `channel=abc` failed in that query (ValueError, or an
    integer psycopg cannot send: 500). A value the related column cannot hold is
    shown as no choice; the form's own error says why."""

    def optgroups(self, name, value, attr=None):
        target = self.field.target_field
        value = [v for v in value if v in ("", None) or _is_value_of(target, str(v))]
        return super().optgroups(name, value, attr)


class CheckedRawIdWidget(widgets.ForeignKeyRawIdWidget):
    """Django's raw-id widget names the row whose id was posted, looked up among all
    rows, when the form is shown again: a staff member of one channel read another
    channel's order numbers by posting their pks. It names only a row of the form
    field's choices (`choices_queryset`, set by CheckedFormFieldsMixin)."""

    choices_queryset = None

    def label_and_url_for_value(self, value):
        target = self.rel.get_related_field()
        if self.choices_queryset is not None and not (
            _is_value_of(target, str(value))
            and self.choices_queryset.filter(**{target.name: value}).exists()
        ):
            return "", ""
        return super().label_and_url_for_value(value)


class CheckedFormFieldsMixin:
    """The form fields of a ModelAdmin or an inline: JSON that jsonb stores, and
    foreign keys' widgets that look up only values their column holds (autocomplete)
    and only rows the field may take (raw id)."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            kwargs = {"form_class": StorableJSONField, "allow_null": db_field.null, **kwargs}
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocompleteSelect(db_field, self.admin_site,
                                                         using=kwargs.get("using"))  # fmt: skip
        elif "widget" not in kwargs and db_field.name in self.raw_id_fields:
            kwargs["widget"] = CheckedRawIdWidget(db_field.remote_field, self.admin_site,
                                                  using=kwargs.get("using"))  # fmt: skip
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if isinstance(getattr(formfield, "widget", None), CheckedRawIdWidget):
            formfield.widget.choices_queryset = formfield.queryset
        return formfield


class CheckedInputMixin(CheckedFormFieldsMixin):
    """What an admin page takes from a request (mixed into every registered
    ModelAdmin by AdminSite): only the list's own filter lookups, pks as object ids
    and selections, and its forms' and its inlines' checked fields."""

    def lookup_allowed(self, lookup, value, request=None):
        """Only the list's own filters, with a value a column can be compared with.
        Django also takes any lookup on a local field from the query string:
        `number__regex=...` kept PostgreSQL busy until the statement timeout, and a NUL
        or an out-of-range year failed in the database (500). A refused lookup is
        Django's 400."""
        value = str(value)
        if "\x00" in value or len(value) > MAX_LOOKUP_VALUE:
            return False
        offered, dates = set(), []
        for entry in self.get_list_filter(request):
            if isinstance(entry, type) and issubclass(entry, admin.SimpleListFilter):
                offered.add(entry.parameter_name)
                continue
            path = entry[0] if isinstance(entry, tuple | list) else entry
            compared = lookup in {f"{path}__{suffix}" for suffix in COMPARED}
            if compared and not _is_comparable(self.model, path, value):
                return False
            offered.update(f"{path}__{suffix}" for suffix in FILTER_SUFFIXES)
            dates.append(path)
        if self.date_hierarchy:
            dates.append(self.date_hierarchy)
        for path in dates:
            # A day, month or year of a date filter's column, within the calendar.
            part = lookup.removeprefix(f"{path}__") if lookup.startswith(f"{path}__") else None
            if part in DATE_PARTS and _is_date(self.model, path):
                return value.isascii() and value.isdigit() and int(value) in DATE_PARTS[part]
        if (lookup, value) in _raw_id_lookups(self.model):
            return True  # a raw-id popup's `limit_choices_to`, as Django allows it
        return lookup in offered and super().lookup_allowed(lookup, value, request)

    def get_changeform_initial_data(self, request):
        """An add page's initial values from the query string, as Django takes them, but
        a date, time or date-time read as its field reads one, and left out when it is
        none or has no time in the site's zone: Django passed the text to the split
        date-time widget, which failed on any value (`?date_placed=2025-06-01` was a
        500), and on one at the calendar's end in another zone
        (`9999-12-31T23:59:59-14:00`)."""
        initial = super().get_changeform_initial_data(request)
        for name, value in list(initial.items()):
            try:
                field = self.opts.get_field(name)
            except FieldDoesNotExist:
                continue
            if isinstance(field, models.DateField | models.TimeField):  # date-times too
                try:
                    initial[name] = value = field.to_python(value)
                    if isinstance(value, datetime) and timezone.is_aware(value):
                        timezone.make_naive(value)  # only to find one the zone cannot show
                except (ValidationError, OverflowError, ValueError):
                    del initial[name]
        return initial

    def get_formsets_with_inlines(self, request, obj=None):
        """An inline builds at most a form per row it has, plus MAX_NEW_INLINE_ROWS if
        it may add: Django builds as many as a post's TOTAL_FORMS asks for, up to
        2,000 (a forged 1,000,000 on an order's page took 6 s); more is the formset's
        "Please submit at most N forms"."""
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            fk = getattr(formset, "fk", None)  # a generic inline has none: left as it is
            if fk is not None:
                rows = inline.get_queryset(request).filter(**{fk.name: obj}).count() if obj else 0
                cap = rows + (MAX_NEW_INLINE_ROWS if inline.has_add_permission(request, obj) else 0)
                formset.absolute_max = cap
                formset.max_num = min(formset.max_num, cap)
            yield formset, inline

    def get_inlines(self, request, obj):
        return [_checked(inline, CheckedFormFieldsMixin)
                for inline in super().get_inlines(request, obj)]  # fmt: skip

    def get_search_results(self, request, queryset, search_term):
        """Nothing for a term with a NUL, or of more than MAX_SEARCH_WORDS words.
        Django's change list refuses a NUL in its own search box, but the autocomplete
        passes its term here unchecked, after its permission check: the NUL failed in
        the database (500). Django matches each word of a term apart, on every search
        field: 200 words on a million customers ran past every timeout."""
        if "\x00" in search_term:
            return queryset.none(), False
        # An exact search (ExactSearchMixin) compares the whole term, once.
        if not isinstance(self, ExactSearchMixin) and (
            len(list(smart_split(search_term))) > MAX_SEARCH_WORDS
        ):
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def get_object(self, request, object_id, from_field=None):
        """None (Django's "does not exist") for an id with a NUL: an event's pk is
        text, and a NUL in it failed in the database (500). Django answers any other
        id a key cannot hold (`abc`, 20 digits) with None itself; an admin may read
        the id as another model's (authtoken's: a user's pk)."""
        if "\x00" in object_id:
            return None
        return super().get_object(request, object_id, from_field)

    def response_action(self, request, queryset):
        # A selection of anything but pks (`_selected_action=abc`, or beyond the pk's
        # range) failed in the query (500).
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_is_value_of(self.model._meta.pk, pk) for pk in selected):
            self.message_user(request, "That is not a selection of this list.", messages.ERROR)
            return None
        try:
            return super().response_action(request, queryset)
        except (ProtectedError, RestrictedError) as exc:  # as delete_view's, below
            self.message_user(request, _protected_message(exc), messages.ERROR)
            return None

    def delete_view(self, request, object_id, extra_context=None):
        """Django checks what protects a row when it shows the delete page and again
        when the delete is posted, then deletes: a capture that committed between the
        second check and the delete made the delete fail (500, helper 72). Nothing is
        deleted either way; now the page comes back with what protects the row."""
        try:
            return super().delete_view(request, object_id, extra_context)
        except (ProtectedError, RestrictedError) as exc:
            self.message_user(request, _protected_message(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def _protected_message(exc: ProtectedError | RestrictedError) -> str:
    rows = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    names = sorted({str(row._meta.verbose_name) for row in rows})
    return (
        "Nothing was deleted: while the page was open, other rows came to need it "
        f"({', '.join(names)})."
    )


def _is_value_of(field, value: str) -> bool:
    """Whether a value from a request is one the field's column holds, so that
    comparing the column with it cannot fail in the database: no NUL, converted as the
    field converts it, within its range (an integer pk's) and length."""
    if "\x00" in value:
        return False
    try:
        field.run_validators(field.to_python(value))
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def _is_comparable(model, path: str, value: str) -> bool:
    """Whether the column at `path` can be compared with `value`: one of the field's
    choices if it has them (a PostgreSQL enum refuses any other value), a value the
    column (a relation's: the related key) holds (`channel__exact=` 20 digits)."""
    try:
        field = get_fields_from_path(model, path)[-1]
    except (FieldDoesNotExist, NotRelationField):
        return True
    if field.choices and value not in {str(key) for key, _ in field.flatchoices}:
        return False
    return _is_value_of(field.target_field if field.is_relation else field, value)


@functools.cache
def _checked(admin_class: type, mixin: type, prefix: str = "Checked") -> type:
    """`admin_class` with `mixin` in front (`<prefix><name>`), unless it has it."""
    if issubclass(admin_class, mixin):
        return admin_class
    return type(f"{prefix}{admin_class.__name__}", (mixin, admin_class), {"__module__": __name__})


def _raw_id_lookups(model) -> set[tuple[str, str]]:
    """The query-string lookups of the raw-id popups that choose a `model` for another
    model's field with `limit_choices_to`."""
    lookups = set()
    for limit in model._meta.related_fkey_lookups:
        limit = limit() if callable(limit) else limit
        lookups.update(widgets.url_params_from_lookup_dict(limit).items())
    return lookups


def _is_date(model, path: str) -> bool:
    try:
        return isinstance(model._meta.get_field(path), models.DateField)
    except FieldDoesNotExist:  # a filter across a relation (`user__username`)
        return False


class SuperuserOnly:
    """Pages only superusers see and use, whatever permissions staff are given."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_delete_permission(request, obj)


# Other apps' pages that reach every channel: API tokens (a key is a user's access to
# their channels' orders: staff given the token permissions read and made any user's
# key) and the task queue's jobs (every channel's deliveries, retried or cancelled).
SUPERUSER_ONLY_APPS = {"authtoken", "procrastinate"}


class AdminSite(admin.AdminSite):
    """The project's admin site: a ModelAdmin registered without CheckedInputMixin,
    another app's included, is registered as a subclass with it in front
    (`Checked<name>`: the mixin's checks run before the admin's own overrides); one of
    SUPERUSER_ONLY_APPS with SuperuserOnly in front too."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = _checked(admin_class or admin.ModelAdmin, CheckedInputMixin)
        models_ = [model_or_iterable] if isinstance(model_or_iterable, type) else model_or_iterable
        for model in models_:
            model_admin = admin_class
            if model._meta.app_label in SUPERUSER_ONLY_APPS:
                model_admin = _checked(admin_class, SuperuserOnly, prefix="SuperuserOnly")
            super().register(model, model_admin, **options)

    # The form of the admin's own password change, as `login_form` is the login's
    # (accounts/admin.py sets both), given the request as the login's is; None:
    # Django's.
    password_change_form = None

    def autocomplete_view(self, request):
        return AutocompleteJsonView.as_view(admin_site=self)(request)

    def password_change(self, request, extra_context=None):
        if self.password_change_form is None:
            return super().password_change(request, extra_context)
        request.current_app = self.name
        return PasswordChangeWithRequestView.as_view(
            form_class=self.password_change_form,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)


class PasswordChangeWithRequestView(PasswordChangeView):
    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class AutocompleteJsonView(autocomplete.AutocompleteJsonView):
    """Django's autocomplete, refusing a reverse relation (`field_name=items` of an
    order) as it refuses a field that is not a relation: Django failed on it (500)."""

    def process_request(self, request):
        term, model_admin, source_field, to_field_name = super().process_request(request)
        if isinstance(source_field, models.ForeignObjectRel):
            raise PermissionDenied
        return term, model_admin, source_field, to_field_name


class ReadOnlyMixin:
    """An audit or a record in the admin: shown, never added, changed or deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SortableByChangeList(ChangeList):
    """Sorts only by the ModelAdmin's `sortable_by` columns: Django leaves them out of
    the column headers, but takes any column from the query string (`?o=5`)."""

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


class ChangedFieldsOnlyMixin:
    """A change form writes only the fields the operator changed (and the auto_now
    ones): a whole row written back as the page had read it undid what the API wrote
    meanwhile (the ERP's is_send, a capture's attributes)."""

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        fields = {field.name: field for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in fields]
        if changed:
            stamped = [name for name, field in fields.items() if getattr(field, "auto_now", False)]
            obj.save(update_fields=[*changed, *stamped])
        return None


class ExactSearchMixin:
    """`search_fields` match a term exactly, each on an indexed column; a field across
    a relation (`customer__email`) is looked up first and matched by id, so the whole
    search stays one index lookup per field."""

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
