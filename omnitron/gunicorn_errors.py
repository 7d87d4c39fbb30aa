"""JSON for the errors gunicorn answers itself, before the app sees a request (a
request line or a header over gunicorn's limits, a malformed request): the API's
one error shape, {"detail": ..., "code": ...}, instead of gunicorn's HTML page.
The codes are those of omnitron/api/error_codes.py (a test checks they agree); this
module runs in gunicorn's master before Django is set up, so it cannot import them."""

import json

from gunicorn import util

CODES = {
    400: "bad_request",
    403: "permission_denied",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "header_too_large",
    500: "server_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int, reason, mesg):
    # The message can quote the offending request; the reason is enough for a client.
    body = json.dumps({"detail": f"{reason}.", "code": CODES.get(status_int, "bad_request")})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1"))


def install() -> None:
    util.write_error = write_json_error
