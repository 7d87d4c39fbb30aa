"""Liveness and readiness, answered before any other middleware (like Sentry's
health middleware) so load balancer probes skip host checks, sessions and auth."""

from django.db import connection
from django.http import JsonResponse

from omnitron import metrics
from omnitron.api.error_codes import ApiErrorCode
from omnitron.api.exceptions import DatabaseUnavailable

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


def database_ready() -> bool:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any failure means "not ready"; the body says why in general terms
        connection.close()
        return False
    return True


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path not in (LIVENESS_PATH, READINESS_PATH):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            not_allowed = ApiErrorCode.METHOD_NOT_ALLOWED
            response = JsonResponse(
                not_allowed.example(method=request.method), status=not_allowed.status_code
            )
            response["Allow"] = "GET, HEAD"
            return response
        if request.path == LIVENESS_PATH:
            return JsonResponse({"status": "ok"})
        if database_ready():
            return JsonResponse({"status": "ok", "database": "ok"})
        metrics.count(metrics.DATABASE_ERRORS)  # the DatabaseUnreachable alert's counter
        unavailable = ApiErrorCode.DATABASE_UNAVAILABLE
        response = JsonResponse(
            {"status": "unavailable", **unavailable.example()}, status=unavailable.status_code
        )
        response["Retry-After"] = str(DatabaseUnavailable.wait)
        # Counted above and on its request line: not an ERROR line of Django's too, after
        # the middleware (without the request id), once per probe.
        response._has_been_logged = True
        return response
