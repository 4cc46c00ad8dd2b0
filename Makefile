# qun — one top-level Makefile.  `make` builds build/qund and build/qun;
# `make run` installs what is missing to build and run, builds and starts qund; `make test`
# also installs what the tests need, builds with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs every test; `make deb` builds the Debian package (docs/package.md).

O ?= build
SAN ?=
CC ?= cc
PKGS := libevent libevent_pthreads libevent_openssl openssl jansson sqlite3 libpq libsodium libcurl liboath libqrencode libarchive libzstd libcrypto icu-uc libsystemd libfido2 libcbor
CLI_PKGS := jansson libsodium libcurl sqlite3 libpq libqrencode

# Plain `make` warns; `make test` (and so CI) builds with WERROR=-Werror.
WERROR ?=
WARN := -Wall -Wextra -Wstrict-prototypes -Wshadow -Wno-unused-parameter $(WERROR)
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -Iinclude -Isrc/store $(WARN)
ifeq ($(SAN),1)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
else ifeq ($(SAN),fuzz)
  # libFuzzer instrumentation for the fuzz targets (scripts/fuzz.sh, CC=clang, O=build/fuzz).
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=fuzzer,address,undefined
else
  OPT := -O2
  LDSAN :=
endif
# EXTRA_CFLAGS, EXTRA_LDFLAGS: the distribution's flags (debian/rules passes dpkg-buildflags').
CFLAGS_ALL = $(BASE_CFLAGS) $(OPT) $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null) $(EXTRA_CFLAGS)
LIBS_QUND = $(shell pkg-config --libs $(PKGS)) -lpthread
# The CLI links libqun.a too: whichever of its objects a command pulls in brings its
# libraries, so the CLI is offered all of them and keeps only those it uses.
LIBS_QUN = -Wl,--as-needed $(shell pkg-config --libs $(CLI_PKGS) $(PKGS)) -lpthread

LIB_SRC := $(wildcard src/common/*.c src/store/*.c src/core/*.c src/jobs/*.c src/ledger/*.c src/archive/*.c)
HTTP_SRC := $(wildcard src/http/*.c)
QUND_SRC := $(wildcard src/qund/*.c)
QUN_SRC := $(wildcard src/qun/*.c)
SQL_SQLITE := $(sort $(wildcard src/store/sql/sqlite/*.sql))
SQL_PG := $(sort $(wildcard src/store/sql/pg/*.sql))

LIB_OBJ := $(patsubst %.c,$(O)/obj/%.o,$(LIB_SRC)) $(O)/obj/gen/migrations_sqlite.o \
	$(O)/obj/gen/migrations_pg.o
HTTP_OBJ := $(patsubst %.c,$(O)/obj/%.o,$(HTTP_SRC))
QUND_OBJ := $(patsubst %.c,$(O)/obj/%.o,$(QUND_SRC))
QUN_OBJ := $(patsubst %.c,$(O)/obj/%.o,$(QUN_SRC))
UNIT_SRC := $(wildcard tests/unit/*/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(O)/unit/%,$(UNIT_SRC))

.PHONY: all binaries unit deps deps-run run test test-unit test-api bench fmt clean

all: binaries
binaries: $(O)/qund $(O)/qun

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The migrations of each backend, embedded as C arrays (qun_<backend>_migrations).
$(O)/gen/migrations_sqlite.c: $(SQL_SQLITE) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-sql.sh sqlite $(SQL_SQLITE) > $@

$(O)/gen/migrations_pg.c: $(SQL_PG) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-sql.sh pg $(SQL_PG) > $@

$(O)/obj/gen/migrations_%.o: $(O)/gen/migrations_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(O)/libqun.a: $(LIB_OBJ)
	@ar rcs $@ $^

$(O)/qund: $(QUND_OBJ) $(HTTP_OBJ) $(O)/libqun.a
	$(CC) $(LDSAN) $(EXTRA_LDFLAGS) -o $@ $^ $(LIBS_QUND)

$(O)/qun: $(QUN_OBJ) $(O)/libqun.a
	$(CC) $(LDSAN) $(EXTRA_LDFLAGS) -o $@ $^ $(LIBS_QUN)

