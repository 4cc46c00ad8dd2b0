#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the browser tests: start a real qund (free port, temporary data directory, test
# clock on, root as server admin, lawyer as the compliance role, the repository's web/ as
# web_root, webhooks to a closed local port with one attempt so dead letters appear,
# mail to an aiosmtpd on a free loopback port saving into a Maildir), drive it with
# tests/browser/console.test.mjs, notify.test.mjs and console16.test.mjs (transfer, bulk
# removal, restore, approvals) in Debian's Chromium, stop qund and
# aiosmtpd by their PIDs (TERM, then KILL), and name the screenshot folder.  Before that,
# tests/browser/approve.test.mjs runs the phone approval flows with Chromium's virtual
# authenticator, and busy.test.mjs a sign-in while the password threads are full; they
# start and stop qund servers of their own on http://localhost:PORT (servers.mjs), the
# origin passkeys need.  BROWSER_TESTS picks files ("approve busy console notify
# console16" by default).  QUND and QUN may point at other qund and qun binaries (qun
# acts as the phone when it has `qun approve`).
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
QUND=${QUND:-$REPO/build/qund}
QUN=${QUN:-$REPO/build/qun}
SHOTS=${SHOTS:-$REPO/build/screenshots}
[ -x "$QUND" ] || { echo "browser tests: $QUND is missing; run make first" >&2; exit 2; }
[ -x /usr/bin/chromium ] || { echo "browser tests: /usr/bin/chromium is missing; run scripts/deps.sh" >&2; exit 2; }
if [ ! -d "$REPO/tests/browser/node_modules/playwright-core" ] || [ ! -f "$REPO/tests/browser/node_modules/axe-core/axe.min.js" ]; then
  (cd "$REPO/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

rm -f "$SHOTS"/*.png 2>/dev/null || true
# Every temporary file of the run (qund's data, the tests' downloads and keys) goes under
# one directory, removed at exit: the tests' own mkdtemp follows TMPDIR.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qun-browser.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
export TMPDIR="$TMP"
TESTS=${BROWSER_TESTS:-approve busy console notify console16}
rc=0
# Before the console's server starts: these files run servers of their own (servers.mjs).
for t in approve busy; do
  case " $TESTS " in
  *" $t "*) QUND="$QUND" SHOTS="$SHOTS" node "$REPO/tests/browser/$t.test.mjs" || rc=$? ;;
  esac
done
case " $TESTS " in
*" console "* | *" notify "* | *" console16 "*) ;;
*)
  echo "browser tests: screenshots in $SHOTS"
  exit $rc
  ;;
esac
PORT=$(/usr/bin/python3 "$(dirname "$0")/../api/free_port.py")
SMTP_PORT=$(/usr/bin/python3 "$(dirname "$0")/../api/free_port.py")
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$TMP/Maildir" >"$TMP/smtp.log" 2>&1 &
SMTP_PID=$!
QUN_TEST_CLOCK=1 "$QUND" --listen "127.0.0.1:$PORT" --data "$TMP/data" --set argon2_memlimit_kib=64 \
  --set admins=root --set compliance=lawyer --set "web_root=$REPO/web" \
  --set webhook_url=http://127.0.0.1:9/hook --set webhook_secret=browser-test-secret-0123 \
  --set webhook_max_attempts=1 --set "smtp_url=smtp://127.0.0.1:$SMTP_PORT" --set smtp_from=qun@example.test \
  --set "console_url=http://127.0.0.1:$PORT" >"$TMP/qund.log" 2>&1 &
PID=$!

stop() {
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    i=0
    while kill -0 "$PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
  kill -TERM "$SMTP_PID" 2>/dev/null || true
  wait "$SMTP_PID" 2>/dev/null || true
}
trap 'stop; rm -rf "$TMP"' EXIT INT TERM

i=0
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null; then
    echo "browser tests: qund did not become ready" >&2
    cat "$TMP/qund.log" >&2
    exit 1
  fi
  sleep 0.1
done

for t in $TESTS; do
  case $t in approve | busy) continue ;; esac
  QUN_URL="http://127.0.0.1:$PORT" QUN_DATA="$TMP/data" QUN_MAILDIR="$TMP/Maildir" SHOTS="$SHOTS" QUN="$QUN" \
    node "$REPO/tests/browser/$t.test.mjs" || rc=$?
done
stop # before reading the log: leak reports are written at exit
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP/qund.log"; then
  echo "browser tests: qund's log shows a sanitizer report" >&2
  rc=1
fi
if [ $rc -ne 0 ]; then
  cp "$TMP/qund.log" "$SHOTS/qund.log" # the whole log, kept beside the screenshots
  echo "--- qund log (last 40 lines; all of it in $SHOTS/qund.log) ---" >&2
  tail -n 40 "$TMP/qund.log" >&2
fi
echo "browser tests: screenshots in $SHOTS"
exit $rc
