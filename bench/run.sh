#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench: measures qun against baselines taken in the same run on the same machine
# and reports ratios (absolute figures drift from run to run with the disk and the
# neighbours; a ratio to a baseline measured minutes apart drifts much less).
#   1. POST /v1/groups/{id}/messages under wrk  vs  raw SQLite inserts, 64 rows/txn
#   2. qun_message_post through the writer      vs  the same raw baseline, same process
#   3. GET /v1/groups/{id} under wrk            vs  GET /bench/hello on the same qund
# Durations and load can be changed through the environment (see bench/README.md).
set -eu
cd "$(dirname "$0")/.."

OUT=build/bench
POST_S=${BENCH_POST_SECONDS:-10}
GET_S=${BENCH_GET_SECONDS:-8}
RAW_S=${BENCH_RAW_SECONDS:-3}
STORE_S=${BENCH_STORE_SECONDS:-4}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
QUND_THREADS=${BENCH_QUND_THREADS:-2}

die() {
    echo "bench: $*" >&2
    exit 1
}

# ---- build the C benchmarks (qund and libqun.a come from `make binaries`) ----
[ -x build/qund ] && [ -f build/libqun.a ] || make --no-print-directory binaries
mkdir -p "$OUT"
CFLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wstrict-prototypes -Wshadow -Werror -Iinclude"
PKG_CFLAGS=$(pkg-config --cflags sqlite3 jansson libsodium)
PKG_LIBS=$(pkg-config --libs sqlite3 jansson libsodium)
# shellcheck disable=SC2086 # the flag lists are meant to split
cc $CFLAGS $PKG_CFLAGS -o "$OUT/raw_sqlite" bench/raw_sqlite.c bench/raw_insert.c $PKG_LIBS
# shellcheck disable=SC2086
cc $CFLAGS $PKG_CFLAGS -o "$OUT/store_bench" bench/store_bench.c bench/raw_insert.c \
    build/libqun.a $PKG_LIBS -lpthread

# ---- one qund on a free port in a temporary directory ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qun-bench.XXXXXX")
pid=""
stop_qund() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}
cleanup() {
    stop_qund
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
./build/qund --listen "127.0.0.1:$port" --data "$tmp/data" --threads "$QUND_THREADS" \
    --set argon2_memlimit_kib=8192 --set log_requests=false --set bench_hello=true \
    >"$tmp/qund.log" 2>&1 &
pid=$!
i=0
until curl -fs "$url/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "qund exited: $(tail -5 "$tmp/qund.log")"
    [ $i -lt 150 ] || die "qund not ready after 15s"
    sleep 0.1
    i=$((i + 1))
done

# jfield NAME: the string or number value of "NAME" in the JSON on stdin (flat answers only).
jfield() {
    sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}
post() { # post PATH JSON [TOKEN]
    curl -fsS -X POST -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} \
        -d "$2" "$url$1"
}
post /v1/users '{"username":"bench","password":"bench-password-1"}' >/dev/null
token=$(post /v1/sessions \
    '{"username":"bench","password":"bench-password-1","device_id":"bench","platform":"cli"}' |
    jfield token)
[ -n "$token" ] || die "no session token"
gid=$(post /v1/groups '{"name":"bench"}' "$token" | jfield id)
[ -n "$gid" ] || die "no group id"
auth="Authorization: Bearer $token"
curl -fs -H "$auth" "$url/v1/groups/$gid" >/dev/null || die "GET /v1/groups/$gid failed"

