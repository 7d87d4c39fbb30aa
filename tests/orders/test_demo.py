import json
import re
import subprocess
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from capture.error_codes import CaptureErrorCode
from capture.models import Capture
from capture.selectors import capturable_items
from orders.models import Channel, Order, OrderItem
from tests.factories import make_order
from tests.helpers import CAPTURE_URL, PRODUCTION_SECRET_KEY, capture
from tests.live import ROOT, VENV_BIN, server_env


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

    # The printed capture works, as pasted: its token, its key and its body.
    token, key, body = re.search(
        r"Token: +(\w+).*Idempotency-Key: ([\w-]+)'.*-d '(.+?)'$", second.getvalue(), re.S | re.M
    ).groups()
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    answer = client.post(CAPTURE_URL, json.loads(body), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert answer.status_code == 200, answer.content
    assert Capture.objects.count() == 1


def test_the_items_shown_as_capturable_are_those_a_capture_takes(transactional_db, api_client):
    """capturable_items (load_demo's suggestion) against the capture itself, over every
    demo item: statuses of orders and items, captured ones, prices. The data breaks
    every rule an order or an item decides alone (rule 8 but 8.1, which order, and
    8.3, which items), a rule added later too: the selector restates those rules, and
    one it lacked would pass over data that never breaks it."""
    call_command("load_demo", stdout=StringIO())
    api_client.force_authenticate(User.objects.get(username="demo"))
    mispriced = make_order(number="DEMO-MISPRICED", items=2, channel=Channel.objects.first())
    OrderItem.objects.filter(pk=mispriced.items.first().pk).update(price_currency="USD")
    capture(api_client, "DEMO-1002", [OrderItem.objects.filter(order__number="DEMO-1002")[0].pk])
    shown = set(capturable_items().values_list("pk", flat=True))
    taken, refused = set(), set()
    for item in OrderItem.objects.select_related("order").order_by("pk"):
        answer = capture(api_client, item.order.number, [item.pk], channel=item.order.channel_id)
        assert answer.status_code in (200, 400, 409), answer.content
        if answer.status_code == 200:
            taken.add(item.pk)
        else:
            refused.add(answer.json()["code"])
    assert shown
    assert taken == shown
    decided_alone = {
        error.code for error in CaptureErrorCode
        if (rule := re.match(r"Rule 8\.(\d+):", error.when)) and rule[1] not in ("1", "3")
    }  # fmt: skip
    assert len(decided_alone) >= 4
    assert decided_alone <= refused, decided_alone - refused


def test_demo_refuses_the_production_settings(transactional_db):
    """The image carries load_demo: it made a superuser demo / demo of every channel in
    whatever database the production settings pointed at."""
    env = server_env(
        DJANGO_SETTINGS_MODULE="omnitron.settings.production",
        DJANGO_SECRET_KEY=PRODUCTION_SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="capture.example.com",
    )
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "load_demo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "only with the development or test settings" in result.stderr
    assert not User.objects.filter(username="demo").exists()
    assert Order.objects.count() == 0
