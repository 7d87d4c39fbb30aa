"""The benchmark's machinery: a log, a PostgreSQL database, the app's environment,
`manage.py`, and the app under gunicorn."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from scripts.live import Process, free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PG_SH = str(ROOT / "scripts" / "pg.sh")

_t0 = time.monotonic()


def elapsed() -> float:
    """Seconds since the benchmark started."""
    return time.monotonic() - _t0


def log(message: str) -> None:
    print(f"[bench {elapsed():5.0f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def database():
    """A DATABASE_URL: the given one, or a throwaway durable cluster (removed after)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    data_dir = Path(tempfile.mkdtemp(prefix="omnitron-bench-pg-"))
    data_dir.chmod(0o755)  # as root, the postgres user must reach it
    env = {**os.environ, "PG_DATA_DIR": str(data_dir / "data"), "PG_PORT": str(free_port())}
    subprocess.run([PG_SH, "start"], env=env, check=True)
    try:
        url = subprocess.run(
            [PG_SH, "url"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        yield url
    finally:
        subprocess.run([PG_SH, "destroy"], env=env, check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


def app_env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        # One user sends every request: keep the capture rate limit on (its counter
        # statement is part of a capture's cost) but far above what this machine serves.
        "THROTTLE_CAPTURE_RATE": "10000000/min",
        "THROTTLE_READ_RATE": "10000000/min",  # the lists at concurrency 16, as captures
    }


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def migrate(env: dict) -> None:
    """The app's tables, and pg_stat_statements to count the statements a capture sends."""
    manage(env, "migrate", "--noinput", "-v", "0")
    with psycopg.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.close()


def api_token(env: dict) -> str:
    """The token of a new API user. Call it after seeding: --all-channels grants the
    channels that exist now."""
    return manage(env, "create_api_user", "bench", "--all-channels").strip()


def workers() -> int:
    """gunicorn's worker count, as gunicorn.conf.py computes it."""
    return int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() * 2 + 1))


# The session (gunicorn's master pid) of each running app server, by base URL: its
# processes' CPU time is read from /proc (bench/cpu.py).
SESSIONS: dict[str, int] = {}


@contextmanager
def app_server(env: dict):
    """gunicorn as `make run` starts it (gunicorn.conf.py: 2 x CPUs + 1 workers)."""
    port = free_port()
    process = Process([GUNICORN, "omnitron.wsgi"], env={**env, "PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    SESSIONS[base] = process.popen.pid
    try:
        wait_until_ready(f"{base}/readyz", timeout=60, process=process.popen)
        yield base
    finally:
        process.stop()
        del SESSIONS[base]
