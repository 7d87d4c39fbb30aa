from contextlib import contextmanager

from django.core.management.commands import sqlmigrate
from django.db.migrations.operations.special import RunPython


class Command(sqlmigrate.Command):
    """Django's sqlmigrate, which only prints: it leaves a RunPython out, but runs one
    nested in SeparateDatabaseAndState, and this project's (omnitron/db/backfill.py:
    building and dropping indexes, setting NOT NULL) run their SQL themselves, on the
    live database (an outside test's `sqlmigrate events 0006` built an index it had
    dropped). Here every Python step is named, not run."""

    help = sqlmigrate.Command.help + " Python steps are named, not run."

    def execute(self, *args, **options):
        with _python_steps_named():
            return super().execute(*args, **options)


def _forwards(operation, app_label, schema_editor, from_state, to_state):
    _name(schema_editor, operation.code)


def _backwards(operation, app_label, schema_editor, from_state, to_state):
    _name(schema_editor, operation.reverse_code)


def _name(schema_editor, code) -> None:
    schema_editor.collected_sql.append(
        f"-- Python step {getattr(code, '__name__', code)}(), not run here: read the migration."
    )


@contextmanager
def _python_steps_named():
    saved = RunPython.database_forwards, RunPython.database_backwards
    RunPython.database_forwards, RunPython.database_backwards = _forwards, _backwards
    try:
        yield
    finally:
        RunPython.database_forwards, RunPython.database_backwards = saved
