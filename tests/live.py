"""Helpers for tests that talk to real processes over loopback HTTP. The ones that
do not need Django (Process, free_port, wait_until_ready) live in scripts/live.py,
shared with the benchmark, and are importable from here as before."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

import scripts.nginx
from scripts import live
from scripts.live import Process, free_port, role_with_timeouts, wait_until_ready

__all__ = [
    "ROOT",
    "VENV_BIN",
    "Process",
    "database_url",
    "free_port",
    "gunicorn",
    "nginx",
    "pgbouncer",
    "raw_request",
    "worker",
    "require_program",
    "server_env",
    "wait_until_ready",
]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def database_url(name: str | None = None) -> str:
    """The URL of the test database (or another database on the same server)."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{name or s['NAME']}"


MANAGE = [str(VENV_BIN / "python"), "manage.py"]


def manage(*args, **env) -> subprocess.CompletedProcess:
    """`manage.py <args>` in a process of its own, with these variables over ours."""
    return subprocess.run(
        [*MANAGE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **env},
    )  # fmt: skip


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
    """An app server on a free loopback port; yields (base URL, Process). Its metrics
    directory is this helper's, removed after it even when a test killed the server."""
    port = free_port()
    env = dict(env or server_env())
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in env
    if own_metrics_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="omnitron-test-metrics-")
    process = Process(
        [str(VENV_BIN / "gunicorn"), "omnitron.wsgi", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if wait:
            wait_until_ready(f"{base}/healthz", process=process.popen)
        yield base, process
    finally:
        process.stop()
        if own_metrics_dir:
            shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker(*, count: int = 1, env: dict | None = None):
    """`count` webhook workers (`manage.py webhook_worker`), each its own process
    group; a context manager yielding their Process objects."""
    return live.webhook_workers(str(VENV_BIN / "python"), env or server_env(), count=count,
                                name="test-worker")  # fmt: skip


def require_program(name: str, package: str) -> str:
    """The path of a program a test needs (`make test` installs Debian's package when
    it runs as root). Missing, the test skips, except under CI, where it fails."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        reason = f"{name} is missing: install Debian's {package} package"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI requires it")
        pytest.skip(reason)
    return path


def raw_request(base: str, request: bytes, *, stop_sending: bool = False, timeout=5) -> bytes:
    """Send `request` as is and read the answer until the server closes. With
    `stop_sending`, shut the sending side first: a client that stopped mid-request."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(request)
        if stop_sending:
            sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


@contextlib.contextmanager
def nginx(
    upstream_base: str,
    *,
    max_body_bytes: int = 4 * 1024 * 1024,
    connections_per_client: int = scripts.nginx.DEFAULT_CONNECTIONS_PER_CLIENT,
):
    """deploy/nginx's configuration, as the Docker image runs it, in front of an app
    server, on a free loopback port; yields (base URL, Process)."""
    require_program("nginx", "nginx")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="omnitron-nginx-"))
    args = scripts.nginx.configure(
        workdir, upstream=upstream_base.removeprefix("http://"),
        listen=f"127.0.0.1:{port}", max_body_bytes=max_body_bytes,
        connections_per_client=connections_per_client,
    )  # fmt: skip
    process = Process(args, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/healthz", process=process.popen)
        yield base, process
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# The role the app logs in as through PgBouncer, with the test settings' timeouts set
# on it (omnitron/settings/test.py: DB_LOCK_TIMEOUT_MS and DB_STATEMENT_TIMEOUT_MS).
POOLED_ROLE = "omnitron_pooled"
POOLED_LOCK_TIMEOUT_MS = 2000
POOLED_STATEMENT_TIMEOUT_MS = 15000


@contextlib.contextmanager
def pgbouncer(*, pool_size: int | None = None):
    """deploy/pgbouncer/pgbouncer.ini (transaction mode) in front of the test cluster on
    a free loopback port, for a role that has the timeouts set on it, as docs/scaling.md
    deploys it. Yields (the server_env overrides that run the app through it as
    production would, the PgBouncer Process); stops it and drops the role after."""
    binary = require_program("pgbouncer", "pgbouncer")
    s = connection.settings_dict
    role = role_with_timeouts(
        database_url("postgres"), POOLED_ROLE, member_of=s["USER"],
        lock_timeout_ms=POOLED_LOCK_TIMEOUT_MS, statement_timeout_ms=POOLED_STATEMENT_TIMEOUT_MS,
    )  # fmt: skip
    with role as user, live.pgbouncer(binary, server_port=int(s["PORT"]), users=[user],
                                      pool_size=pool_size) as (port, process):  # fmt: skip
        overrides = {
            "DATABASE_URL": f"postgres://{user}@127.0.0.1:{port}/{s['NAME']}",
            "DB_PREPARED_STATEMENTS": "0",
            "DB_TIMEOUTS_ON_ROLE": "1",
        }
        yield overrides, process