metric() {
    curl -fs "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
# wrkrun NAME SECONDS ARGS...: run wrk, keep its output, print the WRK line's fields.
wrkrun() {
    name=$1
    secs=$2
    shift 2
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" "$@" >"$OUT/wrk_$name.txt" 2>&1 ||
        die "wrk $name failed: $(cat "$OUT/wrk_$name.txt")"
    line=$(grep '^WRK ' "$OUT/wrk_$name.txt") || die "wrk $name: no WRK line"
    echo "$line"
}
# field LINE KEY: the value of KEY=... in a key=value line.
field() {
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
rate() { # requests and microseconds -> per second
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", n / (us / 1e6) }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'
}
check_ok() { # check_ok NAME LINE: every answer must have been a 2xx
    [ "$(field "$2" non2xx)" = 0 ] && [ "$(field "$2" sockerr)" = 0 ] ||
        die "$1: wrk saw failures: $2 (see $OUT/wrk_$1.txt)"
}

echo "bench: qund pid $pid on $url, data in $tmp"

# ---- 1. HTTP posts vs raw SQLite, raw measured right before against the same disk ----
# The raw baseline runs before and after the posts and the two are averaged, so a
# change in the disk's speed during the run (a noisy neighbour) hits both sides.
echo "bench: raw SQLite inserts (${RAW_S}s per mode)"
raw=$("$OUT/raw_sqlite" "$tmp" "$RAW_S") || die "raw_sqlite failed"
raw64=$(echo "$raw" | grep '^batch64 ')
raw1=$(echo "$raw" | grep '^batch1 ')
export QUN_BENCH_GROUP="$gid" QUN_BENCH_TOKEN="$token"
echo "bench: POST messages, warm-up 2s then ${POST_S}s"
wrkrun post_warmup 2 -s bench/post_message.lua "$url" >/dev/null
c0=$(metric qun_store_commits_total)
o0=$(metric qun_store_write_ops_total)
post_line=$(wrkrun post "$POST_S" -s bench/post_message.lua "$url")
check_ok post "$post_line"
c1=$(metric qun_store_commits_total)
o1=$(metric qun_store_write_ops_total)
last_seq=$(curl -fs -H "$auth" "$url/v1/groups/$gid" | jfield last_seq)
echo "bench: raw SQLite inserts again"
raw_again=$("$OUT/raw_sqlite" "$tmp" "$RAW_S") || die "raw_sqlite failed"
raw64b=$(echo "$raw_again" | grep '^batch64 ')
raw1b=$(echo "$raw_again" | grep '^batch1 ')

# ---- 3. GET group vs hello world on the same qund ----
# The two alternate in short rounds and the rounds are summed, so background load that
# comes and goes lands on both sides of the ratio rather than on one.
ROUNDS=${BENCH_GET_ROUNDS:-4}
round_s=$(awk -v t="$GET_S" -v n="$ROUNDS" 'BEGIN { r = int(t / n); print r < 1 ? 1 : r }')
echo "bench: GET /bench/hello and GET /v1/groups/{id}, warm-up 1s then $ROUNDS x ${round_s}s each"
wrkrun hello_warmup 1 -s bench/report.lua "$url/bench/hello" >/dev/null
wrkrun get_warmup 1 -s bench/report.lua -H "$auth" "$url/v1/groups/$gid" >/dev/null
hello_n=0 hello_us=0 get_n=0 get_us=0
r=1
while [ $r -le "$ROUNDS" ]; do
    hello_line=$(wrkrun hello "$round_s" -s bench/report.lua "$url/bench/hello")
    check_ok hello "$hello_line"
    get_line=$(wrkrun get "$round_s" -s bench/report.lua -H "$auth" "$url/v1/groups/$gid")
    check_ok get "$get_line"
    hello_n=$((hello_n + $(field "$hello_line" requests)))
    hello_us=$((hello_us + $(field "$hello_line" duration_us)))
    get_n=$((get_n + $(field "$get_line" requests)))
    get_us=$((get_us + $(field "$get_line" duration_us)))
    echo "  round $r: hello $(rate "$(field "$hello_line" requests)" "$(field "$hello_line" duration_us)")/s, group $(rate "$(field "$get_line" requests)" "$(field "$get_line" duration_us)")/s"
    r=$((r + 1))
done
stop_qund

# ---- 2. the store without HTTP, with its own raw baseline in the same process ----
echo "bench: store (${STORE_S}s raw, ${STORE_S}s with 64 submitters, then context runs)"
store=$("$OUT/store_bench" "$tmp" "$STORE_S") || die "store_bench failed"

# ---- the table ----
mean() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a + b) / 2 }'
}
raw64_rps=$(mean "$(field "$raw64" rows_per_s)" "$(field "$raw64b" rows_per_s)")
raw1_rps=$(mean "$(field "$raw1" rows_per_s)" "$(field "$raw1b" rows_per_s)")
post_rps=$(rate "$(field "$post_line" requests)" "$(field "$post_line" duration_us)")
hello_rps=$(rate "$hello_n" "$hello_us")
get_rps=$(rate "$get_n" "$get_us")
batch=$(awk -v c="$((c1 - c0))" -v o="$((o1 - o0))" 'BEGIN { printf "%.1f", c ? o / c : 0 }')
s_raw=$(echo "$store" | grep '^raw_batch64 ')
s_64=$(echo "$store" | grep '^store_64 ')
s_1=$(echo "$store" | grep '^store_1 ')
s_core=$(echo "$store" | grep '^core_txn64 ')
s_raw_rps=$(field "$s_raw" rows_per_s)
s_64_rps=$(field "$s_64" rows_per_s)
lat() { # p50/p99 of a WRK line in milliseconds
    awk -v a="$(field "$1" p50_us)" -v b="$(field "$1" p99_us)" \
        'BEGIN { printf "p50 %.2f ms, p99 %.2f ms", a / 1000, b / 1000 }'
}
verdict() { # verdict RATIO AIM
    awk -v r="$1" -v a="$2" 'BEGIN { print (r >= a ? "met" : "MISSED") }'
}
r_post=$(ratio "$post_rps" "$raw64_rps")
r_store=$(ratio "$s_64_rps" "$s_raw_rps")
r_get=$(ratio "$get_rps" "$hello_rps")

