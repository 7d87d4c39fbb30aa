"""Django-level error pages: JSON with a code, as every API answer, except under
/admin/, whose pages are for people (Django's own pages there). They answer what never
reaches a DRF view: unknown URLs (`/`, `/healthz/`, `/API/v1/...` too), bad hosts, and
failures in middleware."""

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from django.views import defaults

from .error_codes import ApiErrorCode

ADMIN_PREFIX = "/admin/"


def _json_or(default_view, error: ApiErrorCode):
    def view(request, exception=None):
        if not request.path.startswith(ADMIN_PREFIX):
            return JsonResponse(error.example(), status=error.status_code)
        try:
            return default_view(request) if exception is None else default_view(request, exception)
        except (BadRequest, SuspiciousOperation):
            # Django's pages check the CSRF token first, which reads a form body: one
            # Django cannot read (not UTF-8, too many fields) failed again in every
            # handler, and the request ended as gunicorn's 500.
            return HttpResponse(status=error.status_code)

    return view


bad_request = _json_or(defaults.bad_request, ApiErrorCode.BAD_REQUEST)
permission_denied = _json_or(defaults.permission_denied, ApiErrorCode.PERMISSION_DENIED)
not_found = _json_or(defaults.page_not_found, ApiErrorCode.NOT_FOUND)
server_error = _json_or(defaults.server_error, ApiErrorCode.SERVER_ERROR)
