"""JSON for the errors gunicorn answers itself, before the app sees a request (a
request line or a header over gunicorn's limits, a malformed request): the API's
one error shape, {"detail": ..., "code": ...}, instead of gunicorn's HTML page.
The codes and details are those of omnitron/api/error_codes.py (a test checks they
agree); this module runs in gunicorn's master before Django is set up, so it cannot
import them."""

import json

from gunicorn import util

# status: (code, detail), as the registry has them (gunicorn's own reasons differ:
# "URI Too Long" for a 414, "Bad Request" for its 501).
ERRORS = {
    400: ("bad_request", "Bad request."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    414: ("uri_too_long", "Request-URI Too Long."),
    417: ("expectation_failed", "Expectation Failed."),
    431: ("header_too_large", "Request Header Fields Too Large."),
    500: ("server_error", "A server error occurred."),
    501: ("not_implemented", "Not Implemented."),
}


def json_error(status_int: int, reason: str) -> str:
    """The registry's body for a status gunicorn answers (its reason for any other)."""
    code, detail = ERRORS.get(status_int, ("bad_request", f"{reason}."))
    return json.dumps({"detail": detail, "code": code})


def write_json_error(sock, status_int, reason, mesg):
    # The message can quote the offending request: the registry's detail is enough.
    body = json_error(status_int, reason)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1"))


def install() -> None:
    util.write_error = write_json_error