# Unit tests may #include the source they test; they link against the library and the HTTP objects.
$(O)/unit/%: tests/unit/%.c $(O)/libqun.a $(HTTP_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(HTTP_OBJ) $(O)/libqun.a $(LDSAN) $(LIBS_QUND)

unit: $(UNIT_BIN)

# What the tests need too (scripts/deps.sh test); deps-run: only what builds and runs qun.
deps:
	@sh scripts/deps.sh test

deps-run:
	@sh scripts/deps.sh run

run: deps-run
	@$(MAKE) --no-print-directory binaries
	@mkdir -p var
	@test -f var/qund.conf || cp qund.conf.default var/qund.conf
	./$(O)/qund --config var/qund.conf

# The builds of `make test` use every core (its suites run one after another).  Each
# long stage is bounded (STAGE_LIMIT seconds; each takes under 12 minutes here), so that
# a hang fails the run, naming the stage, long before CI's 90 minutes are up.
JOBS ?= $(shell nproc)
STAGE_LIMIT ?= 1800
STAGE = sh scripts/bounded.sh $(STAGE_LIMIT)
test: deps
	@$(MAKE) --no-print-directory fmt-check
	@$(MAKE) --no-print-directory -j$(JOBS) O=build/asan SAN=1 WERROR=-Werror binaries unit
	@$(MAKE) --no-print-directory O=build/asan SAN=1 check-layers
	@sh bench/build.sh build/asan build/asan/bench "-fsanitize=address,undefined"
	@$(STAGE) $(MAKE) --no-print-directory O=build/asan SAN=1 test-unit
	@$(STAGE) $(MAKE) --no-print-directory WERROR=-Werror fuzz-replay
	@$(STAGE) $(MAKE) --no-print-directory O=build/asan SAN=1 test-api test-matrix
	@$(STAGE) sh scripts/beside.sh build/asan/browsers.log \
		"$(MAKE) --no-print-directory O=build/asan SAN=1 test-browser test-browser-matrix" \
		"$(MAKE) --no-print-directory O=build/asan SAN=1 test-pg"
	@$(STAGE) $(MAKE) --no-print-directory test-deb
	@echo "make test: every suite passed; web console screenshots in $(CURDIR)/build/screenshots"

test-unit:
	@sh scripts/run-unit.sh $(O)/unit

# The API tests PYTEST_JOBS at a time (pytest-xdist): most of a test's time is waiting on
# a server, a clock or a stream, so four share two cores well.
PYTEST_JOBS ?= 4
export PYTEST_JOBS
# Then the tests marked `alone` (pytest.ini), which keep every core busy, by themselves.
test-api:
	QUND=$(abspath $(O)/qund) QUN=$(abspath $(O)/qun) /usr/bin/python3 -m pytest -q -n $(PYTEST_JOBS) -m "not alone" tests/api
	QUND=$(abspath $(O)/qund) QUN=$(abspath $(O)/qun) /usr/bin/python3 -m pytest -q -m alone tests/api

# Matrix clients (Debian's matrix-nio, weechat-matrix) against qund (tests/matrix, docs/matrix.md).
.PHONY: test-matrix
test-matrix:
	QUND=$(abspath $(O)/qund) QUN=$(abspath $(O)/qun) /usr/bin/python3 -m pytest -q -p no:warnings -n $(PYTEST_JOBS) tests/matrix

# The API tests again, against a temporary PostgreSQL cluster (tests/pg/run.sh).
.PHONY: test-pg
test-pg:
	QUND=$(abspath $(O)/qund) QUN=$(abspath $(O)/qun) UNIT=$(abspath $(O)/unit) sh tests/pg/run.sh

# The web console in Debian's Chromium (tests/browser/run.sh); screenshots in build/screenshots.
.PHONY: test-browser
test-browser:
	QUND=$(abspath $(O)/qund) QUN=$(abspath $(O)/qun) sh tests/browser/run.sh

# Real web Matrix clients (hydrogen, matrix-js-sdk) in Debian's Chromium, served from a
# second origin (tests/browser-matrix/run.sh); screenshots in build/screenshots/matrix-*.png.
.PHONY: test-browser-matrix
test-browser-matrix:
	QUND=$(abspath $(O)/qund) QUN=$(abspath $(O)/qun) sh tests/browser-matrix/run.sh

bench: deps
	@$(MAKE) --no-print-directory binaries
	@sh bench/run.sh
	@sh bench/multi.sh

# Only the store comparison: posts/s on SQLite, on PostgreSQL, and two qund on one PostgreSQL.
.PHONY: bench-multi
bench-multi:
	@$(MAKE) --no-print-directory binaries
	@sh bench/multi.sh

# The Debian package (debian/, docs/package.md): build/qun_<version>_amd64.deb, and its test
# (build, lintian, install into a throwaway root, run the packaged qund, remove).
.PHONY: deb test-deb
deb:
	@sh scripts/deps.sh deb
	@sh scripts/deb.sh

test-deb:
	@sh tests/deb/run.sh

# libFuzzer targets (tests/fuzz/, docs/fuzzing.md): build them, or replay each corpus briefly.
.PHONY: fuzz fuzz-replay
fuzz:
	@PKGS="$(PKGS) $(CLI_PKGS)" sh scripts/fuzz.sh build

fuzz-replay: fuzz
	@sh scripts/fuzz.sh replay

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Every C file as .clang-format has it: a file clang-format would change fails.
.PHONY: fmt-check check-layers
fmt-check:
	@sh scripts/fmt-check.sh

# Dependencies run one way (scripts/check-layers.sh); the check first proves on two
# tiny objects that it refuses an upward call.
check-layers: binaries
	@sh scripts/check-layers.sh --self-test
	@sh scripts/check-layers.sh $(O)/obj

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
