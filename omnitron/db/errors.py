"""What a database error says about the rows involved."""

import psycopg.errors


def foreign_key_failed_on(exc: Exception) -> str | None:
    """For an error whose cause is a foreign key failing (as the keys are deferred, at
    the commit): "insert" when the writing side refers to a row that is gone, "delete"
    when the deleting side removed a row others refer to; else None."""
    cause = exc.__cause__
    if not isinstance(cause, psycopg.errors.ForeignKeyViolation):
        return None
    message = cause.diag.message_primary or ""
    if message.startswith("insert or update on table"):
        return "insert"
    if message.startswith("update or delete on table"):
        return "delete"
    return None
