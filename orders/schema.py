"""The OpenAPI document of the ERP's mark-sent PATCH (drf-spectacular extension)."""

import copy

from drf_spectacular.extensions import OpenApiSerializerExtension


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
