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
        sys.stderr.write(f"The database failed: {reason.strip()} (DATABASE_URL)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
