"""The registry of error codes: for each code, its HTTP status, where its message
goes in the body, its message and when it is answered. Each app keeps one
`ErrorCode` enum (Saleor's `OrderErrorCode`); the exceptions, the OpenAPI
descriptions and examples, and the error table of docs/api.md are built from them
(`make schema` rewrites both files; tests fail when either is stale).

An answer has one of three shapes, picked by `field`:

    {"detail": "message", "code": "..."}              field None
    {"non_field_errors": ["message"], "code": "..."}  field "non_field_errors"
    {"<field>": ["message"], "code": "..."}           field "<field>"
"""

from enum import Enum

from django.apps import apps
from django.utils.module_loading import autodiscover_modules
from rest_framework import exceptions, status
from rest_framework.settings import api_settings

from omnitron.limits import MAX_JSON_VALUES

NON_FIELD_ERRORS = api_settings.NON_FIELD_ERRORS_KEY
ANY_FIELD = "<field>"  # a validation error: the invalid field's name is the key


class ErrorCode(Enum):
    """A member is `NAME = (status, field, message, when)`; its code is the name in
    lower case. `message` may hold `{placeholders}` that the raiser fills in."""

    def __init__(self, status_code: int, field: str | None, message: str, when: str):
        self.status_code = status_code
        self.field = field
        self.message = message
        self.when = when

    @property
    def code(self) -> str:
        return self.name.lower()

    @property
    def shape(self) -> str:
        return "detail" if self.field is None else self.field

    def example(self, **params) -> dict:
        """The body this code answers, with `params` in the message."""
        message = self.message.format(**params)
        if self.field is None:
            return {"detail": message, "code": self.code}
        return {**_nested(self.field, message), "code": self.code}

    def validation_error(self, **params) -> exceptions.ValidationError:
        """The error an input serializer raises for this code, where the field is."""
        return exceptions.ValidationError(self.message.format(**params), code=self.code)


def _nested(path: str, message: str) -> dict:
    """{"a": [message]} for "a"; {"a": [{"b": [message]}]} for "a[].b" (an entry of a list)."""
    head, _, rest = path.partition(".")
    if not rest:
        return {head: [message]}
    if head.endswith("[]"):
        return {head[:-2]: [_nested(rest, message)]}
    return {head: _nested(rest, message)}


