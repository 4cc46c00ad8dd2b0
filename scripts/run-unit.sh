#!/bin/sh
# Run every unit-test binary in a directory; fail if any fails.
set -u
dir=$1
fail=0
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  if "$t"; then :; else echo "FAIL: $t"; fail=1; fi
done
exit $fail
