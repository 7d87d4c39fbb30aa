"""Helpers for tests that talk to real processes over loopback HTTP. The ones that
do not need Django (Process, free_port, wait_until_ready) live in scripts/live.py,
shared with the benchmark, and are importable from here as before."""

import contextlib
import os
import sys
from pathlib import Path

from django.db import connection

from scripts.live import Process, free_port, wait_until_ready

__all__ = [
    "ROOT",
    "VENV_BIN",
    "Process",
    "database_url",
    "free_port",
    "gunicorn",
    "server_env",
    "wait_until_ready",
]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def database_url(name: str | None = None) -> str:
    """The URL of the test database (or another database on the same server)."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{name or s['NAME']}"


def server_env(**overrides) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "omnitron.settings.test",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


@contextlib.contextmanager
def gunicorn(*, workers: int = 2, env: dict | None = None, wait: bool = True):
    """An app server on a free loopback port; yields (base URL, Process)."""
    port = free_port()
    process = Process(
        [str(VENV_BIN / "gunicorn"), "omnitron.wsgi", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"],
        env=env or server_env(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if wait:
            wait_until_ready(f"{base}/healthz", process=process.popen)
        yield base, process
    finally:
        process.stop()
