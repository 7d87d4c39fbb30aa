"""Access: rate limits, login that reveals nothing, channel isolation on every
endpoint, token rotation, and production settings."""

import json
import math
import os
import statistics
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from unittest.mock import patch

import psycopg
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.services import LOGIN_SLOTS
from capture.models import Capture
from omnitron.api.throttling import PostgresRateThrottle
from orders.models import Order, OrderItem
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import CAPTURE_URL, PRODUCTION_SECRET_KEY, capture, client_for, throttle_rates
from tests.live import ROOT, VENV_BIN

LOGIN = "/api/v1/auth/login/"


def login(client, username, password, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password},
                       content_type="application/json", REMOTE_ADDR=address)  # fmt: skip


# Rate limits


@pytest.mark.django_db
def test_login_is_limited_per_client_address(client):
    make_api_user(username="wms")
    with throttle_rates(login_address="3/min"):
        answers = [login(client, f"user{n}", "x") for n in range(4)]
        other_address = login(client, "user9", "x", address="10.0.0.2")
    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert answers[-1].json()["code"] == "throttled"
    # Up to 80 s: the next minute, then a third of it (3 allowed in the minute before,
    # weighted by the share of it still within the last 60 s).
    assert 1 <= int(answers[-1]["Retry-After"]) <= 80
    assert other_address.status_code == 400


@pytest.mark.django_db
def test_login_is_limited_per_username_whatever_the_address(client):
    make_api_user(username="wms")
    with throttle_rates(login_username="2/min"):
        answers = [login(client, "wms", "wrong", address=f"10.0.1.{n}") for n in range(3)]
        other_user = login(client, "ops", "wrong", address="10.0.1.9")
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert other_user.status_code == 400


@pytest.mark.django_db
def test_a_login_the_address_limit_refuses_is_neither_read_nor_counted_by_name(client):
    """DRF asks every limit: a login refused per address still had its body parsed for
    the username limit (300 KB of `[]` cost 70 to 110 ms an answer 429; one
    that was not JSON was a 400 instead) and counted against that name."""
    make_api_user(username="wms", password="right-password-1")
    with throttle_rates(login_address="2/min", login_username="3/min"):
        answers = [login(client, "wms", "wrong") for _ in range(2)]
        answers += [login(client, "wms", "wrong") for _ in range(3)]
        answers.append(client.post(LOGIN, b"{not json", content_type="application/json",
                                   REMOTE_ADDR="10.0.0.1"))  # fmt: skip
        answers.append(login(client, "wms", "right-password-1", address="10.0.0.2"))
    assert [a.status_code for a in answers] == [400, 400, 429, 429, 429, 429, 200]


@pytest.mark.django_db
def test_a_username_sent_as_a_number_counts_as_its_text(client):
    """The login reads {"username": 424242} as "424242", and the limit counted nothing
    for it: a name of digits had only the per-address limit against guessing."""
    make_api_user(username="424242", password="right-password-1")
    with throttle_rates(login_username="2/min"):
        answers = [login(client, 424242, "wrong", address=f"10.0.2.{n}") for n in range(2)]
        answers += [login(client, "424242", "right-password-1", address="10.0.2.9")]
    assert [a.status_code for a in answers] == [400, 400, 429]


@pytest.mark.django_db
def test_names_longer_than_any_user_count_apart_from_a_user_of_the_longest_name(client):
    """No username is longer than 150 characters: attempts with a longer one that
    starts with a user's 150-character name are not that user's, and do not hold its
    logins off."""
    longest = "u" * 150
    make_api_user(username=longest, password="right-password-1")
    with throttle_rates(login_username="2/min"):
        answers = [login(client, longest + "x" * n, "wrong", address=f"10.0.3.{n}")
                   for n in range(1, 4)]  # fmt: skip
        answers.append(login(client, longest, "right-password-1", address="10.0.3.9"))
    assert [a.status_code for a in answers] == [400, 400, 429, 200]


def test_capture_is_limited_per_user(api_client, order, channel):
    other = client_for(make_api_user(channels=[channel]))
    first, second, third = order.items.values_list("pk", flat=True)
    with throttle_rates(capture="2/min"):
        ok = capture(api_client, order, [first])
        refused_rule = capture(api_client, order, [first])  # counted too
        throttled = capture(api_client, order, [second])
        other_user = capture(other, order, [third])
    assert (ok.status_code, refused_rule.status_code) == (200, 400)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) >= 1
    assert OrderItem.objects.get(pk=second).captured_at is None
    assert other_user.status_code == 200


def test_reads_are_limited_per_user(api_client, order, channel):
    """Every read endpoint counts toward one per-user limit: without it, one token's
    legal requests took every worker (an outside test: 128 event pages of 500 at once,
    and another client's list took 10 s). The capture limit is apart, and so is
    active_user (no data: the cheapest request, which a refusal would cost as much)."""
    captured = capture(api_client, order, [order.items.first().pk])
    assert captured.status_code == 200
    other = client_for(make_api_user(channels=[channel]))
    reads = ["/api/v1/orders/", f"/api/v1/orders/{order.pk}/", "/api/v1/order_items/",
             "/api/v1/captures/", "/api/v1/events/"]  # fmt: skip
    with throttle_rates(read="5/min"):
        answers = [api_client.get(url) for url in reads]
        over = api_client.get("/api/v1/order_items/")
        others = other.get("/api/v1/orders/")
        whoami = [api_client.get("/api/v1/active_user/").status_code for _ in range(3)]
        captures = [capture(api_client, order, [pk]).status_code
                    for pk in order.items.values_list("pk", flat=True)[1:]]  # fmt: skip
    assert [answer.status_code for answer in answers] == [200] * 5
    assert (over.status_code, over.json()["code"]) == (429, "throttled")
    assert int(over["Retry-After"]) >= 1
    assert others.status_code == 200
    assert whoami == [200] * 3
    assert captures == [200, 200]