class ApiErrorCode(ErrorCode):
    """Codes any endpoint can answer: DRF's own exceptions and the API plumbing's."""

    PARSE_ERROR = (
        status.HTTP_400_BAD_REQUEST,
        None,
        "JSON parse error - {reason}",
        "The body is malformed JSON, not UTF-8 (whatever `charset` the `Content-Type` "
        "names), has a duplicate key, `NaN` or `Infinity` or a number whose exponent is "
        "beyond 10¹⁸, or is nested too deeply to "
        f"parse, or holds more than {MAX_JSON_VALUES:,} values (commas, objects and arrays "
        "outside strings counted); "
        "or it is shorter than its `Content-Length` (the connection ended mid-body: "
        "nothing it asked for is done).",
    )
    BAD_REQUEST = (
        status.HTTP_400_BAD_REQUEST,
        None,
        "Bad request.",
        "A request the server cannot read at all, answered by gunicorn or the proxy "
        "before any view (a malformed request line, a duplicate `Host`, `Content-Length` "
        "with `Transfer-Encoding`, an HTTP major version other than 1, a header name with "
        "a character no name may have facing gunicorn (the proxy drops such a header), a "
        "second `Authorization` through the proxy, no `Host` through the proxy but to a "
        "health check), or one Django "
        "refuses as suspicious (more than 1,000 query or form fields, on any path the "
        "app reads them from: every path but the health checks).",
    )
    NOT_AUTHENTICATED = (
        status.HTTP_401_UNAUTHORIZED,
        None,
        "Authentication credentials were not provided.",
        "No `Authorization: Token <key>` header.",
    )
    AUTHENTICATION_FAILED = (
        status.HTTP_401_UNAUTHORIZED,
        None,
        "Invalid token.",
        "An unknown token, or the token of an inactive user.",
    )
    PERMISSION_DENIED = (
        status.HTTP_403_FORBIDDEN,
        None,
        "You do not have permission to perform this action.",
        "The user lacks the operation's permission.",
    )
    NOT_FOUND = (
        status.HTTP_404_NOT_FOUND,
        None,
        "Not found.",
        "An unknown URL, or a record outside your channels (never told apart). "
        "No slash-appending redirect under `/api/`: it would drop a POST's body.",
    )
    METHOD_NOT_ALLOWED = (
        status.HTTP_405_METHOD_NOT_ALLOWED,
        None,
        'Method "{method}" not allowed.',
        "The path does not take this method (`TRACE`, and `CONNECT` to a path: none "
        "does); `Allow` names those it takes. `CONNECT host:port` is the proxy's 400.",
    )
    NOT_ACCEPTABLE = (
        status.HTTP_406_NOT_ACCEPTABLE,
        None,
        "Could not satisfy the request Accept header.",
        "The `Accept` header or `?format=` asks for a type the operation does not render: "
        "JSON everywhere, CSV also on the captures list, YAML also on `/api/schema/`.",
    )
    REQUEST_TOO_LARGE = (
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        None,
        "The request body is larger than this API accepts.",
        "The body is over `API_MAX_BODY_BYTES`.",
    )
    URI_TOO_LONG = (
        status.HTTP_414_REQUEST_URI_TOO_LONG,
        None,
        "Request-URI Too Long.",
        "The request line is over 8190 bytes (answered by gunicorn or the proxy, as JSON).",
    )
    UNSUPPORTED_MEDIA_TYPE = (
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        None,
        'Unsupported media type "{media_type}" in request.',
        "The body is not `application/json`.",
    )
    UNSUPPORTED_CONTENT_ENCODING = (
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        None,
        'Unsupported Content-Encoding "{encoding}": send the body uncompressed.',
        "A `Content-Encoding` other than `identity` (a compressed body is not read).",
    )
    THROTTLED = (
        status.HTTP_429_TOO_MANY_REQUESTS,
        None,
        "Request was throttled. Expected available in {wait} seconds.",
        "Over a rate limit (per user: captures, reads, CSV exports, the ERP's marks; logins "
        "per address or username); `Retry-After` says when to retry.",
    )
    TOO_MANY_CONNECTIONS = (
        status.HTTP_429_TOO_MANY_REQUESTS,
        None,
        "Too many requests at once from your address, or with a large body from your "
        "address or token. Retry later.",
        "The proxy (deploy/nginx) is already handling as many requests from the "
        "client's address as it takes at once (128 by default), or as many with a body "
        "of 30,000 bytes or more (or chunked) from the client's API token (1 by default) "
        "or address (4); a request counts from its headers to its answer. Retry "
        "(`Retry-After: 1`).",
    )
    HEADER_TOO_LARGE = (
        status.HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE,
        None,
        "Request Header Fields Too Large.",
        "A header line of more than 8,188 bytes, or more than 100 header fields as gunicorn "
        "receives them (the proxy adds two), or at the proxy more than 32 KB of headers "
        "in all (answered by gunicorn or the proxy, as JSON).",
    )
    EXPECTATION_FAILED = (
        status.HTTP_417_EXPECTATION_FAILED,
        None,
        "Expectation Failed.",
        "An `Expect` header other than `100-continue` (answered by gunicorn, as JSON; "
        "the proxy drops such a header and the request is served).",
    )
    SERVER_ERROR = (
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        None,
        "A server error occurred.",
        "An unexpected failure, logged with its traceback; the answer never carries one.",
    )
    NOT_IMPLEMENTED = (
        status.HTTP_501_NOT_IMPLEMENTED,
        None,
        "Not Implemented.",
        "A transfer coding the server does not know, such as `Transfer-Encoding: foo` "
        "(answered by gunicorn, the app or the proxy, as JSON): any coding but `chunked` "
        "alone (`gzip, chunked` too). gunicorn alone answers a known one not followed by "
        "`chunked` (`gzip`, `identity`) 400 `bad_request`, as the body has no length.",
    )
    APP_UNAVAILABLE = (
        status.HTTP_502_BAD_GATEWAY,
        None,
        "The app is not reachable. Retry later.",
        "The proxy in front of the app (deploy/nginx) reached no app server. Retry "
        "(`Retry-After: 5`).",
    )
    APP_BUSY = (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        None,
        "The app was too busy to start this request in time, and did not run it. Retry later.",
        "The request waited in the app server's queue until the proxy was about to give "
        "up on it (its `X-Request-Start`, set by deploy/nginx): it was not run, nothing "
        "changed. Retry (`Retry-After: 5`).",
    )
    APP_TIMEOUT = (
        status.HTTP_504_GATEWAY_TIMEOUT,
        None,
        "The app did not answer in time. Retry later.",
        "The proxy waited for the app longer than its read timeout. Retry (`Retry-After: 5`). "
        "The app may still have run the request, or run it later (it waited in the app "
        "server's queue): retry a capture with the same `Idempotency-Key`.",
    )
    DELETED_MEANWHILE = (
        status.HTTP_409_CONFLICT,
        None,
        "Something this request uses was deleted while it ran. Nothing was changed; retry.",
        "A row the request's writes refer to (the token's user, a webhook subscription a "
        "capture queued a delivery for) was deleted by another transaction, an operator's "
        "in the admin, while it ran: its foreign keys failed at the commit. Nothing "
        "changed; a retry is answered as things are then (401 for a deleted user). "
        "`Retry-After: 1`.",
    )
    DATABASE_UNAVAILABLE = (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        None,
        "The database is not available. Retry later.",
        "PostgreSQL is unreachable, restarting, or cannot write (its disk full: the app's "
        "log names the cause). Retry (`Retry-After: 5`).",
    )
    DATABASE_TIMEOUT = (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        None,
        "The database did not answer in time. Retry later.",
        "A statement ran past `DB_STATEMENT_TIMEOUT_MS`, or waited past `DB_LOCK_TIMEOUT_MS` "
        "for a row another request holds, or was ended to break a deadlock (a capture answers "
        "`order_locked` instead). Retry (`Retry-After: 5`).",
    )


