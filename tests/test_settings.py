"""Settings from the environment (docs/configuration.md): what production requires,
a blank variable as its default, numbers and rates refused at start in one line, and
the database connections' own settings."""

import json
import os
import runpy
import secrets
import subprocess

import pytest
from django.db import connection

from tests.helpers import PRODUCTION_SECRET_KEY
from tests.live import (
    MANAGE,
    ROOT,
    VENV_BIN,
    Process,
    database_url,
    free_port,
    manage,
    server_env,
    wait_until_ready,
)


def test_production_settings_pass_the_deploy_check():
    result = manage(
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
           "DJANGO_SECRET_KEY": PRODUCTION_SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "capture.example.com",
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


def test_the_images_entry_point_reads_django_migrate_as_every_flag(tmp_path):
    """It ran the migrations for "1" only: `true` skipped them without a word, and the
    app came up healthy over an empty schema."""
    fake = tmp_path / "python"  # records what the entry point would run
    fake.write_text('#!/bin/sh\necho "python $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    def entry(value):
        return subprocess.run(["sh", "scripts/docker-entrypoint.sh", "true"], cwd=ROOT,
                              env={**env, "DJANGO_MIGRATE": value},
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    for value in ("1", "true", " Yes ", "ON"):
        assert "python manage.py migrate --noinput" in entry(value).stdout, value
    for value in ("", "0", "false", "off", "No"):
        result = entry(value)
        assert (result.returncode, result.stdout) == (0, ""), value
    refused = entry("maybe")
    assert refused.returncode == 1
    assert "DJANGO_MIGRATE is on or off" in refused.stderr


@pytest.mark.parametrize(
    "key",
    ["short-but-varied-0123456789", "s" * 50, "django-insecure-" + "0123456789abcdef" * 3],
    ids=["short", "five-different", "djangos-insecure"],
)
def test_production_refuses_a_weak_secret_key(key):
    """Django's own bar (`check --deploy`, security.W009), which only warned: a key of
    ten characters started, and a guessable key signs admin sessions anyone can forge."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
           "DJANGO_SECRET_KEY": key, "DJANGO_ALLOWED_HOSTS": "capture.example.com",
           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/omnitron"}  # fmt: skip
    result = subprocess.run([*MANAGE, "check"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env=env)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("manage.py: DJANGO_SECRET_KEY: at least 50 characters, 5 ")
    env["DJANGO_SECRET_KEY"] = PRODUCTION_SECRET_KEY
    result = subprocess.run([*MANAGE, "check"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_an_empty_static_root_is_its_default_and_an_empty_host_is_loopback():
    """DJANGO_STATIC_ROOT= was the project's own directory (collectstatic wrote into the
    source tree); HOST= had gunicorn listen on every interface, without the proxy."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "omnitron.settings.production",
           "DJANGO_SECRET_KEY": PRODUCTION_SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "capture.example.com",
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
        check = manage("check", DJANGO_SETTINGS_MODULE=blank)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("rate", ["abc", "5/fortnight", "2/month", "-1/min", "10/MIN", "None"])
def test_a_rate_limit_drf_would_misread_stops_the_app_at_start(rate):
    """DRF reads a rate at the first request it limits: `abc` answered every capture
    500, and it reads only the period's first letter (`2/month` was 2 a minute)."""
    result = manage("check", THROTTLE_LOGIN_USERNAME_RATE=rate)
    assert result.returncode != 0
    assert "THROTTLE_LOGIN_USERNAME_RATE" in result.stderr


@pytest.mark.parametrize("rate", ["10/min", "0/s", "5/second", "100/hour", "9/d", "off", "OFF"])
def test_a_rate_limit_as_documented_is_taken(rate):
    assert manage("check", THROTTLE_CAPTURE_RATE=rate).returncode == 0


def test_an_empty_rate_limit_is_its_default_not_off():
    """An empty variable turned the limit off, silently: only `off` does."""
    result = manage("shell", "-c", "from django.conf import settings; "
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
    result = manage("check", **{name: value})
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
    result = manage("check", **{name: value})
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
    assert manage("check", **{name: value}).returncode == 0


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
    result = manage("shell", "-c", "from django.conf import settings as s; "
                     "print(s.WEBHOOK_RETRY_SCHEDULE, s.PROCRASTINATE_WORKER_DEFAULTS['concurrency'])",
                     WEBHOOK_RETRY_SCHEDULE="", WORKER_CONCURRENCY=" ",
                     DJANGO_SETTINGS_MODULE="omnitron.settings.dev")  # fmt: skip
    assert result.stdout.splitlines()[-1] == "[5, 30, 120, 600, 3600, 21600, 86400] 8", (
        result.stderr
    )
    # The default as webhooks.md's table of variables quotes it.
    webhooks = (ROOT / "docs" / "webhooks.md").read_text()
    assert "| `WEBHOOK_RETRY_SCHEDULE` | `5,30,120,600,3600,21600,86400` |" in webhooks


@pytest.mark.django_db
def test_the_apps_connections_never_jit_compile():
    """No timeout or cancel stops PostgreSQL's JIT compiling a statement: an admin
    search of 800 words ran 37 s past a 2 s statement_timeout."""

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


def test_gunicorns_configuration_loads_where_there_is_no_sched_getaffinity(monkeypatch):
    """macOS has none: `make run` there stopped while gunicorn read its configuration,
    WEB_CONCURRENCY set or not (the default is worked out first)."""
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"] == os.cpu_count() * 2 + 1
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"] == 2


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_an_ipv6_host_is_served_on(host):
    """HOST=::1 made gunicorn's bind `::1:<port>`, which it cannot read: it stopped at
    once with "Error: '' is not a valid port number.", naming no variable."""
    port = free_port()
    env = {**server_env(HOST=host, PORT=port, WEB_CONCURRENCY=1), "DJANGO_ALLOWED_HOSTS": "[::1]"}
    server = Process([str(VENV_BIN / "gunicorn"), "omnitron.wsgi"], env=env)
    try:
        wait_until_ready(f"http://[::1]:{port}/healthz", process=server.popen)
    finally:
        server.stop()


def test_database_url_query_parameters_go_to_libpq():
    """configuration.md: a database URL's query parameters, such as `?sslmode=require`,
    go to libpq. The settings replaced the URL's OPTIONS with their own, so
    `sslmode=require` (or `verify-full` with its `sslrootcert`) was dropped without a
    word: the app connected in plain text to a server psql refused for having no TLS."""
    code = (
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS']; "
        "r = s.DATABASES['replica']['OPTIONS']; "
        "print(o.get('sslmode'), o.get('sslrootcert'), r.get('sslmode'), 'jit=off' in r['options'])"
    )
    result = manage(
        "shell", "-c", code, DJANGO_SETTINGS_MODULE="omnitron.settings.dev",
        DATABASE_URL="postgres://u@db.example:5432/omnitron"
        "?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem",
        DATABASE_REPLICA_URL="postgres://u@replica.example:5432/omnitron?sslmode=require",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "verify-full /etc/ssl/db-ca.pem require True"


@pytest.mark.parametrize(
    "settings_module", ["omnitron.settings.production", "omnitron.settings.test"]
)
def test_a_database_url_asking_for_tls_is_refused_by_a_server_without_it(settings_module):
    """The test cluster has no TLS: with `?sslmode=require` the app must not connect
    (it connected in plain text), and its other parameters and `options` reach the
    server beside the app's own (the URL's `-c` setting after the app's)."""
    check = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('SELECT current_setting(%s), current_setting(%s), current_setting(%s)', "
        "['application_name', 'lock_timeout', 'work_mem']); print(*c.fetchone())"
    )
    url = database_url()
    env = {"DJANGO_SETTINGS_MODULE": settings_module, "DJANGO_SECRET_KEY": PRODUCTION_SECRET_KEY,
           "DJANGO_ALLOWED_HOSTS": "example.com"}  # fmt: skip
    refused = manage("shell", "-c", check, DATABASE_URL=f"{url}?sslmode=require", **env)
    assert refused.returncode != 0
    assert "SSL" in refused.stderr, refused.stderr[-500:]
    given = f"{url}?application_name=erp-sync&options=-c%20work_mem%3D7MB%20-c%20lock_timeout%3D4s"
    taken = manage("shell", "-c", check, DATABASE_URL=given, **env)
    assert taken.returncode == 0, taken.stderr[-500:]
    assert taken.stdout.splitlines()[-1].split() == ["erp-sync", "4s", "7MB"]


@pytest.mark.parametrize("value", ["production", "omnitron.settings.prod"])
def test_a_settings_module_that_is_not_one_stops_the_app_in_one_line(value):
    """configuration.md lists DJANGO_SETTINGS_MODULE's values as `dev`, `test` or
    `production`, and says anything a variable does not take stops manage.py in one
    line naming it: `DJANGO_SETTINGS_MODULE=production` was a traceback ending in
    `ModuleNotFoundError: No module named 'production'`."""
    result = manage("check", DJANGO_SETTINGS_MODULE=value)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert "DJANGO_SETTINGS_MODULE" in result.stderr
