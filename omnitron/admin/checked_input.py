"""What every admin page takes from a request (omnitron/admin/__init__.py)."""

import functools
import json
import logging
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import ProtectedError, RestrictedError
from django.forms.fields import InvalidJSONInput
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.text import capfirst, smart_split

from omnitron.db.errors import foreign_key_failed_on
from omnitron.exactjson import DuplicateKey, jsonb_refusal, without_duplicate_keys
from omnitron.limits import MAX_JSON_DEPTH

from .deletes import deleted_rows

logger = logging.getLogger(__name__)

# The query-string lookups the list filters make (field, relation, date and empty
# filters), and the longest value one may compare.
FILTER_SUFFIXES = ("exact", "isnull", "isempty", "gte", "lt", "id__exact")
# Those that compare the column (a relation's key) with the value.
COMPARED = ("exact", "gte", "lt", "id__exact")
DATE_PARTS = {"year": range(1, 10_000), "month": range(1, 13), "day": range(1, 32)}
MAX_LOOKUP_VALUE = 256
MAX_NEW_INLINE_ROWS = 100  # rows one save of a page may add to an inline
MAX_PROTECTED_SHOWN = 10  # rows of each kind a delete page lists as protecting the row
MAX_SEARCH_WORDS = 10  # words in one search of Django's own (substrings, word by word)


@functools.cache
def _refusing_duplicate_keys(decoder: type[json.JSONDecoder] | None) -> type[json.JSONDecoder]:
    """`decoder` (json's own for None), refusing an object that names a key twice."""

    class Decoder(decoder or json.JSONDecoder):
        def __init__(self, **kwargs):
            super().__init__(object_pairs_hook=without_duplicate_keys, **kwargs)

    return Decoder


class StorableJSONField(forms.JSONField):
    """Django's JSON form field, refusing what jsonb cannot store (a NUL, a lone
    surrogate, NaN, 1e999999), what Python cannot decode (an integer of over 4,300
    digits without the exact decoder), nesting deeper than MAX_JSON_DEPTH (the page
    writes the value again, deeper in the stack), null for a column that is not
    nullable (each failed in the database or in the page: 500) and an object naming a
    key twice (json kept the last value silently: a webhook's header given twice)."""

    def __init__(self, *, allow_null=False, **kwargs):
        self.allow_null = allow_null
        super().__init__(**kwargs)
        self.decoder = _refusing_duplicate_keys(self.decoder)

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except DuplicateKey as exc:
            raise ValidationError(f"Each key once: {exc}", code="invalid") from None
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


