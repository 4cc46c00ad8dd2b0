#!/bin/sh
# Run every unit-test binary under a directory (one per src/<layer>/<file>.c); fail if
# any fails.  They run UNIT_JOBS at a time (default: the number of cores), each one's
# output printed whole when it ends.  store_fault, the long one, runs as one process
# per operation it walks (its argument picks one), so that it shares the cores too.
set -u
dir=$1
jobs=${UNIT_JOBS:-$(nproc)}
logs=$(mktemp -d /tmp/qun-unit-logs.XXXXXX)
trap 'rm -rf "$logs"' EXIT INT TERM

# One line per run: the binary, then its argument if any; store_fault's first (its
# longest walk, dissolution, at the head), so that the longest runs start first.
{
  find "$dir" -type f -perm -u+x -name store_fault | while read -r t; do
    for op in dissolution purge export import; do echo "$t $op"; done
  done
  find "$dir" -type f -perm -u+x ! -name store_fault | sort
} > "$logs/runs"

# Each run writes its own log, with a FAIL line when it fails, and shows it as it ends.
# shellcheck disable=SC2016 # expanded by the inner shell
xargs -P "$jobs" -L 1 sh -c '
  log="$0/$(echo "$*" | tr "/ " "__").log"
  if "$@" > "$log" 2>&1; then :; else echo "FAIL: $*" >> "$log"; fi
  cat "$log"' "$logs" < "$logs/runs"
! grep -q '^FAIL: ' "$logs"/*.log
