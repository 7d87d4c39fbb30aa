"""Hand-written SQL as psycopg gets it."""

import re

_COMMENT = re.compile(r"--[^\n]*")


def compact(statement: str) -> str:
    """The statement on one line, its `--` comments dropped (none may sit inside a
    string literal). psycopg parses a statement's placeholders in Python on every
    execution unless the statement is at most 4 KB (psycopg/_queries.py,
    MAX_CACHED_STATEMENT_LENGTH), and the capture's write, as written, is just over:
    compacted it is parsed once per process. docs/performance.md has the figure."""
    return " ".join(_COMMENT.sub("", statement).split())
