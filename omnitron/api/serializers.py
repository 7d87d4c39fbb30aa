"""Serializer building blocks that render and document values as the seed does."""

import re
from datetime import datetime

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings
from rest_framework.utils import humanize_datetime

from omnitron.exactjson import LargeInteger


@extend_schema_field({"type": "number", "format": "decimal"})
class DecimalNumberField(serializers.DecimalField):
    """A decimal answered as a JSON number (COERCE_DECIMAL_TO_STRING is off)."""


@extend_schema_field({"type": "string", "format": "url"})
class SeedURLField(serializers.URLField):
    """The seed documents URLs with format "url"."""


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON integer or a string of ASCII digits, nothing else.
    DRF's IntegerField also takes "1124.00", " 1118 ", "13_187", "+1123", other
    scripts' digits ("١٣١٨٢") and decimals with a zero fraction."""

    def to_internal_value(self, data):
        if isinstance(data, str) and len(data) > self.MAX_STRING_LENGTH:
            self.fail("max_string_length")
        if isinstance(data, LargeInteger):  # beyond a bound: its code, as a shorter one's
            if data > 0 and self.max_value is not None:
                self.fail("max_value", max_value=self.max_value)
            if data < 0 and self.min_value is not None:
                self.fail("min_value", min_value=self.min_value)
        if type(data) is not int and not (isinstance(data, str) and _ASCII_DIGITS.fullmatch(data)):
            self.fail("invalid")
        return int(data)


_ASCII_DIGITS = re.compile("[0-9]+")
_EXTENDED_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class QueryDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time query parameter in the extended form its error message
    names (`2025-06-01T00:00:00Z`; a space for the `T`, as RFC 3339 allows and Python's
    str() of a datetime writes; `t` and `z` in lower case, as RFC 3339 allows too);
    without an offset it is UTC. Python reads more
    (a date alone, week dates, the basic form), and a date alone was midnight: an
    export `date_placed__lte=2026-11-25` left that whole day out. One that leaves the
    calendar once in UTC (`0001-01-01T00:00:00+01:00`) is `invalid` too: DRF's own
    codes for it (`overflow`, `make_aware`) are not in the registry."""

    def to_internal_value(self, value):
        if isinstance(value, str) and not _EXTENDED_DATE_TIME.fullmatch(value):
            formats = getattr(self, "input_formats", api_settings.DATETIME_INPUT_FORMATS)
            self.fail("invalid", format=humanize_datetime.datetime_formats(formats))
        if isinstance(value, str):
            value = value.upper()
            try:  # the right form, but a day or an hour the calendar does not have
                datetime.fromisoformat(value)
            except ValueError:  # "wrong format. Use one of these formats" misled
                raise serializers.ValidationError(
                    "Not a date and time on the calendar.", code="invalid"
                ) from None
        return super().to_internal_value(value)

    def fail(self, key, **kwargs):
        if key in ("overflow", "make_aware"):
            message = self.error_messages[key].format(**kwargs)
            raise serializers.ValidationError(message, code="invalid")
        super().fail(key, **kwargs)


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: DecimalNumberField,
        models.URLField: SeedURLField,
    }


# A comment, not a docstring: drf-spectacular would publish a docstring as the
# description of every serializer that inherits it.
#
# SharedFieldsMixin builds a serializer's fields once per class instead of once per
# instance. DRF deep-copies and binds every declared field each time a serializer is
# instantiated (and a ModelSerializer first introspects its model): for an Order's 47
# fields that was most of a capture's Python time (docs/performance.md has the
# figures). Only for serializers whose fields keep no per-request state: no
# validators or defaults that read the serializer's context (the shared fields stay
# bound to the first instance). tests/api/test_representation.py checks the answers
# equal those of the same serializer without it.
class SharedFieldsMixin:
    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = super().fields
            cls._shared_fields = shared
        return shared


class OutputModelSerializer(SharedFieldsMixin, ModelSerializer):
    pass
