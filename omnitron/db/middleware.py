"""A page outside the API (the admin) that the database fails: 503 with what to do,
as the API answers (omnitron/api/exceptions.py), not Django's 500."""

from django.http import HttpResponse
from django.utils.html import escape

from omnitron.api.exceptions import database_unreachable, log_database_error, translate
from omnitron.api.middleware import API_PREFIX

PAGE = """<!doctype html><title>503 {title}</title>
<h1>{title}</h1>
<p>Try again in a moment. A list that times out again wants a narrower filter or
search.</p>"""


class DatabaseErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith(API_PREFIX):
            return None  # DRF's exception handler answers these
        if not database_unreachable(exception):
            return None
        error = translate(exception)
        log_database_error(exception, error)
        title = escape(error.default_detail.removesuffix(" Retry later."))
        response = HttpResponse(PAGE.format(title=title), status=error.status_code)
        response["Retry-After"] = str(error.wait)
        return response
