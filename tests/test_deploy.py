"""Running it: `make run` itself (scripts/run.sh) against real PostgreSQL, the
image's steps, gunicorn's own errors, and the pinned lock files."""

import contextlib
import json
import os
import re
import runpy
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import psycopg
import pytest
import requests
import yaml
from django.conf import settings
from packaging.requirements import Requirement

from events.delivery import RECORD_SECONDS
from tests.events.helpers import receiving
from tests.helpers import PRODUCTION_SECRET_KEY
from tests.live import (
    MANAGE,
    ROOT,
    VENV_BIN,
    Process,
    database_url,
    free_port,
    gunicorn,
    raw_request,
    server_env,
    wait_until_ready,
)


def test_the_dockerfiles_collectstatic_step_runs(tmp_path):
    """The image's build step, as the Dockerfile writes it, with the image's variables
    and nothing else (no Docker engine here to build it): it failed on the metrics
    directory, which the image makes only after it."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = dockerfile.rsplit("\nFROM ", 1)[1].splitlines()  # the runtime stage
    image_env = dict(re.findall(r"(\w+)=(\S+)", " ".join(
        line[4:] for line in lines if line.startswith("ENV "))))  # fmt: skip
    (step,) = [line[4:] for line in lines if line.startswith("RUN ") and "collectstatic" in line]
    image_env["PATH"] = f"{VENV_BIN}:{os.environ['PATH']}"  # this venv's python
    image_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "not-made-yet")
    env = {**image_env, "HOME": str(tmp_path), "DJANGO_STATIC_ROOT": str(tmp_path / "static")}
    result = subprocess.run(["sh", "-c", step], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "admin").is_dir()


def test_compose_starts_every_service_again_when_it_stops():
    """No engine runs here to stop a container; this reads the compose file. PostgreSQL
    had no restart policy: after a PANIC (its WAL disk full) it stayed down, and every
    capture was 503 until an operator started it."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {name: service.get("restart") for name, service in services.items()} == dict.fromkeys(
        ["postgres", "app", "worker", "proxy"], "unless-stopped"
    )


