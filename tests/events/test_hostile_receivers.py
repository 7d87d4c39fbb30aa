"""Receivers that answer in ways the outbound POST must still read truthfully, and
the deadline every POST has in all (helper 129, 2026-12-01)."""

import socket
import threading
import time

import pytest
from django.test import override_settings

from events import outbound

pytestmark = pytest.mark.django_db
LOCAL_TARGETS = override_settings(WEBHOOK_REQUIRE_HTTPS=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


def raw_receiver(answer: bytes) -> tuple[socket.socket, int]:
    """A receiver that reads one request and writes `answer` as it is."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():
        connection, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:"))
        )  # fmt: skip
        while len(body) < length:
            body += connection.recv(65536)
        connection.sendall(answer)
        connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def post_once(url: str, server: socket.socket) -> outbound.Outcome:
    """One POST to the receiver listening on `server`, which is closed after."""
    try:
        target = outbound.Target(url)
        outcome = target.post(b"{}", {"webhook-id": "evt_1"})
        target.close()
    finally:
        server.close()
    return outcome


@LOCAL_TARGETS
@pytest.mark.parametrize("interim", [b"103 Early Hints\r\nLink: </style.css>", b"102 Processing"])
def test_an_interim_1xx_answer_before_the_final_one_is_not_the_outcome(interim):
    """RFC 9110 (15.2): a 1xx is interim, and the final answer follows on the same
    connection. A receiver (or the CDN in front of it) that sends 103 Early Hints, or
    102 Processing while it works, then 200, had its delivery recorded as "HTTP 103",
    retried for 31 hours and failed: only 100 Continue was skipped."""
    server, port = raw_receiver(
        b"HTTP/1.1 " + interim + b"\r\n\r\n" + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    outcome = post_once(f"http://127.0.0.1:{port}/hook", server)
    assert (outcome.status_code, outcome.response_excerpt) == (200, "ok")
    assert outcome.delivered


@override_settings(WEBHOOK_TIMEOUT_SECONDS=1)
def test_a_name_slow_to_resolve_is_held_to_the_deadline_and_counts_as_a_timeout(monkeypatch):
    """docs/webhooks.md: "A POST has WEBHOOK_TIMEOUT_SECONDS in all", and a receiver
    that hangs pauses its subscription. The name is resolved in Target() before the
    deadline is armed (outbound.resolve, socket.getaddrinfo): a resolver that takes
    its own timeouts (5 s an attempt, two attempts, each name server) held every batch
    of every lane that long, recorded as a short failure that pauses nothing."""
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "receiver.example.com":  # the resolver hangs for this name only
            time.sleep(3)
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    target = outbound.Target("https://receiver.example.com/hook")
    outcome = target.post(b"{}", {"webhook-id": "evt_1"})
    target.close()
    assert time.monotonic() - started < 2
    assert outcome.timed_out
    assert outcome.error == "receiver.example.com did not resolve within 1 s"


@LOCAL_TARGETS
def test_an_https_receiver_answering_in_plain_text_is_a_tls_error():
    """The https connection class (which skips interim answers) still speaks TLS: a
    receiver that answers a TLS handshake in plain HTTP is an SSLError, not a 200."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        connection, _ = server.accept()
        connection.recv(65536)  # the handshake's first message
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        connection.close()

    threading.Thread(target=serve, daemon=True).start()
    outcome = post_once(f"https://127.0.0.1:{server.getsockname()[1]}/hook", server)
    assert outcome.status_code is None
    assert outcome.error.startswith("SSLError: "), outcome.error
    assert not outcome.timed_out
