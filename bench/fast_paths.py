"""What each hand-written fast path earns: python bench/fast_paths.py SMALL BIG TOKEN

Runs captures in-process through the whole Django stack (middleware, DRF, the
service, PostgreSQL), in blocks that alternate each fast path on and off, and
prints JSON: per fast path, the median milliseconds per capture with it and without
it, and the share it saves. SMALL holds 1-item capture bodies, BIG 1,000-item ones
(one JSON body per line, each used once). A fast path that saves less than a
visible share of a capture does not earn its place (docs/performance.md)."""

import json
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BLOCKS = 10  # alternating on/off blocks per fast path, half of each
PER_BLOCK = 20  # 1-item captures per block
PER_BIG_BLOCK = 2  # 1,000-item captures per block


@contextmanager
def drf_token_authentication():
    """DRF's TokenAuthentication, `has_perm` and the throttle's own statement."""
    from rest_framework.authentication import TokenAuthentication

    from capture.views import CaptureOrderView

    with _patched(CaptureOrderView, "authentication_classes", [TokenAuthentication]):
        yield


@contextmanager
def read_under_locks():
    """No order read in the token statement: the capture reads the order and items
    under locks in a transaction of its own (BEGIN, the lock statement, the write,
    COMMIT)."""
    from capture.idempotency import StoredAnswerLookup
    from capture.views import CaptureOrderView

    with _patched(CaptureOrderView, "authentication_lookups", [StoredAnswerLookup()]):
        yield


@contextmanager
def separate_rate_count():
    """The throttle counts the request in a statement of its own."""
    from accounts.authentication import TokenAuthentication

    with _patched(TokenAuthentication, "_rate_counted_here", lambda self: None):
        yield


@contextmanager
def unprepared_statements():
    """psycopg stops preparing statements on this connection (DB_PREPARED_STATEMENTS=0)."""
    from django.db import connection

    connection.ensure_connection()
    with _patched(connection.connection, "prepare_threshold", None):
        yield


@contextmanager
def fields_built_per_instance():
    from rest_framework.serializers import Serializer

    from omnitron.api.serializers import SharedFieldsMixin

    with _patched(SharedFieldsMixin, "fields", Serializer.__dict__["fields"]):
        yield


@contextmanager
def drf_item_validation():
    from capture import serializers

    with _patched(serializers, "_plain_items", lambda data: None):
        yield


@contextmanager
def _patched(owner, name, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


SMALL_PATHS = {
    "token statement: token, user, permission and rate count in one statement": (
        drf_token_authentication
    ),
    "rate count folded into the token statement": separate_rate_count,
    "order read in the token statement, written without a transaction of its own": (
        read_under_locks
    ),
    "prepared statements": unprepared_statements,
    "serializer fields built once per class (SharedFieldsMixin)": fields_built_per_instance,
}
BIG_PATHS = {"plain order_items validation (`_plain_items`), 1,000 items": drf_item_validation}


def measure(capture, bodies: list[str], disabled, per_block: int) -> dict:
    """Median ms per capture with the fast path (on) and without it (off)."""
    times = {"on": [], "off": []}
    for block in range(BLOCKS):
        mode = "on" if block % 2 == 0 else "off"
        batch, bodies[:] = bodies[:per_block], bodies[per_block:]
        with disabled() if mode == "off" else _nothing():
            for body in batch:
                times[mode].append(capture(body))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"on_ms": round(on, 2), "off_ms": round(off, 2),
            "saving_pct": round((off - on) / off * 100, 1)}  # fmt: skip


@contextmanager
def _nothing():
    yield


def needed(paths: dict, per_block: int) -> int:
    """Bodies the measurement of `paths` uses, plus a warm-up block."""
    return (len(paths) * BLOCKS + 1) * per_block


def main() -> None:
    small_path, big_path, token = sys.argv[1:4]
    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")

    def capture(body: str) -> float:
        started = time.perf_counter()
        response = client.post("/api/v1/capture-order/", body, content_type="application/json")
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"capture failed: {response.content[:300]!r}")
        return elapsed

    results = []
    for paths, file, per_block in ((SMALL_PATHS, small_path, PER_BLOCK),
                                   (BIG_PATHS, big_path, PER_BIG_BLOCK)):  # fmt: skip
        bodies = Path(file).read_text().splitlines()
        for body in bodies[:per_block]:  # warm up
            capture(body)
        bodies = bodies[per_block:]
        for name, disabled in paths.items():
            results.append({"fast_path": name, **measure(capture, bodies, disabled, per_block)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnitron.settings.production")
    main()
