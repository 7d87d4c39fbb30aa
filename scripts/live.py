"""Real processes on loopback, for the tests and the benchmark alike: a free port, a
wait for an answering URL or port, a process group whose output is kept, and
PgBouncer with the shipped configuration. Nothing here needs Django."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, timeout: float = 30, process=None, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before {url} answered")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == status:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s")


# The signals a terminal and a supervisor send, as a terminal's programs get them: a
# test suite run under `nohup` (SIGHUP ignored) or as a shell's background job (SIGINT
# ignored) passed the ignoring on, and bash cannot trap a signal ignored when it starts:
# `make run`'s script took no hangup and ran on.
DEFAULT_SIGNALS = "--default-signal=HUP,INT,QUIT,TERM"


class Process:
    """A process group started in its own session, with the signals a terminal would
    leave at their defaults, its output kept in a file (a pipe nobody reads would block
    a busy server)."""

    def __init__(self, args: list[str], env: dict, cwd: Path = ROOT):
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            ["env", DEFAULT_SIGNALS, *args], cwd=cwd, env=env, start_new_session=True,
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def send(self, sig) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> str:
        """Signal the group, wait for the exit, and return everything it printed."""
        if self.popen.poll() is None:
            self.send(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.popen.wait()
        return self.output()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


@contextlib.contextmanager
def webhook_workers(python: str, env: dict, *, count: int, name: str = "worker"):
    """`count` webhook workers (`manage.py webhook_worker`), each its own process
    group, named `{name}-{n}`; yields their Process objects, stopped after."""
    processes = [
        Process([python, "manage.py", "webhook_worker", "--name", f"{name}-{n}"],
                env=env)
        for n in range(count)
    ]  # fmt: skip
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def wait_for_port(port: int, timeout: float = 30, process=None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


# PgBouncer: deploy/pgbouncer/pgbouncer.ini as shipped, with only where it listens, the
# server it pools, how clients log in and where it writes replaced (PgBouncer resets a
# section's settings when the section starts again, so an %include cannot override).

PGBOUNCER_INI = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"


def pgbouncer_ini(*, databases: dict[str, str], settings: dict[str, object]) -> str:
    """The shipped file with [databases] replaced by `databases` and each setting of
    [pgbouncer] in `settings` set to its value (added when the file has none)."""
    lines, section, pending = [], None, dict(settings)
    for line in PGBOUNCER_INI.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
            lines.append(line)
            if section == "[databases]":
                lines += [f"{name} = {spec}" for name, spec in databases.items()]
            continue
        key = stripped.partition("=")[0].strip()
        if not key or key.startswith(";"):
            lines.append(line)
        elif section == "[pgbouncer]" and key in pending:
            lines.append(f"{key} = {pending.pop(key)}")
        elif section != "[databases]":
            lines.append(line)
    lines += [f"{key} = {value}" for key, value in pending.items()]  # [pgbouncer] is last
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def pgbouncer(binary: str, *, server_port: int, users: list[str], pool_size: int | None = None):
    """PgBouncer on a free loopback port in front of the PostgreSQL on 127.0.0.1:
    server_port (every database), trusting `users` (a trust-only local cluster) and
    letting them read its admin console. Yields (port, Process); stops it and removes
    its directory after."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="omnitron-pgbouncer-"))
    workdir.chmod(0o777)  # run as the postgres user when root
    (workdir / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    settings = {
        "listen_addr": "127.0.0.1", "listen_port": port, "auth_type": "trust",
        "auth_file": workdir / "userlist.txt", "auth_user": "", "auth_query": "",
        "admin_users": ",".join(users), "stats_users": ",".join(users),
        "logfile": workdir / "pgbouncer.log", "pidfile": workdir / "pgbouncer.pid",
    }  # fmt: skip
    if pool_size is not None:
        settings["default_pool_size"] = pool_size
    ini = pgbouncer_ini(databases={"*": f"host=127.0.0.1 port={server_port}"}, settings=settings)
    (workdir / "pgbouncer.ini").write_text(ini)
    as_user = ["-u", "postgres"] if os.getuid() == 0 else []  # PgBouncer refuses root
    process = Process([binary, *as_user, str(workdir / "pgbouncer.ini")], env=dict(os.environ))
    try:
        wait_for_port(port, process=process.popen)
        yield port, process
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def role_with_timeouts(admin_url: str, name: str, *, member_of: str, lock_timeout_ms: int,
                       statement_timeout_ms: int):  # fmt: skip
    """A login role that can do what `member_of` can, with lock_timeout and
    statement_timeout set on the role, as docs/scaling.md sets them for PgBouncer in
    transaction mode (the app then sends no `options`). Dropped after."""
    statements = [
        f"DROP ROLE IF EXISTS {name}",
        f"CREATE ROLE {name} LOGIN",
        f"GRANT {member_of} TO {name}",
        f"ALTER ROLE {name} SET lock_timeout = '{lock_timeout_ms}ms'",
        f"ALTER ROLE {name} SET statement_timeout = '{statement_timeout_ms}ms'",
        f"ALTER ROLE {name} SET client_connection_check_interval = '1s'",
        f"ALTER ROLE {name} SET jit = off",
    ]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    try:
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {name}")
