#!/usr/bin/env bash
# make run: local PostgreSQL (unless DATABASE_URL), migrations, demo data, the webhook
# worker and gunicorn. Ctrl-C stops the worker, gunicorn, and the database if this run
# started it (its data stays).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export HOST=${HOST:-127.0.0.1}
export PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-omnitron.settings.dev}

started_database=0
worker=""
# Prometheus multiprocess mode: gunicorn's workers and the webhook worker write their
# samples here, and /metrics adds them up (omnitron/metrics.py).
PROMETHEUS_MULTIPROC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/omnitron-metrics.XXXXXX")
export PROMETHEUS_MULTIPROC_DIR
cleanup() {
  if [ -n "$worker" ]; then
    kill -TERM "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
  fi
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
  if [ "$started_database" = 1 ]; then scripts/pg.sh stop; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/pg.sh status >/dev/null 2>&1; then started_database=1; fi
  scripts/pg.sh start
  DATABASE_URL=$(scripts/pg.sh url)
  export DATABASE_URL
fi

.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py load_demo --base-url "http://$HOST:$PORT"
cat <<MSG

Serving http://$HOST:$PORT/ (Ctrl-C stops it; the database keeps its data)
  API docs:  http://$HOST:$PORT/api/docs/
  Readiness: http://$HOST:$PORT/readyz
  Webhooks:  python manage.py create_webhook http://127.0.0.1:9000/hook  (a worker is running)
  Metrics:   http://$HOST:$PORT/metrics
MSG
# The webhook worker (events/tasks.py) beside gunicorn.
.venv/bin/python manage.py webhook_worker &
worker=$!
.venv/bin/gunicorn omnitron.wsgi
