"""One error shape for the whole API (see error_codes.py), and the exceptions that
carry a registered code.

`exception_handler` extends DRF's handler: DRF builds the response, this module
reshapes the body and turns database failures and unexpected errors into coded
answers (never an HTML page or a traceback)."""

import logging

import psycopg.errors
from django.core.exceptions import BadRequest as DjangoBadRequest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from django.http import Http404, UnreadablePostError
from rest_framework import exceptions
from rest_framework.response import Response

from omnitron import metrics
from omnitron.db.errors import foreign_key_failed_on

from .error_codes import NON_FIELD_ERRORS, ApiErrorCode, ErrorCode

logger = logging.getLogger(__name__)


class CodedError(exceptions.APIException):
    """An API exception whose status, code, shape and message come from one registry
    member, set as `error` on the class:

        class OrderNotFound(CaptureError):
            error = CaptureErrorCode.ORDER_NOT_FOUND

    Raise it bare for the registry's message, or with the message's placeholders as
    keyword arguments."""

    error: ErrorCode
    field: str | None = None
    # Seconds a client should wait before retrying, for an answer worth a retry: DRF's
    # exception handler sends it as Retry-After (as it does for a throttled request's).
    wait: int | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        error = cls.__dict__.get("error")
        if error is not None:
            cls.status_code = error.status_code
            cls.default_code = error.code
            cls.default_detail = error.message
            cls.field = error.field

    def __init__(self, **params):
        super().__init__(self.error.message.format(**params) if params else None)


class BadRequest(CodedError):
    error = ApiErrorCode.BAD_REQUEST


class RequestTooLarge(CodedError):
    error = ApiErrorCode.REQUEST_TOO_LARGE


class UnsupportedContentEncoding(CodedError):
    error = ApiErrorCode.UNSUPPORTED_CONTENT_ENCODING


class DatabaseUnavailable(CodedError):
    error = ApiErrorCode.DATABASE_UNAVAILABLE
    wait = 5


class AppBusy(CodedError):
    error = ApiErrorCode.APP_BUSY
    wait = 5


class DeletedMeanwhile(CodedError):
    error = ApiErrorCode.DELETED_MEANWHILE
    wait = 1


class DatabaseTimeout(CodedError):
    error = ApiErrorCode.DATABASE_TIMEOUT
    wait = 5


class ServerError(CodedError):
    error = ApiErrorCode.SERVER_ERROR


def first_code(codes) -> str:
    """The code of the first error, in field order, for the top-level `code`."""
    if isinstance(codes, dict | list | tuple):
        values = codes.values() if isinstance(codes, dict) else codes
        return next((found for value in values if (found := first_code(value))), "")
    return str(codes)


