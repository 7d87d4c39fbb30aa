"""What a delete page lists as deleted with the row (omnitron/admin/__init__.py)."""

from django.contrib.admin.utils import NestedObjects, quote
from django.db import models, router
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

MAX_DELETED_SHOWN = 100  # rows of a relation a delete page reads and lists


class ListedNestedObjects(NestedObjects):
    """Django's collection of the rows a delete takes along, for its page, reading at
    most MAX_DELETED_SHOWN rows of each relation: Django read and listed them all (a
    user's page with 100,000 Idempotency-Key answers: 7 s and 4.5 MB). `cut` holds
    the models of the relations cut short, `unlisted` those and every model a delete
    of their rows reaches (the page asks for the permission to delete each)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cut, self.unlisted = set(), set()

    def related_objects(self, related_model, related_fields, objs):
        rows = super().related_objects(related_model, related_fields, objs)
        if not rows.order_by()[MAX_DELETED_SHOWN:].exists():
            return rows
        self.cut.add(related_model)
        self.unlisted |= _cascade_models(related_model)
        # Any hundred: in the model's order (the admin history's, by time) PostgreSQL
        # sorted all the rows first.
        return rows.order_by()[:MAX_DELETED_SHOWN]


def deleted_rows(objs, request, admin_site):
    """Django's `get_deleted_objects` (django/contrib/admin/utils.py) with
    ListedNestedObjects: the nested list of rows, the count of each kind ("100+"
    for a kind cut short, then "and more ..." in the list), the kinds the user may
    not delete, and the rows that protect them."""
    try:
        model = objs[0]._meta.model
    except IndexError:
        return [], {}, set(), []
    collector = ListedNestedObjects(using=router.db_for_write(model), origin=objs)
    collector.collect(objs)
    perms_needed = set()

    def may_delete(model, obj=None) -> bool:
        model_admin = admin_site.get_model_admin(model)
        return model_admin.has_delete_permission(request, obj)

    def format_callback(obj):
        opts = obj._meta
        name = capfirst(opts.verbose_name)
        if not admin_site.is_registered(obj.__class__):
            return f"{name}: {obj}"
        if not may_delete(obj.__class__, obj):
            perms_needed.add(opts.verbose_name)
        try:
            url = reverse(f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                          args=(quote(obj.pk),))  # fmt: skip
        except NoReverseMatch:
            return f"{name}: {obj}"
        return format_html('{}: <a href="{}">{}</a>', name, url, obj)

    to_delete = collector.nested(format_callback)
    protected = [format_callback(obj) for obj in collector.protected]
    for model in collector.unlisted:
        if admin_site.is_registered(model) and not may_delete(model):
            perms_needed.add(model._meta.verbose_name)
    to_delete += [f"and more {model._meta.verbose_name_plural}" for model in collector.cut]
    model_count = {
        model._meta.verbose_name_plural: f"{len(rows)}+" if model in collector.cut else len(rows)
        for model, rows in collector.model_objs.items()
    }
    return to_delete, model_count, perms_needed, protected


def _cascade_models(model, seen=None) -> set:
    """`model` and every model a delete of its rows reaches (on_delete CASCADE)."""
    seen = set() if seen is None else seen
    if model in seen:
        return seen
    seen.add(model)
    for relation in model._meta.get_fields(include_hidden=True):
        reverse = relation.auto_created and not relation.concrete
        if reverse and getattr(relation, "on_delete", None) is models.CASCADE:
            _cascade_models(relation.related_model, seen)
    return seen
