#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench: measures qun against baselines taken in the same run on the same machine
# and reports ratios (absolute figures drift from run to run with the disk and the
# neighbours; a ratio to a baseline measured minutes apart drifts much less).
#   1. POST /v1/groups/{id}/messages under wrk  vs  raw SQLite inserts, 64 rows/txn
#   2. qun_message_post through the writer      vs  the same raw baseline, same process
#   3. GET /v1/groups/{id} under wrk            vs  GET /bench/hello on the same qund
#   4. ledger appends (writer and bulk)          vs  SHA-256 of the same entry bytes
#   5. inclusion / consistency proofs at 1M      vs  one indexed SQLite point lookup
#      (and at 10M with BENCH_LEDGER_10M=1)
#   6. dissolution request and marking          vs  the same for a 10-member group
#   7. purge of a 1M-message group               vs  raw SQLite DELETEs, 500 per txn;
#      GET and POST p99 while it purges          vs  the idle p99 just before
#   8. dissolution request with the risk rules   vs  the same request with no rule,
#      over 1M rows of activity history              same store, alternating
#   9. event fan-out to 100 and 500 open streams vs  the same posts with no stream open
#  11. Matrix /sync: a post waking 500 parked    vs  the same rounds over 500 SSE streams;
#      syncs; RSS per parked sync at 10 000          RSS per open SSE stream at 10 000;
#      initial sync, 100 groups x 100 messages       GET /v1/groups of the same user
#  12. Matrix media upload / download MB/s       vs  the /v1 file routes on the same files,
#      (64 KiB, 1 MiB, 16 MiB);                      alternating;
#      /sync with receipts and unread counts,        the same syncs of a second set of 100
#      a user in 100 groups                          groups built the same way, no receipt
#  13. qun admin backup while qund serves,      vs  cp -a of the stopped data directory;
#      1M messages and 1 GiB of files                GET p99 during it vs idle just before
#  14. message posts with the search index      vs  the same posts with its triggers dropped,
#      maintained (64 writers, in-process);          same process, alternating rounds;
#      POST over HTTP, the index maintained          the same qund with the search triggers
#                                                    dropped (bench/qund-nosearch.sh), alternating;
#      search p50/p99 over 1M messages in a group    the same group's latest page (GET .../messages)
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
LEDGER_S=${BENCH_LEDGER_SECONDS:-3}
PROOF_SAMPLES=${BENCH_PROOF_SAMPLES:-10000}
PURGE_MSGS=${BENCH_PURGE_MESSAGES:-1000000}
export BENCH_PURGE_MESSAGES="$PURGE_MSGS" BENCH_QUND_THREADS="$QUND_THREADS"

die() {
    echo "bench: $*" >&2
    exit 1
}

# ---- build the C benchmarks (qund and libqun.a come from `make binaries`) ----
[ -x build/qund ] && [ -f build/libqun.a ] || make --no-print-directory binaries
mkdir -p "$OUT"
sh bench/build.sh build "$OUT"

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

# ---- 4. and 5. the ledger, in-process ----
echo "bench: ledger appends (${LEDGER_S}s with 64 submitters, ${LEDGER_S}s bulk, then baselines)"
ledger=$("$OUT/ledger_bench" append "$tmp" "$LEDGER_S") || die "ledger_bench append failed"
echo "bench: ledger of 1M entries, then $PROOF_SAMPLES inclusion and consistency proofs"
proofs1m=$("$OUT/ledger_bench" proofs "$tmp" 1000000 "$PROOF_SAMPLES") || die "ledger_bench proofs failed"
proofs10m=""
if [ "${BENCH_LEDGER_10M:-0}" = 1 ]; then
    echo "bench: ledger of 10M entries (BENCH_LEDGER_10M=1; 2.5 to 11 minutes to build)"
    proofs10m=$("$OUT/ledger_bench" proofs "$tmp" 10000000 "$PROOF_SAMPLES") || die "ledger_bench proofs 10M failed"
fi

# ---- 8. the risk engine's cost per dissolution request, in-process ----
echo "bench: risk engine over 1M rows of history (${BENCH_RISK_REPS:-300} requests per side, ${BENCH_RISK_DURABLE_REPS:-30} durable)"
risk=$("$OUT/risk_bench" "$tmp" "${BENCH_RISK_REPS:-300}" "${BENCH_RISK_DURABLE_REPS:-30}") || die "risk_bench failed"

