#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import sys


def main():
    from omnitron.env import env_setdefault, settings_or_exit

    env_setdefault("DJANGO_SETTINGS_MODULE", "omnitron.settings.dev")
    from django.core.management import execute_from_command_line
    from django.db import InterfaceError, OperationalError

    if "--traceback" not in sys.argv:
        settings_or_exit("manage.py")
    try:
        execute_from_command_line(sys.argv)
    except (OperationalError, InterfaceError) as exc:
        # A command with the database unreachable (or failing): one line, as Django
        # prints a CommandError, not a traceback; --traceback still shows it.
        if "--traceback" in sys.argv:
            raise
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        sys.stderr.write(f"The database failed: {reason.strip()}{_where(exc)}\n")
        sys.exit(1)


def _where(exc) -> str:
    """Which database a connection failure was with, and the variable that named it;
    nothing for a statement the database ended (a lock or statement timeout): the
    connection was fine, and blaming DATABASE_URL sent operators the wrong way."""
    import os

    import psycopg.errors
    from django.conf import settings

    if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        return " (another transaction holds what the command needs: retry once it ends)"
    db = settings.DATABASES["default"]
    named_by = "DATABASE_URL" if os.environ.get("DATABASE_URL", "").strip() else "PG_PORT"
    return f" ({db.get('HOST')}:{db.get('PORT')}/{db.get('NAME')}, from {named_by})"


if __name__ == "__main__":
    main()
