#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the browser tests of real web Matrix clients: start a real qund with the Matrix
# adapter on (free port, temporary data directory, test clock on, cooling-off 0 so a
# dissolution takes effect at once), bundle hydrogen's and matrix-js-sdk's pages with
# esbuild into build/browser-matrix, serve them from a second origin (python3's static
# server on another loopback port, so the clients cross origins as a hosted client does),
# drive them with tests/browser-matrix/matrix.test.mjs in Debian's Chromium, and stop both
# servers by their PIDs (TERM, then KILL).  QUND may point at another qund binary.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/tests/browser-matrix
QUND=${QUND:-$REPO/build/qund}
SHOTS=${SHOTS:-$REPO/build/screenshots}
OUT=${OUT:-$REPO/build/browser-matrix}
[ -x "$QUND" ] || { echo "browser-matrix tests: $QUND is missing; run make first" >&2; exit 2; }
[ -x /usr/bin/chromium ] || { echo "browser-matrix tests: /usr/bin/chromium is missing; run scripts/deps.sh" >&2; exit 2; }
if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/hydrogen-view-sdk" ] ||
  [ ! -d "$HERE/node_modules/matrix-js-sdk" ] || [ ! -x "$HERE/node_modules/.bin/esbuild" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The pages: each entry bundled (hydrogen's olm.js has node-only branches, hence the
# externals), next to its index.html; hydrogen also needs its service worker, theme,
# fonts and download sandbox from the package.
HYD=$HERE/node_modules/hydrogen-view-sdk
rm -rf "$OUT"
mkdir -p "$OUT/hydrogen" "$OUT/jssdk" "$SHOTS"
cp "$HYD"/asset-build/assets/* "$OUT/hydrogen/"
cp "$HERE/hydrogen/index.html" "$HYD/lib-build/sw.js" "$OUT/hydrogen/"
"$HERE/node_modules/.bin/esbuild" "$HERE/hydrogen/main.js" --bundle --format=esm --platform=browser \
  --external:fs --external:path --external:crypto --log-level=warning --outfile="$OUT/hydrogen/app.js"
"$HERE/node_modules/.bin/esbuild" "$HERE/jssdk/main.js" --bundle --format=esm --platform=browser \
  --log-level=warning --outfile="$OUT/jssdk/app.js"
cp "$HERE/jssdk/index.html" "$OUT/jssdk/"

rm -f "$SHOTS"/matrix-*.png 2>/dev/null || true
free_port() {
  /usr/bin/python3 "$(dirname "$0")/../api/free_port.py"
}
PORT=$(free_port)
SPORT=$(free_port)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qun-browser-matrix.XXXXXX")
QUN_TEST_CLOCK=1 "$QUND" --listen "127.0.0.1:$PORT" --data "$TMP/data" --set argon2_memlimit_kib=64 \
  --set matrix=on --set matrix_server_name=qun.test --set cooling_off=0 --set purge_grace=3600 \
  >"$TMP/qund.log" 2>&1 &
PID=$!
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$OUT" "$SPORT" >"$TMP/static.log" 2>&1 &
SPID=$!

stop_pid() {
  if kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null || true
  fi
  wait "$1" 2>/dev/null || true
}
trap 'stop_pid "$SPID"; stop_pid "$PID"; rm -rf "$TMP"' EXIT INT TERM

i=0
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$SPORT/jssdk/index.html" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null || ! kill -0 "$SPID" 2>/dev/null; then
    echo "browser-matrix tests: qund or the static server did not become ready" >&2
    cat "$TMP/qund.log" "$TMP/static.log" >&2
    exit 1
  fi
  sleep 0.1
done

rc=0
QUN_URL="http://127.0.0.1:$PORT" PAGES_URL="http://127.0.0.1:$SPORT" SHOTS="$SHOTS" \
  node "$HERE/matrix.test.mjs" || rc=$?
stop_pid "$SPID"
stop_pid "$PID" # before reading the log: leak reports are written at exit
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP/qund.log"; then
  echo "browser-matrix tests: qund's log shows a sanitizer report" >&2
  rc=1
fi
if [ $rc -ne 0 ]; then
  echo "--- qund log (last 40 lines) ---" >&2
  tail -n 40 "$TMP/qund.log" >&2
fi
echo "browser-matrix tests: screenshots in $SHOTS/matrix-*.png"
exit $rc
