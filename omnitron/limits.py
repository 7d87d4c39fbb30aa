"""Limits of PostgreSQL's column types: input is checked against them before it
reaches a column, so an out-of-range number is a 400, never a database error."""

MAX_INTEGER = 2**31 - 1  # integer columns (channel and customer ids, Omnitron's references)
MAX_BIGINT = 2**63 - 1  # bigint columns (the ids of orders, items and captures)
MIN_BIGINT = -(2**63)


def is_row_id(value) -> bool:
    """A JSON integer that can be a bigint id: 1 to MAX_BIGINT (not a bool, which Python
    counts as an int). The fast paths that read a body without DRF use it; the
    serializers' fields say the same with min_value and max_value."""
    return type(value) is int and 1 <= value <= MAX_BIGINT


# Values in one JSON body (commas, objects and arrays counted): far above a real
# request's (a 1,000-item capture with attributes holds a few thousand).
MAX_JSON_VALUES = 200_000
# Nesting of a JSON value the import and the admin's forms take: Python reads a stored
# value back recursively, and one 900 deep failed every page that showed it (500).
MAX_JSON_DEPTH = 100
# A request id (X-Request-ID, or generated: omnitron/observability.py), stored with
# each capture (capture.Capture.request_id).
MAX_REQUEST_ID_LENGTH = 128
