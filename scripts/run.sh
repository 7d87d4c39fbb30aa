#!/usr/bin/env bash
# make run: local PostgreSQL (unless DATABASE_URL), migrations, demo data, the webhook
# worker, and gunicorn behind nginx (deploy/nginx, as in production). Ctrl-C stops the
# worker, nginx, gunicorn, and the database if this run started it (its data stays).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/blank-env.sh

export HOST=${HOST:-127.0.0.1}
export PORT=${PORT:-8000}
# Where it listens: an IPv6 HOST takes brackets before its port ([::1]:8000).
if [[ $HOST == *:* && $HOST != \[* ]]; then address="[$HOST]:$PORT"; else address="$HOST:$PORT"; fi
bare_host=${HOST#[}; bare_host=${bare_host%]}  # as bash's /dev/tcp takes it
# Where this machine's clients connect, in what it prints: a HOST of every address
# (0.0.0.0, ::) is no address to connect to, nor a host name the app answers to.
case $bare_host in
  0.0.0.0) client_host=127.0.0.1; client="127.0.0.1:$PORT" ;;
  ::) client_host=::1; client="[::1]:$PORT" ;;
  *) client_host=$bare_host; client=$address ;;
esac
# Before anything starts: HOST is this machine's, PORT is free.
.venv/bin/python -m scripts.listen_check "$bare_host" "$PORT" "$address" || exit 1
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-omnitron.settings.dev}
# The proxy's limits per client (scripts/nginx.py): refused before anything starts.
for limit in PROXY_CONNECTIONS_PER_CLIENT PROXY_LARGE_BODIES_PER_TOKEN PROXY_LARGE_BODIES_PER_ADDRESS; do
  if [[ -n ${!limit:-} && ! ${!limit} =~ ^[1-9][0-9]*$ ]]; then
    echo "make run: $limit must be a whole number above 0" >&2
    exit 1
  fi
done

started_database=0
local_cluster=""
app=""
worker=""
proxy=""
proxy_dir=""
# Prometheus multiprocess mode: gunicorn's workers and the webhook worker write their
# samples here, and /metrics adds them up (omnitron/metrics.py).
PROMETHEUS_MULTIPROC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/omnitron-metrics.XXXXXX")
export PROMETHEUS_MULTIPROC_DIR
# gunicorn's own settings (PORT, WEB_CONCURRENCY, GUNICORN_TIMEOUT), checked before
# anything starts rather than after the banner.
.venv/bin/python -c 'import runpy; runpy.run_path("gunicorn.conf.py")' || {
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"; exit 1; }
stop() {  # a background process of this run, if it was started
  if [ -n "$1" ]; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$worker"  # first: its supervisor would start it again meanwhile
  stop "$app"
  stop "$proxy"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" "$proxy_dir"
  if [ "$started_database" = 1 ]; then scripts/pg.sh stop; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM  # Ctrl-C is how it is stopped: a clean stop, not make's error
# The terminal closed: stop as for Ctrl-C, writing nowhere (gunicorn and nginx would
# take a hangup for "reload", and the worker would be left running).
trap 'exec >/dev/null 2>&1; exit 0' HUP

if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/pg.sh status >/dev/null 2>&1; then started_database=1; fi
  scripts/pg.sh start
  DATABASE_URL=$(scripts/pg.sh url)
  export DATABASE_URL
  local_cluster=$DATABASE_URL
fi

.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py load_demo --base-url "http://$client"

# nginx answers on HOST:PORT and hands gunicorn only whole requests, so slow or idle
# clients hold nginx's connections, never gunicorn's few sync workers. gunicorn listens
# on a loopback port of its own (APP_PORT, a free one unless set). Without nginx (not
# root and not installed) gunicorn answers on HOST:PORT itself, with a warning.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"  # where Debian puts nginx
if scripts/ensure-package.sh nginx nginx; then
  APP_PORT=${APP_PORT:-$(.venv/bin/python -c 'from scripts.live import free_port; print(free_port())')}
  proxy_dir=$(mktemp -d "${TMPDIR:-/tmp}/omnitron-nginx.XXXXXX")
  listen=$address  # HOST=:: is every address, IPv4 too, as gunicorn takes it
  if [ "$bare_host" = "::" ]; then listen="$address ipv6only=off"; fi
  read -ra nginx_command < <(.venv/bin/python -m scripts.nginx "$proxy_dir" \
    "127.0.0.1:$APP_PORT" "$listen" "${API_MAX_BODY_BYTES:-4194304}")
  "${nginx_command[@]}" &
  proxy=$!
  for _ in $(seq 50); do  # until nginx listens, or says why it cannot
    kill -0 "$proxy" 2>/dev/null || { echo "make run: nginx did not start" >&2; exit 1; }
    if (exec 3<>"/dev/tcp/$client_host/$PORT") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export API_NUM_PROXIES=${API_NUM_PROXIES:-1}  # the client's address from X-Forwarded-For
  bind="127.0.0.1:$APP_PORT"
  metrics="http://127.0.0.1:$APP_PORT/metrics (gunicorn's own port: nginx does not serve it)"
else
  echo "make run: without nginx, gunicorn faces clients itself: a few idle connections" \
    "can hold all its workers (docs/operations.md)" >&2
  bind="$address"
  metrics="http://$client/metrics"
fi
# Commands in another terminal find the local cluster on its default port; on another
# (PG_PORT) they need its URL. A DATABASE_URL of the user's own is theirs to give.
manage=".venv/bin/python manage.py"
if [ -n "$local_cluster" ] && [ "$local_cluster" != "$(env -u PG_PORT -u PG_DATABASE scripts/pg.sh url)" ]; then
  manage="DATABASE_URL=$local_cluster $manage"
fi
cat <<MSG

Serving http://$client/ (Ctrl-C stops it; the database keeps its data)
  API docs:  http://$client/api/docs/
  Readiness: http://$client/readyz
  Webhooks:  $manage create_webhook http://127.0.0.1:9000/hook  (a worker is running)
  Metrics:   $metrics
MSG
# The webhook worker (events/tasks.py) beside gunicorn, started again whenever it ends
# (killed, crashed): with none, deliveries waited for good (docker-compose.yml's
# `restart: unless-stopped` does this in production). It runs in a session of its
# own, so that Ctrl-C reaches it once, from here: a second signal would end it at
# once, abandoning the deliveries it is sending.
supervise_worker() {
  set +e  # a child already gone is no error here: it is reaped below
  local child="" stopping=0 told=0
  tell() {  # one TERM: the worker stops gracefully (running deliveries finish)
    stopping=1
    if [ "$told" = 0 ] && [ -n "$child" ]; then told=1; kill -TERM "$child" 2>/dev/null; fi
  }
  trap tell INT TERM HUP
  while [ "$stopping" = 0 ]; do
    setsid .venv/bin/python manage.py webhook_worker &
    child=$!
    if [ "$stopping" = 1 ]; then tell; fi  # a signal before child=$!
    while kill -0 "$child" 2>/dev/null; do wait "$child"; done  # until reaped
    if [ "$stopping" = 0 ]; then
      echo "make run: the webhook worker ended; starting it again in 1 s" >&2
      sleep 1
    fi
  done
}
supervise_worker &
worker=$!
# In the background, waited for: bash runs a trap (a SIGTERM to make, which passes it
# on to this script) only once a foreground command ends, and gunicorn never would.
.venv/bin/gunicorn omnitron.wsgi --bind "$bind" &
app=$!
wait "$app"
