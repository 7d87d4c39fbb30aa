"""`make bench-smoke` in the test suite: the benchmark's short run against its own
database on the test cluster. It fails on any error in any scenario, a contended
item captured twice, or a capture whose SQL statement count depends on its items."""

import json
import os
import secrets
import shutil
import subprocess

import psycopg
import pytest

from tests.live import ROOT, VENV_BIN, database_url
from tests.reliability.helpers import assert_captures_add_up


@pytest.fixture
def bench_database():
    name = f"bench_smoke_{secrets.token_hex(4)}"
    admin = psycopg.connect(database_url("postgres"))
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield database_url(name)
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def test_bench_smoke_runs_clean(bench_database, tmp_path, transactional_db):
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is missing; CI requires the benchmark smoke test")
        pytest.skip("wrk is missing: install it (apt-get install wrk)")
    result = subprocess.run(
        [str(VENV_BIN / "python"), "bench/run.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": bench_database},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    scenarios = {(r["scenario"], r["concurrency"]) for r in report["scenarios"]}
    assert scenarios == {(name, c) for name in
                         ("baseline", "capture-1", "capture-10", "replay", "contended")
                         for c in (1, 16)}  # fmt: skip
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in report["scenarios"])
    counts = {row["items"]: row["queries"] for row in report["items_scaling"]}
    assert set(counts) == {1, 10, 100, 1000}
    assert counts[1000] == counts[1]
    assert report["summary"]["contended_exactly_once"]
    # capture-1 through PgBouncer against direct (bench/pgbouncer.py), when installed.
    if shutil.which("pgbouncer") or os.environ.get("CI"):
        assert [r["errors"] for r in report["pgbouncer"]["rounds"]] == [0]
        assert report["summary"]["pgbouncer_over_direct_c16"] > 0
    # bench/plans.py saw the capture's statements, then turned tracking off: the token
    # statement (which reads the order and items) and the write.
    planned = [s["statement"] for s in report["plans"]["statements"]]
    assert any(s.startswith("WITH token_user AS") for s in planned), planned
    assert any(s.startswith("WITH given AS") for s in planned), planned
    with psycopg.connect(bench_database) as conn:
        assert conn.execute("SHOW pg_stat_statements.track_planning").fetchone() == ("off",)
    assert_captures_add_up(bench_database)


def test_bigdata_fill_is_a_consistent_shop(bench_database, tmp_path, transactional_db, request):
    """bench/bigdata.py's fill at 1/1000 of its size: the rows it copies add up like
    the app's own (check_captures), the replay lookup finds its stored keys, and
    bench/explain.py explains every statement of every scenario's request, and
    bench/admin_lists.py opens every admin list it times."""
    from bench import admin_lists, bigdata
    from bench.infra import api_token, app_env, migrate
    from bench.seeding import Seeds, capture_body

    env = app_env(bench_database)
    migrate(env)
    seeds = Seeds(env, tmp_path)
    request.addfinalizer(seeds.close)
    template = seeds.orders("TEMPLATE", 1, bigdata.ITEMS_PER_ORDER)[0]
    token = api_token(env)
    with psycopg.connect(bench_database) as conn:
        user = conn.execute("SELECT user_id FROM authtoken_token WHERE key = %s", [token])
        user_id = user.fetchone()[0]
    filled = bigdata.fill(bench_database, template=template, user_id=user_id, scale=0.001)
    assert filled["orders"]["rows"] == 2000
    assert filled["order items"]["rows"] == 6000
    assert filled["captures"]["rows"] == filled["capture items"]["rows"] == 1000
    assert filled["idempotency keys"]["rows"] == filled["events"]["rows"] == 1000
    assert_captures_add_up(bench_database)
    with psycopg.connect(bench_database) as conn:
        captured = conn.execute(
            "SELECT count(*) FROM orders_orderitem WHERE captured_at IS NOT NULL"
        ).fetchone()[0]
        unsent = conn.execute("SELECT count(*) FROM orders_order WHERE NOT is_send").fetchone()[0]
    assert captured == 1000
    assert unsent == 2 + 1  # 1/1000 of the past orders, and the template
    small_token = bigdata.small_channel(env, seeds.orders("SMALLTPL", 1, 1)[0])
    assert_captures_add_up(bench_database)
    with psycopg.connect(bench_database) as conn:
        small = [conn.execute(f"SELECT count(*) FROM {table} WHERE channel_id = %s",
                              [bigdata.SMALL_CHANNEL]).fetchone()[0]
                 for table in ("orders_order", "orders_orderitem", "capture_capture",
                               "events_event")]  # fmt: skip
    assert small == [bigdata.SMALL_CHANNEL_ORDERS] * 4
    fresh = seeds.orders("EXPLAINED", 1, 1)[0]
    plans = bigdata.explain(env, token, capture_body(fresh), small_token)
    requests = {plan["request"] for plan in plans}
    assert requests == {"baseline", "capture", "replay",
                        *(f"GET {path}" for path in bigdata.READS),
                        *(f"small channel: GET {path}" for path in bigdata.SMALL_CHANNEL_READS)}  # fmt: skip
    assert all(plan["generic"] and plan["custom"].strip() for plan in plans)
    # The small channel's pages read the channel's rows, not the list's order index
    # across every channel (which reaches the small channel's rows last).
    pages = {plan["request"]: plan["generic"] for plan in plans
             if plan["request"].startswith("small channel") and "LIMIT" in plan["sql"]}  # fmt: skip
    for request, whole_table in (("orders/", "order_placed_idx"),
                                 ("order_items/", "orders_orderitem_pkey"),
                                 ("captures/", "capture_created_idx"),
                                 ("events/", "events_event_pkey")):  # fmt: skip
        page = pages[f"small channel: GET {request}"]
        assert f"channel_id = {bigdata.SMALL_CHANNEL}" in page, page
        assert whole_table not in page, page
    assert any("capture_capture" in plan["sql"] and "INSERT" in plan["sql"] for plan in plans)
    admin = bigdata.admin_lists(env)  # every admin list opens, for both kinds of user
    assert {(row["user"], row["page"]) for row in admin} == {
        *(("superuser", page) for page in admin_lists.PAGES),
        *(("staff (one channel)", page) for page in admin_lists.PAGES if "/events/" not in page),
    }
    assert all(row["ms"] > 0 and row["statements"] > 0 for row in admin)


@pytest.mark.parametrize("given", [["--warmup", "-1"], ["--seconds", "0"], ["--seconds", "-2"]])
def test_the_benchmark_refuses_a_length_it_cannot_run(given, capsys):
    """`--warmup 0` is no warm-up (the smoke run's default). A negative warm-up or
    length went on to `wrk -d -1s`, which never ends: the run seeded, then hung until
    its subprocess timeout; `--seconds 0` silently ran 8 s."""
    from bench.run import parse_args

    assert parse_args(["--warmup", "0"]).warmup == 0
    with pytest.raises(SystemExit):
        parse_args(given)
    assert given[0] in capsys.readouterr().err
