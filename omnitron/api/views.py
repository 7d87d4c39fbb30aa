"""Django-level error pages: JSON with a code under /api/, Django's own pages elsewhere
(the admin). They answer what never reaches a DRF view: unknown URLs, bad hosts,
and failures in middleware."""

from django.http import JsonResponse
from django.views import defaults

from .middleware import API_PREFIX


def _json_or(default_view, status, code, detail):
    def view(request, exception=None):
        if request.path.startswith(API_PREFIX):
            return JsonResponse({"detail": detail, "code": code}, status=status)
        if exception is None:
            return default_view(request)
        return default_view(request, exception)

    return view


bad_request = _json_or(defaults.bad_request, 400, "bad_request", "Bad request.")
permission_denied = _json_or(
    defaults.permission_denied, 403, "permission_denied", "You do not have permission."
)
not_found = _json_or(defaults.page_not_found, 404, "not_found", "Not found.")
server_error = _json_or(defaults.server_error, 500, "server_error", "A server error occurred.")
