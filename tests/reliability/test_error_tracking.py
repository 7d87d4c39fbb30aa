"""Error tracking, for real: SENTRY_DSN points at a receiver on loopback standing in
for Sentry; a live server's unexpected 500 and a webhook worker's failed job arrive
there, tagged with the request id, with no token, password, cookie or body in them."""

import gzip
import json
import time

import pytest
import requests

from events.tasks import deliver_lane
from tests.events.helpers import receiving
from tests.live import gunicorn, server_env, worker
from tests.reliability.helpers import token_for

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_SECRET = "hunter2-do-not-leak"


def sentry_events(receiver, timeout: float = 15, about: str = "") -> list[tuple[str, dict]]:
    """(the raw envelope text, its event) for every event the receiver got, once one
    mentions `about`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for request in list(receiver.requests):
            body = request["body"]
            if request["headers"].get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            text = body.decode()
            for line in text.splitlines():
                item = json.loads(line) if line.startswith("{") else {}
                if "event_id" in item and ("exception" in item or "logentry" in item):
                    found.append((text, item))
        if any(about in raw for raw, _ in found):
            return found
        time.sleep(0.2)
    raise TimeoutError("no event reached the Sentry stand-in")


def test_an_unexpected_500_is_reported_scrubbed_with_its_request_id():
    """Sentry's SDK sends each frame's local variables by default: the token and the
    query string (in the request's repr) reached the stand-in."""
    token = token_for("wms", all_channels=True)
    with receiving() as sentry:
        dsn = sentry.url.replace("http://", "http://publickey@").replace("/hook", "/1")
        env = server_env(SENTRY_DSN=dsn, DJANGO_ROOT_URLCONF="tests.capture.failing_urls")
        with gunicorn(workers=1, env=env) as (base, _):
            response = requests.post(
                f"{base}/api/v1/boom/?token=SECRETQS",
                json={"password": TOKEN_SECRET, "card": "4111111111111111"},
                headers={"Authorization": f"Token {token}", "Cookie": "sessionid=s3cr3t",
                         "X-Request-ID": "req-sentry-1"},
                timeout=10,
            )  # fmt: skip
            assert (response.status_code, response.json()["code"]) == (500, "server_error")
            ((raw, event),) = sentry_events(sentry)
    assert event["tags"]["request_id"] == "req-sentry-1"
    assert "something nobody expected" in raw  # the error itself is there
    # The frames' local variables held the token (authentication's `key`) and the
    # request, whose repr shows the query string: none of them is sent.
    for secret in (token, TOKEN_SECRET, "4111111111111111", "s3cr3t", "SECRETQS"):
        assert secret not in raw
    headers = {k.lower(): v for k, v in event.get("request", {}).get("headers", {}).items()}
    assert headers.get("authorization") in (None, "[Filtered]")
    assert "data" not in event.get("request", {})
    assert "user" not in event


def test_a_failed_worker_job_is_reported():
    with receiving() as sentry:
        dsn = sentry.url.replace("http://", "http://publickey@").replace("/hook", "/1")
        with worker(env=server_env(SENTRY_DSN=dsn)):
            # A job that fails: a subscription id that is no number (one of no
            # subscription ends quietly, with nothing to send).
            deliver_lane.defer(subscription_id="no such id", lane=0)
            reported = sentry_events(sentry, timeout=20, about="deliver_lane")
    # Only this job's failure is asserted: under a loaded machine another job of the
    # worker (its dispatcher) may report an error of its own in the same poll.
    (raw,) = [raw for raw, _ in reported if "deliver_lane" in raw]
    assert "ValueError" in raw
    assert "no such id" in raw
