from io import StringIO

from django.core.management import call_command

from capture.models import Capture
from orders.models import Order, OrderItem


def test_demo_loads_once_and_prints_a_working_capture(transactional_db):
    first, second = StringIO(), StringIO()
    call_command("load_demo", stdout=first)
    counts = (Order.objects.count(), OrderItem.objects.count())
    call_command("load_demo", stdout=second)

    assert counts[0] >= 10
    assert (Order.objects.count(), OrderItem.objects.count()) == counts
    assert "0 already there" in first.getvalue()
    assert f"0 order(s) loaded, {counts[0]} already there" in second.getvalue()
    assert "curl -s -X POST http://127.0.0.1:8000/api/v1/capture-order/" in second.getvalue()
    assert set(Order.objects.values_list("status", flat=True)) >= {"100", "400", "500", "550"}
    assert Capture.objects.count() == 0