{
    echo "qun bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, SQLite $(pkg-config --modversion sqlite3)"
    echo "qund --threads $QUND_THREADS; wrk -t$WRK_THREADS -c$CONNS; data and raw files in $tmp (same filesystem)"
    echo
    printf '%-46s %14s %14s %7s  %s\n' "benchmark" "measured/s" "baseline/s" "ratio" "aim"
    printf '%-46s %14s %14s %7s  %s\n' "1. POST message over HTTP (wrk, ${POST_S}s)" \
        "$post_rps" "$raw64_rps" "$r_post" ">= 0.30 $(verdict "$r_post" 0.30)"
    printf '%-46s %14s %14s %7s\n' "   raw SQLite, 1 row per txn (context)" \
        "$raw1_rps" "$raw64_rps" "$(ratio "$raw1_rps" "$raw64_rps")"
    printf '%-46s %14s %14s %7s  %s\n' "2. qun_message_post via writer, 64 threads" \
        "$s_64_rps" "$s_raw_rps" "$r_store" "(no aim set; 0.30 as for 1.)"
    printf '%-46s %14s %14s %7s\n' "   same, 1 submitter thread (context)" \
        "$(field "$s_1" rows_per_s)" "$s_raw_rps" "$(ratio "$(field "$s_1" rows_per_s)" "$s_raw_rps")"
    printf '%-46s %14s %14s %7s\n' "   64 posts per writer op, 1 thread (context)" \
        "$(field "$s_core" rows_per_s)" "$s_raw_rps" "$(ratio "$(field "$s_core" rows_per_s)" "$s_raw_rps")"
    printf '%-46s %14s %14s %7s  %s\n' "3. GET /v1/groups/{id} vs GET /bench/hello" \
        "$get_rps" "$hello_rps" "$r_get" ">= 0.50 $(verdict "$r_get" 0.50)"
    echo
    echo "baselines: 1. raw SQLite, 64 rows per transaction, WAL, synchronous=FULL (bench/raw_sqlite.c),"
    echo "              mean of a run before and one after the posts"
    echo "           2. the same, run inside store_bench just before the store runs"
    echo "           3. GET /bench/hello (plain evhttp JSON handler) on the same qund"
    echo
    echo "details:"
    echo "  POST: $(field "$post_line" requests) requests, $(lat "$post_line"); writer: $((o1 - o0)) ops in $((c1 - c0)) commits = $batch ops/commit; group last_seq $last_seq"
    echo "  GET group: $get_n requests; last round $(lat "$get_line")"
    echo "  GET hello: $hello_n requests; last round $(lat "$hello_line")"
    echo "  raw_sqlite before posts: $raw64"
    echo "                           $raw1"
    echo "  raw_sqlite after posts:  $raw64b"
    echo "                           $raw1b"
    echo "  store_bench: $s_raw"
    echo "               $s_64"
    echo "               $s_1"
    echo "               $s_core"
} | tee "$OUT/results.txt"