def test_compose_stops_every_service_gracefully_and_publishes_on_loopback():
    """Read from the files (no engine here): Docker stops a container with SIGTERM, and
    kills it 10 s later. nginx took SIGTERM for its fast shutdown (requests in flight
    dropped, a capture committed while its client saw the connection close), gunicorn's
    workers had 20 s to finish theirs and the worker its batch; the proxy was published
    on every interface of the host."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    proxy_image = (ROOT / "deploy" / "nginx" / "Dockerfile").read_text()
    assert re.search(r"^STOPSIGNAL SIGQUIT$", proxy_image, re.M)
    gunicorn_conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    template = (ROOT / "deploy" / "nginx" / "omnitron.conf.template").read_text()
    proxy_read = int(re.search(r"proxy_read_timeout (\d+)s;", template).group(1))

    def grace(name):
        return int(services[name]["stop_grace_period"].removesuffix("s"))

    assert grace("app") > gunicorn_conf["graceful_timeout"]
    assert grace("worker") > RECORD_SECONDS + settings.WEBHOOK_TIMEOUT_SECONDS
    assert grace("proxy") > proxy_read
    assert services["proxy"]["ports"] == ["127.0.0.1:8000:80"]
    assert services["app"]["environment"]["WEB_CONCURRENCY"] == "${WEB_CONCURRENCY:-5}"


@pytest.mark.parametrize("static_root", ["empty", "collected"])
def test_the_image_serves_only_with_its_collected_static_files(tmp_path, static_root):
    """The image collects the static files when it is built; a DJANGO_STATIC_ROOT set
    on the container named a directory without them, and the admin's and the docs'
    pages answered 500: the entry point refuses it in one line."""
    root = tmp_path / static_root
    root.mkdir()
    if static_root == "collected":
        (root / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    port = free_port()
    env = server_env(DJANGO_SETTINGS_MODULE="omnitron.settings.production",
                     DJANGO_SECRET_KEY=PRODUCTION_SECRET_KEY, DJANGO_ALLOWED_HOSTS="127.0.0.1",
                     DJANGO_STATIC_ROOT=f" {root} ", HOST="127.0.0.1", PORT=port,
                     WEB_CONCURRENCY=1, PATH=f"{VENV_BIN}:{os.environ['PATH']}")  # fmt: skip
    server = Process(["scripts/docker-entrypoint.sh"], env=env)
    try:
        if static_root == "empty":
            assert server.popen.wait(timeout=30) == 1
            assert f"no collected static files in {root} " in server.stop()
        else:
            wait_until_ready(f"http://127.0.0.1:{port}/readyz", process=server.popen)
    finally:
        server.stop()


def test_every_dependency_is_pinned_in_the_lock_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for lock, declared in [
        ("requirements.lock", project["dependencies"]),
        (
            "requirements-dev.lock",
            project["dependencies"] + project["optional-dependencies"]["dev"],
        ),
    ]:
        pins = dict(
            line.lower().split("==")
            for line in (ROOT / lock).read_text().splitlines()
            if "==" in line
        )
        for spec in declared:
            requirement = Requirement(spec)
            name = requirement.name.lower()
            pinned = pins.get(name) or pins.get(name.replace("-", "_"))
            assert pinned, f"{name} is not pinned in {lock}"
            assert requirement.specifier.contains(pinned), f"{name}=={pinned} breaks {spec}"


# `make run` is scripts/run.sh once the virtualenv exists.


def _run_script(**env):
    return Process(["scripts/run.sh"], env={**os.environ, **{k: str(v) for k, v in env.items()}})


def _interrupt(process: Process) -> str:
    return process.stop(sig=signal.SIGINT, timeout=30)


def readme_curls(section: str, port: int) -> list[str]:
    """The curl commands of a README section, one line each, for make run on `port`."""
    text = (ROOT / "README.md").read_text()
    body = text[text.index(f"## {section}\n") :].split("\n## ")[0]
    commands = re.findall(r"^curl .*?(?<!\\)$", body.replace("\\\n", " "), flags=re.M | re.S)
    return [command.replace(":8000/", f":{port}/") for command in commands]


@contextlib.contextmanager
def idle_connections(port: int, count: int):
    """`count` connections to 127.0.0.1:port that send nothing, or half a request."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    try:
        for sock in sockets[: count // 2]:
            sock.sendall(b"GET /readyz HTTP/1.1\r\n")
        yield
    finally:
        for sock in sockets:
            sock.close()


def admin_login(base: str, username: str, password: str) -> str | None:
    """Log in to the admin as a browser does (its form's CSRF token, an Origin
    header); returns where the login redirects to, None when it did not."""
    session = requests.Session()
    form = session.get(f"{base}/admin/login/", timeout=5).text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    answer = session.post(
        f"{base}/admin/login/?next=/admin/", headers={"Origin": base}, allow_redirects=False,
        data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
        timeout=5,
    )  # fmt: skip
    return answer.headers.get("Location") if answer.status_code == 302 else None


def webhook_worker_pid(group: int) -> int:
    """The pid of make run's `manage.py webhook_worker`: in a session of its own, a
    child of a process of make run's group."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            command = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if b"webhook_worker" in command and os.getpgid(parent) == group:
                return int(proc.name)
        except (ProcessLookupError, FileNotFoundError, PermissionError, IndexError):
            continue
    raise LookupError("no webhook worker in make run")


def test_make_run_uses_the_database_of_database_url_and_delivers_webhooks(transactional_db):
    """The README's quick start: make run, the printed curl capture, the README's
    first capture, create_webhook and the README's capture of another item, which the
    receiver has well within a minute; Ctrl-C stops it all. Each capture is answered
    200 whatever order the reader runs them in. make run's address is nginx, as in
    production: idle clients hold no gunicorn worker, a browser's admin login passes
    Django's Origin check, /metrics is served on gunicorn's own port only, and the
    webhook worker, killed, is started again."""
    name = f"run_check_{secrets.token_hex(4)}"
    admin = psycopg.connect(database_url("postgres"))
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    port = free_port()
    env = {"DATABASE_URL": database_url(name), "PORT": port, "WEB_CONCURRENCY": 1}
    process = _run_script(**env)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", timeout=60, process=process.popen)
        printed = process.output()
        token = re.search(r"Token:\s+(\w+)", printed).group(1)
        with idle_connections(port, 8):  # gunicorn's one worker would be held at once
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok
            assert admin_login(f"http://127.0.0.1:{port}", "demo", "demo") == "/admin/"
        metrics = re.search(r"Metrics:\s+(\S+)", printed).group(1)
        assert requests.get(metrics, timeout=5).ok
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
        (first,) = readme_curls("A first capture", port)
        (another,) = readme_curls("A webhook for every capture", port)
        printed_curl = printed[printed.index("curl -s") :].split("\n\n")[0].replace("\\\n", " ")
        with receiving() as receiver:
            manage = {**os.environ, "DJANGO_SETTINGS_MODULE": "omnitron.settings.dev",
                      "DATABASE_URL": database_url(name)}  # fmt: skip
            subprocess.run([*MANAGE, "create_webhook", receiver.url], cwd=ROOT, env=manage,
                           check=True, capture_output=True)  # fmt: skip
            # A worker killed is started again: with none, deliveries waited for good.
            os.kill(webhook_worker_pid(process.popen.pid), signal.SIGKILL)
            started = time.monotonic()
            for curl in (another, first, printed_curl):
                answer = subprocess.run(["bash", "-c", f"{curl} -w '\\n%{{http_code}}'"],
                                        env={**os.environ, "TOKEN": token},
                                        capture_output=True, text=True, timeout=30)  # fmt: skip
                assert answer.stdout.endswith("\n200"), curl + answer.stdout + answer.stderr
                assert '"number":"DEMO-' in answer.stdout
            receiver.wait_for(3, timeout=60)
            assert time.monotonic() - started < 60
        worker = webhook_worker_pid(process.popen.pid)  # the one started again
    finally:
        output = _interrupt(process)
    assert "curl" in output, output
    assert "Control socket" not in output  # none to share with every other gunicorn
    with pytest.raises(ProcessLookupError):  # nothing of make run is left
        os.killpg(process.popen.pid, 0)
    with pytest.raises(ProcessLookupError):  # the worker (in a session of its own) reaped
        os.kill(worker, 0)
    with psycopg.connect(database_url(name)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orders_order WHERE number LIKE 'DEMO-%%'")
        assert cursor.fetchone()[0] > 0
    conn.close()
    admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def test_make_run_starts_its_own_postgresql_and_keeps_the_data():
    # Under /tmp itself: as root, the postgres user must reach the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="omnitron-run-check-")) / "pgdata"
    data_dir.parent.chmod(0o755)
    env = {"PG_DATA_DIR": str(data_dir), "PG_PORT": str(free_port()), "WEB_CONCURRENCY": "1"}
    clean_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    try:
        runs = [
            (1, r"Demo data: \d+ order\(s\) loaded, 0 already"),
            (2, r"Demo data: 0 order\(s\) loaded, \d+ already there"),
            (3, r"Demo data: 0 order\(s\) loaded, \d+ already there"),
        ]
        # Blank variables are their defaults (docs/configuration.md): HOST=" " gave nginx
        # no address, WEB_CONCURRENCY= failed gunicorn before its configuration.
        blank = {"HOST": " ", "WEB_CONCURRENCY": "", "DJANGO_SETTINGS_MODULE": " ",
                 "API_NUM_PROXIES": " ", "PROXY_CONNECTIONS_PER_CLIENT": "  ",
                 "PROXY_LARGE_BODIES_PER_TOKEN": "", "PROXY_LARGE_BODIES_PER_ADDRESS": " "}  # fmt: skip
        for run, expected in runs:
            port = free_port()
            run_env = {**clean_env, **env, "PORT": str(port), **(blank if run == 2 else {})}
            process = Process(["scripts/run.sh"], env=run_env)
            try:
                wait_until_ready(
                    f"http://127.0.0.1:{port}/readyz", timeout=60, process=process.popen
                )
                assert requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5).ok
                css = requests.get(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=5)
                assert css.status_code == 200
                worker = webhook_worker_pid(process.popen.pid)
            finally:
                if run == 1:
                    output = _interrupt(process)  # Ctrl-C: the whole group
                elif run == 3:
                    # The terminal closed: a hangup to the group. gunicorn and nginx took it
                    # for "reload", and the worker (a session of its own) was left running.
                    os.killpg(process.popen.pid, signal.SIGHUP)
                    process.popen.wait(timeout=30)
                    output = process.output()
                else:
                    # SIGTERM to the script alone, as make passes its own on (a
                    # supervisor's stop): bash ran its trap only once gunicorn ended,
                    # and nothing stopped.
                    os.kill(process.popen.pid, signal.SIGTERM)
                    process.popen.wait(timeout=30)
                    output = process.output()
            with pytest.raises(ProcessLookupError):  # nothing of the run is left
                os.killpg(process.popen.pid, 0)
            with pytest.raises(ProcessLookupError):  # the worker, in a session of its own
                os.kill(worker, 0)
            assert re.search(expected, output), f"run {run}: {output}"
            status = subprocess.run(
                ["scripts/pg.sh", "status"], cwd=ROOT, env={**clean_env, **env},
                capture_output=True, text=True,
            )  # fmt: skip
            assert status.returncode == 3, f"the database of run {run} is still running"
    finally:
        subprocess.run(["scripts/pg.sh", "destroy"], cwd=ROOT, env={**clean_env, **env})
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_the_production_image_path_serves_admin_static_files(tmp_path, transactional_db):
    """What the Dockerfile does, minus Docker: collectstatic, then gunicorn with the
    production settings and DEBUG off."""
    env = server_env(
        DJANGO_SETTINGS_MODULE="omnitron.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_STATIC_ROOT=tmp_path / "static",
    )
    collected = subprocess.run(
        [*MANAGE, "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    with gunicorn(workers=1, env=env) as (base, _):
        login = requests.get(f"{base}/admin/login/", timeout=5)
        assert login.status_code == 200
        stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', login.text)
        assert stylesheet, "the admin should link hashed static files"
        css = requests.get(base + stylesheet.group(1), timeout=5)
        assert css.status_code == 200
        assert "max-age" in css.headers["Cache-Control"]
        # Behind a TLS-terminating load balancer, responses carry HSTS.
        proxied = requests.get(
            f"{base}/admin/login/", headers={"X-Forwarded-Proto": "https"}, timeout=5
        )
        assert proxied.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_errors_gunicorn_answers_itself_are_json_with_a_code(transactional_db):
    with gunicorn(workers=1) as (base, _):
        long_url = requests.get(f"{base}/api/v1/orders/?number={'x' * 9000}", timeout=10)
        big_header = requests.post(
            f"{base}/api/v1/capture-order/", json={}, timeout=10,
            headers={"Idempotency-Key": "k" * 10_000},
        )  # fmt: skip
        unknown_coding = raw_request(base, b"POST /api/v1/capture-order/ HTTP/1.1\r\n"
                                     b"Host: x\r\nTransfer-Encoding: foo\r\n\r\n")  # fmt: skip
    assert long_url.status_code == 414
    assert long_url.json() == {"detail": "Request-URI Too Long.", "code": "uri_too_long"}
    assert big_header.status_code == 431
    assert big_header.json() == {
        "detail": "Request Header Fields Too Large.",
        "code": "header_too_large",
    }
    assert big_header.headers["Content-Type"] == "application/json"
    status_line, _, body = unknown_coding.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 501 ")
    assert json.loads(body) == {"detail": "Not Implemented.", "code": "not_implemented"}


def test_make_run_on_every_interface_prints_addresses_that_answer(transactional_db):
    """configuration.md: HOST is where make run's nginx listens. With HOST=0.0.0.0 (or
    ::), make run printed http://0.0.0.0:PORT/ for the admin, the docs and its
    ready-to-paste curl capture, and every one of them answered 400 `bad_request`:
    the Host it sends, 0.0.0.0, is not in the default DJANGO_ALLOWED_HOSTS."""
    name = f"run_check_{secrets.token_hex(4)}"
    admin = psycopg.connect(database_url("postgres"))
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    port = free_port()
    # make run's own settings (the suite's allow every host).
    env = {"DATABASE_URL": database_url(name), "PORT": port, "WEB_CONCURRENCY": 1,
           "HOST": "0.0.0.0", "DJANGO_SETTINGS_MODULE": "omnitron.settings.dev"}  # fmt: skip
    process = _run_script(**env)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", timeout=60, process=process.popen)
        printed = process.output()
        docs = re.search(r"API docs:\s+(\S+)", printed).group(1)
        docs_status = requests.get(docs, timeout=5).status_code
        printed_curl = printed[printed.index("curl -s") :].split("\n\n")[0].replace("\\\n", " ")
        answer = subprocess.run(["bash", "-c", f"{printed_curl} -w '\\n%{{http_code}}'"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
    finally:
        _interrupt(process)
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()
    assert docs_status == 200, docs
    assert answer.stdout.endswith("\n200"), printed_curl + answer.stdout


def test_make_run_on_a_port_in_use_says_so_before_it_starts_anything(tmp_path):
    """A second make run on a port in use ran the migrations, loaded the demo data and
    printed its token and a capture to paste, then said the port was taken."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_refused(tmp_path, PORT=str(port))
    assert result.stderr.strip() == f"make run: 127.0.0.1:{port} is taken (set PORT)"
    assert "Token" not in result.stdout


