"""The indexes the tables have: every foreign key can be followed without reading a
whole table, and no index is written for nothing (each one costs every insert)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

# An index's table, its key columns with their operator classes, and whether it is
# partial or unique.
INDEXES = """
    SELECT t.relname, i.relname,
           array(SELECT a.attname || ':' || o.opcname
                   FROM unnest(x.indkey::int[], x.indclass::oid[]) WITH ORDINALITY AS k(col, cls, n)
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.col
                   JOIN pg_opclass o ON o.oid = k.cls
                  ORDER BY k.n),
           x.indpred IS NOT NULL, x.indisunique
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace s ON s.oid = t.relnamespace
     WHERE s.nspname = 'public' AND x.indexprs IS NULL
"""
# Single-column foreign keys: table and column.
FOREIGN_KEYS = """
    SELECT t.relname, a.attname
      FROM pg_constraint c
      JOIN pg_class t ON t.oid = c.conrelid
      JOIN pg_namespace s ON s.oid = t.relnamespace
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = c.conkey[1]
     WHERE c.contype = 'f' AND s.nspname = 'public' AND cardinality(c.conkey) = 1
"""
OURS = ("orders_", "capture_", "events_", "api_")


def _rows(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_no_index_repeats_the_start_of_another():
    """An index on (a) beside one on (a, b) costs every insert and serves nothing the
    other does not: events' channel, a delivery's event, a stored answer's user were
    such, each written by every capture."""
    indexes = [row for row in _rows(INDEXES) if row[0].startswith(OURS)]
    redundant = [
        (table, name, other)
        for table, name, columns, partial, unique in indexes
        if not partial and not unique
        for other_table, other, other_columns, other_partial, _ in indexes
        if other_table == table and other != name and not other_partial
        and other_columns[: len(columns)] == columns
    ]  # fmt: skip
    assert redundant == []


def test_no_index_serves_only_like_queries_on_an_id():
    """Django adds a varchar_pattern_ops copy of every indexed text column, for LIKE;
    an event's id and a delivery's event are compared with = and > only."""
    pattern_only = [(table, name) for table, name, columns, *_ in _rows(INDEXES)
                    if table.startswith(OURS) and any(c.endswith("_pattern_ops") for c in columns)
                    and any(c.startswith(("id:", "event_id:")) for c in columns)]  # fmt: skip
    assert pattern_only == []


def test_every_foreign_key_leads_an_index():
    """Deleting or protecting the row a key points at, and joining to it, never reads
    the whole table that holds the key."""
    leading = {(table, columns[0].split(":")[0]) for table, _, columns, partial, _ in _rows(INDEXES)
               if not partial}  # fmt: skip
    unindexed = [key for key in _rows(FOREIGN_KEYS) if key[0].startswith(OURS)
                 and key not in leading]  # fmt: skip
    assert unindexed == []
