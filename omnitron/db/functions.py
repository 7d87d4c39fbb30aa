"""Database functions the migrations write (the guard triggers' functions)."""

from django.db import migrations


def pin_search_path(*functions: str) -> migrations.RunPython:
    """A migration operation that fixes the search_path of these functions (given as
    `name()`) to the schema the migration runs in, temporary tables last: a function
    that names a table without its schema read whatever a session's search_path found
    first, and a session that put a table of the same name ahead of it wrote past a
    guard (`SET LOCAL search_path = evil, public`, then renaming a capturer)."""

    def pin(apps, schema_editor):
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            (schema,) = cursor.fetchone()
            path = f"{connection.ops.quote_name(schema)}, pg_temp"
            for function in functions:
                cursor.execute(f"ALTER FUNCTION {function} SET search_path = {path}")

    def unpin(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            for function in functions:
                cursor.execute(f"ALTER FUNCTION {function} RESET search_path")

    return migrations.RunPython(pin, unpin)
