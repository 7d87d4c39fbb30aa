"""Serializer building blocks that render and document values as the seed does."""

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


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
