#!/bin/sh
# Run the API test suite against PostgreSQL: create a temporary cluster (as an
# unprivileged user: PostgreSQL refuses root), start it on a free loopback port, run
# tests/api with QUN_STORE=postgres (every qund gets its own database), and stop the
# cluster by its PID whatever happened.
#   QUND=... QUN=... [UNIT=build/asan/unit] sh tests/pg/run.sh [pytest args]
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/qun-pg.XXXXXX)
port=$(python3 "$here/../api/free_port.py")
cleanup() {
  sh "$here/cluster.sh" stop "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
pid=$(sh "$here/cluster.sh" start "$dir" "$port") || { cat "$dir"/*.log >&2; exit 1; }
echo "test-pg: PostgreSQL pid $pid on 127.0.0.1:$port ($dir)"
# The unit cases that need a server (the writer's group commit, the migrations) run
# first when UNIT names the unit-test binaries' directory.
if [ -n "${UNIT:-}" ]; then
  for t in writer migrate search; do
    QUN_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres" "$UNIT/store/$t" || exit 1
  done
fi
# PYTEST_JOBS tests at a time (pytest-xdist; most of a test's time is waiting), then
# the tests marked `cluster` alone: QUN_PG_DIR and QUN_PG_PORT let them stop and start
# the cluster the others use (tests/api is named for its conftest, which they import).
export QUN_STORE=postgres QUN_PG_URL="postgres://postgres@127.0.0.1:$port"
# Tests marked `alone` keep every core busy on purpose: not here, beside the browsers.
/usr/bin/python3 -m pytest -q -p no:cacheprovider -n "${PYTEST_JOBS:-4}" -m "not cluster and not alone" "$here/../api" "$here" "$@"
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && exit "$rc" # 5: a -k that selects none of them
QUN_PG_DIR="$dir" QUN_PG_PORT="$port" /usr/bin/python3 -m pytest -q -p no:cacheprovider -m cluster "$here/../api" "$here" "$@"
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && exit "$rc"
# The Matrix clients too, in a run of their own (their conftest loads tests/api's).
/usr/bin/python3 -m pytest -q -p no:cacheprovider -p no:warnings -n "${PYTEST_JOBS:-4}" "$here/../matrix" "$@"
rc=$?
[ "$rc" -eq 5 ] && rc=0
exit "$rc"
