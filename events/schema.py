"""The webhook payloads in the OpenAPI document: one component per event type,
`<Type>Webhook` (e.g. OrderCapturedWebhook), shown on the docs page with the others.
OpenAPI 3.0 has no `webhooks` section; the payload is what a receiver gets as the
body of the POST."""

from .registry import EVENT_TYPES


def component_name(event_type: str, suffix: str = "Webhook") -> str:
    """The OpenAPI component of a type's webhook payload (OrderCapturedWebhook), or with
    another suffix, of its feed event (OrderCapturedEvent)."""
    return "".join(part.capitalize() for part in event_type.replace("_", ".").split(".")) + suffix


def webhook_components(result, generator, request, public):
    """Postprocessing hook (SPECTACULAR_SETTINGS): add each type's payload schema."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for event_type in EVENT_TYPES.values():
        data = event_type.data_serializer.__name__.removesuffix("Serializer")
        schemas[component_name(event_type.name)] = {
            "type": "object",
            "description": (
                f"The body of a `{event_type.name}` webhook: POST, `Content-Type: "
                "application/json`, with the Standard Webhooks headers `webhook-id` (the "
                "event id, the same on every retry), `webhook-timestamp` and "
                "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`)."
            ),
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"type": "string", "enum": [event_type.name]},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": {"$ref": f"#/components/schemas/{data}"},
            },
        }
    return result
