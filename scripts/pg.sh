#!/usr/bin/env bash
# A project-local PostgreSQL cluster: scripts/pg.sh start|stop|status|destroy|url
#
#   PG_DATA_DIR  data directory (default: .pgdata in the project, or a per-project
#                folder under /tmp when the postgres user cannot reach the project)
#   PG_PORT      TCP port on 127.0.0.1 (default 54329, away from a system server on 5432)
#   PG_DATABASE  database created on start (default omnitron)
#   PG_FAST=1    throwaway cluster: fsync and synchronous_commit off (tests only)
#   PG_PRIMARY_PORT  make the new cluster a streaming replica (hot standby, read-only)
#                of the local cluster on this port: pg_basebackup -R instead of initdb
#
# PostgreSQL refuses to run as root, so as root every server command runs as the
# `postgres` user. Logs go to $PG_DATA_DIR/server.log.
set -euo pipefail

PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$PROJECT_DIR/scripts/blank-env.sh"
PG_PORT=${PG_PORT:-54329}
PG_DATABASE=${PG_DATABASE:-omnitron}
PG_USER=postgres

die() { echo "pg.sh: $*" >&2; exit 1; }

# Checked before anything is created: PostgreSQL refused 70000 only after initdb had
# made a cluster, in lines of its own that did not name the variable.
[[ $PG_PORT =~ ^[1-9][0-9]{0,4}$ ]] && [ "$PG_PORT" -le 65535 ] \
  || die "PG_PORT: '$PG_PORT' is not a port number from 1 to 65535."

is_root() { [ "$(id -u)" -eq 0 ]; }

find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
}

ensure_bindir() {
  BINDIR=$(find_bindir)
  if [ -z "$BINDIR" ]; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
      echo "pg.sh: PostgreSQL server not found; installing Debian's postgresql package" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      BINDIR=$(find_bindir)
    fi
  fi
  [ -n "$BINDIR" ] || die "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql) or set DATABASE_URL to a server you have."
}

# Run a server command as the user that owns the cluster.
as_owner() {
  if is_root; then
    id "$PG_USER" >/dev/null 2>&1 || die "running as root needs the '$PG_USER' system user (Debian's postgresql package creates it)"
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

# The postgres user must be able to reach the data directory; /root is not reachable.
owner_can_reach() {
  local dir=$1
  if is_root; then runuser -u "$PG_USER" -- test -x "$dir" 2>/dev/null; else test -w "$dir"; fi
}

default_data_dir() {
  if owner_can_reach "$PROJECT_DIR"; then
    echo "$PROJECT_DIR/.pgdata"
  else
    echo "/tmp/omnitron-pg-$(printf '%s' "$PROJECT_DIR" | md5sum | cut -c1-10)"
  fi
}

PG_DATA_DIR=${PG_DATA_DIR:-$(default_data_dir)}

url() { echo "postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DATABASE"; }

is_running() {
  [ -f "$PG_DATA_DIR/postmaster.pid" ] && as_owner "$BINDIR/pg_ctl" -D "$PG_DATA_DIR" status >/dev/null 2>&1
}

init_cluster() {
  mkdir -p "$PG_DATA_DIR"
  if is_root; then chown "$PG_USER": "$PG_DATA_DIR"; fi
  chmod 700 "$PG_DATA_DIR"
  owner_can_reach "$PG_DATA_DIR" \
    || die "the $PG_USER user cannot reach $PG_DATA_DIR (a parent directory is closed to it); set PG_DATA_DIR elsewhere, e.g. under /tmp"
  as_owner "$BINDIR/initdb" -D "$PG_DATA_DIR" -U "$PG_USER" --auth=trust -E UTF8 --no-locale >/dev/null
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = ''"
    echo "max_connections = 200"
    echo "shared_preload_libraries = 'pg_stat_statements'"
    if [ "${PG_FAST:-0}" = 1 ]; then
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } | as_owner tee -a "$PG_DATA_DIR/postgresql.conf" >/dev/null
}

# A hot standby of the cluster on 127.0.0.1:$PG_PRIMARY_PORT: its base backup, with
# standby.signal and primary_conninfo (-R), streaming WAL from then on. The primary
# needs a replication entry in pg_hba.conf (initdb's defaults trust loopback).
clone_primary() {
  mkdir -p "$PG_DATA_DIR"
  if is_root; then chown "$PG_USER": "$PG_DATA_DIR"; fi
  chmod 700 "$PG_DATA_DIR"
  as_owner "$BINDIR/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U "$PG_USER" \
    -D "$PG_DATA_DIR" -R -X stream -c fast \
    || die "pg_basebackup from 127.0.0.1:$PG_PRIMARY_PORT failed"
  rm -f "$PG_DATA_DIR/server.log"
}

start() {
  ensure_bindir
  if [ ! -f "$PG_DATA_DIR/PG_VERSION" ]; then
    if [ -n "${PG_PRIMARY_PORT:-}" ]; then clone_primary; else init_cluster; fi
  fi
  if ! is_running; then
    as_owner "$BINDIR/pg_ctl" -D "$PG_DATA_DIR" -l "$PG_DATA_DIR/server.log" \
      -o "-p $PG_PORT" -w -t 30 start >/dev/null \
      || { tail -n 20 "$PG_DATA_DIR/server.log" >&2; die "PostgreSQL did not start (log above)"; }
  fi
  if [ -n "${PG_PRIMARY_PORT:-}" ]; then
    echo "pg.sh: replica of 127.0.0.1:$PG_PRIMARY_PORT running at $(url) (data: $PG_DATA_DIR)" >&2
    return
  fi
  local exists
  exists=$("$BINDIR/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'")
  if [ "$exists" != 1 ]; then
    "$BINDIR/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DATABASE"
  fi
  echo "pg.sh: PostgreSQL running at $(url) (data: $PG_DATA_DIR)" >&2
}

stop() {
  ensure_bindir
  if is_running; then
    as_owner "$BINDIR/pg_ctl" -D "$PG_DATA_DIR" -m fast -w stop >/dev/null
    echo "pg.sh: stopped ($PG_DATA_DIR)" >&2
  fi
}

status() {
  ensure_bindir
  if ! is_running; then echo "stopped (data: $PG_DATA_DIR)"; return 3; fi
  # The port it runs on (postmaster.pid's fourth line), whatever PG_PORT says now: a
  # cluster started with `make run PG_PORT=...` was reported on 54329.
  PG_PORT=$(sed -n 4p "$PG_DATA_DIR/postmaster.pid")
  echo "running: $(url) (data: $PG_DATA_DIR)"
}

destroy() {
  stop
  rm -rf "$PG_DATA_DIR"
  echo "pg.sh: removed $PG_DATA_DIR" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  destroy) destroy ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|destroy|url" >&2; exit 2 ;;
esac
