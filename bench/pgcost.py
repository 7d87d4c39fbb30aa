"""PostgreSQL's share of a capture, part by part (`python bench/run.py --pg-cost-only`,
and a section of make bench's report).

pgbench sends the capture's two statements as the app sends them: the authentication
statement with its order read (accounts/authentication.py, capture/lookups.py), then
the write (capture/sql.py). They are prepared, so they run on the generic plans the
app's connections settle on, each against a fresh one-item order copied in SQL. No
Python process is in the way: the CPU per capture read from /proc (bench/cpu.py) is
PostgreSQL's alone, with far less noise than a whole request's.

Variants leave one part of the write out to show what it costs. They are
measurements, not options: every part is needed. The baseline is the baseline
request's statement (the token's user). Rounds alternate the variants, each on its
own orders; each run makes RUN_CAPTURES captures."""

import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

if __name__ == "__main__":  # run as a script, in the app's environment
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnitron.settings.production")

from bench.bigdata import _copies
from bench.cpu import TICK_MS, postgres_ticks, postmaster_pid
from bench.infra import PYTHON, ROOT, log, workers

RUN_CAPTURES = 4000
ROUNDS = 3
# Before each /proc read: the backends of the run before have ended and been reaped
# (one read mid-reap counted a backend twice: a run of 0.013 ms a capture).
SETTLE_SECONDS = 1.0
REQUEST_ID = "bench-pgcost"

# What pgbench sends for each placeholder of the app's statements: :k is this
# capture's order (see _script), the read's \gset gives :version, :status and :currency.
PARAMETERS = {
    "key": ":token", "app_label": "'orders'", "codename": "'capture_order'",
    "rate_key_prefix": "'throttle_capture_'",
    "rate_window": "(extract(epoch from now())::int / 60 * 60)", "rate_duration": "60",
    "rate_weight": "(1 - extract(epoch from now())::numeric % 60 / 60)",
    "rate_limit": "10000000", "rate_cost": "1",
    "capture_key": "NULL::text", "capture_key_since": "(now() - interval '1 day')",
    "idempotency_key": "NULL::text", "idempotency_since": "(now() - interval '1 day')",
    "capture_number": "(:prefix || :k)", "capture_channel": "NULL",
    "capture_pks": "ARRAY[:item::bigint]",
    "ids": "ARRAY[:item::bigint]", "versions": "ARRAY[:version]",
    "changes": "ARRAY[NULL::jsonb]", "now": "now()", "order": ":order::bigint",
    "status": ":status", "currency": ":currency", "user": ":user::int", "amount": "10.00",
    "request_id": f"'{REQUEST_ID}'",
    "event_type": "'order.captured'", "queue": "'webhooks'",
    "task": "'events.tasks.deliver_lane'",
}  # fmt: skip


def _pgbench_sql(statement: str) -> str:
    def replace(match):
        return "%" if match.group(0) == "%%" else PARAMETERS[match.group(1)]

    return re.sub(r"%%|%\((\w+)\)[sb]", replace, statement)


def statements() -> dict[str, str]:
    """The capture's read (ending in the \\gset of what the write needs), its write and
    its variants, and the baseline's statement: built in the app's own process
    (`python bench/pgcost.py` with the app's environment prints them), from its code."""
    from accounts.authentication import _token_user_statement
    from capture.sql import WRITE_CAPTURE
    from capture.views import CaptureOrderView

    read, _ = _token_user_statement(True, tuple(CaptureOrderView.authentication_lookups))
    start, _, rest = read.rpartition(" SELECT token_user.*")
    columns, _, end = rest.rpartition(" FROM token_user")
    read = (  # the read's JSON: [[order id, status, currency, [[item id, status, price,
        # currency, captured, version]]]]
        f"{start}, answer AS (SELECT token_user.*{columns} AS seen FROM token_user{end}) "
        "SELECT seen->0->3->0->>5 AS version, seen->0->>1 AS status, seen->0->>2 AS currency "
        "FROM answer"
    )
    write = WRITE_CAPTURE
    event = write.index(" event AS (")
    delivery = write.index(", delivery AS (")
    answer = write.rindex(" SELECT ")
    variants = {
        "capture": write,
        "without the order.captured event": write[:event] + " noop AS (SELECT 1)" + write[answer:],
        "without the event's order snapshot": _replaced(
            write, "to_jsonb(updated) AS snapshot", "'{}'::jsonb AS snapshot"
        ),
        "without the webhook deliveries' CTEs": write[:delivery] + write[answer:],
    }
    baseline, _ = _token_user_statement(False, ())
    return {
        "read": _pgbench_sql(read) + " \\gset",
        **{name: _pgbench_sql(sql) + ";" for name, sql in variants.items()},
        "baseline": _pgbench_sql(baseline) + ";",
    }


def _replaced(text: str, old: str, new: str) -> str:
    if old not in text:
        raise ValueError(f"the write no longer has {old!r}: update bench/pgcost.py")
    return text.replace(old, new)


