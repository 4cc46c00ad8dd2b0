#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench (after bench/run.sh), or alone: sh bench/multi.sh
# Message posts per second, in one run on one machine:
#   1. one qund on SQLite (the default store)
#   2. one qund on PostgreSQL
#   3. two, then three qund on one PostgreSQL database and data directory
# Each case posts with wrk (bench/post_message.lua) for BENCH_MULTI_SECONDS after a
# 2 s warm-up, BENCH_CONNECTIONS connections in all; with several instances each wrk
# posts to a group of its own through its own instance (its share of the connections),
# as a load balancer spreading groups would.  The PostgreSQL cluster is a throwaway one
# (tests/pg/cluster.sh: a temporary directory, loopback, fsync on), stopped by PID.
set -eu
cd "$(dirname "$0")/.."

OUT=build/bench
SECS=${BENCH_MULTI_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
QUND_THREADS=${BENCH_QUND_THREADS:-2}
die() {
    echo "bench multi: $*" >&2
    exit 1
}
[ -x build/qund ] || make --no-print-directory binaries
command -v wrk >/dev/null || die "wrk is not installed"
mkdir -p "$OUT"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qun-bench-multi.XXXXXX")
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/qun-bench-pg.XXXXXX") # its own: cluster.sh hands it to nobody
pids=""
stop_all() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=""
}
cleanup() {
    stop_all
    sh tests/pg/cluster.sh stop "$pgdir" 2>/dev/null || true
    rm -rf "$tmp" "$pgdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
pgport=$(free_port)
sh tests/pg/cluster.sh start "$pgdir" "$pgport" >/dev/null || die "cannot start PostgreSQL: $(cat "$pgdir"/*.log)"
pg="postgres://postgres@127.0.0.1:$pgport"

# start_qund NAME DATA STORE: a qund on a free port; sets $url
start_qund() {
    port=$(free_port)
    url="http://127.0.0.1:$port"
    ./build/qund --listen "127.0.0.1:$port" --data "$2" --threads "$QUND_THREADS" --set "store=$3" \
        --set argon2_memlimit_kib=8192 --set log_requests=false >"$tmp/$1.log" 2>&1 &
    pids="$pids $!"
    i=0
    until curl -fs "$url/readyz" >/dev/null 2>&1; do
        [ $i -lt 150 ] || die "qund $1 not ready: $(tail -5 "$tmp/$1.log")"
        sleep 0.1
        i=$((i + 1))
    done
}
jfield() {
    sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}
post() { # post URL PATH JSON [TOKEN]
    curl -fsS -X POST -H 'Content-Type: application/json' ${4:+-H "Authorization: Bearer $4"} -d "$3" "$1$2"
}
# session URL USER: a token for USER (registered on first use)
session() {
    post "$1" /v1/users "{\"username\":\"$2\",\"password\":\"bench-password-1\"}" >/dev/null 2>&1 || true
    post "$1" /v1/sessions "{\"username\":\"$2\",\"password\":\"bench-password-1\",\"device_id\":\"$2\",\"platform\":\"cli\"}" |
        jfield token
}
field() {
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# load NAME URL TOKEN GROUP CONNS: wrk posts for SECS (after a warm-up); prints the WRK line
load() {
    QUN_BENCH_TOKEN=$3 QUN_BENCH_GROUP=$4 wrk -t1 -c"$5" -d2s -s bench/post_message.lua "$2" >/dev/null 2>&1 || true
    QUN_BENCH_TOKEN=$3 QUN_BENCH_GROUP=$4 wrk -t1 -c"$5" -d"${SECS}s" -s bench/post_message.lua "$2" \
        >"$OUT/wrk_multi_$1.txt" 2>&1 || die "wrk $1 failed"
    line=$(grep '^WRK ' "$OUT/wrk_multi_$1.txt") || die "wrk $1: no WRK line"
    [ "$(field "$line" non2xx)" = 0 ] && [ "$(field "$line" sockerr)" = 0 ] ||
        die "$1: failures: $line (see $OUT/wrk_multi_$1.txt)"
    echo "$line"
}
rate() {
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", n / (us / 1e6) }'
}
lat() {
    awk -v a="$(field "$1" p50_us)" -v b="$(field "$1" p99_us)" 'BEGIN { printf "p50 %.1f ms, p99 %.1f ms", a / 1000, b / 1000 }'
}
# one_case NAME STORE DATA: one instance, all connections
one_case() {
    start_qund "$1" "$3" "$2"
    tok=$(session "$url" bench)
    gid=$(post "$url" /v1/groups '{"name":"bench"}' "$tok" | jfield id)
    [ -n "$gid" ] || die "$1: no group"
    load "$1" "$url" "$tok" "$gid" "$CONNS"
    stop_all
}

echo "bench multi: SQLite, 1 qund (${SECS}s)"
sqlite_line=$(one_case sqlite "sqlite:$tmp/d1/qun.db" "$tmp/d1")
echo "bench multi: PostgreSQL, 1 qund (${SECS}s)"
psql "$pg/postgres" -qc "CREATE DATABASE bench1" >/dev/null
pg1_line=$(one_case pg1 "$pg/bench1" "$tmp/d2")
# n_case N: N qund on one PostgreSQL database (bench<N>) and data directory, each
# posting to a group of its own through its own wrk, CONNS/N connections each;
# writes the WRK lines to $tmp/n<N>.<i>.line
n_case() {
    psql "$pg/postgres" -qc "CREATE DATABASE bench$1" >/dev/null
    urls=""
    k=1
    while [ $k -le "$1" ]; do
        start_qund "pg$1_$k" "$tmp/n$1" "$pg/bench$1"
        urls="$urls $url"
        k=$((k + 1))
    done
    tok=$(session "$url" bench)
    waits=""
    k=1
    for u in $urls; do
        g=$(post "$u" /v1/groups "{\"name\":\"bench-$k\"}" "$tok" | jfield id)
        [ -n "$g" ] || die "$1 instances: no group on $u"
        load "pg$1_$k" "$u" "$tok" "$g" $((CONNS / $1)) >"$tmp/n$1.$k.line" &
        waits="$waits $!"
        k=$((k + 1))
    done
    for w in $waits; do wait "$w" || die "$1 instances: a wrk failed"; done
    stop_all
}
# sum_case N: the posts/s of n_case N, summed over its instances
sum_case() {
    total=0
    for f in "$tmp"/n"$1".*.line; do
        line=$(cat "$f")
        total=$((total + $(rate "$(field "$line" requests)" "$(field "$line" duration_us)")))
    done
    echo "$total"
}

echo "bench multi: PostgreSQL, 2 qund on one database (${SECS}s)"
n_case 2
echo "bench multi: PostgreSQL, 3 qund on one database (${SECS}s)"
n_case 3

s_rps=$(rate "$(field "$sqlite_line" requests)" "$(field "$sqlite_line" duration_us)")
p1_rps=$(rate "$(field "$pg1_line" requests)" "$(field "$pg1_line" duration_us)")
p2_rps=$(sum_case 2)
p3_rps=$(sum_case 3)
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
{
    echo
    echo "qun multi-instance bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(psql "$pg/postgres" -qAtc 'SHOW server_version')"
    echo "POST /v1/groups/{id}/messages, wrk ${SECS}s, $CONNS connections in all, qund --threads $QUND_THREADS"
    echo
    printf '%-44s %12s %10s  %s\n' "case" "posts/s" "vs SQLite" "latency"
    printf '%-44s %12s %10s  %s\n' "SQLite, 1 qund" "$s_rps" "1.00" "$(lat "$sqlite_line")"
    printf '%-44s %12s %10s  %s\n' "PostgreSQL, 1 qund" "$p1_rps" "$(ratio "$p1_rps" "$s_rps")" "$(lat "$pg1_line")"
    for n in 2 3; do
        sum=$p2_rps
        [ $n = 3 ] && sum=$p3_rps
        printf '%-44s %12s %10s  %s\n' "PostgreSQL, $n qund (sum)" "$sum" "$(ratio "$sum" "$s_rps")" ""
        i=1
        while [ $i -le $n ]; do
            line=$(cat "$tmp/n$n.$i.line")
            printf '%-44s %12s %10s  %s\n' "  instance $i" "$(rate "$(field "$line" requests)" "$(field "$line" duration_us)")" "" "$(lat "$line")"
            i=$((i + 1))
        done
    done
    echo
    echo "2 vs 1 PostgreSQL instances: $(ratio "$p2_rps" "$p1_rps")x"
    echo "3 vs 1 PostgreSQL instances: $(ratio "$p3_rps" "$p1_rps")x"
} | tee -a "$OUT/results.txt" | tee "$OUT/multi.txt"
