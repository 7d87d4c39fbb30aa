"""The ground every issue stands on: health, settings, error shapes, the lock file,
and `make run` itself (scripts/run.sh) against real PostgreSQL."""

import contextlib
import json
import os
import re
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
from django.db import connection
from packaging.requirements import Requirement

from tests.events.helpers import receiving
from tests.factories import make_api_user
from tests.live import (
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
from tests.reliability.helpers import own_cluster

MANAGE = [str(VENV_BIN / "python"), "manage.py"]


def test_liveness_answers_without_the_database(client):
    # No django_db mark: pytest-django fails any database access in this test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_readiness_is_503_json_when_the_database_is_unreachable():
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    with gunicorn(workers=1, env=server_env(DATABASE_URL=dead)) as (base, _):
        response = requests.get(f"{base}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["Retry-After"] == "5"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        api = requests.get(f"{base}/api/v1/orders/", headers={"Authorization": "Token x"},
                           timeout=10)  # fmt: skip
        assert (api.status_code, api.json()["code"]) == (503, "database_unavailable")
        assert api.headers["Retry-After"] == "5"


def test_a_page_the_database_fails_is_503_also_for_a_logged_in_operator():
    """Loading the session of the request's cookie failed again in the request's log
    line, after the 503 page was made: Django's 500."""
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    with gunicorn(workers=1, env=server_env(DATABASE_URL=dead)) as (base, _):
        session = {"sessionid": "a" * 32}
        for path, status in (("/admin/", 503), ("/admin/orders/order/", 503),
                             ("/admin/login/", 503), ("/nowhere/", 404)):  # fmt: skip
            response = requests.get(f"{base}{path}", cookies=session, timeout=10)
            assert response.status_code == status, (path, response.status_code)
        page = requests.get(f"{base}/admin/", cookies=session, timeout=10)
        assert "The database is not reachable" in page.text
        assert page.headers["Retry-After"] == "5"


def _manage(*args, **env):
    return subprocess.run(
        [*MANAGE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **env},
    )  # fmt: skip


def test_production_settings_pass_the_deploy_check():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SETTINGS_MODULE="omnitron.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="capture.example.com",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"])
@pytest.mark.parametrize("value", [None, "", " ", ","])
def test_production_refuses_to_start_without_a_required_variable(missing, value):
    """No development default in production: without DATABASE_URL the app connected to
    a local cluster at its first request instead of failing at start; set but empty,
    it still did, and an empty DJANGO_ALLOWED_HOSTS refused every request."""
    env = {"DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
           "DJANGO_SECRET_KEY": "s" * 50, "DJANGO_ALLOWED_HOSTS": "capture.example.com",
           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/omnitron"}  # fmt: skip
    if value == "," and missing != "DJANGO_ALLOWED_HOSTS":
        return  # a list's emptiness; the others are text
    env = {**os.environ, **env, missing: value}
    result = subprocess.run(
        [*MANAGE, "check"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in env.items() if v is not None},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (f"manage.py: {missing} is required with the production settings.\n")


# A variable set but empty (or spaces) is its default, whatever its kind
# (docs/configuration.md): these took the empty text as their value.
EMPTY_IS_THE_DEFAULT = {
    "DJANGO_ALLOWED_HOSTS": ("settings.ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"]),
    "METRICS_ALLOWED_IPS": ("settings.METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"]),
    "DJANGO_SECRET_KEY": ("settings.SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production"),
    "PG_DATABASE": ("settings.DATABASES['default']['NAME']", "omnitron"),
    "DATABASE_REPLICA_URL": ("list(settings.DATABASES)", ["default"]),
    "THROTTLE_LOGIN_USERNAME_RATE": (
        "settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['login_username']",
        "10/min",
    ),
    "SENTRY_DSN": ("settings.SENTRY_DSN", ""),
}


