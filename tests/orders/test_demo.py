import subprocess
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command

from capture.models import Capture
from orders.models import Order, OrderItem
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


def test_demo_refuses_the_production_settings(transactional_db):
    """The image carries load_demo: it made a superuser demo / demo of every channel in
    whatever database the production settings pointed at."""
    env = server_env(
        DJANGO_SETTINGS_MODULE="omnitron.settings.production",
        DJANGO_SECRET_KEY="s" * 50,
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
