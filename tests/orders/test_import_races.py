"""import_orders against another import of the same orders (helper 129)."""

import json
import threading
import time
from io import StringIO

from django.core.management import call_command
from django.db import connection

from orders import services
from orders.models import Order
from tests.orders.test_import import document, run_import


def test_two_imports_of_the_same_orders_at_once_skip_what_the_other_created(
    transactional_db, tmp_path, monkeypatch
):
    """docs/operations.md: "An order whose (channel, number) exists is skipped and
    reported, never changed." Two imports whose files share orders, run at once (two
    shops' exports, a retried cron job): the second looked for existing orders before
    the first committed, and failed with IntegrityError's traceback (exit 1) and none of
    its own orders was imported (outside, 3,000 and 3,000 orders sharing 1,000: 2,000
    missing)."""
    looked = threading.Event()
    real = services._existing_orders

    def the_first_looks_then_lingers(numbers):
        existing = real(numbers)
        if not looked.is_set():
            looked.set()
            time.sleep(1)  # the second import starts meanwhile, before this one commits
        return existing

    run_import(tmp_path, document(orders=[]))  # the channel and the customer
    monkeypatch.setattr(services, "_existing_orders", the_first_looks_then_lingers)
    first = {"orders": document()["orders"]}
    second = {"orders": document()["orders"]}
    second["orders"][1]["number"] = "ORD-3"  # ORD-1 in both, one order of its own each
    outcomes = {}

    def run(name, data):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        out = StringIO()
        try:
            call_command("import_orders", str(path), stdout=out, stderr=StringIO())
            outcomes[name] = json.loads(out.getvalue())
        except Exception as exc:  # noqa: BLE001 - what the operator would see
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in
               (("first", first), ("second", second))]  # fmt: skip
    threads[0].start()
    assert looked.wait(10)
    threads[1].start()
    for thread in threads:
        thread.join(30)

    assert all(isinstance(outcome, dict) for outcome in outcomes.values()), outcomes
    assert sorted(Order.objects.values_list("number", flat=True)) == ["ORD-1", "ORD-2", "ORD-3"]
    skipped = [s["number"] for outcome in outcomes.values() for s in outcome["skipped"]]
    assert skipped == ["ORD-1"]