@pytest.mark.parametrize("variable", sorted(EMPTY_IS_THE_DEFAULT))
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_text_setting_is_its_default(variable, value):
    expression, default = EMPTY_IS_THE_DEFAULT[variable]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({variable: value, "DJANGO_SETTINGS_MODULE": "omnitron.settings.dev"})
    program = f"import json; from django.conf import settings; print(json.dumps({expression}))"
    result = subprocess.run([*MANAGE, "shell", "-c", program], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == default


def test_the_images_entry_point_unsets_a_blank_web_concurrency():
    """gunicorn reads WEB_CONCURRENCY before its configuration file: blank, it failed to
    start (int(""))."""
    for value in ("", "  "):
        result = subprocess.run(["sh", "scripts/docker-entrypoint.sh", "env"], cwd=ROOT,
                                env={**os.environ, "WEB_CONCURRENCY": value},
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "WEB_CONCURRENCY=" not in result.stdout
    kept = subprocess.run(["sh", "scripts/docker-entrypoint.sh", "env"], cwd=ROOT,
                          env={**os.environ, "WEB_CONCURRENCY": "3"},
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert "WEB_CONCURRENCY=3\n" in kept.stdout


def test_an_empty_static_root_is_its_default_and_an_empty_host_is_loopback():
    """DJANGO_STATIC_ROOT= was the project's own directory (collectstatic wrote into the
    source tree); HOST= had gunicorn listen on every interface, without the proxy."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
           "DJANGO_SECRET_KEY": "s" * 50, "DJANGO_ALLOWED_HOSTS": "capture.example.com",
           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/omnitron",
           "DJANGO_STATIC_ROOT": "", "HOST": " ", "PORT": "8123"}  # fmt: skip
    result = subprocess.run(
        [*MANAGE, "shell", "-c", "from django.conf import settings; print(settings.STATIC_ROOT)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.stdout.splitlines()[-1] == str(ROOT / "staticfiles"), result.stderr
    config = subprocess.run(
        [str(VENV_BIN / "python"), "-c",
         "import runpy; print(runpy.run_path('gunicorn.conf.py')['bind'])"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert config.stdout.splitlines()[-1] == "127.0.0.1:8123", config.stderr
    for blank in ("", " "):  # the settings module too: Django found none
        check = _manage("check", DJANGO_SETTINGS_MODULE=blank)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("rate", ["abc", "5/fortnight", "2/month", "-1/min", "10/MIN", "None"])
def test_a_rate_limit_drf_would_misread_stops_the_app_at_start(rate):
    """DRF reads a rate at the first request it limits: `abc` answered every capture
    500, and it reads only the period's first letter (`2/month` was 2 a minute)."""
    result = _manage("check", THROTTLE_LOGIN_USERNAME_RATE=rate)
    assert result.returncode != 0
    assert "THROTTLE_LOGIN_USERNAME_RATE" in result.stderr


@pytest.mark.parametrize("rate", ["10/min", "0/s", "5/second", "100/hour", "9/d", "off", "OFF"])
def test_a_rate_limit_as_documented_is_taken(rate):
    assert _manage("check", THROTTLE_CAPTURE_RATE=rate).returncode == 0


def test_an_empty_rate_limit_is_its_default_not_off():
    """An empty variable turned the limit off, silently: only `off` does."""
    result = _manage("shell", "-c", "from django.conf import settings; "
                     "print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['login_username'])",
                     THROTTLE_LOGIN_USERNAME_RATE="",
                     DJANGO_SETTINGS_MODULE="omnitron.settings.dev")  # fmt: skip
    assert result.stdout.splitlines()[-1] == "10/min", result.stderr


@pytest.mark.parametrize(
    "variable",
    [
        "DB_LOCK_TIMEOUT_MS=0",  # PostgreSQL's lock_timeout 0: no timeout, never order_locked
        "DB_CONNECT_TIMEOUT=0",  # libpq's connect_timeout 0: wait forever
        "WORKER_CONCURRENCY=0",
        "WEBHOOK_STALLED_SECONDS=0",  # every running job found stalled
        "WEBHOOK_RETRY_SCHEDULE=5,x",
        "WEBHOOK_RETRY_SCHEDULE=0",
        "WEBHOOK_TIMEOUT_SECONDS=nan",
        "API_NUM_PROXIES=-3",
        "API_MAX_BODY_BYTES=lots",
        "PG_PORT=70000",
        "DB_LOCK_TIMEOUT_MS=2147483648",  # past PostgreSQL's integer: every connect failed
        "WEBHOOK_STALLED_SECONDS=1000000000000",
        "WORKER_CONCURRENCY=99999999999",
        "API_NUM_PROXIES=+1",  # only ASCII digits: these look like typos
        "DB_CONNECT_TIMEOUT=1_000",
        "WORKER_CONCURRENCY=\u0663",
        "WEBHOOK_RETRY_SCHEDULE=300000000000",  # its next attempt past the year 9999
        "WEBHOOK_RETRY_SCHEDULE=" + ",".join(["1"] * 31),
        "DB_REPLICA_RETRY_SECONDS=" + "9" * 400,  # read as inf: the replica out for good
        "DB_CONNECT_TIMEOUT=" + "9" * 5000,  # Python's own message named no variable
    ],
)
def test_a_number_setting_that_would_turn_off_what_it_protects_stops_the_app(variable):
    name, value = variable.split("=", 1)
    result = _manage("check", **{name: value})
    assert result.returncode != 0
    assert result.stderr.startswith(f"manage.py: {name}: {value!r}"), result.stderr[-500:]
    assert "Traceback" not in result.stderr


NOT_A_URL = "not a PostgreSQL URL (postgres://user:password@host:port/name)."


@pytest.mark.parametrize(
    ("variable", "refusal"),
    [
        # Read as "off" whatever they said: a safeguard turned off by a typo.
        ("WEBHOOK_REQUIRE_HTTPS=enabled", "is not one of true/false, 1/0, yes/no, on/off."),
        ("DJANGO_DEBUG=maybe", "is not one of true/false, 1/0, yes/no, on/off."),
        ("DB_PREPARED_STATEMENTS=y", "is not one of true/false, 1/0, yes/no, on/off."),
        # logging failed to start, naming no variable.
        ("DJANGO_LOG_LEVEL=LOUD", "is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL."),
        # Tried as PostgreSQL (mysql://), or a traceback naming no variable (garbage).
        ("DATABASE_URL=mysql://x@y/z", NOT_A_URL),
        ("DATABASE_URL=garbage", NOT_A_URL),
        ("DATABASE_REPLICA_URL=garbage", NOT_A_URL),
        # Started, then every read of the replica's was a 500 (no database name), or a
        # command ended in a traceback (no name, a port that is not one, a socket path).
        ("DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:5432", NOT_A_URL),
        ("DATABASE_URL=postgres://postgres@127.0.0.1:5432/", NOT_A_URL),
        ("DATABASE_URL=postgres://postgres@127.0.0.1:abc/omnitron", NOT_A_URL),
        ("DATABASE_URL=postgres://postgres@127.0.0.1:99999/omnitron", NOT_A_URL),
        ("DATABASE_URL=postgres://%2Ftmp/omnitron", NOT_A_URL),
    ],
)
def test_a_setting_of_another_kind_than_its_own_stops_the_app_in_one_line(variable, refusal):
    name, value = variable.split("=", 1)
    result = _manage("check", **{name: value})
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"manage.py: {name}: "), line
    assert line.endswith(refusal), line


@pytest.mark.parametrize(
    "variable",
    ["WEBHOOK_REQUIRE_HTTPS=OFF", "DJANGO_DEBUG=no", "DB_PREPARED_STATEMENTS=True",
     "DJANGO_LOG_LEVEL=debug", "METRICS_ENABLED= ",
     "DATABASE_REPLICA_URL=POSTGRESQL://u:p%40ss@[::1]:5432/omnitron?sslmode=disable"],
)  # fmt: skip
def test_a_setting_as_documented_is_taken(variable):
    name, value = variable.split("=", 1)
    assert _manage("check", **{name: value}).returncode == 0


@pytest.mark.parametrize(
    "variable",
    [
        "WEB_CONCURRENCY=0",
        "GUNICORN_TIMEOUT=0",
        "GUNICORN_TIMEOUT=abc",
        "PORT=99999",
        "GUNICORN_TIMEOUT=99999999999",
        "WEB_CONCURRENCY=99999999",
    ],  # fmt: skip
)
def test_gunicorn_refuses_a_number_that_would_leave_it_unable_to_serve(variable):
    """WEB_CONCURRENCY=0 started a master with no worker: its port took connections and
    never answered. GUNICORN_TIMEOUT=0 is no timeout at all."""
    name, value = variable.split("=", 1)
    check = [str(VENV_BIN / "gunicorn"), "--check-config", "omnitron.wsgi"]
    env = {**os.environ, name: value, "DJANGO_SETTINGS_MODULE": "omnitron.settings.dev"}
    result = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"gunicorn: {name}: {value!r}" in result.stderr
    assert "Traceback" not in result.stderr
    fine = {**env, name: {"PORT": "8001"}.get(name, "3")}
    assert (
        subprocess.run(check, cwd=ROOT, env=fine, capture_output=True, timeout=60).returncode == 0
    )


def test_an_empty_number_setting_is_its_default():
    """WEBHOOK_RETRY_SCHEDULE= (set, empty) was no retry at all: one failed attempt and
    the delivery had failed for good."""
    result = _manage("shell", "-c", "from django.conf import settings as s; "
                     "print(s.WEBHOOK_RETRY_SCHEDULE, s.PROCRASTINATE_WORKER_DEFAULTS['concurrency'])",
                     WEBHOOK_RETRY_SCHEDULE="", WORKER_CONCURRENCY=" ",
                     DJANGO_SETTINGS_MODULE="omnitron.settings.dev")  # fmt: skip
    assert result.stdout.splitlines()[-1] == "[5, 30, 120, 600, 3600, 21600, 86400] 8", (
        result.stderr
    )


@pytest.mark.django_db(transaction=True)
def test_check_captures_that_cannot_check_says_why_in_one_line():
    """A database never migrated, or a role that may not read the tables: tracebacks."""
    name, role = f"unmigrated_{secrets.token_hex(4)}", f"reader_{secrets.token_hex(4)}"
    admin = psycopg.connect(database_url("postgres"), autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        unmigrated = _manage("check_captures", DATABASE_URL=database_url(name))
        s = connection.settings_dict
        url = f"postgres://{role}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
        no_rights = _manage("check_captures", DATABASE_URL=url)
    finally:
        admin.execute(f"DROP DATABASE {name}")
        admin.execute(f"DROP ROLE {role}")
        admin.close()
    assert (unmigrated.returncode, no_rights.returncode) == (1, 1)
    assert unmigrated.stderr == (
        'CommandError: The capture audit could not be checked (relation "capture_capture" '
        "does not exist): is it the service's database, and migrated (manage.py migrate)?\n"
    )
    assert no_rights.stderr == (
        "CommandError: The capture audit could not be checked (permission denied for table "
        "capture_capture): run it as a role that may read every capture table.\n"
    )


def test_db_status_names_the_port_the_cluster_runs_on():
    """A cluster started with `make run PG_PORT=...` was reported on 54329 by
    `make db-status` without it: a URL that reached nothing."""
    with own_cluster(PG_FAST="1") as (env, url):
        without_port = {k: v for k, v in env.items() if k != "PG_PORT"}
        status = subprocess.run(["scripts/pg.sh", "status"], cwd=ROOT, env=without_port,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"running: {url} (data: ")


def test_without_database_url_commands_use_the_local_cluster_on_its_pg_port():
    """`make run` with PG_PORT=47253 served, and `manage.py create_webhook` in another
    terminal with the same PG_PORT looked for the cluster on 54329."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PG_PORT="47253", PG_DATABASE="shop", DJANGO_SETTINGS_MODULE="omnitron.settings.dev")
    result = subprocess.run(
        [*MANAGE, "shell", "-c", "from django.conf import settings; "
         "d = settings.DATABASES['default']; print(d['HOST'], d['PORT'], d['NAME'])"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.stdout.splitlines()[-1] == "127.0.0.1 47253 shop", result.stderr


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


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/no-such-endpoint/", 404, "not_found"),
        ("post", "/api/v1/capture-order", 404, "not_found"),  # no redirect that drops the body
        ("get", "/api/v1/active_user/", 401, "not_authenticated"),
        # The method is judged first: the path never takes a GET, token or not.
        ("get", "/api/v1/capture-order/", 405, "method_not_allowed"),
        # Outside /api/ too: only the admin's pages are HTML.
        ("get", "/", 404, "not_found"),
        ("get", "/healthz/", 404, "not_found"),
        ("get", "/API/v1/orders/", 404, "not_found"),
        ("post", "/api", 404, "not_found"),
    ],
)
def test_api_errors_are_json_with_a_code(client, method, path, status, code):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code


@pytest.mark.django_db
def test_admin_keeps_its_html_pages(client, admin_client):
    """The API's JSON errors stop at /api/: the admin answers an unknown page the
    admin's way (to the login page first, so its URLs are not probed without one)."""
    anonymous = client.get("/admin/no-such-page/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/admin/no-such-page/"
    missing = admin_client.get("/admin/no-such-page/")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("text/html")


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
                 "API_NUM_PROXIES": " ", "PROXY_CONNECTIONS_PER_CLIENT": "  "}  # fmt: skip
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


@pytest.mark.parametrize(
    "command", [["check_captures"], ["create_api_user", "wms"], ["rotate_token", "wms"]]
)
def test_a_command_with_the_database_unreachable_says_so_in_one_line(command):
    """Each printed a traceback of some forty lines."""
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    result = _manage(*command, DATABASE_URL=dead)
    assert result.returncode == 1
    assert result.stderr.startswith("The database failed: "), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_failed_connection_names_the_database_and_the_variable_that_named_it():
    """It always said "(DATABASE_URL)", also when PG_PORT had named the local cluster
    (helper 73)."""
    port = free_port()
    by_url = _manage("check_captures", DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/shop")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    by_port = subprocess.run(
        [*MANAGE, "check_captures"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**env, "PG_PORT": str(port), "PG_DATABASE": "shop"},
    )  # fmt: skip
    assert by_url.stderr.endswith(f"(127.0.0.1:{port}/shop, from DATABASE_URL)\n"), by_url.stderr
    assert by_port.stderr.endswith(f"(127.0.0.1:{port}/shop, from PG_PORT)\n"), by_port.stderr


@pytest.mark.django_db(transaction=True)
def test_a_command_a_lock_held_back_says_so_instead_of_blaming_the_connection():
    """A migration behind a backup's lock said "canceling statement due to lock timeout
    (DATABASE_URL)", sending the operator to a connection that was fine (helper 73)."""
    make_api_user(username="locked")
    with psycopg.connect(**connection.get_connection_params()) as holder:
        holder.execute("SELECT 1 FROM auth_user WHERE username = 'locked' FOR UPDATE")
        result = subprocess.run(
            [*MANAGE, "rotate_token", "locked"], cwd=ROOT, capture_output=True, text=True,
            timeout=60, env=server_env(DB_LOCK_TIMEOUT_MS="300"),
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "The database failed: canceling statement due to lock timeout (another transaction "
        "holds what the command needs: retry once it ends)\n"
    )


def test_models_and_migrations_agree():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "trace"])
def test_health_checks_answer_only_get_and_head(client, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"
    assert client.head(path).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url", "headers", "status"),
    [("get", "/api/schema/?format=xml", {}, 406),  # a format it does not answer
     ("get", "/api/schema/", {"HTTP_ACCEPT": "text/html"}, 406),
     ("post", "/api/schema/", {}, 405)],
)  # fmt: skip
def test_schema_errors_are_json_with_a_string_detail(client, method, url, headers, status):
    response = getattr(client, method)(url, **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json()["detail"], str)


@pytest.mark.django_db
def test_the_apps_connections_never_jit_compile():
    """No timeout or cancel stops PostgreSQL's JIT compiling a statement: an admin
    search of 800 words ran 37 s past a 2 s statement_timeout."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
