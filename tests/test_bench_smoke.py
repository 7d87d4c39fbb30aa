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
    assert_captures_add_up(bench_database)