def test_an_export_counts_toward_its_own_smaller_limit(api_client, order, channel):
    """30 exports at once from one token (each 200,000 rows, 4 s alone) answered every
    other client 504 and had all five workers killed at their timeout (an outside
    test)."""
    assert capture(api_client, order, [order.items.first().pk]).status_code == 200
    with throttle_rates(read="3/min", export="1/min"):
        first = api_client.get("/api/v1/captures/", {"format": "csv"})
        second = api_client.get("/api/v1/captures/", HTTP_ACCEPT="text/csv")
        lists = [api_client.get("/api/v1/captures/").status_code for _ in range(4)]
    assert first.status_code == 200
    assert first["Content-Type"].startswith("text/csv")
    assert (second.status_code, second.json()["code"]) == (429, "throttled")
    assert lists == [200, 200, 200, 429]  # the export did not count toward reads


def test_the_erps_pull_is_one_read_a_page_and_its_marks_count_apart(channel):
    """The pull as docs/webhooks.md has it: a page of orders, then a PATCH of each, at
    once. Counted as reads, the marks of one page of 50 went over a limit of 10 a
    second (an outside review); counted toward nothing, an ERP stuck in a loop of
    PATCHes took four of five workers (an outside test)."""
    call_command("create_api_user", "erp", "--channel", str(channel.pk), "--no-capture",
                 "--mark-sent", stdout=StringIO())  # fmt: skip
    from django.contrib.auth import get_user_model

    erp = client_for(get_user_model().objects.get(username="erp"))
    orders = [make_order(channel=channel, items=1) for _ in range(5)]
    with throttle_rates(read="1/min", mark="4/min"):
        page = erp.get("/api/v1/orders/", {"is_send": "false"})
        marks = [erp.patch(f"/api/v1/orders/{order.pk}/", {"is_send": True}, format="json")
                 for order in orders]  # fmt: skip
        again = erp.get("/api/v1/orders/", {"is_send": "false"})
    assert page.status_code == 200
    assert [mark.status_code for mark in marks] == [200] * 4 + [429]
    assert marks[-1].json()["code"] == "throttled"
    assert again.status_code == 429


