#!/bin/sh
# SPDX-License-Identifier: MIT
# qund with its message-search index switched off: benchmark 14's baseline over HTTP.
#   QUND_REAL=build/qund bench/qund-nosearch.sh [qund arguments]
# Starts the real qund once on the given --data directory (so the migrations run),
# stops it, drops the three triggers that feed the search index (search_tail,
# search_update, search_delete) and its watermark (search_state: without it qund does
# not look for messages to index at COMMIT, as before migration 0029), and execs the real qund with the
# same arguments, so the caller's PID is qund's. bench/post_ab.sh runs it beside the real
# qund, alternating, as it compares builds.
set -eu
real=${QUND_REAL:?QUND_REAL names the real qund}
data=""
prev=""
for a in "$@"; do
    [ "$prev" = "--data" ] && data=$a
    prev=$a
done
[ -n "$data" ] || { echo "qund-nosearch: no --data DIR" >&2; exit 2; }
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$real" --listen "127.0.0.1:$port" --data "$data" --set argon2_memlimit_kib=8192 >/dev/null 2>&1 &
pid=$!
i=0
until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    [ $i -lt 150 ] || { kill -KILL "$pid"; echo "qund-nosearch: qund not ready" >&2; exit 1; }
    sleep 0.1
    i=$((i + 1))
done
kill -TERM "$pid"
wait "$pid" || true
/usr/bin/python3 - "$data/qun.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for t in ("search_tail", "search_update", "search_delete"):
    db.execute(f"DROP TRIGGER {t}")
db.execute("DROP TABLE search_state")
db.commit()
EOF
exec "$real" "$@"