FIELD_CODES_WHEN = (
    "DRF's field validation: every invalid field is reported, each with its messages; "
    "the top-level `code` is the first one's."
)


class FieldErrorCode(ErrorCode):
    """DRF's own field validation codes, as the API's input serializers answer them."""

    REQUIRED = (400, ANY_FIELD, "This field is required.", "A required field is missing.")
    NULL = (400, ANY_FIELD, "This field may not be null.", "`null` where a value is needed.")
    BLANK = (400, ANY_FIELD, "This field may not be blank.", "An empty string.")
    INVALID = (400, ANY_FIELD, "A valid integer is required.", "A value of the wrong type.")
    MAX_LENGTH = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "Ensure this field has no more than {max_length} characters.",
        "A string over the field's length.",
    )
    MIN_VALUE = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "Ensure this value is greater than or equal to {min_value}.",
        "A number below the field's minimum.",
    )
    MAX_VALUE = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "Ensure this value is less than or equal to {max_value}.",
        "A number above the field's maximum.",
    )
    MAX_STRING_LENGTH = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "String value too large.",
        "A number written with over 1000 characters.",
    )
    NOT_A_LIST = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        'Expected a list of items but got type "{input_type}".',
        "Not a list where a list is needed.",
    )
    EMPTY = (400, ANY_FIELD, "This list may not be empty.", "An empty list.")
    NOT_A_DICT = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        'Expected a dictionary of items but got type "{input_type}".',
        "Not an object where an object is needed.",
    )
    NULL_CHARACTERS_NOT_ALLOWED = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "Null characters are not allowed.",
        "A NUL character in a string (PostgreSQL cannot store it).",
    )
    SURROGATE_CHARACTERS_NOT_ALLOWED = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "Surrogate characters are not allowed: U+{code_point:X}.",
        "A lone UTF-16 surrogate in a string (not storable as UTF-8).",
    )
    INVALID_CHOICE = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        '"{input}" is not a valid choice.',
        "A value outside the field's choices (query filters).",
    )
    UNKNOWN_PARAMETER = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "This list takes no such query parameter.",
        "A query parameter a list does not take, named: a misspelt filter "
        "(`created_at__gt`) was ignored, and the CSV export held every capture.",
    )


def registries() -> list[type[ErrorCode]]:
    """Every app's registry: the ErrorCode enums of each installed app's
    `error_codes` module, in the order of INSTALLED_APPS."""
    autodiscover_modules("error_codes")
    order = {config.name: index for index, config in enumerate(apps.get_app_configs())}
    return sorted(
        ErrorCode.__subclasses__(),
        key=lambda registry: order[apps.get_containing_app_config(registry.__module__).name],
    )


def markdown_table() -> str:
    """The error table of docs/api.md: every registered code, by status."""
    errors = sorted(
        (error for registry in registries() for error in registry),
        key=lambda error: error.status_code,
    )
    rows = ["| Status | `code` | Where the message is | When |", "|---|---|---|---|"]
    # DRF's own field codes share one row; an app's field code has its own.
    drf_codes = [error for error in errors if isinstance(error, FieldErrorCode)]
    for error in errors:
        if isinstance(error, FieldErrorCode):
            if error is drf_codes[0]:
                codes = ", ".join(f"`{e.code}`" for e in drf_codes)
                rows.append(f"| 400 | {codes} | the invalid field | {FIELD_CODES_WHEN} |")
            continue
        where = {None: "`detail`", ANY_FIELD: "the invalid field"}.get(
            error.field, f"`{error.field}`"
        )
        rows.append(f"| {error.status_code} | `{error.code}` | {where} | {error.when} |")
    return "\n".join(rows) + "\n"
