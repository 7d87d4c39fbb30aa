"""OpenAPI pieces shared by the views (drf-spectacular): the `Token` security
scheme of the seed and the documented error answers with their codes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse


class TokenScheme(OpenApiAuthenticationExtension):
    """The seed's security scheme: `Token`, an API key in the Authorization header."""

    target_class = "omnitron.api.authentication.TokenAuthentication"
    name = "Token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Send `Token <key>` (the word Token, a space, then the key).",
        }


# drf-spectacular drops a "Serializer" suffix from component names; the seed keeps it.
SEED_COMPONENT_NAMES = {
    "CaptureOrder": "CaptureOrderSerializer",
    "CaptureOrderItem": "CaptureOrderItemSerializer",
}


def seed_component_names(result, generator, request, public):
    """Postprocessing hook: rename components to the seed's names, refs included."""
    schemas = result.get("components", {}).get("schemas", {})
    for ours, seed in SEED_COMPONENT_NAMES.items():
        if ours in schemas:
            schemas[seed] = schemas.pop(ours)
    return _rename_refs(result)


def _rename_refs(node):
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        name = ref.removeprefix("#/components/schemas/")
        if name in SEED_COMPONENT_NAMES:
            node["$ref"] = f"#/components/schemas/{SEED_COMPONENT_NAMES[name]}"
        for value in node.values():
            _rename_refs(value)
    elif isinstance(node, list):
        for value in node:
            _rename_refs(value)
    return node


def detail_error(description: str, codes: list[str]) -> OpenApiResponse:
    """An error answered as {"detail": "...", "code": "..."}."""
    return OpenApiResponse(
        description=f"{description} `code`: {', '.join(f'`{c}`' for c in codes)}.",
        response={
            "type": "object",
            "required": ["detail", "code"],
            "properties": {
                "detail": {
                    "type": "string",
                    "description": "Contains a detailed description of the error.",
                },
                "code": {
                    "type": "string",
                    "enum": codes,
                    "description": "Represents the server-side error code.",
                },
            },
        },
    )


def field_errors(description: str, examples: list[OpenApiExample] | None = None):
    """An error answered as {"<field>": [...], "code": "..."} or, for errors that are
    not a field's, {"non_field_errors": [...], "code": "..."} or {"detail", "code"}."""
    return OpenApiResponse(
        description=description,
        response={
            "type": "object",
            "required": ["code"],
            "properties": {
                "code": {"type": "string", "description": "The first error's code."},
                "detail": {"type": "string"},
                "non_field_errors": {"type": "array", "items": {"type": "string"}},
            },
            # Each invalid field: its messages, or one entry per list item (the item's
            # field errors, or its own messages).
            "additionalProperties": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"type": "string"},
                        {"type": "object"},
                        {"type": "array", "items": {"type": "string"}},
                    ]
                },
            },
        },
        examples=examples,
    )


UNAUTHORIZED = detail_error(
    "Unauthorized Access: no token, an unknown token, or an inactive user.",
    ["not_authenticated", "authentication_failed"],
)
NOT_FOUND = detail_error("Not found, or not in your channels.", ["not_found"])
TOO_LARGE = detail_error("The body is larger than the API accepts.", ["request_too_large"])
UNSUPPORTED = detail_error("The body is not JSON.", ["unsupported_media_type"])
UNAVAILABLE = detail_error(
    "The database is unreachable or too slow; retry later.",
    ["database_unavailable", "database_timeout"],
)
BAD_QUERY = field_errors("An invalid query parameter; each one named with its messages.")
URI_TOO_LONG = detail_error("The request line is over 8190 bytes.", ["uri_too_long"])
HEADER_TOO_LARGE = detail_error("A header is over 8190 bytes.", ["header_too_large"])

THROTTLED = detail_error(
    "Too many requests: retry after the Retry-After header's seconds.", ["throttled"]
)

READ_ERRORS = {
    400: BAD_QUERY, 401: UNAUTHORIZED, 404: NOT_FOUND, 414: URI_TOO_LONG, 503: UNAVAILABLE,
}  # fmt: skip
WRITE_ERRORS = {
    413: TOO_LARGE, 415: UNSUPPORTED, 429: THROTTLED, 431: HEADER_TOO_LARGE, 503: UNAVAILABLE,
}  # fmt: skip
