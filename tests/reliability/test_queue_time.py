"""A request that waited for a worker until its proxy was about to give up is not run:
an outside test's burst of exports kept requests in gunicorn's queue past nginx's
timeout, and each was run after its client had been answered 504 (64 captures so
answered were made)."""

import re
import time

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omnitron.api.middleware import PROXY_READ_TIMEOUT_SECONDS, QUEUE_WAIT_LIMIT_SECONDS
from orders.models import OrderItem
from tests.helpers import CAPTURE_URL
from tests.live import ROOT, gunicorn, nginx
from tests.reliability.helpers import seed, token_for


def sent(seconds_ago: float) -> str:
    return f"t={time.time() - seconds_ago:.3f}"  # as nginx writes $msec


def body(order) -> dict:
    return {"order": order.number, "order_items": [{"pk": order.items.first().pk}]}


def test_a_capture_that_waited_past_the_limit_is_answered_busy_and_not_run(api_client, order):
    late = api_client.post(CAPTURE_URL, body(order), format="json",
                           HTTP_X_REQUEST_START=sent(QUEUE_WAIT_LIMIT_SECONDS + 1))  # fmt: skip
    assert late.status_code == 503
    assert late.json() == {
        "detail": "The app was too busy to start this request in time, and did not run it. "
        "Retry later.",
        "code": "app_busy",
    }
    assert late["Retry-After"] == "5"
    assert late.content.startswith(b'{"detail":"The app was too busy')  # as every answer
    assert (late["X-Frame-Options"], late["X-Content-Type-Options"]) == ("DENY", "nosniff")
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()

    in_time = api_client.post(CAPTURE_URL, body(order), format="json",
                              HTTP_X_REQUEST_START=sent(QUEUE_WAIT_LIMIT_SECONDS - 2))  # fmt: skip
    assert in_time.status_code == 200


def test_a_refused_request_reads_nothing_from_the_database(client, admin_user):
    """Refused under the session and the user, an admin page's 503 read both (and a
    session whose hash failed would have been deleted; an outside review)."""
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        late = client.get("/admin/", HTTP_X_REQUEST_START=sent(QUEUE_WAIT_LIMIT_SECONDS + 1))
    assert late.status_code == 503
    assert queries.captured_queries == []


@pytest.mark.parametrize("value", ["", "t=", "t=abc", "t=nan", "t=-inf", "1000", "t=1e999"])
def test_a_start_that_is_not_nginxs_is_ignored(api_client, order, value):
    answer = api_client.post(CAPTURE_URL, body(order), format="json", HTTP_X_REQUEST_START=value)
    assert answer.status_code == 200


def test_the_proxy_sets_the_start_and_gives_up_when_the_app_expects():
    template = (ROOT / "deploy" / "nginx" / "omnitron.conf.template").read_text()
    assert 'proxy_set_header X-Request-Start "t=$msec";' in template
    [timeout] = re.findall(r"proxy_read_timeout (\d+)s;", template)
    assert int(timeout) == PROXY_READ_TIMEOUT_SECONDS


@pytest.mark.django_db(transaction=True)
def test_through_the_proxy_the_start_is_the_proxys_own():
    """A client's own X-Request-Start is replaced by nginx's: an old one sent through
    the proxy is run (straight to gunicorn, it is answered busy, as it claims)."""
    first, second = seed(orders=2, items=1, prefix="QUEUE")
    token = token_for("wms-queue", all_channels=True)
    headers = {"Authorization": f"Token {token}", "X-Request-Start": "t=1000000000.000"}

    def capture(base, order):
        return requests.post(f"{base}{CAPTURE_URL}", headers=headers, timeout=10, json={
            "order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]})  # fmt: skip

    with gunicorn(workers=1) as (app, _), nginx(app) as (proxy, _):
        proxied, direct = capture(proxy, first), capture(app, second)
    assert proxied.status_code == 200, proxied.text
    assert (direct.status_code, direct.json()["code"]) == (503, "app_busy")
    assert OrderItem.objects.filter(captured_at__isnull=False).count() == 1
