#!/bin/sh
# SPDX-License-Identifier: MIT
# make fmt-check (run by make test): every tracked C file is formatted as
# .clang-format says; names the files `make fmt` would change.  clang-format reads the
# files 32 to a process, a process per core.
set -eu
cd "$(dirname "$0")/.."
out=$(git ls-files -z '*.c' '*.h' | xargs -0 -P "$(nproc)" -n 32 clang-format --dry-run -Werror 2>&1) || :
bad=$(printf '%s\n' "$out" | sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)
if [ -n "$bad" ]; then
    printf 'fmt-check: %s is not formatted (make fmt)\n' $bad >&2
    exit 1
fi
# Anything else clang-format said (a file it could not read, a bad .clang-format) fails too.
if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    exit 1
fi
echo "fmt-check: $(git ls-files '*.c' '*.h' | wc -l) C files formatted"
