#!/usr/bin/env bash
# make test: ruff, then pytest against a throwaway PostgreSQL cluster that is
# removed on exit, even on failure. Arguments go to pytest (make test ARGS=...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/blank-env.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .

# Browser tests drive Debian's Chromium (never a downloaded browser); the benchmark
# smoke test drives wrk; the slow-client tests put Debian's nginx in front of gunicorn;
# the PgBouncer and scale-out tests put Debian's pgbouncer in front of PostgreSQL.
# Each is installed when missing (as root), else its tests skip.
scripts/ensure-package.sh chromium chromium || true
scripts/ensure-package.sh wrk wrk || true
scripts/ensure-package.sh nginx nginx || true
scripts/ensure-package.sh pgbouncer pgbouncer || true

if [ -z "${DATABASE_URL:-}" ]; then
  PG_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/omnitron-test-pg.XXXXXX")
  PG_PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export PG_DATA_DIR PG_PORT PG_FAST=1
  trap 'scripts/pg.sh destroy' EXIT
  trap 'exit 130' INT TERM
  scripts/pg.sh start
  DATABASE_URL=$(scripts/pg.sh url)
  export DATABASE_URL
fi

.venv/bin/pytest "$@"
