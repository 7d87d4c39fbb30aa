"""One JSON log line per request, and a request id that follows the request.

The id comes from the client's X-Request-ID (1 to 128 letters, digits and `._:/-`,
starting with a letter or digit) or is generated; it is echoed in the response,
stored with a capture's audit record, and added to every log line written while the
request runs. A request line holds
time, id, method, path, status, duration, user id, and the order number and error
code where there are ones: never a token, a password or a body."""

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError

from omnitron import error_tracking, logformat, metrics
from omnitron.health import LIVENESS_PATH, READINESS_PATH
from omnitron.limits import MAX_REQUEST_ID_LENGTH

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

# Letters and digits first: an id is stored with the capture and written into the CSV
# export, where a cell starting with = + - @ is a formula to a spreadsheet, and
# into logs and headers, where quotes and angle brackets only do harm.
_VALID_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/-]{{0,{MAX_REQUEST_ID_LENGTH - 1}}}")
_QUIET_PATHS = (LIVENESS_PATH, READINESS_PATH)  # probes: logged at DEBUG, not INFO

logger = logging.getLogger("omnitron.request")


def note(request, **fields) -> None:
    """Add fields (e.g. order=...) to the request's log line."""
    django_request = getattr(request, "_request", request)
    django_request.log_fields = {**getattr(django_request, "log_fields", {}), **fields}


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        if settings.SENTRY_DSN:
            error_tracking.tag_request(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            self._log(request, response, time.perf_counter() - started)
            return response
        finally:
            request_id_var.reset(token)

    def _log(self, request, response, seconds):
        code = _error_code(response) if response.status_code >= 400 else None
        status = response.status_code
        metrics.observe_request(
            route=_route(request), method=request.method, status=status, seconds=seconds, code=code
        )
        fields = {
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "user_id": _user_id(request),
            **getattr(request, "log_fields", {}),
        }
        if response.status_code >= 400:
            fields["code"] = code
        level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
        logger.log(level, "request", extra={"fields": fields})


def _user_id(request) -> int | None:
    user = getattr(request, "user", None)
    try:
        return user.pk if user is not None and user.is_authenticated else None
    except (DatabaseError, InterfaceError):
        # The user was not looked up yet, and loading the session failed (the database
        # is down): the answer is made already; the line must not turn it into a 500.
        return None


def _route(request) -> str:
    """A bounded name for what was asked: the URL pattern's name (no ids), or the path
    of what answers before URL resolution (/healthz, /readyz), or "unmatched"."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route
    if request.path in _QUIET_PATHS:
        return request.path
    return "unmatched"


def _error_code(response) -> str | None:
    code = getattr(response, "error_code", None)
    if code is None and response.get("Content-Type", "").startswith("application/json"):
        try:
            code = json.loads(response.content).get("code")
        except (ValueError, AttributeError):
            code = None
    return code


class RefusalsAreWarnings(logging.Filter):
    """Django logs a request it refuses as suspicious (a Host not in ALLOWED_HOSTS, a
    body over the limit, too many form fields) under django.security.* at error level,
    with a traceback. That is a client's mistake or a probe, answered with a 400, not a
    fault of the service: the handler writes it as a warning without the traceback, so
    any client cannot fill the error log or page whoever watches it. Sentry reads the
    record after the handlers and so takes it as a warning too (a breadcrumb)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security.") and record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


class JSONFormatter(logformat.JSONFormatter):
    """Log records as one JSON object per line, with the current request id."""

    def context(self) -> dict:
        return {"request_id": request_id_var.get() or None}