class FiniteDecimalField(forms.DecimalField):
    """Django's decimal form field, refusing NaN and infinities as it reads them: it
    refused them only in validation, and a form that asked whether the value changed
    first (the item form does, to lock the item) compared a signalling NaN (`sNaN`),
    which raises (500)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not value.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return value


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
    """The form fields of a ModelAdmin or an inline: JSON that jsonb stores, finite
    decimals, and foreign keys' widgets that look up only values their column holds
    (autocomplete) and only rows the field may take (raw id)."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            kwargs = {"form_class": StorableJSONField, "allow_null": db_field.null, **kwargs}
        elif isinstance(db_field, models.DecimalField):
            kwargs = {"form_class": FiniteDecimalField, **kwargs}
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
        return [with_mixin(inline, CheckedFormFieldsMixin)
                for inline in super().get_inlines(request, obj)]  # fmt: skip

    def get_search_results(self, request, queryset, search_term):
        """Nothing for a term with a NUL, or of more than MAX_SEARCH_WORDS words.
        Django's change list refuses a NUL in its own search box, but the autocomplete
        passes its term here unchecked, after its permission check: the NUL failed in
        the database (500). Django matches each word of a term apart, on every search
        field: 200 words on a million customers ran past every timeout."""
        if "\x00" in search_term:
            return queryset.none(), False
        # An exact search (large_tables.ExactSearchMixin) compares the whole term, once.
        # (Read with getattr: this mixin comes before that one in LargeTableAdmin.)
        if not getattr(self, "searches_whole_terms", False) and (
            len(list(smart_split(search_term))) > MAX_SEARCH_WORDS
        ):
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def get_object(self, request, object_id, from_field=None):
        """None (Django's "does not exist") for an id with a NUL: an event's pk is
        text, and a NUL in it failed in the database (500). Django answers any other
        id a key cannot hold (`abc`, 20 digits) with None itself; an admin may read
        the id as another model's (authtoken's: a user's pk). An empty `_to_field`
        is no field: Django checks only one that is given, then looked up a field
        named "" (500 on every change and delete page)."""
        if "\x00" in object_id:
            return None
        return super().get_object(request, object_id, from_field or None)

    def response_action(self, request, queryset):
        # A selection of anything but pks (`_selected_action=abc`, or beyond the pk's
        # range) failed in the query (500).
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_is_value_of(self.model._meta.pk, pk) for pk in selected):
            self.message_user(request, "That is not a selection of this list.", messages.ERROR)
            return None
        try:  # one transaction: Django logs a bulk delete's rows before deleting them
            with transaction.atomic(using=router.db_for_write(self.model)):
                return super().response_action(request, queryset)
        except (ProtectedError, RestrictedError, IntegrityError) as exc:
            if request.POST.get("action") != "delete_selected" or not _overtaken(exc):
                raise  # another action's failure is a bug, a 500 with its traceback
            _drop_queued_messages(request)
            self.message_user(request, _overtaken_message(exc), messages.ERROR)
            return None

    def get_deleted_objects(self, objs, request):
        """Django's delete page (and the delete action's) collects every row a delete
        would reach and lists every row that protects it: a customer's page with 14,000
        orders took 1.4 s and 1 MB, growing with them (a guest customer of a year's
        orders: past gunicorn's timeout). The rows that protect it are looked for
        first, MAX_PROTECTED_SHOWN of each kind; when there are any, the page lists
        those, nothing more is collected, and nothing is deleted. Else the rows the
        delete takes along are listed up to a hundred of each kind (deletes.py)."""
        if protected := _protecting_rows(self.model, objs):
            return [], {}, set(), protected
        return deleted_rows(objs, request, self.admin_site)

    def delete_view(self, request, object_id, extra_context=None):
        """Django checks what protects a row when it shows the delete page and again
        when the delete is posted, then deletes: a capture that committed between the
        second check and the delete made the delete fail (500), and one that
        committed after Django's collection of the rows to delete failed its foreign
        keys at the commit. Nothing is deleted either way; now the page comes back,
        showing what protects the row."""
        try:
            return super().delete_view(request, object_id, extra_context)
        except (ProtectedError, RestrictedError, IntegrityError) as exc:
            if not _overtaken(exc):
                raise
            _drop_queued_messages(request)
            self.message_user(request, _overtaken_message(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def _protecting_rows(model, objs) -> list[str]:
    """Up to MAX_PROTECTED_SHOWN rows of each model whose foreign key to `objs` is
    PROTECT, named as Django's delete page names them; a line more where there are
    more."""
    shown = []
    for relation in model._meta.get_fields(include_hidden=True):
        if not relation.auto_created or relation.concrete:
            continue
        if getattr(relation, "on_delete", None) is not models.PROTECT:
            continue
        related = relation.related_model
        rows = related._base_manager.filter(**{f"{relation.field.name}__in": objs})
        found = list(rows[: MAX_PROTECTED_SHOWN + 1])
        name = related._meta.verbose_name
        shown += [f"{capfirst(name)}: {row}" for row in found[:MAX_PROTECTED_SHOWN]]
        if len(found) > MAX_PROTECTED_SHOWN:
            shown.append(f"and more {related._meta.verbose_name_plural}")
    return shown


def _overtaken(exc: Exception) -> bool:
    """Whether a delete failed because rows came to depend on what it deletes after
    Django looked: its collection of the rows (ProtectedError, RestrictedError), or a
    foreign key checked at the commit, on the deleting side. Any other integrity
    error is a bug, and stays one."""
    if isinstance(exc, ProtectedError | RestrictedError):
        return True
    if foreign_key_failed_on(exc) == "delete":
        logger.warning("A delete a write overtook was refused: %s", exc)
        return True
    return False


def _drop_queued_messages(request) -> None:
    """Django says a delete succeeded before its commit, which can still fail: that
    message went out beside "Nothing was deleted". Reading the request's
    messages here marks them shown, so only those added after are sent."""
    for _ in messages.get_messages(request):
        pass


def _overtaken_message(exc: Exception) -> str:
    message = "Nothing was deleted: while the page was open, other rows came to need it"
    if isinstance(exc, ProtectedError | RestrictedError):
        rows = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        message += f" ({', '.join(sorted({str(row._meta.verbose_name) for row in rows}))})"
    return message + "."


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
def with_mixin(admin_class: type, mixin: type, prefix: str = "Checked") -> type:
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
