"""Server-side prepared statements for the few statements every request runs.

PostgreSQL plans a statement each time it receives its text; for the token lookup
and the capture's two statements, planning cost more than running them
(docs/performance.md has what preparing saves). A PreparedStatement is planned once per
database connection (PREPARE, sent with the first EXECUTE in one round trip) and
only executed after that.

Prepared statements live in the database session, so they need a session per app
connection: set DB_PREPARED_STATEMENTS=0 behind a pooler in transaction mode
(PgBouncer), and the same statements are sent as plain text instead."""

import re
import weakref

from django.conf import settings

# %(name)s, with an optional cast that the EXECUTE repeats: %(pks)s::bigint[]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s(::[\w\[\]]+)?")

# Per raw psycopg2 connection: the statements prepared on it, and those whose state
# is unknown after a failed round trip (checked in pg_prepared_statements next time).
_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()
_unsure: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


class PreparedStatement:
    def __init__(self, name: str, sql: str):
        self.name = name
        self.sql = sql
        order: list[str] = []

        def to_positional(match):
            key, cast = match.group(1), match.group(2) or ""
            if key not in order:
                order.append(key)
            return f"${order.index(key) + 1}{cast}"

        body = _PLACEHOLDER.sub(to_positional, sql)
        casts = {m.group(1): m.group(2) or "" for m in _PLACEHOLDER.finditer(sql)}
        arguments = ", ".join(f"%({key})s{casts[key]}" for key in order)
        self.execute_sql = f"EXECUTE {name}({arguments})"
        self.prepare_sql = f"PREPARE {name} AS {body};\n{self.execute_sql}"

    def execute(self, cursor, params: dict) -> None:
        """Run the statement on a Django cursor; fetch results from the cursor after."""
        if not settings.DB_PREPARED_STATEMENTS:
            cursor.execute(self.sql, params)
            return
        raw = cursor.db.connection
        prepared = _prepared.setdefault(raw, set())
        unsure = _unsure.setdefault(raw, set())
        if self.name in unsure:
            cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [self.name])
            if cursor.fetchone():
                prepared.add(self.name)
            unsure.discard(self.name)
        if self.name in prepared:
            cursor.execute(self.execute_sql, params)
            return
        try:
            cursor.execute(self.prepare_sql, params)
        except Exception:
            # PREPARE may have succeeded before EXECUTE failed (PREPARE outlives a
            # rollback): find out on next use instead of guessing.
            unsure.add(self.name)
            raise
        prepared.add(self.name)