# ---- 6. and 7. dissolution and purge on a second qund, bulk seeded ----
echo "bench: raw SQLite DELETE of $PURGE_MSGS rows, 500 per transaction"
rawdel=$("$OUT/raw_delete" "$tmp" "$PURGE_MSGS") || die "raw_delete failed"
echo "bench: dissolutions and a purge of $PURGE_MSGS messages (governance.py)"
gov=$(python3 bench/governance.py build/qund "$tmp" "$OUT") || die "governance.py failed"

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

# ---- the governance and ledger table, appended to the same file ----
line() { # line TEXT NAME: the line of TEXT that starts with NAME
    echo "$1" | grep "^$2 " || die "missing result line $2"
}
below() { # below VALUE LIMIT: met when VALUE <= LIMIT
    awk -v r="$1" -v a="$2" 'BEGIN { print (r <= a ? "met" : "MISSED") }'
}
l_w=$(line "$ledger" append_writer64)
l_b=$(line "$ledger" append_bulk1000)
l_sha=$(line "$ledger" sha_leaf)
l_r64=$(line "$ledger" raw_batch64)
l_r1k=$(line "$ledger" raw_batch1000)
sha_ps=$(field "$l_sha" per_s)
w_ps=$(field "$l_w" per_s)
b_ps=$(field "$l_b" per_s)
d10=$(line "$gov" dissolve_members_10)
purge=$(line "$gov" purge)
raw_rd=$(line "$rawdel" raw_delete)
cost=$(line "$rawdel" batch_cost)
ig=$(line "$gov" idle_get)
bg=$(line "$gov" purge_get)
ip=$(line "$gov" idle_post)
bp=$(line "$gov" purge_post)
proof_rows() { # proof_rows LABEL LINES: inclusion and consistency p50/p99 vs the lookup
    lk=$(line "$2" lookup)
    for kind in inclusion consistency; do
        pl=$(line "$2" $kind)
        for p in p50 p99; do
            v=$(field "$pl" ${p}_us)
            aim=""
            [ "$1" = 10M ] && [ $p = p99 ] && aim="< 100 us $(below "$v" 100)"
            [ "$1" = 1M ] && [ $p = p99 ] && aim="(aim < 100 us is for 10M; 1M: $(below "$v" 100))"
            printf '%-46s %14s %14s %7s  %s\n' "5. $kind proof at $1, $p (us)" "$v" \
                "$(field "$lk" ${p}_us)" "$(ratio "$v" "$(field "$lk" ${p}_us)")" "$aim"
        done
    done
    ic=$(line "$2" inclusion_cold)
    echo "   $1 inclusion proofs, the first $(field "$ic" samples) on a fresh connection (its cache of upper levels filling): p50 $(field "$ic" p50_us) us, p99 $(field "$ic" p99_us) us"
    b=$(line "$2" build)
    echo "   $1 ledger built through qun_ledger_append in $(field "$b" seconds)s ($(field "$b" per_s) appends/s, 10 000 per transaction); $(field "$(line "$2" inclusion)" hashes_mean) hashes per proof on average; every inclusion proof verified"
}
{
    echo
    echo "qun governance and ledger bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
    echo
    printf '%-46s %14s %14s %7s  %s\n' "benchmark" "measured" "baseline" "ratio" "aim"
    printf '%-46s %14s %14s %7s  %s\n' "4a. ledger appends/s, writer, 64 threads" "$w_ps" "$sha_ps" \
        "$(ratio "$w_ps" "$sha_ps")" ">= 10 000/s $(verdict "$w_ps" 10000)"
    printf '%-46s %14s %14s %7s\n' "    vs raw SQLite rows, 64 appends/txn" "$w_ps" \
        "$(field "$l_r64" per_s)" "$(ratio "$w_ps" "$(field "$l_r64" per_s)")"
    printf '%-46s %14s %14s %7s  %s\n' "4b. ledger appends/s, 1000 per transaction" "$b_ps" "$sha_ps" \
        "$(ratio "$b_ps" "$sha_ps")" ">= 10 000/s $(verdict "$b_ps" 10000)"
    printf '%-46s %14s %14s %7s\n' "    vs raw SQLite rows, 1000 appends/txn" "$b_ps" \
        "$(field "$l_r1k" per_s)" "$(ratio "$b_ps" "$(field "$l_r1k" per_s)")"
    proof_rows 1M "$proofs1m"
    [ -z "$proofs10m" ] || proof_rows 10M "$proofs10m"
    for size in 10 1000 100000; do
        dl=$(line "$gov" dissolve_members_$size)
        printf '%-46s %14s %14s %7s  %s\n' "6. dissolution request, $size members (ms)" \
            "$(field "$dl" request_ms)" "$(field "$d10" request_ms)" \
            "$(ratio "$(field "$dl" request_ms)" "$(field "$d10" request_ms)")" "flat"
    done
    dl=$(line "$gov" dissolve_messages_1m)
    printf '%-46s %14s %14s %7s  %s\n' "6. dissolution request, 1M messages (ms)" \
        "$(field "$dl" request_ms)" "$(field "$d10" request_ms)" \
        "$(ratio "$(field "$dl" request_ms)" "$(field "$d10" request_ms)")" "flat"
    for size in 10 1000 100000; do
        dl=$(line "$gov" dissolve_members_$size)
        printf '%-46s %14s %14s %7s  %s\n' "6. request to dissolved, $size members (ms)" \
            "$(field "$dl" dissolved_ms)" "$(field "$d10" dissolved_ms)" \
            "$(ratio "$(field "$dl" dissolved_ms)" "$(field "$d10" dissolved_ms)")" "flat"
    done
    dl=$(line "$gov" dissolve_messages_1m)
    printf '%-46s %14s %14s %7s  %s\n' "6. request to dissolved, 1M messages (ms)" \
        "$(field "$dl" dissolved_ms)" "$(field "$d10" dissolved_ms)" \
        "$(ratio "$(field "$dl" dissolved_ms)" "$(field "$d10" dissolved_ms)")" "flat"
    printf '%-46s %14s %14s %7s  %s\n' "7. purge, messages deleted/s" "$(field "$purge" rows_per_s)" \
        "$(field "$raw_rd" rows_per_s)" "$(ratio "$(field "$purge" rows_per_s)" "$(field "$raw_rd" rows_per_s)")" ""
    r=$(ratio "$(field "$bg" p99_us)" "$(field "$ig" p99_us)")
    printf '%-46s %14s %14s %7s  %s\n' "7. GET group p99 while purging (us)" "$(field "$bg" p99_us)" \
        "$(field "$ig" p99_us)" "$r" "<= 2 $(below "$r" 2)"
    r=$(ratio "$(field "$bp" p99_us)" "$(field "$ip" p99_us)")
    printf '%-46s %14s %14s %7s  %s\n' "7. POST message p99 while purging (us)" "$(field "$bp" p99_us)" \
        "$(field "$ip" p99_us)" "$r" "<= 2 $(below "$r" 2)"
    rw=$(line "$risk" risk_request_rules)
    rn=$(line "$risk" risk_request_norules)
    re=$(line "$risk" risk_eval)
    dw=$(line "$risk" risk_durable_rules)
    dn=$(line "$risk" risk_durable_norules)
    printf '%-46s %14s %14s %7s  %s\n' "8. dissolution request, risk rules on (us)" "$(field "$rw" median_us)" \
        "$(field "$rn" median_us)" "$(ratio "$(field "$rw" median_us)" "$(field "$rn" median_us)")" "(none set)"
    printf '%-46s %14s %14s %7s\n' "   risk evaluation alone (us)" "$(field "$re" median_us)" \
        "$(field "$rn" median_us)" "$(ratio "$(field "$re" median_us)" "$(field "$rn" median_us)")"
    printf '%-46s %14s %14s %7s\n' "   committed request, rules on vs off (us)" "$(field "$dw" median_us)" \
        "$(field "$dn" median_us)" "$(ratio "$(field "$dw" median_us)" "$(field "$dn" median_us)")"
    echo
    echo "baselines: 4. SHA-256 leaf hashes (crypto_hash_sha256 of 0x00 || entry) of the entries the appends"
    echo "              wrote, $(field "$l_sha" entry_bytes_mean) bytes on average; raw SQLite rows = entry row + leaf + completed parents"
    echo "           5. one indexed point lookup of a random ledger_nodes row on a plain sqlite3 connection"
    echo "           6. the same request / wait for a group of 10 members (median of the repetitions)"
    echo "           7. raw SQLite DELETE of the same rows, 500 per transaction in index order (bench/raw_delete.c);"
    echo "              the idle p99 measured on the same qund just before the purge (wrk -t1 -c${BENCH_PURGE_CONNECTIONS:-8})"
    echo "           8. the same dissolution request (qun_diss_request) with risk_rules=0, same store and history,"
    echo "              alternating; medians, in a rolled-back transaction (committed for the last row)"
    echo
    echo "details:"
    echo "  ledger: $l_w"
    echo "          $l_b"
    echo "          $l_sha"
    echo "          $l_r64"
    echo "          $l_r1k"
    echo "  proofs 1M:"
    echo "$proofs1m" | sed 's/^/    /'
    [ -z "$proofs10m" ] || { echo "  proofs 10M:"; echo "$proofs10m" | sed 's/^/    /'; }
    echo "  dissolutions (sent 150 ms after the previous group was seen dissolved, see README):"
    echo "$gov" | grep -E '^(seed|dissolve_)' | sed 's/^/    /'
    echo "  purge: $purge"
    echo "         per batch on the full group, raw: $cost"
    echo "         $raw_rd"
    echo "  risk (bench/risk_bench.c):"
    echo "$risk" | sed 's/^/    /'
    echo "  wrk: $ig"
    echo "       $bg"
    echo "       $ip"
    echo "       $bp"
} | tee -a "$OUT/results.txt"

