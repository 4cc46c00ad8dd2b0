#!/bin/sh
# SPDX-License-Identifier: MIT
# sh scripts/beside.sh LOG QUIET BUSY: run the command QUIET beside the command BUSY and
# fail if either fails.  make test runs the browser suites (mostly waiting on pages)
# beside the PostgreSQL lane (busy on both cores): the lane slows by less than the
# browsers take alone (on 2026-12-05: 308 s -> 528 s, against 4 min 2 s of browsers alone).
# BUSY prints as it goes; QUIET's output is held in LOG and printed
# whole when both have ended, so that the two never interleave.
set -u
log=$1
quiet=$2
busy=$3
mkdir -p "$(dirname "$log")"
# QUIET in a process group of its own, so that an interrupt stops all of it: a shell
# without job control starts background commands with SIGINT ignored.
setsid sh -c "$quiet" >"$log" 2>&1 &
pid=$!
# Stopped (an interrupt, or scripts/bounded.sh's limit): QUIET's output so far is shown,
# for a look at where it was.
trap 'kill -TERM "-$pid" 2>/dev/null; echo "---- $quiet (stopped) ----"; cat "$log"; exit 130' INT TERM
sh -c "$busy"
busy_rc=$?
wait "$pid"
quiet_rc=$?
echo "---- $quiet (beside the above) ----"
cat "$log"
[ "$quiet_rc" -eq 0 ] || echo "beside.sh: $quiet failed ($quiet_rc)" >&2
[ "$busy_rc" -eq 0 ] || echo "beside.sh: $busy failed ($busy_rc)" >&2
[ "$quiet_rc" -eq 0 ] && [ "$busy_rc" -eq 0 ]
