#!/bin/sh
# SPDX-License-Identifier: MIT
# sh scripts/bounded.sh SECONDS COMMAND...: run COMMAND, and stop it with everything it
# started (TERM, then KILL 30 s later) if it runs past SECONDS.  make test bounds each
# of its stages so that a hang fails the run with the stage named, well inside CI's
# 90 minutes, instead of using them all up and printing nothing (CI, 2026-12-05).
set -u
limit=$1
shift
timeout -k 30 "$limit" "$@"
rc=$?
[ "$rc" -eq 124 ] && echo "bounded.sh: stopped after $limit s: $*" >&2
exit "$rc"
