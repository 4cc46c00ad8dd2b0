#!/bin/sh
# Run every unit-test binary under a directory (one per src/<layer>/<file>.c);
# fail if any fails.
set -u
dir=$1
fail=0
for t in $(find "$dir" -type f -perm -u+x | sort); do
  if "$t"; then :; else echo "FAIL: $t"; fail=1; fi
done
exit $fail
