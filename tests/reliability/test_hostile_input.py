"""Hostile and broken input to every write endpoint, over real HTTP: each request
gets a 4xx JSON answer with a `code`, never a 5xx, and the database is unchanged."""

import contextlib
import gzip
import json
import socket
import zlib
from urllib.parse import urlsplit

import pytest
import requests

from omnitron.api.exceptions import BODY_ENDED_EARLY
from tests.live import gunicorn, raw_request, server_env
from tests.reliability.helpers import assert_captures_add_up, fingerprint, seed, token_for

pytestmark = pytest.mark.django_db(transaction=True)

J = "application/json"


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def capture_cases(order: str, pk: int) -> list[tuple[str, dict, bytes]]:
    """(name, headers, raw body): every one must be refused. A header set to None is
    left out of the request."""
    ok_item = f'[{{"pk": {pk}}}]'

    def body(order_json=None, items=ok_item, extra=""):
        order_json = json.dumps(order) if order_json is None else order_json
        return f'{{"order": {order_json}, "order_items": {items}{extra}}}'.encode()

    return [
        ("empty body", {}, b""),
        ("truncated object", {}, b'{"order": "A", "order_items": ['),
        ("just a brace", {}, b"{"),
        ("json null", {}, b"null"),
        ("json array", {}, b"[]"),
        ("json string", {}, b'"order"'),
        ("json number", {}, b"42"),
        ("order as list", {}, body(order_json='["A"]')),
        ("order as object", {}, body(order_json='{"n": 1}')),
        ("order null", {}, body(order_json="null")),
        ("order empty", {}, body(order_json='""')),
        ("order 100 KB", {}, body(order_json=json.dumps("x" * 100_000))),
        ("order with NUL", {}, body(order_json='"ORD\\u0000"')),
        ("order lone surrogate", {}, body(order_json='"\\ud800"')),
        ("order SQL injection", {}, body(order_json='"x\'; DROP TABLE orders_order; --"')),
        ("order HTML", {}, body(order_json='"<script>alert(1)</script>"')),
        ("order_items missing", {}, json.dumps({"order": order}).encode()),
        ("order_items string", {}, body(items='"1,2"')),
        ("order_items object", {}, body(items=f'{{"pk": {pk}}}')),
        ("order_items empty", {}, body(items="[]")),
        ("order_items of strings", {}, body(items='["a", "b"]')),
        ("order_items of nulls", {}, body(items="[null]")),
        ("1,001 items", {}, body(items=json.dumps([{"pk": n} for n in range(1, 1002)]))),
        ("pk string", {}, body(items='[{"pk": "abc"}]')),
        ("pk float", {}, body(items='[{"pk": 1.5}]')),
        ("pk negative", {}, body(items='[{"pk": -7}]')),
        ("pk zero", {}, body(items='[{"pk": 0}]')),
        ("pk enormous", {}, body(items='[{"pk": 100000000000000000000000000000}]')),
        ("pk 2**63", {}, body(items=f'[{{"pk": {2**63}}}]')),
        ("pk infinity by exponent", {}, body(items='[{"pk": 1e400}]')),
        ("pk true", {}, body(items='[{"pk": true}]')),
        ("pk with a tiny fraction", {}, body(items='[{"pk": 13185.0000000000000001}]')),
        ("pk with a zero fraction", {}, body(items=f'[{{"pk": {pk}.00}}]')),
        *[
            (f"pk string {text!r}", {}, body(items=json.dumps([{"pk": text}])))
            for text in ["١٣١٨٢", "１３２０５", "13_187", f" {pk} ", f"+{pk}", f"{pk}.00"]
        ],
        ("pk null", {}, body(items='[{"pk": null}]')),
        ("pk missing", {}, body(items='[{"attributes": {}}]')),
        ("duplicate pks", {}, body(items=f'[{{"pk": {pk}}}, {{"pk": {pk}}}]')),
        ("attributes string", {}, body(items=f'[{{"pk": {pk}, "attributes": "red"}}]')),
        ("attributes list", {}, body(items=f'[{{"pk": {pk}, "attributes": [1]}}]')),
        (
            "attributes nested 100 deep",
            {},
            body(items=f'[{{"pk": {pk}, "attributes": {nested(100)}}}]'),
        ),
        (
            "attributes nested 100,000 deep",
            {},
            body(items=f'[{{"pk": {pk}, "attributes": {nested(100_000)}}}]'),
        ),
        (
            "attributes 20 KB",
            {},
            body(items=json.dumps([{"pk": pk, "attributes": {"k": "v" * 20_000}}])),
        ),
        ("attributes NUL", {}, body(items=f'[{{"pk": {pk}, "attributes": {{"k": "a\\u0000"}}}}]')),
        *[
            (
                f"attributes number {n}",
                {},
                body(items=f'[{{"pk": {pk}, "attributes": {{"x": {n}}}}}]'),
            )
            # The last two have exponents beyond what Python's Decimal holds.
            for n in [
                "1e200000",
                "-1e200000",
                "1e-20000",
                "1e20000",
                "1e99999999999999999999999",
                "1e-99999999999999999999999",
            ]  # fmt: skip
        ],
        (
            "20,000 numbers of 131,001 digits each in attributes",
            {},
            body(
                items=f'[{{"pk": {pk}, "attributes": {{"a": [{",".join(["1e131000"] * 20_000)}]}}}}]'
            ),
        ),
        (
            "a body in a charset that takes seconds to decode",
            {"Content-Type": "application/json; charset=punycode"},
            ("é" * 400_000).encode("punycode"),
        ),
        ("channel string", {}, body(extra=', "channel": "web"')),
        ("channel negative", {}, body(extra=', "channel": -1')),
        ("channel enormous", {}, body(extra=', "channel": 99999999999999999999999')),
        ("NaN", {}, body(items='[{"pk": NaN}]')),
        ("Infinity", {}, body(items='[{"pk": Infinity}]')),
        (
            "duplicate keys",
            {},
            # The order given twice, each time as itself: whichever a parser kept, only
            # refusing the repeated key leaves nothing captured.
            f'{{"order": {json.dumps(order)}, "order": {json.dumps(order)}, '
            f'"order_items": {ok_item}}}'.encode(),
        ),
        ("invalid UTF-8", {}, b'{"order": "\xff\xfe", "order_items": []}'),
        ("UTF-16 body", {}, body().decode().encode("utf-16")),
        ("body over the size limit", {}, body(order_json=json.dumps("x" * 5_000_000))),
        ("text/plain", {"Content-Type": "text/plain"}, body()),
        ("form encoded", {"Content-Type": "application/x-www-form-urlencoded"}, b"order=A"),
        ("multipart", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ("no content type", {"Content-Type": None}, body()),
        ("idempotency key 10 KB", {"Idempotency-Key": "k" * 10_000}, body()),
        ("idempotency key with spaces", {"Idempotency-Key": "a b"}, body()),
        ("idempotency key empty", {"Idempotency-Key": ""}, body()),
        ("two idempotency keys", {"Idempotency-Key": ["first", "second"]}, body()),
        ("gzip body", {"Content-Encoding": "gzip"}, gzip.compress(body())),
        ("plain body said to be gzip", {"Content-Encoding": "gzip"}, body()),
        ("deflate body", {"Content-Encoding": "deflate"}, zlib.compress(body())),
        ("bad token", {"Authorization": "Token nope"}, body()),
        ("no token", {"Authorization": None}, body()),
    ]


def login_cases() -> list[tuple[str, dict, bytes]]:
    def body(username='"wms"', password='"wrong"', extra=""):
        return f'{{"username": {username}, "password": {password}{extra}}}'.encode()

    return [
        ("empty body", {}, b""),
        ("truncated", {}, b'{"username": "wms", "pass'),
        ("json null", {}, b"null"),
        ("json array", {}, b"[]"),
        ("json string", {}, b'"wms"'),
        ("username missing", {}, b'{"password": "x"}'),
        ("password missing", {}, b'{"username": "wms"}'),
        ("username null", {}, body(username="null")),
        ("username list", {}, body(username='["wms"]')),
        ("username object", {}, body(username='{"u": 1}')),
        ("username number", {}, body(username="42")),
        ("username empty", {}, body(username='""')),
        ("username 10 KB", {}, body(username=json.dumps("u" * 10_000))),
        ("password 10 KB", {}, body(password=json.dumps("p" * 10_000))),
        ("password null", {}, body(password="null")),
        ("password list", {}, body(password='["x"]')),
        ("password object", {}, body(password='{"p": 1}')),
        ("password bool", {}, body(password="true")),
        ("username NUL", {}, body(username='"wm\\u0000s"')),
        ("password NUL", {}, body(password='"pa\\u0000ss"')),
        ("username surrogate", {}, body(username='"\\udc00"')),
        ("username SQL", {}, body(username='"\' OR 1=1 --"')),
        ("password SQL", {}, body(password="\"' OR '1'='1\"")),
        ("username HTML", {}, body(username='"<img src=x onerror=alert(1)>"')),
        ("wrong password", {}, body()),
        ("unknown user", {}, body(username='"nobody"')),
        ("deep nesting", {}, body(password=nested(100_000))),
        ("NaN", {}, body(password="NaN")),
        # The right password last: a parser keeping the last value would log in.
        (
            "duplicate keys",
            {},
            b'{"username": "wms", "password": "p", "password": "the-right-password"}',
        ),
        ("invalid UTF-8", {}, b'{"username": "\xc3\x28", "password": "p"}'),
        ("UTF-16", {}, body().decode().encode("utf-16")),
        ("over the size limit", {}, body(password=json.dumps("p" * 5_000_000))),
        ("text/plain", {"Content-Type": "text/plain"}, body()),
        (
            "form encoded",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"username=wms&password=x",
        ),
        ("multipart", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ("no content type", {"Content-Type": None}, body()),
        ("header 10 KB", {"X-Filler": "f" * 10_000}, body()),
        ("extra fields", {}, body(extra=', "is_superuser": true')),
        ("huge array", {}, json.dumps({"username": ["u"] * 100_000, "password": "p"}).encode()),
        ("number overflow", {}, body(password="1" * 5000)),
        ("exponent beyond Decimal's", {}, body(username="1e99999999999999999999999")),
    ]


def send_raw(base: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 request over a plain socket, so any bytes can be sent."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]  # fmt: skip
    merged = {"Content-Type": J, **headers}
    # None leaves a header out; "" sends it empty; a list sends the header once a value.
    for name, value in merged.items():
        lines += [f"{name}: {one}" for one in (value if isinstance(value, list) else [value])
                  if one is not None]  # fmt: skip
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection((host, port), timeout=60) as sock:
        # The server may answer (413) and close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response_headers = {
        k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)
    }
    return int(status_line.split()[1]), response_headers, content


def assert_refused(base, path, cases, token=None):
    problems = []
    for name, headers, body in cases:
        if token and "Authorization" not in headers:
            headers = {"Authorization": f"Token {token}", **headers}
        status, response_headers, content = send_raw(base, path, headers, body)
        answer = None
        if response_headers.get("content-type", "").startswith(J):
            answer = json.loads(content)
        if not (400 <= status < 500 and isinstance(answer, dict) and answer.get("code")):
            problems.append((name, status, content[:200]))
    assert problems == []


def test_capture_refuses_every_hostile_request_and_changes_nothing():
    order = seed(orders=1, items=2, prefix="HOSTILE")[0]
    token = token_for("wms", all_channels=True)
    cases = capture_cases(order["number"], order["items"][0]["pk"])
    assert len(cases) == 78  # as docs/reliability.md counts them
    before = fingerprint()
    with gunicorn(workers=2) as (base, _):
        assert_refused(base, "/api/v1/capture-order/", cases, token=token)
        assert fingerprint() == before
        # The server is fine afterwards: a real capture still works, and adds up.
        ok = requests.post(
            f"{base}/api/v1/capture-order/",
            json={"order": order["number"], "order_items": [{"pk": order["items"][1]["pk"]}]},
            headers={"Authorization": f"Token {token}"},
            timeout=10,
        )
    assert ok.status_code == 200
    assert_captures_add_up()


def test_login_refuses_every_hostile_request_and_changes_nothing():
    token_for("wms", all_channels=True, password="the-right-password")
    cases = login_cases()
    assert len(cases) == 41  # as docs/reliability.md counts them
    before = fingerprint()
    env = server_env(THROTTLE_LOGIN_ADDRESS_RATE="off", THROTTLE_LOGIN_USERNAME_RATE="off")
    with gunicorn(workers=2, env=env) as (base, _):
        assert_refused(base, "/api/v1/auth/login/", cases)
    assert fingerprint() == before


def send_chunked(base: str, path: str, headers: dict, chunks: list[bytes]) -> tuple[int, bytes]:
    """A request whose body is sent with Transfer-Encoding: chunked, no Content-Length."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
             "Transfer-Encoding: chunked", f"Content-Type: {J}"]  # fmt: skip
    lines += [f"{name}: {value}" for name, value in headers.items()]
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    with socket.create_connection((host, port), timeout=60) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, content = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), content


def test_a_chunked_body_is_read_whole_or_refused_as_too_large():
    order = seed(orders=1, items=2, prefix="CHUNKED")[0]
    token = token_for("wms", all_channels=True)
    auth = {"Authorization": f"Token {token}"}
    body = json.dumps({"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]})
    with gunicorn(workers=1) as (base, _):
        status, content = send_chunked(base, "/api/v1/capture-order/", auth,
                                       [body[:10].encode(), body[10:].encode()])  # fmt: skip
        assert status == 200, content[:300]
        assert json.loads(content)["number"] == order["number"]
        huge = [b'{"order": "' + b"x" * 1_000_000] * 5 + [b'"}']
        status, content = send_chunked(base, "/api/v1/capture-order/", auth, huge)
        assert (status, json.loads(content)["code"]) == (413, "request_too_large")
    assert_captures_add_up()


def test_a_coding_before_chunked_is_not_implemented_and_captures_nothing():
    """gunicorn de-chunks `gzip, chunked` and hands on the body still coded; facing it
    directly, such a capture (its body plain JSON) captured items. It is
    501 not_implemented, as the proxy answers it."""
    order = seed(orders=1, items=1, prefix="CODING")[0]
    token = token_for("wms", all_channels=True)
    body = json.dumps({"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]})
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body.encode())
    before = fingerprint()
    with gunicorn(workers=1) as (base, _):
        answers = [
            raw_request(
                base,
                "\r\n".join(
                    [
                        "POST /api/v1/capture-order/ HTTP/1.1",
                        f"Host: {urlsplit(base).netloc}",
                        "Connection: close",
                        f"Content-Type: {J}",
                        f"Authorization: Token {token}",
                        f"Transfer-Encoding: {coding}",
                        "",
                        "",
                    ]
                ).encode()
                + chunk,
            )  # fmt: skip
            for coding in ("gzip, chunked", "identity, chunked", "deflate,chunked")
        ]
        after = fingerprint()
        plain = raw_request(base, "\r\n".join([
            "POST /api/v1/capture-order/ HTTP/1.1", f"Host: {urlsplit(base).netloc}",
            "Connection: close", f"Content-Type: {J}", f"Authorization: Token {token}",
            "Transfer-Encoding: Chunked ", "", "",
        ]).encode() + chunk)  # fmt: skip
    for answer in answers:
        head, _, content = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 501 "), answer[:300]
        assert json.loads(content) == {"detail": "Not Implemented.", "code": "not_implemented"}
    assert after == before
    assert plain.startswith(b"HTTP/1.1 200 "), plain[:300]  # `chunked` alone, any case


def capture_then_stop(base: str, token: str, framing: str, sent: bytes) -> bytes:
    """A capture whose body is framed by `framing` (a Content-Length or chunked), of
    which the client sends `sent`, then stops sending; the raw answer."""
    head = "\r\n".join([
        "POST /api/v1/capture-order/ HTTP/1.1", f"Host: {urlsplit(base).netloc}",
        "Connection: close", f"Content-Type: {J}", f"Authorization: Token {token}", framing,
    ]) + "\r\n\r\n"  # fmt: skip
    return raw_request(base, head.encode("latin-1") + sent, stop_sending=True, timeout=60)


def test_a_body_cut_short_is_refused_and_captures_nothing():
    """The client declares more than it sends, then stops (its side of the connection
    shut): gunicorn hands the app what arrived, here a whole JSON body."""
    order = seed(orders=1, items=1, prefix="CUT")[0]
    token = token_for("wms", all_channels=True)
    items = [{"pk": order["items"][0]["pk"]}]
    body = json.dumps({"order": order["number"], "order_items": items}).encode()
    before = fingerprint()
    with gunicorn(workers=1) as (base, _):
        raw = capture_then_stop(base, token, f"Content-Length: {len(body) + 500}", body)
    status_line, _, rest = raw.partition(b"\r\n")
    assert int(status_line.split()[1]) == 400, raw[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["code"] == "parse_error"
    assert fingerprint() == before


@pytest.mark.parametrize("cut", ["before the last chunk", "mid-chunk"])
def test_a_chunked_body_cut_short_is_refused_and_captures_nothing(cut):
    """The client stops sending a chunked body (its side of the connection shut)
    before the last chunk: gunicorn closed the connection without an answer."""
    order = seed(orders=1, items=1, prefix="CUTCHUNK")[0]
    token = token_for("wms", all_channels=True)
    body = json.dumps({"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]})
    chunk = b"%x\r\n%s\r\n" % (len(body), body.encode())
    sent = chunk if cut == "before the last chunk" else chunk[: len(chunk) // 2]
    before = fingerprint()
    with gunicorn(workers=1) as (base, _):
        raw = capture_then_stop(base, token, "Transfer-Encoding: chunked", sent)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 400 "), raw[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "detail": BODY_ENDED_EARLY,
        "code": "parse_error",
    }
    assert fingerprint() == before


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/capture-order/", b"401"), ("/api/v1/auth/login/", b"429"),
     ("/api/v1/orders/1/", b"405")],
)  # fmt: skip
def test_an_answer_given_before_the_body_is_read_waits_for_the_body(path, status):
    """gunicorn closed the connection once it had answered (a 401 for a made-up token,
    a 405, a 429 before the body was parsed), while nginx was still writing the body:
    nginx's write failed and it answered 502 app_unavailable instead. The
    app reads what is left of a body within the limit before it answers."""
    body = b"x" * (4 * 1024 * 1024 - 1)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Token {'0' * 40}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    # Behind a proxy, as make run and the image run it; every login refused at once.
    env = server_env(API_NUM_PROXIES="1", THROTTLE_LOGIN_ADDRESS_RATE="0/min")
    with gunicorn(workers=1, env=env) as (base, _):
        url = urlsplit(base)
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(head)
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError):  # no answer before the body
                assert sock.recv(1) == b"", "answered before the body was read"
            sock.settimeout(10)
            sock.sendall(body)  # a closed connection fails here (a reset, a broken pipe)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.split(b" ", 2)[1] == status, answer[:200]


@pytest.mark.parametrize("proxies", ["0", "1"])
def test_a_body_over_the_limit_is_refused_unread(proxies):
    """docs/reliability.md: a body over API_MAX_BODY_BYTES is 413 before anything else,
    unread: the answer comes on the headers alone, facing clients or behind a proxy
    (where the app reads what is left of a body within the limit before answering)."""
    head = (
        "POST /api/v1/capture-order/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nAuthorization: Token {'0' * 40}\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with gunicorn(workers=1, env=server_env(API_NUM_PROXIES=proxies)) as (base, _):
        url = urlsplit(base)
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(head)  # and not a byte of the body
            answer = b"".join(iter(lambda: sock.recv(65536), b""))  # until it closes
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == "request_too_large"


def test_facing_clients_an_early_answer_does_not_wait_for_a_body():
    """Without a proxy (API_NUM_PROXIES=0), gunicorn faces clients: waiting for the rest
    of a body a client never finishes held a worker until gunicorn's timeout, for a
    made-up token. The answer goes out at once, as before."""
    head = (
        "POST /api/v1/capture-order/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nAuthorization: Token {'0' * 40}\r\n"
        "Content-Length: 3145728\r\n\r\n"
    ).encode()
    with gunicorn(workers=1) as (base, _):
        url = urlsplit(base)
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(head + b"x" * 100_000)  # and no more
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
