"""Serializer building blocks that render and document values as the seed does."""

from functools import partial
from operator import attrgetter

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings


@extend_schema_field({"type": "number", "format": "decimal"})
class DecimalNumberField(serializers.DecimalField):
    """A decimal answered as a JSON number (COERCE_DECIMAL_TO_STRING is off)."""


@extend_schema_field({"type": "string", "format": "url"})
class SeedURLField(serializers.URLField):
    """The seed documents URLs with format "url"."""


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: DecimalNumberField,
        models.URLField: SeedURLField,
    }


# Comments, not docstrings, on these two classes: drf-spectacular would publish a
# docstring as the description of every serializer that inherits it.
#
# SharedFieldsMixin builds a serializer's fields once per class instead of once per
# instance. DRF deep-copies and binds every declared field each time a serializer is
# instantiated (and a ModelSerializer first introspects its model): for an Order's 47
# fields that was about 10 ms per answer on the benchmark machine, most of a
# capture's Python time, and 0.5 ms to validate a capture's input. Only for
# serializers whose fields keep no per-request state: no validators or defaults that
# read the serializer's context (the shared fields stay bound to the first instance).
class SharedFieldsMixin:
    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = super().fields
            cls._shared_fields = shared
        return shared


# OutputModelSerializer also answers with a plan compiled once per class: for each
# field, how to read it and how to render it. DRF looks both up for every field of
# every answer; for an Order that was about 0.8 ms of a capture's 4 ms of Python.
# Only field types whose rendering is plain (text, integers, booleans, JSON,
# date-times in ISO 8601) take the shortcut; every other field renders through DRF.
# tests/api/test_representation.py checks the answers equal DRF's, field by field.
class OutputModelSerializer(SharedFieldsMixin, ModelSerializer):
    def to_representation(self, instance):
        cls = type(self)
        plan = cls.__dict__.get("_representation_plan")
        if plan is None:
            plan = [_field_plan(field) for field in self._readable_fields]
            cls._representation_plan = plan
        answer = {}
        for name, read, render in plan:
            value = read(instance)
            answer[name] = None if value is None else render(value)
        return answer


_AS_TEXT = (
    serializers.CharField, serializers.ChoiceField, serializers.IPAddressField,
    serializers.URLField, serializers.EmailField, SeedURLField,
)  # fmt: skip


def _field_plan(field):
    """(name, read, render) for one field: attribute access and a plain conversion
    where DRF's own would give the same answer, DRF's methods otherwise."""
    plain_source = len(field.source_attrs) == 1 and not isinstance(
        field, serializers.BaseSerializer | serializers.SerializerMethodField
    )
    read = attrgetter(field.source_attrs[0]) if plain_source else field.get_attribute
    kind = type(field)
    if not plain_source:
        render = field.to_representation
    elif kind in _AS_TEXT:
        render = str
    elif kind is serializers.IntegerField:
        render = int
    elif kind is serializers.BooleanField:
        render = bool
    elif issubclass(kind, serializers.JSONField) and not field.binary:
        render = _same
    elif kind is serializers.DateTimeField and _iso_8601(field):
        render = partial(_render_datetime, field)
    else:
        render = field.to_representation
    return field.field_name, read, render


def _same(value):
    return value


def _iso_8601(field) -> bool:
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return output_format is not None and output_format.lower() == ISO_8601


def _render_datetime(field, value):
    """DRF's DateTimeField.to_representation for ISO 8601, minus its lookups."""
    if not value:
        return None
    if isinstance(value, str):
        return value
    text = field.enforce_timezone(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
