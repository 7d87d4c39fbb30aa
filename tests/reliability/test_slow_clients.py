"""Slow and idle clients cannot take the service down behind the proxy that ships
with it (deploy/nginx, Debian's nginx with the same configuration as the Docker
image): gunicorn's sync workers only ever see whole requests. Without the proxy a
handful of idle sockets is enough to stall gunicorn, which is why it must not face
clients directly."""

import contextlib
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.live import gunicorn, nginx, raw_request
from tests.reliability.helpers import assert_captures_add_up, seed, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def address(base: str) -> tuple[str, int]:
    url = urlsplit(base)
    return url.hostname, url.port


class SlowClients:
    """Idle sockets that send nothing, clients sending a header line every 2 s, and
    uploaders sending a declared 4 MB body at about 20 KB/s, until stopped. Each
    uploader is a client address of its own: the proxy takes one large body at a time
    from an address (tests/reliability/test_large_bodies.py)."""

    def __init__(self, base: str, *, idle: int, slow_headers: int, uploaders: int):
        self.target = address(base)
        self.idle = [self._connect() for _ in range(idle)]
        self.headers = [self._connect(b"GET /readyz HTTP/1.1\r\n") for _ in range(slow_headers)]
        head = (b"POST /api/v1/capture-order/ HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n")  # fmt: skip
        self.uploaders = [self._connect(head, source=f"127.0.1.{n + 1}") for n in range(uploaders)]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _connect(self, first: bytes = b"", *, source: str = "") -> socket.socket:
        sock = socket.create_connection(self.target, timeout=5, source_address=(source, 0))
        if first:
            sock.sendall(first)
        return sock

    def _trickle(self):
        tick = 0
        while not self.stopped.wait(0.05):
            tick += 1
            for sock in self.uploaders:
                with contextlib.suppress(OSError):
                    sock.send(b" " * 1024)  # 1 KB every 50 ms
            if tick % 40 == 0:  # every 2 s
                for sock in self.headers:
                    with contextlib.suppress(OSError):
                        sock.send(b"X-Slow: 1\r\n")

    def close(self):
        self.stopped.set()
        self.thread.join()
        for sock in self.idle + self.headers + self.uploaders:
            sock.close()


def timed(method, url, **kwargs) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=5, **kwargs)
    return time.monotonic() - started, response


