#!/bin/sh
# SPDX-License-Identifier: MIT
# make check-layers: dependencies run one way,
#     common <- store <- ledger <- core <- jobs <- http,  archive beside ledger,
# so an object file of a layer may use symbols of its own layer and of lower ones only
# (ledger and archive use neither each other nor anything above store).  Reads the
# objects' symbol tables with nm: every undefined symbol is looked up among the
# symbols the layers' objects define, and one defined higher up fails the check.
#   sh scripts/check-layers.sh OBJDIR      check OBJDIR/src/<layer>/*.o
#   sh scripts/check-layers.sh --self-test build two tiny layers, one calling up, and
#                                          require the check to refuse it
set -eu
LAYERS="common store ledger archive core jobs http"

rank() {
    case $1 in
    common) echo 0 ;; store) echo 1 ;; ledger | archive) echo 2 ;; core) echo 3 ;; jobs) echo 4 ;; http) echo 5 ;;
    esac
}

check() {
    obj=$1
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # symbol layer, for every global symbol a layer's objects define
    for l in $LAYERS; do
        for o in "$obj"/src/$l/*.o; do
            [ -e "$o" ] || continue
            nm --defined-only -g "$o" | awk -v l=$l 'NF >= 3 && $2 ~ /^[TDBRCVW]$/ {print $3, l}'
        done
    done | sort -u >"$tmp/defs"
    bad=0
    for l in $LAYERS; do
        for o in "$obj"/src/$l/*.o; do
            [ -e "$o" ] || continue
            nm -u "$o" | awk '{print $2}' | sort -u >"$tmp/undef"
            join "$tmp/undef" "$tmp/defs" | while read -r sym dl; do
                [ "$dl" = "$l" ] && continue
                if [ "$(rank "$dl")" -ge "$(rank "$l")" ]; then
                    echo "check-layers: ${o#"$obj"/} ($l) uses $sym, defined in $dl"
                fi
            done
        done
    done >"$tmp/violations"
    if [ -s "$tmp/violations" ]; then
        cat "$tmp/violations" >&2
        echo "check-layers: dependencies must run common <- store <- ledger|archive <- core <- jobs <- http" >&2
        return 1
    fi
    echo "check-layers: $(wc -l <"$tmp/defs") symbols in $(ls "$obj"/src/*/*.o | wc -l) objects, every call runs down"
}

self_test() {
    t=$(mktemp -d)
    mkdir -p "$t/src/common" "$t/src/core" "$t/src/http"
    printf 'int qun_core_fn(void);\nint qun_http_fn(void) { return qun_core_fn(); }\n' >"$t/src/http/h.c"
    printf 'int qun_core_fn(void) { return 1; }\n' >"$t/src/core/c.c"
    printf 'int qun_http_fn(void);\nint qun_common_fn(void) { return qun_http_fn(); }\n' >"$t/src/common/u.c"
    for f in "$t"/src/*/*.c; do ${CC:-cc} -c "$f" -o "${f%.c}.o"; done
    rm "$t/src/common/u.o"
    (check "$t" >/dev/null) || { echo "check-layers: self-test: a downward call was refused" >&2; rm -rf "$t"; return 1; }
    ${CC:-cc} -c "$t/src/common/u.c" -o "$t/src/common/u.o"
    if (check "$t" >/dev/null 2>&1); then
        echo "check-layers: self-test: an upward call (common -> http) was not caught" >&2
        rm -rf "$t"
        return 1
    fi
    rm -rf "$t"
    echo "check-layers: self-test: an upward call (common -> http) is refused, a downward one passes"
}

case ${1:-} in
--self-test) self_test ;;
"") echo "usage: $0 OBJDIR | --self-test" >&2; exit 2 ;;
*) check "$1" ;;
esac
