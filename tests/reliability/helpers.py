"""Helpers for the reliability tests: data through the project's own import and
user commands, and a fingerprint of every table a request could change."""

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from orders.services import api_user_create_or_update, orders_import
from scripts.gen_orders import document
from tests.live import ROOT, VENV_BIN, free_port, server_env

PG = str(ROOT / "scripts" / "pg.sh")

# Every table a request could write but the rate counters (api_ratecounter), which
# every request changes by design, refused or not.
FINGERPRINT_TABLES = [
    "orders_channel", "orders_customer", "orders_channelmembership", "orders_order",
    "orders_orderitem", "capture_capture", "capture_captureitem",
    "capture_idempotencyrecord", "auth_user", "authtoken_token",
    "events_event", "events_webhookdelivery", "events_deliveryattempt",
    "events_webhooksubscription", "procrastinate_jobs", "django_session",
]  # fmt: skip


def seed(*, orders: int, items: int, prefix: str, channels: int = 1) -> list[dict]:
    """Import orders; returns the import's `created` records (numbers and item pks)."""
    return orders_import(
        data=document(orders=orders, items=items, prefix=prefix, channels=channels)
    ).created


def token_for(username: str, **options) -> str:
    return api_user_create_or_update(username=username, **options).key


def fingerprint() -> str:
    """A digest of every row of every table the API could write."""
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for table in FINGERPRINT_TABLES:
            cursor.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            )  # noqa: S608
            digest.update(cursor.fetchone()[0].encode())
    return digest.hexdigest()


def assert_captures_add_up(database_url: str | None = None) -> None:
    """`manage.py check_captures`, on the test database or another one: every capture
    adds up after what the test put the service through."""
    if database_url is None:
        call_command("check_captures", stdout=StringIO())
        return
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "check_captures"], cwd=ROOT,
        env=server_env(DATABASE_URL=database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def own_cluster(**variables: str):
    """A PostgreSQL cluster of the test's own, on a free port, to stop and start at will
    (`scripts/pg.sh` with PG_* `variables`): yields (pg.sh's environment, its URL).
    Removed after, even on failure."""
    parent = Path(tempfile.mkdtemp(prefix="omnitron-own-pg-"))
    parent.chmod(0o755)  # as root, the postgres user must reach it
    env = {**os.environ, "PG_DATA_DIR": str(parent / "data"), "PG_PORT": str(free_port()),
           **variables}  # fmt: skip
    env.pop("DATABASE_URL", None)
    try:
        subprocess.run([PG, "start"], env=env, check=True, capture_output=True)
        url = subprocess.run([PG, "url"], env=env, check=True, capture_output=True, text=True)
        yield env, url.stdout.strip()
    finally:
        subprocess.run([PG, "destroy"], env=env, capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)