# ---- 10. export of a 1M-message, 1 GiB group vs tar | zstd | age of the same files ----
# BENCH_EXPORT=0 skips it; BENCH_EXPORT_MESSAGES / BENCH_EXPORT_FILE_MB shrink it.
if [ "${BENCH_EXPORT:-1}" != 0 ]; then
    echo "bench: export of ${BENCH_EXPORT_MESSAGES:-1000000} messages and ${BENCH_EXPORT_FILE_MB:-1024} MiB of files (export.py)"
    exp=$(BENCH_DIR="$tmp" QUND=build/qund python3 bench/export.py) || die "export.py failed"
    eq=$(echo "$exp" | grep '^export_qund ') || die "missing export_qund"
    ep=$(echo "$exp" | grep '^export_pipeline ') || die "missing export_pipeline"
    er=$(echo "$exp" | grep '^export_ratio ') || die "missing export_ratio"
    {
        echo
        echo "qun export bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
        printf '%-46s %14s %14s %7s  %s\n' "benchmark" "qund" "tar|zstd|age" "ratio" "aim"
        printf '%-46s %14s %14s %7s  %s\n' "10. export, MiB/s of member files" "$(field "$eq" mib_per_s)" \
            "$(field "$ep" mib_per_s)" "$(field "$er" ratio)" ">= 1"
        printf '%-46s %14s %14s %7s\n' "   end to end (POST until done), MiB/s" \
            "$(awk -v s="$(field "$eq" end_to_end_seconds)" -v r="$(field "$eq" mib_per_s)" \
               -v t="$(field "$eq" seconds)" 'BEGIN { printf "%.1f", r * t / s }')" \
            "$(field "$ep" mib_per_s)" "$(field "$er" end_to_end_ratio)"
        printf '%-46s %14s %14s\n' "   peak RSS (MiB)" "$(field "$eq" rss_peak_mib)" "$(field "$ep" rss_peak_mib)"
        echo "details:"
        echo "$exp" | sed 's/^/    /'
    } | tee -a "$OUT/results.txt"
