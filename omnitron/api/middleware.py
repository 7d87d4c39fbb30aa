import functools
import math
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse, UnreadablePostError
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from rest_framework.settings import api_settings

from .error_codes import ApiErrorCode
from .exceptions import AppBusy
from .renderers import JSONRenderer, render_json

API_PREFIX = "/api/"


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's CommonMiddleware, minus the APPEND_SLASH redirect under /api/:
    a redirected POST loses its body, so the API answers a coded 404 instead."""

    def should_redirect_with_slash(self, request):
        if request.path_info.startswith(API_PREFIX):
            return False
        return super().should_redirect_with_slash(request)


class HeadMiddleware:
    """A HEAD's answer without its body, which Django leaves to the server: gunicorn
    dropped it, logging a warning for each HEAD, and a streamed body (the CSV export)
    was produced whole first. Outside CommonMiddleware, so the Content-Length the same
    GET would carry stays."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                response.streaming_content = []  # the body's iterator is never run
            else:
                response.content = b""
        return response


class UnreadBodyMiddleware:
    """Reads what is left of a request's body before its answer goes out. gunicorn's
    sync workers close the connection after each answer, and an answer given before
    the body was read (a 401 for a made-up token, a 429) closed it while nginx was
    still writing that body: nginx's write failed, and it answered 502 app_unavailable
    instead of the app's answer (an outside test: 2 of 80 logins refused at once with 4 MB
    bodies). A body over the limit is left unread: BodySizeMiddleware refused it, and
    its connection ends instead. Only behind a proxy (API_NUM_PROXIES), which hands
    over whole bodies: facing clients, gunicorn would wait for a body a client never
    finishes, a worker held until its timeout for a made-up token.
    Outermost, so it runs once every other part has answered."""

    CHUNK = 64 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # Django marks a body it has read (request.body, a form's parse): none is left.
        started = getattr(request, "_read_started", False)
        behind_proxy = api_settings.NUM_PROXIES > 0
        if behind_proxy and not started and 0 < declared_length(request) <= _limit():
            try:
                while request.read(self.CHUNK):
                    pass
            except UnreadablePostError:
                pass  # the client stopped sending: nothing more will come
        return response


class BodySizeMiddleware:
    """The body rule's first check (docs/api.md): an API request that declares a body
    over API_MAX_BODY_BYTES (Django's DATA_UPLOAD_MAX_MEMORY_SIZE) is 413
    request_too_large before anything else looks at it, whatever its Content-Type or
    Content-Encoding (a 5 MB text/plain body was 415, a 5 MB JSON one 413). Its body
    is never read. A chunked body has a length by now (omnitron/chunked.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX) and declared_length(request) > _limit():
            error = ApiErrorCode.REQUEST_TOO_LARGE
            return JsonResponse(error.example(), status=error.status_code)
        return self.get_response(request)


class MethodCheckMiddleware:
    """A method an API view does not take is 405 method_not_allowed, with `Allow`,
    before anything else about the request is judged but the size of its body
    (BodySizeMiddleware's 413, as the proxy answers it first). DRF checks the method last,
    after content negotiation, authentication and throttling: a TRACE with
    `?format=csv` was 406, a DELETE without a token 401, and each counted toward
    the rate limits. A view's `error_headers` go with it (the docs pages' Content-
    Security-Policy)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not (request.path_info.startswith(API_PREFIX) and hasattr(view_func, "cls")):
            return None
        allowed = view_methods(view_func)
        if request.method.lower() in allowed:
            return None
        error = ApiErrorCode.METHOD_NOT_ALLOWED
        response = JsonResponse(error.example(method=request.method), status=error.status_code)
        response["Allow"] = ", ".join(method.upper() for method in allowed)
        for name, value in getattr(view_func.cls, "error_headers", {}).items():
            response[name] = value
        return response


@functools.cache  # one per URL pattern's view
def view_methods(view_func) -> tuple[str, ...]:
    """The methods a DRF view (from `as_view()`) answers, lower case, as DRF's `Allow`
    lists them: a viewset's mapped actions; an APIView's handlers; HEAD with GET."""
    cls = view_func.cls
    actions = getattr(view_func, "actions", None)
    handled = (
        set(actions)
        if actions is not None
        else {m for m in cls.http_method_names if hasattr(cls, m)}
    )
    if actions is not None and hasattr(cls, "options"):
        handled.add("options")
    if "get" in handled:
        handled.add("head")
    return tuple(method for method in cls.http_method_names if method in handled)


def _limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # read per request: tests override it


def declared_length(request) -> int:
    """The body's Content-Length, 0 when none or not a number."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# deploy/nginx gives up on the app after this long (its proxy_read_timeout: a test holds
# them equal) and answers 504, while the request may still be run after it.
PROXY_READ_TIMEOUT_SECONDS = 35
# A request that waited longer than this for a worker is not run: its proxy gives up
# on it within seconds. An outside test's burst of exports kept requests in gunicorn's
# queue past nginx's timeout: each was run after its client had got a 504, and 64
# captures answered 504 were made.
QUEUE_WAIT_LIMIT_SECONDS = PROXY_READ_TIMEOUT_SECONDS - 10


class QueueTimeMiddleware:
    """503 `app_busy`, without running it, for a request that reached the app more
    than QUEUE_WAIT_LIMIT_SECONDS after the proxy sent it (`X-Request-Start: t=<epoch
    seconds>`, set by deploy/nginx): not run, it can be retried as it is. A request
    without the header (gunicorn reached directly) is run whenever it comes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = _request_start(request.META.get("HTTP_X_REQUEST_START", ""))
        if sent is None or time.time() - sent <= QUEUE_WAIT_LIMIT_SECONDS:
            return self.get_response(request)
        busy = ApiErrorCode.APP_BUSY
        response = HttpResponse(render_json(busy.example()), status=busy.status_code,
                                content_type=JSONRenderer.media_type)  # fmt: skip
        response["Retry-After"] = str(AppBusy.wait)
        response["X-Frame-Options"] = settings.X_FRAME_OPTIONS  # as further down the chain
        return response


def _request_start(value: str) -> float | None:
    """nginx's `t=<seconds since the epoch, with milliseconds>`; None for anything else."""
    if not value.startswith("t="):
        return None
    try:
        sent = float(value[2:])
    except ValueError:
        return None
    return sent if math.isfinite(sent) else None
