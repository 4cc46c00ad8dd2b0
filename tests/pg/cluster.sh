#!/bin/sh
# A throwaway PostgreSQL cluster for the tests.  PostgreSQL refuses to run as root, so
# the cluster belongs to an unprivileged user (nobody unless $PG_USER) and lives in a
# directory of its own; it listens on 127.0.0.1 only, with trust authentication.
#   cluster.sh start DIR PORT   initdb (first time) and start; prints the postmaster PID
#   cluster.sh stop DIR         stop the postmaster by the PID in DIR/data/postmaster.pid
#   cluster.sh crash DIR        the same, immediate shutdown (as a crash: recovery at start)
set -eu
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
USER_=${PG_USER:-nobody}
as_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$USER_" -- "$@"; else "$@"; fi
}
cmd=$1 dir=$2
case "$cmd" in
start)
  port=$3
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$USER_" "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_user "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
  fi
  # fsync stays on: the durability tests kill qund, not PostgreSQL, but a test run
  # should measure the real thing.
  # -t: a start after a crash replays the WAL since the last checkpoint first, which on
  # a loaded machine took more than 30 s once (CI, 2026-12-05).
  as_user "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 240 \
    -o "-k $dir -p $port -h 127.0.0.1 -c max_connections=1000 -c shared_buffers=64MB" start >/dev/null
  head -1 "$dir/data/postmaster.pid"
  ;;
stop | crash)
  # stop: fast shutdown (SIGINT), which writes a shutdown checkpoint and may take a
  # while on a loaded machine; after 15 s, or at once for crash, immediate shutdown
  # (SIGQUIT: no checkpoint, crash recovery at the next start, nothing committed is
  # lost).  Both wait for the postmaster to exit, so a start may follow at once.
  pidfile="$dir/data/postmaster.pid"
  [ -f "$pidfile" ] || exit 0
  pid=$(head -1 "$pidfile")
  kill -0 "$pid" 2>/dev/null || exit 0
  if [ "$cmd" = stop ]; then
    kill -INT "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || exit 0
      sleep 0.1
    done
  fi
  kill -QUIT "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || exit 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  ;;
*)
  echo "usage: cluster.sh start DIR PORT | stop DIR | crash DIR" >&2
  exit 2
  ;;
esac
