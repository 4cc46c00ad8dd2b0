#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the C benchmarks against a built library:  sh bench/build.sh BUILD OUT [SANFLAGS]
# BUILD holds libqun.a (build, or build/asan with SANFLAGS "-fsanitize=address,undefined");
# the binaries go to OUT.  bench/run.sh builds them from the optimised library; make test
# builds them from the sanitizer one, so a benchmark that no longer compiles fails the run.
set -eu
cd "$(dirname "$0")/.."
LIB=$1/libqun.a
OUT=$2
SAN=${3:-}
mkdir -p "$OUT"
CFLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wstrict-prototypes -Wshadow -Werror -Iinclude $SAN"
PKG_CFLAGS=$(pkg-config --cflags sqlite3 jansson libsodium)
PKG_LIBS=$(pkg-config --libs sqlite3 jansson libsodium)
# libqun.a holds every backend and module: link what the server links, the Makefile's
# PKGS (read from it, so that a library added there cannot be missed here).
QUN_PKGS=$(make -pn fuzz 2>/dev/null | sed -n 's/^PKGS := //p' | head -n 1)
[ -n "$QUN_PKGS" ] || { echo "bench/build.sh: cannot read PKGS from the Makefile" >&2; exit 1; }
QUN_LIBS=$(pkg-config --libs $QUN_PKGS)
# shellcheck disable=SC2086 # the flag lists are meant to split
cc $CFLAGS $PKG_CFLAGS -o "$OUT/raw_sqlite" bench/raw_sqlite.c bench/raw_insert.c $PKG_LIBS
# shellcheck disable=SC2086
cc $CFLAGS $PKG_CFLAGS -o "$OUT/store_bench" bench/store_bench.c bench/raw_insert.c "$LIB" $PKG_LIBS $QUN_LIBS -lpthread
# shellcheck disable=SC2086
cc $CFLAGS $PKG_CFLAGS -o "$OUT/ledger_bench" bench/ledger_bench.c bench/raw_insert.c "$LIB" $PKG_LIBS $QUN_LIBS -lpthread
# shellcheck disable=SC2086
cc $CFLAGS $PKG_CFLAGS -o "$OUT/raw_delete" bench/raw_delete.c bench/raw_insert.c $PKG_LIBS
# shellcheck disable=SC2086
cc $CFLAGS $PKG_CFLAGS -o "$OUT/risk_bench" bench/risk_bench.c bench/raw_insert.c "$LIB" $PKG_LIBS $QUN_LIBS -lpthread
# shellcheck disable=SC2086
cc $CFLAGS -o "$OUT/fanout_load" bench/fanout_load.c $SAN
# shellcheck disable=SC2086
cc $CFLAGS -o "$OUT/mx_sync_load" bench/mx_sync_load.c $SAN
# shellcheck disable=SC2086
cc $CFLAGS -o "$OUT/mx_media_load" bench/mx_media_load.c $SAN
# shellcheck disable=SC2086
cc $CFLAGS $PKG_CFLAGS -o "$OUT/search_bench" bench/search_bench.c bench/raw_insert.c "$LIB" $PKG_LIBS $QUN_LIBS -lpthread
