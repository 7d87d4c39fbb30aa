"""The orders app's part of the OpenAPI document: the ERP's mark-sent PATCH
(drf-spectacular extension) and the names of the seed's enums' members
(postprocessing hook)."""

import copy

from django.db.models import Choices
from drf_spectacular.extensions import OpenApiSerializerExtension

from . import enums


class OrderSentSchema(OpenApiSerializerExtension):
    """PATCH /api/v1/orders/{id}/ takes exactly `{"is_send": <bool>}`: drf-spectacular
    documents a PATCH body as DRF's partial update, every field optional (a `{}` was
    valid by the document and 400 `required` by the server), and any other key is 400
    `not_writable`. The component keeps drf-spectacular's name for a PATCH body,
    `PatchedOrderSent`."""

    target_class = "orders.serializers.OrderSentSerializer"

    def map_serializer(self, auto_schema, direction):
        whole = copy.copy(self.target)
        whole.partial = False
        schema = auto_schema._map_basic_serializer(whole, direction)
        return {**schema, "additionalProperties": False}


def enum_member_names(result, generator, request, public):
    """Postprocessing hook: every enum of one of the seed's TextChoices (orders/enums.py)
    names its members (`x-enum-varnames`, OpenAPI Generator's convention, which
    openapi-python-client and datamodel-code-generator read): a client generated from
    the document called OrderStatus's "400" VALUE_5, not APPROVED."""
    names = {}
    for choices in vars(enums).values():
        if isinstance(choices, type) and issubclass(choices, Choices) and choices is not Choices:
            names[frozenset(choices.values)] = dict(zip(choices.values, choices.names, strict=True))
    for node in _nodes(result):
        values = node.get("enum")
        if isinstance(values, list) and (members := names.get(frozenset(values))):
            node["x-enum-varnames"] = [members[value] for value in values]
    return result


def _nodes(node):
    """Every object of a JSON document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)
