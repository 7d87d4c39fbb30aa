from django.conf import settings
from django.http import JsonResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware

from .error_codes import ApiErrorCode

API_PREFIX = "/api/"


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's CommonMiddleware, minus the APPEND_SLASH redirect under /api/:
    a redirected POST loses its body, so the API answers a coded 404 instead."""

    def should_redirect_with_slash(self, request):
        if request.path_info.startswith(API_PREFIX):
            return False
        return super().should_redirect_with_slash(request)


class BodySizeMiddleware:
    """Rule 5's first check: an API request that declares a body over API_MAX_BODY_BYTES
    (Django's DATA_UPLOAD_MAX_MEMORY_SIZE) is 413 request_too_large before anything
    else looks at it, whatever its Content-Type or Content-Encoding (a 5 MB text/plain
    body was 415, a 5 MB JSON one 413). Its body is never read. A chunked body has a
    length by now (omnitron/chunked.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX) and declared_length(request) > _limit():
            error = ApiErrorCode.REQUEST_TOO_LARGE
            return JsonResponse(error.example(), status=error.status_code)
        return self.get_response(request)


def _limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # read per request: tests override it


def declared_length(request) -> int:
    """The body's Content-Length, 0 when none or not a number."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
