#!/bin/sh
# Container entry point: optional migrations (DJANGO_MIGRATE on, for a single
# replica or a one-off job), then gunicorn as PID 1 (gunicorn.conf.py), or, with the
# argument `worker`, the webhook worker; any other arguments run as a command.
set -e
# gunicorn reads WEB_CONCURRENCY before its configuration file: set but blank, it is
# unset, as the settings read every variable (blank failed gunicorn's start).
case "${WEB_CONCURRENCY-x}" in *[![:space:]]*) ;; *) unset WEB_CONCURRENCY ;; esac
# On or off as every flag the settings read (docs/configuration.md); anything else
# stops here: `true` skipped the migrations silently, and /readyz passed over an
# empty schema.
migrate=$(printf '%s' "${DJANGO_MIGRATE:-}" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')
case "$migrate" in
  1|true|yes|on) python manage.py migrate --noinput ;;
  ""|0|false|no|off) ;;
  *) echo "DJANGO_MIGRATE is on or off (1/0, true/false, yes/no, on/off), not '$DJANGO_MIGRATE'." >&2
     exit 1 ;;
esac
if [ "${1:-}" = "worker" ]; then
  exec python manage.py webhook_worker
fi
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
# The image collects the static files when it is built, into the project's
# staticfiles/, with the manifest the app names them by: a DJANGO_STATIC_ROOT without
# one answered the admin's and the docs' pages 500.
static_root=$(printf '%s' "${DJANGO_STATIC_ROOT:-}" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
static_root=${static_root:-$(cd "$(dirname "$0")/.." && pwd)/staticfiles}
if [ ! -f "$static_root/staticfiles.json" ]; then
  echo "DJANGO_STATIC_ROOT: no collected static files in $static_root (the image collects them when it is built: leave it unset)." >&2
  exit 1
fi
exec gunicorn omnitron.wsgi
