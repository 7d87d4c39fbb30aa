#!/usr/bin/env bash
# make run: local PostgreSQL (unless DATABASE_URL), migrations, demo data, gunicorn.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export HOST=${HOST:-127.0.0.1}
export PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-omnitron.settings.dev}

if [ -z "${DATABASE_URL:-}" ]; then
  # Stop the local database on exit only if this run started it; its data stays.
  if ! scripts/pg.sh status >/dev/null 2>&1; then
    trap 'scripts/pg.sh stop' EXIT
    trap 'exit 130' INT TERM
  fi
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
MSG
.venv/bin/gunicorn omnitron.wsgi