def fill(database_url: str, template: dict, orders: int) -> dict:
    """`orders` copies of the template order and its first item, numbered
    <prefix><k> (k from 1), the order's id o0 + k and the item's i0 + k."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM orders_order")
        (o0,) = cursor.fetchone()
        cursor.execute("SELECT max(id) FROM orders_orderitem")
        (i0,) = cursor.fetchone()
        prefix = f"PGCOST-{o0}-"
        params = {"o0": o0, "i0": i0, "prefix": prefix, "orders": orders,
                  "tpl": template["pk"], "item": template["items"][0]["pk"]}  # fmt: skip
        source = "generate_series(1, %(orders)s) g"
        _copies(cursor, "orders_order", "id = %(tpl)s",
                {"id": "%(o0)s + g", "number": "%(prefix)s || g"}, source, params)  # fmt: skip
        _copies(cursor, "orders_orderitem", "id = %(item)s",
                {"id": "%(i0)s + g", "order_id": "%(o0)s + g"}, source, params)  # fmt: skip
        for table in ("orders_order", "orders_orderitem"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")  # fmt: skip
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE orders_order, orders_orderitem")
    return {"o0": o0, "i0": i0, "prefix": prefix}


def _script(sql: dict[str, str], write: str, layout: dict) -> str:
    """One capture per transaction: the next order of this client's range."""
    return "\n".join([
        "\\set n :n + 1",
        "\\set k :offset + :client_id * :per_client + :n",
        f"\\set order {layout['o0']} + :k",
        f"\\set item {layout['i0']} + :k",
        sql["read"],
        sql[write],
    ]) + "\n"  # fmt: skip


def pgbench() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench")) or [shutil.which("pgbench")]
    if not found[-1]:
        raise RuntimeError("pgbench not found (Debian's postgresql package has it)")
    return found[-1]


def _run(database_url: str, script: Path, clients: int, variables: dict) -> dict:
    postmaster = postmaster_pid(database_url)
    before_rows = _written(database_url)
    time.sleep(SETTLE_SECONDS)
    before = postgres_ticks(postmaster)
    defines = [arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]
    result = subprocess.run(
        [pgbench(), "-n", "-M", "prepared", "-f", str(script), "-c", str(clients),
         "-j", str(min(clients, 2)), "-t", str(RUN_CAPTURES // clients), *defines,
         database_url],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    time.sleep(SETTLE_SECONDS)
    ticks = postgres_ticks(postmaster) - before
    done = int(re.search(r"actually processed: (\d+)", result.stdout).group(1))
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))
    return {"transactions": done, "tps": tps, "ms": ticks * TICK_MS / done,
            "written": _written(database_url) - before_rows}  # fmt: skip


def _written(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM capture_capture WHERE request_id = %s", [REQUEST_ID]
        ).fetchone()[0]


def measure(env: dict, template: dict, token: str, rounds: int = ROUNDS) -> dict:
    """Median PostgreSQL CPU per capture (and throughput) of each variant, at the app's
    worker count (one connection each); the whole capture also at 1 and 16 clients.
    `env`: the app's environment; `token`: the API user's, who may capture
    `template`'s order."""
    database_url = env["DATABASE_URL"]
    made = subprocess.run([PYTHON, __file__], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    sql = json.loads(made.stdout)
    with psycopg.connect(database_url) as conn:
        query = "SELECT user_id FROM authtoken_token WHERE key = %s"
        (user_id,) = conn.execute(query, [token]).fetchone()
    app = workers()
    runs = [(name, app) for name in sql if name not in ("read", "baseline")]
    runs += [("capture", 1), ("capture", 16), ("baseline", app)]
    layout = fill(database_url, template, orders=RUN_CAPTURES * len(runs) * rounds)
    results: dict[tuple[str, int], list[dict]] = {run: [] for run in runs}
    offset = 0
    with tempfile.TemporaryDirectory(prefix="omnitron-pgcost-") as workdir:
        for round_number in range(rounds):
            for name, clients in runs:
                script = Path(workdir) / f"run-{offset}.sql"
                if name == "baseline":
                    script.write_text(sql["baseline"] + "\n")
                else:
                    script.write_text(_script(sql, name, layout))
                variables = {
                    "token": token, "user": user_id, "prefix": layout["prefix"],
                    "offset": offset, "per_client": RUN_CAPTURES // clients, "n": 0,
                }  # fmt: skip
                run = _run(database_url, script, clients, variables)
                if name != "baseline" and run["written"] != run["transactions"]:
                    raise RuntimeError(
                        f"{name}: {run['written']} captures written of "
                        f"{run['transactions']}: not a fresh order each"
                    )
                results[(name, clients)].append(run)
                offset += RUN_CAPTURES
                log(
                    f"pgcost round {round_number + 1}: {name}, {clients} clients: "
                    f"{run['ms']:.3f} ms of PostgreSQL CPU a transaction, {run['tps']:.0f}/s"
                )
    rows = [
        {"variant": name, "clients": clients,
         "postgres_ms": round(statistics.median(r["ms"] for r in runs_), 3),
         "rounds_ms": [round(r["ms"], 3) for r in runs_],
         "tps": round(statistics.median(r["tps"] for r in runs_))}
        for (name, clients), runs_ in results.items()
    ]  # fmt: skip
    return {"workers": app, "captures_per_run": RUN_CAPTURES, "rounds": rounds, "rows": rows}


if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(statements()))
