"""Django's PostgreSQL backend, reconnecting once when a request's first statement
finds its connection dead.

Django's CONN_HEALTH_CHECKS costs every request a `SELECT 1` round trip before its
first real statement. Here there is no such check (CONN_HEALTH_CHECKS is off): a
request's first statement runs on the reused connection, and if the connection turns
out dead (the database restarted, or a pooler dropped it), the backend reconnects and
runs that statement again, once. That is safe because nothing of the request has run
yet, and only outside a transaction: a statement inside one is never retried."""

from django.db import InterfaceError, OperationalError
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class DatabaseWrapper(base.DatabaseWrapper):
    # True between the start of a request and its first statement.
    first_statement_pending = False

    def close_if_unusable_or_obsolete(self):
        # Django calls this when a request starts (and ends).
        super().close_if_unusable_or_obsolete()
        self.first_statement_pending = self.connection is not None

    def connect(self):
        super().connect()
        self.first_statement_pending = False  # a new connection is a live one

    def reconnect_if_dead(self) -> bool:
        """After a failed statement: reconnect when it was the request's first, outside
        a transaction, on a connection psycopg found broken. Returns whether it did."""
        retry = (
            self.first_statement_pending
            and not self.in_atomic_block
            and self.connection is not None
            and self.connection.broken
        )
        self.first_statement_pending = False
        if retry:
            self.close()
            self.ensure_connection()  # Django's errors if the database is still down
        return retry

    def make_cursor(self, cursor):
        return ReconnectingCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return ReconnectingCursorDebugWrapper(cursor, self)


class ReconnectingMixin:
    def _execute(self, sql, params, *ignored_wrapper_args):
        try:
            result = super()._execute(sql, params, *ignored_wrapper_args)
        except (OperationalError, InterfaceError):
            if not self.db.reconnect_if_dead():
                raise
            self.cursor = self.db.create_cursor()  # on the new connection
            result = super()._execute(sql, params, *ignored_wrapper_args)
        self.db.first_statement_pending = False
        return result


class ReconnectingCursorWrapper(ReconnectingMixin, CursorWrapper):
    pass


class ReconnectingCursorDebugWrapper(ReconnectingMixin, CursorDebugWrapper):
    pass