def _as_lists(detail):
    """DRF keys the errors of list entries by index ({"1": {...}}); answer them as
    Omnitron does, one entry per list item ([{}, {...}])."""
    if isinstance(detail, dict):
        if detail and all(isinstance(key, int) for key in detail):
            return [_as_lists(detail.get(index, {})) for index in range(max(detail) + 1)]
        return {key: _as_lists(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_as_lists(value) for value in detail]
    return detail


def _own_errors(errors):
    """A nested serializer's errors about itself ({"non_field_errors": [...]}, e.g. "not a
    list") are the field's own messages: {"order_items": ["..."]}."""
    if isinstance(errors, dict) and list(errors) == [NON_FIELD_ERRORS]:
        return errors[NON_FIELD_ERRORS]
    return errors


# An error body's own keys. A field a client named so (a query parameter or a PATCH
# field it made up) would overwrite one or be overwritten: `?code=1` answered only
# {"code": "unknown_parameter"}, naming nothing.
BODY_KEYS = ("code", "detail", NON_FIELD_ERRORS)


def named_errors(names, message: str) -> dict:
    """The detail of a ValidationError about fields a client named: each under its name,
    but one named as a key of the body under non_field_errors, after its name."""
    detail = {}
    for name in names:
        if name in BODY_KEYS:
            detail.setdefault(NON_FIELD_ERRORS, []).append(f"{name}: {message}")
        else:
            detail[name] = [message]
    return detail


def error_body(exc: exceptions.APIException) -> dict:
    """The JSON body for an API exception, in one of the three shapes."""
    if isinstance(exc, exceptions.ValidationError):
        detail = _as_lists(exc.detail)
        if isinstance(detail, dict):
            body = {field: _own_errors(errors) for field, errors in detail.items()}
        else:
            body = {NON_FIELD_ERRORS: detail}
        body["code"] = first_code(exc.get_codes()) or "invalid"
        return body
    code = first_code(exc.get_codes()) or "error"
    field = getattr(exc, "field", None)
    if field:
        return {field: [exc.detail], "code": code}
    return {"detail": exc.detail, "code": code}


BODY_ENDED_EARLY = "JSON parse error - the body ended before its length."


def translate(exc: Exception) -> Exception:
    """Map non-API exceptions that have a meaning for a client to coded errors."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, UnreadablePostError):  # the client stopped sending mid-body
        return exceptions.ParseError(BODY_ENDED_EARLY)
    if isinstance(exc, SuspiciousOperation | DjangoBadRequest):  # e.g. too many fields
        return BadRequest()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if _refers_to_a_deleted_row(exc):
        return DeletedMeanwhile()
    if database_unreachable(exc):
        if isinstance(exc.__cause__, TIMEOUTS):
            return DatabaseTimeout()
        return DatabaseUnavailable()
    return exc


def database_unreachable(exc: Exception) -> bool:
    """Whether a database error says the database is out of reach or did not answer
    in time (a 503 to retry): Django's OperationalError or InterfaceError, or an
    InternalError of a broken exchange with the server (broken_exchange). Through
    PgBouncer, a COMMIT on a server connection PostgreSQL had just ended (a
    restart, a failover) got two answers, PostgreSQL's and PgBouncer's, and psycopg
    raised that: a capture with an Idempotency-Key answered 500."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    cause = exc.__cause__
    return isinstance(exc, InternalError) and broken_exchange(cause)


def broken_exchange(error: BaseException | None) -> bool:
    """psycopg's own InternalError for more answers than a command has ("received 2
    results from command 'COMMIT'"): the server connection ended under the exchange.
    Its other InternalErrors (a value it cannot send, say) are bugs, and stay 500s."""
    return (
        isinstance(error, psycopg.InternalError)
        and error.sqlstate is None
        and str(error).startswith("received ")
        and " results from command " in str(error)
    )


def _refers_to_a_deleted_row(exc: Exception) -> bool:
    """A write's foreign key failing at the commit on the inserting side: a row it refers
    to was deleted by another transaction meanwhile (the keys are deferred to the
    commit). A violation on the deleting side, or any other integrity error, is a bug
    of this app's and stays a 500."""
    return isinstance(exc, IntegrityError) and foreign_key_failed_on(exc) == "insert"


# lock_timeout waiting for a row another request holds, and a deadlock PostgreSQL
# ended by ending this statement; with statement_timeout, the TIMEOUTS: each worth a
# retry.
LOCK_WAITS = psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected
TIMEOUTS = psycopg.errors.QueryCanceled | LOCK_WAITS


def log_database_error(error: Exception, answer: exceptions.APIException) -> None:
    """A database failure answered as a coded error: a warning line and the metric."""
    logger.warning("Database error answered as %s: %s", answer.default_code, error)
    metrics.count(metrics.DATABASE_ERRORS)


def exception_handler(exc, context):
    # Imported here: rest_framework.views loads the API settings, whose parser is
    # omnitron.api.parsers, which needs this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    original, exc = exc, translate(exc)
    if isinstance(original, DatabaseError) and exc is not original:
        log_database_error(original, exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.error("Unhandled error in %s", context.get("view"), exc_info=original)
        exc = ServerError()
        response = Response(status=exc.status_code)
    response.data = error_body(exc)
    response.error_code = response.data["code"]  # for the request log line
    # Logged here (above) and in the request log: Django's handler logs a 5xx again
    # once the middleware has returned, where the line has no request id.
    response._has_been_logged = True
    return response
