"""OpenAPI pieces shared by the views (drf-spectacular): the `Token` security
scheme of the seed, and the documented error answers, built from the error code
registry (error_codes.py)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from .error_codes import ANY_FIELD, FIELD_CODES_WHEN, ApiErrorCode, ErrorCode, FieldErrorCode
from .exceptions import CodedError


class TokenScheme(OpenApiAuthenticationExtension):
    """The seed's security scheme: `Token`, an API key in the Authorization header."""

    target_class = "accounts.authentication.TokenAuthentication"
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


def query_parameters_may_be_empty(result, generator, request, public):
    """Postprocessing hook: every query parameter takes an empty value (`?status=`)
    as if it were not sent, as DRF reads form-like input: say so (`allowEmptyValue`),
    or the document would call `?status=` invalid."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True
    return result


# Answers that say when to retry, in Retry-After: the app's (a CodedError's `wait`),
# the rate limits' and the proxy's own (deploy/nginx).
CAPTURE_PATH = "/api/v1/capture-order/"  # the one answer that can be a replay
RETRY_AFTER_DESCRIPTION = (
    "Seconds to wait before retrying, sent with the answers worth a retry (each code's "
    "description says how long)."
)


def response_headers(result, generator, request, public):
    """Postprocessing hook: the headers a client acts on, declared where they are sent
    (they were only named in descriptions): Retry-After on every answer whose codes
    include one worth a retry, and the capture's Idempotent-Replayed."""
    retryable = _retryable_codes()
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for status_code, response in operation.get("responses", {}).items():
                headers = {}
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                codes = set(schema.get("properties", {}).get("code", {}).get("enum", []))
                if codes & retryable:
                    headers["Retry-After"] = {
                        "description": RETRY_AFTER_DESCRIPTION,
                        "schema": {"type": "integer", "minimum": 0},
                    }
                if path == CAPTURE_PATH and method == "post" and status_code in ("200", "400"):
                    headers["Idempotent-Replayed"] = {
                        "description": "`true` when this is the stored answer of an earlier "
                        "request with the same Idempotency-Key, replayed; absent otherwise.",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                if headers:
                    response["headers"] = headers
    return result


def _retryable_codes() -> set[str]:
    waiting, classes = set(), [CodedError]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        if getattr(cls, "wait", None) is not None and "error" in vars(cls):
            waiting.add(cls.error.code)
    proxy = (ApiErrorCode.TOO_MANY_CONNECTIONS, ApiErrorCode.APP_UNAVAILABLE,
             ApiErrorCode.APP_TIMEOUT)  # fmt: skip
    return waiting | {ApiErrorCode.THROTTLED.code} | {error.code for error in proxy}


# Values for the placeholders of the registry's messages in the documented examples.
_EXAMPLE_PARAMS = {
    "pks": "3, 5", "status": "200", "size": 20480, "reason": "Expecting value: line 1 "
    "column 1 (char 0)", "method": "PUT", "media_type": "text/plain", "wait": 12,
    "max_length": 128, "min_value": 1, "max_value": 9223372036854775807,
    "input_type": "str", "input": "999", "code_point": 0xD800, "encoding": "gzip", "limit": 250000,
}  # fmt: skip


def error_responses(*codes: ErrorCode) -> dict[int, OpenApiResponse]:
    """The documented error answers of an operation, built from the registry: per
    status, a description listing each code and when it is answered, the body's
    schema with `code` as an enum of those codes, and one example per code."""
    by_status: dict[int, list[ErrorCode]] = {}
    for error in codes:
        by_status.setdefault(error.status_code, []).append(error)
    return {status_code: _response(errors) for status_code, errors in sorted(by_status.items())}


def _response(errors: list[ErrorCode]) -> OpenApiResponse:
    own = [error for error in errors if error.field != ANY_FIELD]
    lines = [f"- `{error.code}` ({_where(error)}): {error.when}" for error in own]
    if field_codes := [f"`{error.code}`" for error in errors if error.field == ANY_FIELD]:
        lines.append(f"- {', '.join(field_codes)} (on the invalid field): {FIELD_CODES_WHEN}")
    enum = [error.code for error in errors]
    fields = {error.field for error in errors}
    return OpenApiResponse(
        description="\n".join(lines),
        response=_detail_schema(enum) if fields == {None} else _fields_schema(enum),
        examples=[
            OpenApiExample(error.code, value=error.example(**_EXAMPLE_PARAMS), response_only=True)
            for error in own
        ],
    )


def _where(error: ErrorCode) -> str:
    return "`detail`" if error.field is None else f"on `{error.field}`"


def _code_property(enum: list[str]) -> dict:
    return {"type": "string", "enum": enum, "description": "Represents the server-side error code."}


def _detail_schema(enum: list[str]) -> dict:
    """{"detail": "...", "code": "..."}"""
    return {
        "type": "object",
        "required": ["detail", "code"],
        "properties": {
            "detail": {
                "type": "string",
                "description": "Contains a detailed description of the error.",
            },
            "code": _code_property(enum),
        },
    }


def _fields_schema(enum: list[str]) -> dict:
    """{"<field>": [...], "code": "..."}, {"non_field_errors": [...], "code": "..."} or
    {"detail": "...", "code": "..."}: the first error's code, every invalid field."""
    return {
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": {**_code_property(enum), "description": "The first error's code."},
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
    }


_A = ApiErrorCode
_F = FieldErrorCode
AUTHENTICATION = (_A.NOT_AUTHENTICATED, _A.AUTHENTICATION_FAILED)
# The database, or (through the proxy) the app itself, unreachable or too slow.
UNAVAILABLE = (_A.DATABASE_UNAVAILABLE, _A.DATABASE_TIMEOUT, _A.APP_BUSY, _A.APP_UNAVAILABLE,
               _A.APP_TIMEOUT)  # fmt: skip
# Answered on any path: by gunicorn or the proxy before the app sees a request whose
# request line or headers are too large or malformed, or whose transfer coding or
# expectation is unknown, or by the proxy to an address with too many requests at once;
# by the app for more query fields than Django reads, or an `Accept` or `?format=` it
# does not answer.
PROTOCOL_ERRORS = (_A.URI_TOO_LONG, _A.HEADER_TOO_LARGE, _A.BAD_REQUEST, _A.NOT_IMPLEMENTED,
                   _A.EXPECTATION_FAILED, _A.NOT_ACCEPTABLE, _A.TOO_MANY_CONNECTIONS,
                   _A.REQUEST_TOO_LARGE)  # any request's body, a GET's too  # fmt: skip
# A JSON body: refused before its fields are read.
BODY_CODES = (
    _A.PARSE_ERROR, _A.UNSUPPORTED_MEDIA_TYPE,
    _A.UNSUPPORTED_CONTENT_ENCODING, _A.THROTTLED,
    *PROTOCOL_ERRORS,
)  # fmt: skip
STRING_CODES = (_F.BLANK, _F.MAX_LENGTH, _F.NULL_CHARACTERS_NOT_ALLOWED,
                _F.SURROGATE_CHARACTERS_NOT_ALLOWED)  # fmt: skip
NUMBER_CODES = (_F.MIN_VALUE, _F.MAX_VALUE, _F.MAX_STRING_LENGTH)
LOGIN_FIELD_CODES = (_F.REQUIRED, _F.NULL, _F.INVALID, *STRING_CODES)
QUERY_FIELD_CODES = (
    _F.INVALID, _F.INVALID_CHOICE, _F.UNKNOWN_PARAMETER, *NUMBER_CODES, *STRING_CODES,
)  # fmt: skip

READ_ERROR_CODES = (*QUERY_FIELD_CODES, *AUTHENTICATION, _A.NOT_FOUND, _A.THROTTLED,
                    *PROTOCOL_ERRORS, *UNAVAILABLE)  # fmt: skip
READ_ERRORS = error_responses(*READ_ERROR_CODES)
# A detail URL reads no query parameter: none of the lists' field codes.
DETAIL_ERRORS = error_responses(*AUTHENTICATION, _A.NOT_FOUND, _A.THROTTLED, *PROTOCOL_ERRORS,
                                *UNAVAILABLE)  # fmt: skip
