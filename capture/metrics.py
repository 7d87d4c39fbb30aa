"""The capture's metrics: captures, items and money captured, refusals by code,
re-reads and replays. Served at /metrics with the rest (omnitron/metrics.py, which is
imported first: it sets up the processes' shared sample files)."""

from decimal import Decimal

from prometheus_client import Counter

from omnitron.metrics import ENABLED, count

CAPTURES = Counter("omnitron_captures_total", "Successful captures.")
CAPTURED_ITEMS = Counter("omnitron_captured_items_total", "Items captured.")
CAPTURED_AMOUNT = Counter(
    "omnitron_captured_amount_total", "Money captured, per currency.", ["currency"]
)
REFUSALS = Counter("omnitron_capture_refusals_total", "Captures a rule refused, by code.", ["code"])
CAPTURE_REREADS = Counter(
    "omnitron_capture_rereads_total",
    "Captures whose order or items changed between their first read and their write, "
    "read again under locks.",
)
REPLAYS = Counter("omnitron_idempotent_replays_total", "Stored Idempotency-Key answers replayed.")


def observe_capture(*, items: int, amount: Decimal, currency: str) -> None:
    if ENABLED:
        CAPTURES.inc()
        CAPTURED_ITEMS.inc(items)
        CAPTURED_AMOUNT.labels(currency).inc(float(amount))


def count_refusal(code: str) -> None:
    count(REFUSALS, code)


def count_reread() -> None:
    count(CAPTURE_REREADS)


def count_replay() -> None:
    count(REPLAYS)