def test_behind_the_proxy_idle_and_slow_clients_leave_everyone_else_served():
    orders = seed(orders=20, items=1, prefix="SLOW")
    token = token_for("wms", all_channels=True)
    with gunicorn(workers=2) as (app, _), nginx(app) as (proxy, _):
        crowd = SlowClients(proxy, idle=300, slow_headers=50, uploaders=50)
        try:
            time.sleep(1)  # every slow client is connected and sending
            answers = []
            for order in orders:
                body = {"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]}
                answers.append(timed("POST", f"{proxy}/api/v1/capture-order/", json=body,
                                     headers={"Authorization": f"Token {token}"}))  # fmt: skip
                answers.append(timed("GET", f"{proxy}/readyz"))
        finally:
            crowd.close()
    assert [r.status_code for _, r in answers] == [200] * 40
    slowest = max(seconds for seconds, _ in answers)
    assert slowest < 1.0, f"slowest answer took {slowest:.2f} s"
    assert_captures_add_up()


def probe(proxy: str, request: bytes) -> tuple[float, bytes]:
    """One request from another loopback address than the crowd's (127.0.0.2): another
    client, as nginx counts them. Returns (seconds, the answer's status line)."""
    started = time.monotonic()
    with socket.create_connection(address(proxy), timeout=5,
                                  source_address=("127.0.0.2", 0)) as sock:  # fmt: skip
        sock.sendall(request)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    return time.monotonic() - started, answer.partition(b"\r\n")[0]


def received(sock: socket.socket) -> bytes:
    """What the server sent on this socket so far (nothing from one still reading)."""
    sock.settimeout(0.05)
    chunks = []
    with contextlib.suppress(TimeoutError, ConnectionError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_one_address_holding_bodies_open_gets_its_own_limit_and_others_are_served():
    """A client that sends a body a byte at a time keeps its request going as long as
    it likes (nginx's body timeout is per read). One address holding 4,096 such
    requests took every connection nginx has, and every other client was refused: an
    address gets PROXY_CONNECTIONS_PER_CLIENT requests at once (128), the rest a JSON
    429 at once, and their connections are closed within a second or two, however the
    client keeps sending (nginx kept one discarding its body for 30 s). Their bodies
    are under 30,000 bytes: the proxy takes larger ones one at a time per address."""
    orders = seed(orders=5, items=1, prefix="HOLD")
    token = token_for("wms-hold", all_channels=True)
    head = (b"POST /api/v1/capture-order/ HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 29999\r\n\r\n{")  # fmt: skip
    with gunicorn(workers=2) as (app, _), nginx(app) as (proxy, _):
        crowd = []
        trickling = threading.Event()

        def trickle():
            while not trickling.wait(0.3):
                for sock in crowd:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")

        sender = threading.Thread(target=trickle, daemon=True)
        try:
            for _ in range(300):
                sock = socket.create_connection(address(proxy), timeout=5)
                sock.sendall(head)
                crowd.append(sock)
            sender.start()
            time.sleep(0.5)
            answers = {sock: received(sock) for sock in crowd}
            refused = [sock for sock, answer in answers.items() if answer]
            served = []
            for order in orders:
                body = json.dumps({"order": order["number"],
                                   "order_items": [{"pk": order["items"][0]["pk"]}]}).encode()  # fmt: skip
                served.append(probe(proxy, (
                    b"POST /api/v1/capture-order/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Authorization: Token " + token.encode() + b"\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)))  # fmt: skip
                served.append(
                    probe(proxy, b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                )
            time.sleep(2.5)  # while the crowd keeps sending
            still_open = [sock for sock in refused if not closed_by_server(sock)]
        finally:
            trickling.set()
            if sender.is_alive():
                sender.join()
            for sock in crowd:
                sock.close()
    assert len(refused) == 300 - 128
    for sock in refused:
        head_lines, _, body_part = answers[sock].partition(b"\r\n\r\n")
        assert head_lines.startswith(b"HTTP/1.1 429 "), answers[sock]
        assert b"Retry-After: 1" in head_lines.split(b"\r\n")
        assert json.loads(body_part)["code"] == "too_many_connections"
    assert still_open == []
    assert [line for _, line in served] == [b"HTTP/1.1 200 OK"] * 10
    slowest = max(seconds for seconds, _ in served)
    assert slowest < 1.0, f"slowest answer took {slowest:.2f} s"


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def test_the_proxy_answers_its_own_errors_as_json():
    """Only 413, 502 and 504 were: a long URI, a large header, a malformed request or an
    unknown transfer coding got nginx's HTML page."""
    with gunicorn(workers=1) as (app, server), nginx(app, max_body_bytes=1024) as (proxy, _):
        too_large = requests.post(f"{proxy}/api/v1/capture-order/", data=b"x" * 2048,
                                  headers={"Content-Type": "application/json"}, timeout=5)  # fmt: skip
        metrics = requests.get(f"{proxy}/metrics", timeout=5)
        long_uri = requests.get(f"{proxy}/api/v1/orders/?x={'a' * 9000}", timeout=5)
        large_header = requests.get(f"{proxy}/api/v1/orders/", headers={"X-Big": "a" * 9000},
                                    timeout=5)  # fmt: skip
        coding = requests.post(f"{proxy}/api/v1/auth/login/", data=b"",
                               headers={"Transfer-Encoding": "gzip, chunked"}, timeout=5)  # fmt: skip
        malformed = [
            raw_request(proxy, request)
            for request in (
                b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                # No Host: the app's links (`next`) named gunicorn's own port.
                b"GET /api/v1/orders/ HTTP/1.0\r\n\r\n",
            )
        ]
        hostless_probe = raw_request(proxy, b"GET /healthz HTTP/1.0\r\n\r\n")
        internal = requests.get(f"{proxy}/_errors/400", timeout=5)
        trace = requests.request("TRACE", f"{proxy}/api/v1/orders/", timeout=5)
        connect = raw_request(proxy, b"CONNECT /api/v1/orders/ HTTP/1.1\r\nHost: x\r\n\r\n")
        # A client's SCRIPT_NAME, through the proxy and straight to gunicorn from
        # loopback (the proxy's address): /x/metrics was the metrics, to anyone.
        prefixed = [
            raw_request(base, b"GET /x/metrics HTTP/1.1\r\nHost: localhost\r\n"
                              b"Connection: close\r\nSCRIPT_NAME: /x\r\n\r\n")
            for base in (proxy, app)
        ]  # fmt: skip
        server.stop()
        app_down = requests.get(f"{proxy}/healthz", timeout=5)
    assert (too_large.status_code, too_large.json()["code"]) == (413, "request_too_large")
    assert (metrics.status_code, metrics.json()["code"]) == (404, "not_found")
    assert (long_uri.status_code, long_uri.json()["code"]) == (414, "uri_too_long")
    assert (large_header.status_code, large_header.json()["code"]) == (431, "header_too_large")
    assert (coding.status_code, coding.json()["code"]) == (501, "not_implemented")
    for answer in malformed:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), answer
        assert b"Content-Type: application/json" in head
        assert json.loads(body)["code"] == "bad_request"
    assert hostless_probe.startswith(b"HTTP/1.1 200 "), hostless_probe  # a health check's
    assert (internal.status_code, internal.json()["code"]) == (404, "not_found")
    assert (trace.status_code, trace.json()) == (
        405, {"detail": 'Method "TRACE" not allowed.', "code": "method_not_allowed"})  # fmt: skip
    assert trace.headers["Allow"] == "GET, HEAD, OPTIONS"
    head, _, body = connect.partition(b"\r\n\r\n")  # it said TRACE
    assert head.startswith(b"HTTP/1.1 405 "), connect
    assert b"\r\nAllow: GET, HEAD, OPTIONS\r\n" in head
    assert json.loads(body) == {"detail": 'Method "CONNECT" not allowed.',
                                "code": "method_not_allowed"}  # fmt: skip
    for answer in prefixed:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404 "), answer[:300]
        assert json.loads(body)["code"] == "not_found"
    assert (app_down.status_code, app_down.json()["code"]) == (502, "app_unavailable")
    assert app_down.headers["Retry-After"] == "5"


def test_the_methods_the_proxy_refuses_are_answered_as_the_app_answers_them():
    """docs/api.md: a method a path does not take is 405 `method_not_allowed` "with
    Allow". nginx refuses TRACE and CONNECT itself, and its 405 had no Allow (RFC 9110
    requires one, naming the path's methods): they go on to the app, which answers
    them as it answers any method a path does not take."""
    paths = ["/api/v1/capture-order/", "/api/v1/orders/", "/api/v1/orders/1/", "/healthz"]
    with gunicorn(workers=1) as (app, server), nginx(app) as (proxy, _):
        for path in paths:
            direct = requests.request("TRACE", f"{app}{path}", timeout=5)
            proxied = requests.request("TRACE", f"{proxy}{path}", timeout=5)
            assert (proxied.status_code, proxied.json()) == (405, direct.json()), path
            assert proxied.headers["Allow"] == direct.headers["Allow"], path
        with_body = raw_request(proxy, b"TRACE /api/v1/orders/ HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")  # fmt: skip
        # /metrics is not there to see, by any method, through the proxy.
        metrics = [requests.request(method, f"{proxy}{path}", timeout=5)
                   for method in ("GET", "TRACE") for path in ("/metrics", "/%6Detrics")]  # fmt: skip
        server.stop()
        app_down = requests.request("TRACE", f"{proxy}/api/v1/orders/", timeout=5)
    assert [(m.status_code, m.json()["code"]) for m in metrics] == [(404, "not_found")] * 4
    assert direct.headers["Allow"] == "GET, HEAD"  # /healthz's, the last
    head, _, body = with_body.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 "), with_body
    assert b"\r\nAllow: GET, HEAD, OPTIONS\r\n" in head
    assert json.loads(body)["code"] == "method_not_allowed"
    assert (app_down.status_code, app_down.json()["code"]) == (502, "app_unavailable")


def test_a_client_that_half_closes_after_its_request_gets_the_answer():
    """A client may shut its sending side once its request is sent. nginx took that
    for an abort: no answer, while the capture went on when the app had it already.
    With and without an answer the client could not tell what happened."""
    orders = seed(orders=3, items=1, prefix="HALF")
    token = token_for("wms", all_channels=True)
    with gunicorn(workers=1) as (app, _), nginx(app) as (proxy, _):
        answers = []
        for order in orders:
            body = json.dumps({"order": order["number"],
                               "order_items": [{"pk": order["items"][0]["pk"]}]}).encode()  # fmt: skip
            head = (f"POST /api/v1/capture-order/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    f"Content-Type: application/json\r\nAuthorization: Token {token}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
            answers.append(raw_request(proxy, head + body, stop_sending=True, timeout=10))
    for answer, order in zip(answers, orders, strict=True):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert json.loads(body)["number"] == order["number"]
    assert_captures_add_up()


def test_an_answer_with_long_headers_passes_the_proxy():
    """A logged-out admin URL of 3.5 KB and more was nginx's 502 app_unavailable: the
    login redirect's Location (the URL again, escaped: Django sends up to 16,384
    characters) did not fit nginx's default buffer for an answer's headers.
    Without its slash too (the admin sends it to the login first)."""
    escaped = "%C3%A7" * 1300  # each escape is escaped again in the login's ?next=
    with gunicorn(workers=1) as (app, _), nginx(app) as (proxy, _):
        answers = [
            requests.get(f"{proxy}/admin/orders/order/?q={'x' * 7000}", allow_redirects=False,
                         timeout=5),
            requests.get(f"{proxy}/admin/orders/order/?q={escaped}", allow_redirects=False,
                         timeout=5),
            requests.get(f"{proxy}/admin/orders/order?q={'x' * 7000}", allow_redirects=False,
                         timeout=5),
        ]  # fmt: skip
    assert [answer.status_code for answer in answers] == [302, 302, 302]
    assert len(answers[1].headers["Location"]) > 12_000


def test_without_the_proxy_five_idle_sockets_stall_gunicorn():
    """Why the proxy is not optional: gunicorn's sync workers wait on idle sockets."""
    with gunicorn(workers=2) as (app, _):
        idle = [socket.create_connection(address(app)) for _ in range(5)]
        try:
            with pytest.raises(requests.Timeout):
                requests.get(f"{app}/healthz", timeout=1)
        finally:
            for sock in idle:
                sock.close()


def test_the_client_address_reaches_the_app_through_the_proxy():
    """X-Forwarded-For is set by the proxy; with API_NUM_PROXIES=1 the app reads the
    client's address from it (the login rate limit counts per address)."""
    token_for("wms", all_channels=True, password="the-right-password")
    env_rates = {"THROTTLE_LOGIN_ADDRESS_RATE": "2/min", "API_NUM_PROXIES": "1"}
    from tests.live import server_env

    with gunicorn(workers=1, env=server_env(**env_rates)) as (app, _), nginx(app) as (proxy, _):
        login = {"username": "wms", "password": "wrong"}
        direct = [requests.post(f"{proxy}/api/v1/auth/login/", json=login, timeout=5).status_code
                  for _ in range(3)]  # fmt: skip
        spoofed = requests.post(f"{proxy}/api/v1/auth/login/", json=login, timeout=5,
                                headers={"X-Forwarded-For": "203.0.113.9"})  # fmt: skip
    assert direct == [400, 400, 429]
    # A client cannot pick its address: the proxy appends the one it saw.
    assert spoofed.status_code == 429
    assert json.loads(spoofed.content)["code"] == "throttled"
