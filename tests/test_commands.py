"""manage.py's commands against the database: one line when it fails or cannot be
reached, the local cluster found by PG_PORT, and the models and migrations in step."""

import os
import secrets
import subprocess

import psycopg
import pytest
from django.db import connection

from tests.factories import make_api_user
from tests.live import (
    MANAGE,
    ROOT,
    database_url,
    free_port,
    manage,
    server_env,
)
from tests.reliability.helpers import own_cluster


@pytest.mark.django_db(transaction=True)
def test_check_captures_that_cannot_check_says_why_in_one_line():
    """A database never migrated, or a role that may not read the tables: tracebacks."""
    name, role = f"unmigrated_{secrets.token_hex(4)}", f"reader_{secrets.token_hex(4)}"
    admin = psycopg.connect(database_url("postgres"), autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        unmigrated = manage("check_captures", DATABASE_URL=database_url(name))
        s = connection.settings_dict
        url = f"postgres://{role}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
        no_rights = manage("check_captures", DATABASE_URL=url)
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


@pytest.mark.parametrize(
    "command", [["check_captures"], ["create_api_user", "wms"], ["rotate_token", "wms"]]
)
def test_a_command_with_the_database_unreachable_says_so_in_one_line(command):
    """Each printed a traceback of some forty lines."""
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    result = manage(*command, DATABASE_URL=dead)
    assert result.returncode == 1
    assert result.stderr.startswith("The database failed: "), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_failed_connection_names_the_database_and_the_variable_that_named_it():
    """It always said "(DATABASE_URL)", also when PG_PORT had named the local
    cluster."""
    port = free_port()
    by_url = manage("check_captures", DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/shop")
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
    (DATABASE_URL)", sending the operator to a connection that was fine."""
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
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("port", ["70000", "0", "080", "5432x"])
def test_a_pg_port_that_is_not_one_stops_before_a_cluster_is_made(tmp_path, port):
    """PG_PORT=70000 ran initdb, then PostgreSQL refused the port in lines of its own
    that did not name the variable, and left the new cluster behind (an outside test
    of configuration.md's "one line naming the variable")."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    env.update(PG_DATA_DIR=str(tmp_path / "cluster"), PG_PORT=port)
    started = subprocess.run(["scripts/pg.sh", "start"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert started.returncode == 1
    assert started.stderr == f"pg.sh: PG_PORT: '{port}' is not a port number from 1 to 65535.\n"
    assert not (tmp_path / "cluster").exists()


def test_make_db_status_of_a_stopped_cluster_is_an_answer_not_a_failure(tmp_path):
    """It printed "stopped" and then make's "Error 3", which reads as something broken.
    scripts/pg.sh status keeps its exit 3 for scripts."""
    # As a reader runs it: not as a make inside `make test` (MAKEFLAGS, MAKELEVEL).
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    env.update(PG_DATA_DIR=str(tmp_path / "none"), PG_PORT=str(free_port()))
    made = subprocess.run(["make", "db-status"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("stopped (data: ")
    assert "Error" not in made.stderr
    direct = subprocess.run(["scripts/pg.sh", "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert direct.returncode == 3