def test_a_list_counts_by_its_page_size(api_client, order):
    """One read per 50 rows a page may hold: 128 pages of 500 events at once, each one
    request, kept every worker busy (an outside test)."""
    with throttle_rates(read="21/min"):
        answers = [
            api_client.get("/api/v1/orders/", {"page_size": 500}),  # 10
            api_client.get("/api/v1/events/", {"limit": 451}),  # 10
            api_client.get(f"/api/v1/orders/{order.pk}/"),  # 1
            api_client.get("/api/v1/order_items/", {"page_size": 1}),  # 1: over
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert int(answers[-1]["Retry-After"]) >= 1
    clock = time.time() + 7200  # windows of their own
    with throttle_rates(read="30/min"), patch("omnitron.api.throttling.clock", lambda: clock):
        # A size over the most a page holds is served 500 rows, and counts as 500 (one
        # of 10,001 counted as the default 50: 5,000 rows under a limit of 10 reads).
        over = [api_client.get("/api/v1/order_items/", {"page_size": size}).status_code
                for size in ("10001", "1" + "0" * 999, "1000")]  # fmt: skip
        over.append(api_client.get("/api/v1/order_items/", {"page_size": 1}).status_code)
    assert over == [200, 200, 200, 429]
    with throttle_rates(read="3/min"):  # a page that counts more than the limit: once
        clock = time.time() + 3600  # a window of its own (the clock patched below)
        with patch("omnitron.api.throttling.clock", lambda: clock):
            large = [api_client.get("/api/v1/orders/", {"page_size": 500}).status_code
                     for _ in range(2)]  # fmt: skip
    assert large == [200, 429]


def test_a_read_counts_by_the_size_of_its_answer(api_client, channel):
    """A capture's detail holds all its items with their attributes: 4 MB for 1,000
    items of 4 KB each (16 MB at 16 KB), counted as one read; twenty at once a second
    kept every worker busy (an outside test). An answer counts a read per 256 KB it
    holds, once it is known."""
    order = make_order(channel=channel, items=250)
    body = {"order": order.number, "order_items": [{"pk": pk, "attributes": {"s": "x" * 3900}}
                                                   for pk in order.items.values_list("pk", flat=True)]}  # fmt: skip
    assert api_client.post(CAPTURE_URL, body, format="json").status_code == 200
    capture_pk = order.captures.get().pk
    size = len(api_client.get(f"/api/v1/captures/{capture_pk}/").content)
    reads = math.ceil(size / (256 * 1024))
    assert reads >= 3, size
    with throttle_rates(read=f"{reads + 1}/min"):
        answers = [
            api_client.get(f"/api/v1/captures/{capture_pk}/"),  # `reads`
            api_client.get(f"/api/v1/orders/{order.pk}/"),  # 1: the limit
            api_client.get(f"/api/v1/orders/{order.pk}/"),  # over
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    detail, small = f"/api/v1/captures/{capture_pk}/", f"/api/v1/orders/{order.pk}/"
    start = (time.time() // 60 + 60) * 60 + 1  # a window of its own, a second into it
    # Larger than the limit, it counts in full, a limit's worth in each window from its
    # own: the reads after it wait for all of it. (It counted as the limit: 96 s later
    # the window before weighed 0.4, and 2 x 0.4 + 1 fit a limit of 2.)
    now, filled = [start], math.ceil(reads / 2)  # the windows its `reads` fill
    window = start - 1
    with throttle_rates(read="2/min"), patch("omnitron.api.throttling.clock", lambda: now[0]):
        statuses = [api_client.get(detail).status_code, api_client.get(small).status_code]
        for now[0] in (start + 95, window + 60 * (filled - 1) + 59, window + 60 * filled + 59):
            statuses.append(api_client.get(small).status_code)
    assert statuses == [200, 429, 429, 429, 200]
    # Counted when rendered, in the window it is rendered in: an answer that took two
    # windows to render (the clock jumps between the token's count and the render)
    # still counts in full for the reads after it.
    start += 3600
    clocks = iter([start])
    with (throttle_rates(read=f"{reads + 1}/min"),
          patch("omnitron.api.throttling.clock", lambda: next(clocks, start + 120))):  # fmt: skip
        statuses = [api_client.get(url).status_code for url in (detail, small, small, small)]
    assert statuses == [200, 200, 200, 429]


def test_a_read_whose_count_by_size_fails_is_still_answered(api_client, order, caplog):
    """The answer is made when it is counted by its size: a database that fails then
    loses the count, not the answer (it was a 500)."""

    def fails(self, cost):
        raise OperationalError("the server closed the connection")

    with throttle_rates(read="20/min"), patch.object(PostgresRateThrottle, "count_more", fails):
        answer = api_client.get(f"/api/v1/orders/{order.pk}/")
    assert answer.status_code == 200
    assert answer.json()["number"] == order.number
    assert "not counted by its size" in caplog.text


def test_only_captures_count_toward_the_capture_limit(api_client, order):
    """A GET (405) or an OPTIONS to the capture endpoint spent the limit: a probe could
    lock an integration out of capturing, and a GET over the limit was a 429."""
    url = "/api/v1/capture-order/"
    with throttle_rates(capture="2/min"):
        probes = [api_client.get(url).status_code for _ in range(5)]
        probes += [api_client.options(url).status_code for _ in range(5)]
        captures = [capture(api_client, order, [pk]).status_code
                    for pk in order.items.values_list("pk", flat=True)]  # fmt: skip
        after = api_client.get(url).status_code
    assert probes == [405] * 5 + [200] * 5
    assert captures == [200, 200, 429]  # the limit is the captures'
    assert after == 405


class Clock:
    """The throttles' clock, moved by hand."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from omnitron.api import throttling

    start = Clock(time.time() // 3600 * 3600 + 7 * 86400)  # a minute's start, in the future
    monkeypatch.setattr(throttling, "clock", start)
    return start


@pytest.mark.django_db
def test_a_login_limit_holds_across_the_end_of_a_minute(client, clock):
    """Fixed windows let 10 guesses through at 11:59:59 and 10 more at 12:00:00: the
    window slides, so the guesses of the minute before still count."""
    make_api_user(username="wms")
    with throttle_rates(login_username="3/min"):
        clock.now += 57
        before = [login(client, "wms", "wrong").status_code for _ in range(4)]
        clock.now += 4  # 1 s into the next minute
        after = login(client, "wms", "wrong")
        wait = int(after["Retry-After"])
        clock.now += wait - 1
        too_early = login(client, "wms", "wrong")
        clock.now += 1
        in_time = login(client, "wms", "wrong")
    assert before == [400, 400, 400, 429]
    assert (after.status_code, after.json()["code"]) == (429, "throttled")
    # 3 of the minute before, weighted by the 59 s of it still counted: one more at
    # 2/3 of it, 19 s after the minute's start.
    assert wait == 19
    assert too_early.status_code == 429
    assert in_time.status_code == 400


def test_a_capture_limit_holds_across_the_end_of_a_minute(api_client, order, clock):
    first, second, third = order.items.values_list("pk", flat=True)
    with throttle_rates(capture="2/min"):
        clock.now += 59
        answers = [capture(api_client, order, [pk]).status_code for pk in (first, second)]
        clock.now += 1.5
        throttled = capture(api_client, order, [third])
    assert answers == [200, 200]
    assert (throttled.status_code, throttled.json()["code"]) == (429, "throttled")
    # The minute before's 2 count by the share of it still within the last 60 s: by
    # 30 s into this one, they count as 1, and one more is allowed.
    assert int(throttled["Retry-After"]) == 30
    assert OrderItem.objects.get(pk=third).captured_at is None


@pytest.mark.django_db
def test_a_client_retrying_too_early_is_not_locked_out(rf, clock):
    """A refused request is not counted: a client sending every second against a
    limit of 6 a minute gets about 6 a minute through, never more than 6 in a moment
    and never locked out."""
    from accounts.throttling import LoginAddressThrottle

    allowed_at = []
    with throttle_rates(login_address="6/min"):
        for second in range(300):
            clock.now += 1
            request = rf.post(LOGIN, REMOTE_ADDR="10.9.9.9")
            request.user = AnonymousUser()
            if LoginAddressThrottle().allow_request(request, None):
                allowed_at.append(second)
    from omnitron.api.models import RateCounter

    counted = RateCounter.objects.filter(key__startswith="throttle_login_address_")
    assert sum(counted.values_list("hits", flat=True)) == len(allowed_at)  # refusals: not
    per_minute = [sum(1 for s in allowed_at if m * 60 <= s < (m + 1) * 60) for m in range(5)]
    assert all(5 <= count <= 7 for count in per_minute), per_minute
    in_any_ten_seconds = max(
        sum(1 for s in allowed_at if start <= s < start + 10) for start in range(300)
    )
    assert in_any_ten_seconds <= 6, allowed_at


# Login reveals nothing


class FastPBKDF2(PBKDF2PasswordHasher):
    """PBKDF2 as in production, with fewer rounds to keep the test short."""

    iterations = 30_000


@pytest.mark.django_db
@override_settings(PASSWORD_HASHERS=["tests.reliability.test_access.FastPBKDF2"])
def test_login_takes_as_long_for_an_unknown_user_as_for_a_wrong_password(client):
    make_api_user(username="wms", password="the-right-password")

    def timed(username):
        started = time.perf_counter()
        response = login(client, username, "wrong-password")
        return time.perf_counter() - started, response

    timings = {"wrong password": [], "unknown user": []}
    answers = set()
    for _ in range(7):
        for label, username in (("wrong password", "wms"), ("unknown user", "nobody-here")):
            seconds, response = timed(username)
            timings[label].append(seconds)
            answers.add((response.status_code, response.content))
    assert len(answers) == 1  # the very same answer
    ratio = statistics.median(timings["unknown user"]) / statistics.median(
        timings["wrong password"]
    )
    assert 0.5 < ratio < 2, timings


# Channel isolation on every endpoint


@pytest.fixture
def two_channels(db):
    a, b = ChannelFactory(), ChannelFactory()
    mine = make_order(channel=a, number="SHARED-NO", items=2)
    theirs = make_order(channel=b, number="SHARED-NO", items=2)
    theirs_only = make_order(channel=b, number="B-ONLY", items=1)
    owner_b = make_api_user(channels=[b])
    assert capture(client_for(owner_b), theirs, [theirs.items.first().pk]).status_code == 200
    return a, b, mine, theirs, theirs_only, make_api_user(channels=[a])


def test_a_channel_a_token_touches_nothing_of_channel_b(two_channels):
    a, b, mine, theirs, theirs_only, user_a = two_channels
    client = client_for(user_a)
    their_items = list(OrderItem.objects.filter(order__channel=b).values_list("pk", flat=True))
    their_capture = Capture.objects.get().pk
    before = (OrderItem.objects.filter(captured_at__isnull=False).count(), Capture.objects.count())

    # Capture: B's orders do not exist, by number, by number and channel, or by item pk.
    assert (
        capture(client, "B-ONLY", [theirs_only.items.get().pk]).json()["code"] == "order_not_found"
    )
    assert (
        capture(client, "SHARED-NO", their_items, channel=b.pk).json()["code"] == "order_not_found"
    )
    stolen = capture(client, mine, [*their_items])
    assert stolen.json()["code"] == "order_item_not_found"
    # Reads: 404 for every B pk, and nothing of B in any list or filter.
    for pk in [theirs.pk, theirs_only.pk]:
        assert client.get(f"/api/v1/orders/{pk}/").status_code == 404
    for pk in their_items:
        assert client.get(f"/api/v1/order_items/{pk}/").status_code == 404
    assert client.get(f"/api/v1/captures/{their_capture}/").status_code == 404
    # Guessing: every pk around B's answers the same 404 as one that does not exist.
    # (a window around them: earlier tests leave the item sequence far beyond 1)
    for pk in range(min(their_items) - 5, max(their_items) + 5):
        response = client.get(f"/api/v1/order_items/{pk}/")
        assert response.status_code == (
            200 if pk in mine.items.values_list("pk", flat=True) else 404
        )
    assert [o["pk"] for o in client.get("/api/v1/orders/").json()["results"]] == [mine.pk]
    assert client.get(f"/api/v1/orders/?channel={b.pk}").json()["results"] == []
    assert client.get("/api/v1/orders/?number=B-ONLY").json()["results"] == []
    assert client.get(f"/api/v1/order_items/?order={theirs.pk}").json()["results"] == []
    assert client.get(f"/api/v1/captures/?order={theirs.pk}").json()["results"] == []
    assert client.get("/api/v1/captures/").json()["results"] == []
    assert before == (
        OrderItem.objects.filter(captured_at__isnull=False).count(),
        Capture.objects.count(),
    )
    assert Order.objects.count() == 3


# Tokens


def test_rotating_a_token_retires_the_old_one_at_once(api_client, api_user, order):
    old = api_user.auth_token.key
    out = StringIO()
    call_command("rotate_token", api_user.username, stdout=out)
    new = out.getvalue().strip()
    assert new != old
    assert len(new) == 40
    assert capture(api_client, order, [order.items.first().pk]).status_code == 401
    fresh = client_for(None)
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert capture(fresh, order, [order.items.first().pk]).status_code == 200


def test_rotate_token_takes_the_username_exactly_as_django_compares_it(api_user):
    """Usernames are case-sensitive: `rotate_token` of another spelling names no user,
    and the token of the user it does not name keeps working."""
    old = api_user.auth_token.key
    assert api_user.username.upper() != api_user.username
    with pytest.raises(CommandError, match="No user"):
        call_command("rotate_token", api_user.username.upper(), stdout=StringIO())
    other = make_api_user(username=api_user.username.upper())
    call_command("rotate_token", other.username, stdout=StringIO())
    assert Token.objects.get(user=api_user).key == old
    assert client_for_token(old).get("/api/v1/active_user/").status_code == 200


@pytest.mark.django_db
def test_rotate_token_reads_a_name_as_create_api_user_does():
    """`create_api_user ｗｍｓ` makes the user "wms", and the API's login takes "ｗｍｓ"
    for it (accounts.services.username_as_stored: "the username a name sent by a client
    or an operator means"); `rotate_token ｗｍｓ` answered "No user 'ｗｍｓ'"."""
    out = StringIO()
    call_command("create_api_user", "ｗｍｓ", stdout=out)
    old = out.getvalue().strip()
    out = StringIO()
    call_command("rotate_token", "ｗｍｓ", stdout=out)
    new = out.getvalue().strip()
    assert new != old
    assert client_for_token(old).get("/api/v1/active_user/").status_code == 401
    assert client_for_token(new).get("/api/v1/active_user/").status_code == 200


# Production settings


def production(*code: str, **env) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", "import django; django.setup(); from django.conf import settings; " + "; ".join(code)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
             "DJANGO_SECRET_KEY": PRODUCTION_SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "capture.example.com", **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_settings_are_locked_down():
    out = production(
        "print(settings.DEBUG, settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE, "
        "settings.CSRF_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT, "
        "settings.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES'])",
        DJANGO_DEBUG="1",
    )
    assert out == ("False 31536000 True True True ['omnitron.api.renderers.JSONRenderer']")
    # No default: the key is the environment's (and none stops it at start:
    # tests/test_settings.py, test_production_refuses_to_start_without_a_required_variable).
    given = PRODUCTION_SECRET_KEY + "\n"  # as given: a key read from a file keeps its newline
    assert production("print(repr(settings.SECRET_KEY))", DJANGO_SECRET_KEY=given) == repr(given)


def test_production_refuses_plain_http_and_private_webhook_targets_by_default():
    """docs/webhooks.md: in production a target must be https:// and must not be a
    loopback, private or link-local address, unless WEBHOOK_REQUIRE_HTTPS=0 or
    WEBHOOK_ALLOW_PRIVATE_TARGETS=1 say otherwise (development allows both)."""
    check = """
from events.outbound import TargetRefused, check_url
def shown(url):
    try:
        check_url(url)
    except TargetRefused:
        return "refused"
    return "taken"
print(*(shown(url) for url in ("http://hooks.example.com/", "https://169.254.169.254/",
                               "https://hooks.example.com/")))"""
    assert production(check) == "refused refused taken"
    opted_out = production(check, WEBHOOK_REQUIRE_HTTPS="0", WEBHOOK_ALLOW_PRIVATE_TARGETS="1")
    assert opted_out == "taken taken taken"


@pytest.mark.django_db
def test_old_rate_counters_are_pruned():
    from omnitron.api.models import RateCounter

    now = int(time.time())
    for days in (3, 1.5):  # a day's limit counts the day before too: kept for two days
        window = int(now - days * 86400)
        RateCounter.objects.create(key="throttle_capture_x", window_start=window, hits=3)
    RateCounter.objects.create(key="throttle_capture_x", window_start=now - 60, hits=1)
    call_command("prune_rate_counters", stderr=StringIO())
    kept = sorted(RateCounter.objects.values_list("window_start", flat=True))
    assert kept == [int(now - 1.5 * 86400), now - 60]


@pytest.mark.django_db
def test_a_scopes_counters_go_once_two_of_its_windows_have_passed(clock):
    """A user reading all day under a limit per second wrote a counter a second, and
    each was kept two days (172,800 a user; an outside review)."""
    from omnitron.api.models import RateCounter

    now = int(clock.now)  # the prune's clock: a second that passed in between failed it
    rows = {("throttle_read_7", now - 1), ("throttle_read_7", now - 5),
            ("throttle_capture_7", now - 60), ("throttle_capture_7", now - 300),
            ("throttle_login_address_1.2.3.4", now - 3600),
            ("throttle_login_address_1.2.3.4", now - 3 * 86400)}  # fmt: skip
    for key, window in rows:
        RateCounter.objects.create(key=key, window_start=window, hits=1)
    with throttle_rates(read="20/s", capture="6000/min"):
        call_command("prune_rate_counters", stderr=StringIO())
    assert set(RateCounter.objects.values_list("key", "window_start")) == {
        ("throttle_read_7", now - 1), ("throttle_capture_7", now - 60),
        ("throttle_login_address_1.2.3.4", now - 3600),
    }  # fmt: skip


# The admin's login


def admin_login(client, username, password, address="10.0.2.1"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                       REMOTE_ADDR=address)  # fmt: skip


@pytest.mark.django_db
def test_a_login_whose_next_is_another_site_lands_on_the_admin(client):
    """Django refuses such a `next`, and sent the operator to /accounts/profile/, a 404."""
    make_api_user(username="ops", is_staff=True, password="right-password-1")
    answer = client.post("/admin/login/?next=//evil.example/",
                         {"username": "ops", "password": "right-password-1"})  # fmt: skip
    assert (answer.status_code, answer["Location"]) == (302, "/admin/")


@pytest.mark.django_db
def test_the_admin_login_is_limited_per_username_and_address(client):
    make_api_user(username="ops", is_staff=True, password="right-password-1")
    with throttle_rates(login_username="3/min", login_address="5/min"):
        wrong = [admin_login(client, "ops", "wrong", address=f"10.0.3.{n}") for n in range(3)]
        refused = admin_login(client, "ops", "right-password-1", address="10.0.3.9")
        unknown = [admin_login(client, "nobody", "x", address="10.0.4.1") for _ in range(4)]
    assert all(r.status_code == 200 and b"Please enter the correct" in r.content for r in wrong)
    # Over the limit even the right password is refused, with a clear message...
    assert refused.status_code == 200
    assert b"Too many login attempts. Try again in" in refused.content
    assert "_auth_user_id" not in client.session
    # ...and an unknown username gets the same answers: nothing tells who exists.
    assert [b"Too many" in r.content for r in unknown] == [False, False, False, True]


@contextmanager
def login_slots_taken(count):
    """Another connection holds the first `count` login slots, as logins checking a
    password in other processes would."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        for slot in range(1, count + 1):
            other.execute("SELECT pg_advisory_lock(%s, %s)", (LOGIN_SLOTS, slot))
        yield


@pytest.mark.django_db(transaction=True)  # a slot is free again when a login's transaction ends
@override_settings(LOGIN_CONCURRENCY=2)
def test_logins_past_the_concurrency_wait_outside_instead_of_taking_workers(client):
    """A password check costs a large share of a second of CPU: 25 logins at once (under
    the per-minute limits) held every worker, and a capture waited 31 s behind them."""
    make_api_user(username="ops", is_staff=True, password="right-password-1")
    with login_slots_taken(1):
        one_slot_left = login(client, "ops", "right-password-1")
    with login_slots_taken(2):
        busy = login(client, "ops", "right-password-1")
        admin_busy = admin_login(client, "ops", "right-password-1")
    after = login(client, "ops", "right-password-1")
    assert one_slot_left.status_code == 200
    assert busy.status_code == 503
    assert busy.json() == {
        "detail": "Too many logins in progress. Retry in a second.",
        "code": "logins_busy",
    }
    assert busy["Retry-After"] == "1"
    assert admin_busy.status_code == 200
    assert b"Too many logins in progress. Try again in a second." in admin_busy.content
    assert "_auth_user_id" not in client.session
    assert after.status_code == 200
    assert after.json()["key"]
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        free = [other.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOGIN_SLOTS, slot))
                .fetchone()[0] for slot in (1, 2)]  # fmt: skip
    assert free == [True, True]  # every login gave its slot back


@pytest.mark.django_db
def test_every_spelling_the_admin_logs_in_with_counts_as_its_username(client):
    """The admin's login form trims the username and folds look-alike characters
    (NFKC): " ops " and "ｏｐｓ" logged in as "ops" after its limit was reached, each
    spelling counted apart."""
    make_api_user(username="ops", is_staff=True, password="right-password-1")
    with throttle_rates(login_username="3/min"):
        for n in range(3):
            admin_login(client, "ops", "wrong", address=f"10.0.5.{n}")
        spellings = [admin_login(client, name, "right-password-1", address="10.0.5.9")
                     for name in (" ops ", "ｏｐｓ", "ops\u3000")]  # fmt: skip
    for refused in spellings:
        assert b"Too many login attempts. Try again in" in refused.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_admin_and_api_logins_share_their_counters(client):
    make_api_user(username="ops", is_staff=True, password="right-password-1")
    with throttle_rates(login_username="2/min"):
        assert login(client, "ops", "wrong").status_code == 400
        assert admin_login(client, "ops", "wrong").status_code == 200
        api_after = login(client, "ops", "right-password-1")
        admin_after = admin_login(client, "ops", "right-password-1")
    assert api_after.status_code == 429
    assert b"Too many login attempts" in admin_after.content


@pytest.mark.django_db
def test_a_huge_username_of_expanding_characters_is_refused_as_fast_as_a_plain_one(client):
    """NFKC writes U+FDFA as 18 characters: the username limit normalized 4 MB of it
    before any length check, 2 s a login (ten at once: 24 s each, and every other
    request waited). The same bytes of a plain name cost what parsing them costs."""

    def timed(name: str) -> float:
        body = json.dumps({"username": name, "password": "x"}, ensure_ascii=False).encode()
        started = time.process_time()
        with throttle_rates(login_username="100/min", login_address="100/min"):
            response = client.post(LOGIN, body, content_type="application/json")
        assert response.status_code == 400  # too long a username, coded
        return time.process_time() - started

    plain = min(timed("a" * 3_900_000) for _ in range(3))
    expanding = min(timed("\ufdfa" * 1_300_000) for _ in range(3))  # 3.9 MB of UTF-8
    assert expanding < plain * 3 + 0.2, (expanding, plain)


def test_every_prune_is_scheduled_in_the_maintenance_queue():
    """A prune only a command runs is a table that grows; a worker started for the
    `maintenance` queue (docs/operations.md) runs them all, with the dispatcher."""
    from procrastinate.contrib.django import app

    scheduled = {name.rsplit(".", 1)[1]: (periodic.cron, periodic.task.queue)
                 for (name, _), periodic in app.periodic_registry.periodic_tasks.items()}  # fmt: skip
    assert {name: queue for name, (_, queue) in scheduled.items()} == dict.fromkeys(
        ["prune_idempotency_keys", "prune_rate_counters", "clear_expired_sessions",
         "remove_ended_jobs", "dispatch_due_deliveries", "release_stalled_jobs"], "maintenance"
    )  # fmt: skip
    assert all(
        scheduled[name][0].startswith(("17 ", "23 ", "29 "))
        for name in ("prune_idempotency_keys", "prune_rate_counters", "clear_expired_sessions")
    )  # hourly


@pytest.mark.django_db(transaction=True)
def test_the_worker_clears_expired_sessions_and_ended_jobs():
    """Nothing removed them: a session row per admin login, and a job per failed lane
    or prune, for ever. The jobs go in batches (here of two): procrastinate's one
    statement ran past the statement timeout at 1.3 million of them."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from omnitron.api.tasks import clear_expired_sessions, remove_ended_jobs
    from omnitron.db import pruning

    now = timezone.now()
    Session.objects.create(session_key="old", session_data="", expire_date=now - timedelta(hours=1))
    Session.objects.create(
        session_key="live", session_data="", expire_date=now + timedelta(hours=1)
    )
    with connection.cursor() as cursor:
        jobs = {}
        for name, status, age in [("old_failed", "failed", "8 days"), ("old_cancelled",
                                  "cancelled", "8 days"), ("new_failed", "failed", "1 day"),
                                  ("waiting", "todo", "8 days"), ("old_aborted", "aborted",
                                  "8 days"), ("old_failed_too", "failed", "9 days")]:  # fmt: skip
            cursor.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
                           "VALUES ('deliveries', %s, '{}', %s) RETURNING id", [name, status])  # fmt: skip
            jobs[name] = cursor.fetchone()[0]
            cursor.execute("INSERT INTO procrastinate_events (job_id, type, at) "
                           "VALUES (%s, 'deferred', now() - %s::interval)", [jobs[name], age])  # fmt: skip
            cursor.execute("UPDATE procrastinate_events SET at = now() - %s::interval "
                           "WHERE job_id = %s", [age, jobs[name]])  # fmt: skip
    clear_expired_sessions(timestamp=0)
    with patch.object(pruning, "PRUNE_BATCH", 2):
        assert remove_ended_jobs(timestamp=0) == 4
    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_name FROM procrastinate_jobs WHERE id = ANY(%s) ORDER BY id",
                       [list(jobs.values())])  # fmt: skip
        assert [row[0] for row in cursor.fetchall()] == ["new_failed", "waiting"]


@pytest.mark.django_db(transaction=True)  # a slot is free again when a check's transaction ends
@override_settings(LOGIN_CONCURRENCY=2)
def test_the_admins_password_change_checks_the_old_password_in_a_login_slot(client):
    """Forty password changes at once from one session (wrong old passwords) held every
    worker for 6 s: checking the old password costs what a login's check does."""
    staff = make_api_user(username="ops", is_staff=True, password="right-password-1")
    client.force_login(staff)
    form = {"old_password": "wrong", "new_password1": "N3w-pass-phrase!",
            "new_password2": "N3w-pass-phrase!"}  # fmt: skip
    with login_slots_taken(2):
        busy = client.post("/admin/password_change/", form)
    wrong = client.post("/admin/password_change/", form)
    assert b"Too many password checks in progress" in busy.content
    assert b"Too many password checks in progress" not in wrong.content
    assert b"Your old password was entered incorrectly" in wrong.content
    done = client.post("/admin/password_change/", {**form, "old_password": "right-password-1"})
    assert done.status_code == 302


@pytest.mark.django_db
def test_a_password_set_in_the_admin_replaces_the_users_api_token(client):
    """Whoever had the old password could obtain the token from the API's login, and
    kept it after a reset made to shut them out (an outside test): a password set in
    the admin, the user's own or on a user's page, replaces the token. A user without
    one gets none."""
    wms = make_api_user(username="wms", is_staff=True, password="right-password-1")
    old = Token.objects.get(user=wms).key
    client.force_login(wms)
    done = client.post("/admin/password_change/", {
        "old_password": "right-password-1", "new_password1": "N3w-pass-phrase!",
        "new_password2": "N3w-pass-phrase!"})  # fmt: skip
    assert done.status_code == 302
    first = Token.objects.get(user=wms).key
    assert first != old
    assert client_for_token(old).get("/api/v1/active_user/").status_code == 401
    assert client_for_token(first).get("/api/v1/active_user/").status_code == 200

    client.force_login(make_api_user(username="root", is_superuser=True, is_staff=True))
    reset = client.post(f"/admin/auth/user/{wms.pk}/password/", {
        "password1": "An0ther-pass-phrase!", "password2": "An0ther-pass-phrase!",
        "usable_password": "true"})  # fmt: skip
    assert reset.status_code == 302
    assert Token.objects.get(user=wms).key not in (old, first)
    tokenless = make_api_user(username="tokenless", password="right-password-1")
    Token.objects.filter(user=tokenless).delete()
    client.post(f"/admin/auth/user/{tokenless.pk}/password/", {
        "password1": "An0ther-pass-phrase!", "password2": "An0ther-pass-phrase!",
        "usable_password": "true"})  # fmt: skip
    assert not Token.objects.filter(user=tokenless).exists()


def client_for_token(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.mark.django_db
def test_the_admins_password_change_counts_against_the_login_limits(client):
    """Each check of the old password is a guess at the account's password: a staff
    session guessed nine times a second past the per-username limit, and kept the
    login slots busy for everyone's logins."""
    staff = make_api_user(username="ops", is_staff=True, password="right-password-1")
    client.force_login(staff)
    form = {"old_password": "wrong", "new_password1": "N3w-pass-phrase!",
            "new_password2": "N3w-pass-phrase!"}  # fmt: skip
    with throttle_rates(login_username="2/min", login_address="100/min"):
        wrong = [client.post("/admin/password_change/", form, REMOTE_ADDR="10.0.6.1")
                 for _ in range(2)]  # fmt: skip
        refused = client.post("/admin/password_change/", {**form, "old_password": "right-password-1"},
                              REMOTE_ADDR="10.0.6.2")  # fmt: skip
        api_login = login(client, "ops", "right-password-1", address="10.0.6.3")
    for answer in wrong:
        assert b"Your old password was entered incorrectly" in answer.content
    assert refused.status_code == 200
    assert b"Too many password attempts. Try again in" in refused.content
    assert api_login.status_code == 429  # the same counter as the logins'
    staff.refresh_from_db()
    assert staff.check_password("right-password-1")


@pytest.mark.django_db
def test_retry_after_of_a_limit_used_up_early_is_longer_than_the_period(client, clock):
    """configuration.md: Retry-After is when the sliding count lets the next request
    through, up to 80 s for 3/min used up at the start of a minute. A client that waits
    what it was told gets in; one that comes a second earlier does not."""
    make_api_user(username="wms")
    with throttle_rates(login_username="3/min"):
        clock.now += 1
        answers = [login(client, "wms", "wrong") for _ in range(4)]
        wait = int(answers[-1]["Retry-After"])
        clock.now += wait - 1
        too_early = login(client, "wms", "wrong")
        clock.now += 1
        in_time = login(client, "wms", "wrong")
    assert [answer.status_code for answer in answers] == [400, 400, 400, 429]
    # The minute's 3, counted by the share of them the last 60 s still cover, let one
    # more through when a third of them has slid away: 20 s into the next minute.
    assert wait == 79
    # Inside that minute the wait is what is left until the share has slid away.
    assert (too_early.status_code, too_early["Retry-After"]) == (429, "1")
    assert in_time.status_code == 400


def test_retry_after_of_a_page_that_counts_the_whole_limit_is_the_rest_of_the_minute(
    api_client, order, clock
):
    """A page of 500 counts 10 reads, the whole limit of 10/min: in the next minute it
    gets in once the minute before has slid away entirely, not a full minute later."""
    with throttle_rates(read="10/min"):
        first = api_client.get("/api/v1/orders/", {"page_size": 500})
        clock.now += 80  # 20 s into the next minute
        second = api_client.get("/api/v1/orders/", {"page_size": 500})
        clock.now += int(second["Retry-After"])
        third = api_client.get("/api/v1/orders/", {"page_size": 500})
    assert (first.status_code, second.status_code, second["Retry-After"]) == (200, 429, "40")
    assert third.status_code == 200


def test_a_page_size_of_thousands_of_digits_is_counted_as_the_largest_page(api_client):
    """Python's int() refuses over 4,300 digits (ValueError: a 500): a page size that
    long counts as the largest page, and is refused by validation, not by a crash."""
    with throttle_rates(read="1000/min"):
        answer = api_client.get("/api/v1/orders/", {"page_size": "9" * 5000})
    assert (answer.status_code, answer.json()["code"]) == (400, "max_string_length")


@pytest.mark.django_db
def test_the_prune_keeps_the_window_before_the_current_one(clock):
    """A sliding limit counts the window before: the prune must keep it, or a user's
    limit per minute lets nearly twice through once the prune has run."""
    from omnitron.api.models import RateCounter

    clock.now += 59  # late in a minute: the window before started 119 s ago
    now = int(clock.now)
    previous = now // 60 * 60 - 60
    RateCounter.objects.create(key="throttle_capture_7", window_start=previous, hits=6000)
    with throttle_rates(capture="6000/min"):
        call_command("prune_rate_counters", stderr=StringIO())
    assert list(RateCounter.objects.values_list("window_start", flat=True)) == [previous]
