#!/bin/sh
# SPDX-License-Identifier: MIT
# Benchmark 1 alone, for comparing builds:  sh bench/post_ab.sh ROUNDS QUND [QUND ...]
# Each round runs every given qund in turn (the order swaps every round, so load that
# comes and goes falls on each build alike): a fresh qund in a fresh directory, raw
# SQLite inserts (64 rows per transaction, bench/raw_sqlite.c), 2 s of warm-up posts,
# BENCH_POST_SECONDS (10) of posts under wrk exactly as bench/run.sh does, the raw
# baseline again, and one line per run:  `POST name=... posts_per_s=... raw_per_s=...
# ratio=... batch=... p50_ms=... p99_ms=... cpu_us_per_post=... threads=...` (qund's CPU
# time during the timed posts over the posts answered, in all and per busy thread).  raw_sqlite comes from bench/build.sh
# (BENCH_BIN, default build/bench).  With PERF=DIR, `perf record` (PERF_ARGS, default -g) samples qund during
# the timed posts of each run into DIR/<name>-<round>.data.
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: sh bench/post_ab.sh ROUNDS QUND [QUND ...]" >&2; exit 2; }
ROUNDS=$1
shift
BIN=${BENCH_BIN:-build/bench}
POST_S=${BENCH_POST_SECONDS:-10}
RAW_S=${BENCH_RAW_SECONDS:-3}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
QUND_THREADS=${BENCH_QUND_THREADS:-2}
[ -x "$BIN/raw_sqlite" ] || { echo "post_ab: no $BIN/raw_sqlite (sh bench/build.sh)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qun-post-ab.XXXXXX")
pid=""
stop_qund() { # TERM, then KILL after 5 s
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    timeout 5 sh -c "while kill -0 $pid 2>/dev/null; do sleep 0.1; done" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}
trap 'stop_qund; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# threads_cpu PID: "tid:ticks" of each thread (user + system clock ticks), by thread id.
threads_cpu() {
    for t in /proc/"$1"/task/*; do
        echo "$(basename "$t"):$(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')"
    done | sort -n | tr '\n' ' '
}
jfield() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }

one() { # one QUND ROUND
    qund=$1
    name=$(basename "$qund")
    d="$tmp/$name-$2"
    mkdir -p "$d"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url="http://127.0.0.1:$port"
    "$qund" --listen "127.0.0.1:$port" --data "$d/data" --threads "$QUND_THREADS" \
        --set argon2_memlimit_kib=8192 --set log_requests=false >"$d/qund.log" 2>&1 &
    pid=$!
    i=0
    until curl -fs "$url/readyz" >/dev/null 2>&1; do
        [ $i -lt 150 ] || { echo "post_ab: $name not ready" >&2; exit 1; }
        sleep 0.1
        i=$((i + 1))
    done
    post() { curl -fsS -X POST -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} -d "$2" "$url$1"; }
    post /v1/users '{"username":"bench","password":"bench-password-1"}' >/dev/null
    token=$(post /v1/sessions '{"username":"bench","password":"bench-password-1","device_id":"b","platform":"cli"}' | jfield token)
    gid=$(post /v1/groups '{"name":"bench"}' "$token" | jfield id)
    export QUN_BENCH_GROUP="$gid" QUN_BENCH_TOKEN="$token"
    metric() { curl -fs "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
    r1=$(field "$("$BIN/raw_sqlite" "$d" "$RAW_S" | grep '^batch64 ')" rows_per_s)
    rm -f "$d"/raw_*
    wrk -t"$WRK_THREADS" -c"$CONNS" -d2s -s bench/post_message.lua "$url" >/dev/null 2>&1
    c0=$(metric qun_store_commits_total)
    o0=$(metric qun_store_write_ops_total)
    cpu0=$(threads_cpu "$pid")
    perfpid=""
    if [ -n "${PERF:-}" ]; then
        mkdir -p "$PERF"
        perf record -q ${PERF_ARGS:--g} -p "$pid" -o "$PERF/$name-$2.data" -- sleep "$POST_S" >/dev/null 2>&1 &
        perfpid=$!
    fi
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${POST_S}s" -s bench/post_message.lua "$url" >"$d/wrk.txt" 2>&1
    [ -z "$perfpid" ] || wait "$perfpid" || true
    line=$(grep '^WRK ' "$d/wrk.txt")
    cpu1=$(threads_cpu "$pid")
    c1=$(metric qun_store_commits_total)
    o1=$(metric qun_store_write_ops_total)
    last=$(curl -fs -H "Authorization: Bearer $token" "$url/v1/groups/$gid" | jfield last_seq)
    stop_qund
    r2=$(field "$("$BIN/raw_sqlite" "$d" "$RAW_S" | grep '^batch64 ')" rows_per_s)
    rm -rf "$d"
    n=$(field "$line" requests)
    awk -v name="$name" -v round="$2" -v n="$n" -v us="$(field "$line" duration_us)" -v r1="$r1" -v r2="$r2" \
        -v c="$((c1 - c0))" -v o="$((o1 - o0))" -v p50="$(field "$line" p50_us)" -v p99="$(field "$line" p99_us)" \
        -v bad="$(field "$line" non2xx)/$(field "$line" sockerr)" -v last="$last" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
        -v cpu0="$cpu0" -v cpu1="$cpu1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { ps = n / (us / 1e6); raw = (r1 + r2) / 2;
                 # CPU time per post of each busy thread (ordered by thread id: the first loop,
                 # then the threads in the order qund starts them), and in all.
                 split(cpu0, a, " "); for (i in a) { split(a[i], kv, ":"); t0[kv[1]] = kv[2] }
                 k = split(cpu1, b, " "); total = 0; per = "";
                 for (i = 1; i <= k; i++) { split(b[i], kv, ":"); d = (kv[2] - t0[kv[1]]) / hz * 1e6 / n;
                     total += d; if (d >= 0.5) per = per (per == "" ? "" : "/") sprintf("%.1f", d) }
                 printf "POST name=%s round=%s posts_per_s=%.0f raw_per_s=%.0f ratio=%.3f batch=%.1f p50_ms=%.2f p99_ms=%.2f non2xx/sockerr=%s last_seq=%s load=%s cpu_us_per_post=%.1f threads=%s\n",
                        name, round, ps, raw, ps / raw, c ? o / c : 0, p50 / 1000, p99 / 1000, bad, last, load, total, per }'
}

r=1
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) = 1 ]; then order="$*"; else order=$(for q in "$@"; do echo "$q"; done | tac | tr '\n' ' '); fi
    for q in $order; do
        one "$q" "$r"
    done
    r=$((r + 1))
done
