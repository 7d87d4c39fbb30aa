"""A webhook receiver on loopback, and the payload's documented schema."""

import contextlib
import http.server
import json
import threading
import time

import jsonschema

from events.schema import component_name
from tests.contract import generated_schema, to_json_schema
from tests.live import free_port


def webhook_payload_schema(event_type: str = "order.captured") -> dict:
    components = generated_schema()["components"]["schemas"]
    return to_json_schema(components[component_name(event_type)], components)


def assert_valid_payload(body: bytes) -> dict:
    """The payload, checked against its type's documented schema."""
    payload = json.loads(body)
    jsonschema.validate(payload, webhook_payload_schema(payload["type"]))
    return payload


class Receiver:
    """An HTTP server in a thread that records every POST (time, headers, body) and
    answers what `answer(request_number, webhook_id)` returns (default 200), after
    `delay` seconds. `most_at_once`: the most requests it held at one time."""

    def __init__(self, answer=None, delay: float = 0, body: bytes = b"ok"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[dict] = []
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []  # webhook-ids received again while still in flight
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.answer = answer or (lambda number, webhook_id: 200)
        self.delay = delay
        self.body = body
        self.server = None

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                webhook_id = self.headers.get("webhook-id", "")
                with receiver.lock:
                    number = len(receiver.requests) + 1
                    receiver.requests.append({"at": time.time(), "headers": dict(self.headers),
                                              "body": body})  # fmt: skip
                    if receiver.in_flight.get(webhook_id):
                        receiver.overlaps.append(webhook_id)
                    receiver.in_flight[webhook_id] = receiver.in_flight.get(webhook_id, 0) + 1
                    at_once = sum(receiver.in_flight.values())
                    receiver.most_at_once = max(receiver.most_at_once, at_once)
                try:
                    time.sleep(receiver.delay)
                    status = receiver.answer(number, webhook_id)
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                finally:
                    with receiver.lock:
                        receiver.in_flight[webhook_id] -= 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> list[str]:
        with self.lock:
            return [r["headers"]["webhook-id"] for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(set(self.ids())) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(set(self.ids()))} of {count} events received")
            time.sleep(0.05)


@contextlib.contextmanager
def receiving(**options):
    receiver = Receiver(**options).start()
    try:
        yield receiver
    finally:
        receiver.stop()