fi

# ---- 9. event fan-out: its own qund per N (bench/fanout.py drives bench/fanout_load.c) ----
echo
echo "9. event fan-out (bench/fanout.py): deliveries/s, post -> last recipient, dissolution -> every member" |
    tee -a "$OUT/results.txt"
/usr/bin/python3 bench/fanout.py --qund build/qund --load "$OUT/fanout_load" \
    --n "${BENCH_FANOUT_N:-100,500}" --messages "${BENCH_FANOUT_MESSAGES:-2000}" | tee -a "$OUT/results.txt"

# ---- 11. Matrix /sync vs SSE: its own qund (bench/mx_sync.py drives bench/mx_sync_load.c) ----
# 10 000 parked requests need as many descriptors on each side: raise the soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo
echo "11. Matrix /sync (bench/mx_sync.py): wake-up of parked syncs, RSS per parked sync, initial sync" |
    tee -a "$OUT/results.txt"
/usr/bin/python3 bench/mx_sync.py --qund build/qund --load "$OUT/mx_sync_load" \
    --n "${BENCH_MX_N:-500}" --rounds "${BENCH_MX_ROUNDS:-30}" --parked "${BENCH_MX_PARKED:-10000}" |
    tee -a "$OUT/results.txt"

# ---- 12. Matrix media vs /v1 files, /sync with receipts vs without (bench/mx_media.py) ----
echo
echo "12. Matrix media and receipts (bench/mx_media.py): media MB/s vs /v1 files, /sync with receipts vs without" |
    tee -a "$OUT/results.txt"
