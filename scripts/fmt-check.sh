#!/bin/sh
# SPDX-License-Identifier: MIT
# make fmt-check (run by make test): every tracked C file is formatted as
# .clang-format says; names the files `make fmt` would change.
set -eu
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files '*.c' '*.h'); do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "fmt-check: $f is not formatted (make fmt)" >&2
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "fmt-check: $(git ls-files '*.c' '*.h' | wc -l) C files formatted"
exit $bad