def run_refused(tmp_path, **env) -> subprocess.CompletedProcess:
    """scripts/run.sh with these variables, which it must refuse (exit 1) before it
    starts anything: no database of its own (PG_DATA_DIR stays absent), no server."""
    result = subprocess.run(
        ["scripts/run.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PORT": str(free_port()), **os.environ, **env,
             "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
             "PG_DATA_DIR": str(tmp_path / "none")},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert not (tmp_path / "none").exists()
    return result


@pytest.mark.parametrize(
    "variable",
    [
        "PROXY_CONNECTIONS_PER_CLIENT",
        "PROXY_LARGE_BODIES_PER_TOKEN",
        "PROXY_LARGE_BODIES_PER_ADDRESS",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_make_run_refuses_a_proxy_limit_that_is_not_a_count_before_it_starts_anything(
    tmp_path, variable, value
):
    result = run_refused(tmp_path, **{variable: value})
    assert result.stderr.strip() == f"make run: {variable} must be a whole number above 0"


@pytest.mark.parametrize(
    ("host", "why"),
    [("999.1.1.1", "is not an address or a name of this machine"),
     ("192.0.2.1", "is not an address of this machine")],
)  # fmt: skip
def test_make_run_on_a_host_that_is_not_this_machines_says_so_before_it_starts_anything(
    tmp_path, host, why
):
    """It ran the migrations and loaded the demo data, then ended in nginx's "host not
    found" and "make run: nginx did not start", never naming HOST."""
    result = run_refused(tmp_path, HOST=host)
    assert result.stderr.strip() == f"make run: HOST={host} {why}"