/usr/bin/python3 bench/mx_media.py --qund build/qund --load "$OUT/mx_media_load" \
    --post-load "$OUT/mx_sync_load" --rounds "${BENCH_MEDIA_ROUNDS:-6}" |
    tee -a "$OUT/results.txt"

# ---- 13. online backup vs cp -a (bench/backup.py) ----
echo
echo "13. backup (bench/backup.py): qun admin backup while qund serves vs cp -a of the stopped data directory" |
    tee -a "$OUT/results.txt"
BENCH_DIR="$tmp" QUND=build/qund QUN=build/qun BENCH_BACKUP_MESSAGES="${BENCH_BACKUP_MESSAGES:-1000000}" \
    BENCH_BACKUP_FILE_MB="${BENCH_BACKUP_FILE_MB:-1024}" /usr/bin/python3 bench/backup.py 2>&1 |
    tee -a "$OUT/results.txt"

# ---- 14. message search: index upkeep on posts, latency at 1M messages (bench/search_bench.c) ----
echo
echo "14. search (bench/search_bench.c): posts with the FTS5 index kept vs its triggers dropped;" \
    "search p50/p99 at ${BENCH_SEARCH_MESSAGES:-1000000} messages vs the latest page" | tee -a "$OUT/results.txt"
search=$("$OUT/search_bench" "$tmp" "${BENCH_SEARCH_POST_SECONDS:-12}" "${BENCH_SEARCH_MESSAGES:-1000000}") ||
    die "search_bench failed"
echo "$search" | tee -a "$OUT/results.txt"
sr=$(echo "$search" | sed -n 's/^post_ratio value=//p')
echo "  posts through the writer, with the index / without: $sr (aim >= 0.8: $(awk -v r="$sr" 'BEGIN { print (r >= 0.8 ? "met" : "MISSED") }'))" |
    tee -a "$OUT/results.txt"
# The same comparison as a person's phone sees it: POST over HTTP (benchmark 1's wrk and
# loops), qund against the same qund with the search triggers dropped, alternating rounds.
ab=$(QUND_REAL=build/qund BENCH_BIN="$OUT" BENCH_POST_SECONDS="${BENCH_SEARCH_HTTP_SECONDS:-8}" \
    sh bench/post_ab.sh "${BENCH_SEARCH_HTTP_ROUNDS:-3}" build/qund bench/qund-nosearch.sh) || die "post_ab failed"
echo "$ab" | tee -a "$OUT/results.txt"
hr=$(echo "$ab" | awk '/^POST / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                       if (f["name"] == "qund") { on += f["posts_per_s"]; n1++ } else { off += f["posts_per_s"]; n2++ } }
                       END { printf "%.3f", (on / n1) / (off / n2) }')
echo "  POST over HTTP, with the index / without: $hr (aim >= 0.8: $(awk -v r="$hr" 'BEGIN { print (r >= 0.8 ? "met" : "MISSED") }'))" |
    tee -a "$OUT/results.txt"

# ---- 15. others' reads while people sign in (bench/signins.py) ----
echo
echo "15. sign-ins (bench/signins.py): GET p99 while two clients sign in at 4/s vs alone, same qund" |
    tee -a "$OUT/results.txt"
/usr/bin/python3 bench/signins.py --qund build/qund --seconds "${BENCH_SIGNIN_SECONDS:-6}" \
    --rounds "${BENCH_SIGNIN_ROUNDS:-3}" | tee -a "$OUT/results.txt"
