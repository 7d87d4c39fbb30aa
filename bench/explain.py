"""The plan of every statement the app sends for the benchmark's requests.

`python -m bench.explain TOKEN BODY_JSON [SMALL_CHANNEL_TOKEN]` (the app's
environment: DATABASE_URL and settings) sends, in this process through Django's test
client, the requests of bench/bigdata.py's scenarios: the baseline, a capture of the
order in BODY_JSON under an Idempotency-Key, its replay, the read endpoints' first
pages, and those of SMALL_CHANNEL_READS as the small channel's user. Every
statement they send is recorded, then explained twice on its own connection:

- generic: PREPAREd and EXPLAIN EXECUTEd with plan_cache_mode = force_generic_plan,
  the plan PostgreSQL may settle on for a statement psycopg prepares (after
  DB_PREPARE_THRESHOLD executions) whatever its parameters;
- custom: EXPLAIN with the request's own parameter values.

Prints a JSON list: per statement, the request, its SQL, both plans, and the tables
any plan reads with a sequential scan."""

import itertools
import json
import os
import re
import sys

import django
import psycopg
from psycopg import sql

from bench.bigdata import READS, SMALL_CHANNEL_READS

SKIP = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET)\b", re.IGNORECASE)
PLACEHOLDER = re.compile(r"%%|%s|%\((\w+)\)[sb]")
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


def numbered(statement: str, params) -> tuple[str, list]:
    """Django's %s / %(name)s placeholders (and psycopg's binary %(name)b) as $1, $2…,
    and the values in that order."""
    names: list[str] = []
    positions = itertools.count(1)
    values = []

    def replace(match):
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            values.append(params[len(values)])
            return f"${next(positions)}"
        name = match.group(1)
        if name not in names:
            names.append(name)
            values.append(params[name])
        return f"${names.index(name) + 1}"

    return PLACEHOLDER.sub(replace, statement), values


def plans(conn, statement: str, params) -> dict:
    generic = custom = None
    try:
        text, values = numbered(statement, params or ())
        with conn.transaction():
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(sql.SQL("PREPARE explained AS {}").format(sql.SQL(text)))
            literals = sql.SQL(", ").join(sql.Literal(v) for v in values)
            arguments = "({})" if values else ""
            query = sql.SQL(f"EXPLAIN EXECUTE explained{arguments}")
            rows = conn.execute(query.format(literals)).fetchall()
            generic = "\n".join(row[0] for row in rows)
            conn.execute("DEALLOCATE explained")
    except psycopg.Error as error:  # e.g. a parameter whose type only its value gives
        generic = f"(no generic plan: {str(error).splitlines()[0]})"
    with conn.transaction():
        rows = conn.execute(f"EXPLAIN {statement}", params).fetchall()
        custom = "\n".join(row[0] for row in rows)
    return {"generic": generic, "custom": custom}


def main() -> None:
    token, body = sys.argv[1], json.loads(sys.argv[2])
    small_channel_token = sys.argv[3] if len(sys.argv) > 3 else None
    sys.path.insert(0, os.getcwd())
    django.setup()
    from django.db import connection
    from django.test import Client

    recorded: list[tuple[str, str, object]] = []
    current = {"request": ""}

    def record(execute, statement, params, many, context):
        if not SKIP.match(statement):
            recorded.append((current["request"], statement, params))
        return execute(statement, params, many, context)

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    keyed = {"HTTP_IDEMPOTENCY_KEY": "explain"}
    requests = [
        ("baseline", client, "get", "/api/v1/active_user/", {}),
        ("capture", client, "post", "/api/v1/capture-order/", keyed),
        ("replay", client, "post", "/api/v1/capture-order/", keyed),
        *((f"GET {path}", client, "get", f"/api/v1/{path}", {}) for path in READS),
    ]
    if small_channel_token:
        small = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {small_channel_token}")
        requests += [(f"small channel: GET {path}", small, "get", f"/api/v1/{path}", {})
                     for path in SMALL_CHANNEL_READS]  # fmt: skip
    with connection.execute_wrapper(record):
        for name, sender, method, path, headers in requests:
            current["request"] = name
            if method == "post":
                response = sender.post(path, body, content_type="application/json", **headers)
            else:
                response = sender.get(path, **headers)
            if response.status_code != 200:
                raise SystemExit(f"{name}: {response.status_code} {response.content[:300]!r}")
    result = []
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for request, statement, params in recorded:
            explained = plans(conn, statement, params)
            tables = sorted(set(SEQ_SCAN.findall(explained["generic"] + explained["custom"])))
            result.append({"request": request, "sql": " ".join(statement.split()),
                           **explained, "seq_scan_tables": tables})  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
