"""Error tracking with Sentry, opt-in: nothing happens unless SENTRY_DSN is set.

Unexpected 500s (logged by the API's exception handler) and webhook worker failures
(logged by the worker) are reported, tagged with the request id. Nothing secret
leaves: no user data (send_default_pii off), no request bodies, no local variables of
the frames (the SDK sends them by default: authentication's held the token, and the
request's repr its query string), and `scrub` drops the Authorization, Cookie and
other credential headers, cookies, query strings and anything that looks like a token
or a password from every event before it is sent."""

import re

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration

SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization",
                  "webhook-signature", "idempotency-key"}  # fmt: skip
FILTERED = "[Filtered]"
# `Token <40 hex>` and 40 hex digits alone (DRF tokens), webhook secrets, and passwords
# in text.
TOKENS = re.compile(
    r"(Token\s+)[0-9a-f]{20,}|\b[0-9a-f]{40}\b|whsec_[A-Za-z0-9+/=]+|(password[\"':= ]+)\S+",
    re.I,
)


def init(*, dsn: str, environment: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0,
        before_send=scrub,
        before_breadcrumb=lambda crumb, hint: _scrub_value(crumb),
    )


def tag_request(request_id: str) -> None:
    """The request id on every event of this request (Django's integration keeps a
    scope per request)."""
    sentry_sdk.set_tag("request_id", request_id)


def scrub(event: dict, hint=None) -> dict:
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        request["headers"] = {
            name: FILTERED if name.lower() in SECRET_HEADERS else value
            for name, value in headers.items()
        }
        for key in ("data", "cookies", "query_string", "env"):
            request.pop(key, None)
    event.pop("user", None)
    return _scrub_value(event)


def _scrub_value(value):
    if isinstance(value, str):
        return TOKENS.sub(lambda m: (m.group(1) or m.group(2) or "") + FILTERED, value)
    if isinstance(value, dict):
        return {key: _scrub_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_value(item) for item in value]
    return value
