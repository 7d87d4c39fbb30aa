#!/bin/sh
# Container entry point: optional migrations (DJANGO_MIGRATE=1, for a single
# replica or a one-off job), then gunicorn as PID 1 (gunicorn.conf.py), or, with the
# argument `worker`, the webhook worker; any other arguments run as a command.
set -e
# gunicorn reads WEB_CONCURRENCY before its configuration file: set but blank, it is
# unset, as the settings read every variable (blank failed gunicorn's start).
case "${WEB_CONCURRENCY-x}" in *[![:space:]]*) ;; *) unset WEB_CONCURRENCY ;; esac
if [ "${DJANGO_MIGRATE:-0}" = "1" ]; then
  python manage.py migrate --noinput
fi
if [ "${1:-}" = "worker" ]; then
  exec python manage.py webhook_worker
fi
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
exec gunicorn omnitron.wsgi
