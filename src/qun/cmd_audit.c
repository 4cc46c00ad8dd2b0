/* SPDX-License-Identifier: MIT */
/* `qun audit`: checks the server's audit ledger (docs/ledger.md) with the library's
 * own Merkle and signed-note code, so a client trusts only a pinned verifier key.
 * `verify` re-derives every leaf hash, every stored subtree hash the server builds its
 * proofs from, and the signed root from the entries, and checks
 * that an earlier saved checkpoint is a prefix of the current one; `prove` writes a
 * self-contained proof bundle for one entry of a group's history and `check` verifies
 * such a bundle offline. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "qun/ledger.h"

#define BUNDLE_FORMAT "qun-audit-proof/v1"
#define TLOG_PROOF_HEADER "c2sp.org/tlog-proof@v1"
#define PAGE 1000
#define MAX_FILE (16u << 20)

/* ---- small helpers ---- */

/* Read a whole file ("-" is stdin) into a new NUL-terminated string. */
static int read_text(const char *path, char **out) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    *out = NULL;
    if (!f) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.open", path, qun_errno_words(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            char *grown = cap < MAX_FILE ? realloc(buf, cap * 2) : NULL;
            if (!grown) break;
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool failed = !buf || ferror(f) || !feof(f);
    if (f != stdin) fclose(f);
    if (failed) {
        free(buf);
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.read_large", path);
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.nul_bytes", path);
    }
    *out = buf;
    return QUN_EXIT_OK;
}

/* Write text to path through a temporary file in the same directory and a rename, so
 * a saved checkpoint is never half-written. */
static int write_text(const char *path, const char *text) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.path_too_long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", tmp, qun_errno_words(errno));
    bool ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write", path, qun_errno_words(saved));
    }
    return QUN_EXIT_OK;
}

static void hex_of(char out[2 * QUN_HASH + 1], const unsigned char h[QUN_HASH]) {
    sodium_bin2hex(out, 2 * QUN_HASH + 1, h, QUN_HASH);
}

/* Decode exactly 32 bytes of hex; false for anything else. */
static bool hash_from_hex(const char *s, unsigned char out[QUN_HASH]) {
    size_t n = 0;
    const char *end;
    return s && strlen(s) == 2 * QUN_HASH &&
           sodium_hex2bin(out, QUN_HASH, s, strlen(s), NULL, &n, &end) == 0 && n == QUN_HASH && *end == '\0';
}

/* Parse a verifier key given on the command line.  A bad key is a usage error. */
static int parse_key(const char *text, qun_note_key_t *key) {
    qun_err_t err = {0};
    qun_rc rc = qun_note_verifier_parse(text, key, &err);
    if (rc != QUN_OK)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.verifier_key",
                         qun_detail_words(qun_rc_name(rc), err.msg));
    return QUN_EXIT_OK;
}

/* GET the signed checkpoint as text into *out (owned). */
static int fetch_checkpoint(qun_cli_t *c, char **out) {
    qun_call_t call = {.method = "GET", .path = "/v1/ledger/checkpoint"};
    qun_resp_t resp;
    *out = NULL;
    int rc = qun_cli_call(c, &call, &resp);
    if (rc == QUN_EXIT_OK && !resp.raw)
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.checkpoint_empty");
    if (rc == QUN_EXIT_OK) {
        *out = resp.raw;
        resp.raw = NULL;
    }
    qun_resp_free(&resp);
    return rc;
}

/* ---- tree hashes from a list of leaf hashes ---- */

typedef struct {
    const unsigned char (*leaves)[QUN_HASH];
} leaves_t;

/* MTH of the perfect, aligned range [lo, hi) of the leaves: the qun_perfect_fn that
 * lets qun_merkle_range compute any root from the leaf hashes alone. */
static qun_rc perfect_from_leaves(void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH],
                                  qun_err_t *err) {
    const leaves_t *t = ctx;
    if (hi - lo == 1) {
        memcpy(out, t->leaves[lo], QUN_HASH);
        return QUN_OK;
    }
    unsigned char l[QUN_HASH], r[QUN_HASH];
    uint64_t mid = lo + (hi - lo) / 2;
    qun_rc rc = perfect_from_leaves(ctx, lo, mid, l, err);
    if (rc == QUN_OK) rc = perfect_from_leaves(ctx, mid, hi, r, err);
    if (rc == QUN_OK) qun_merkle_node(out, l, r);
    return rc;
}

/* The root of the first size leaves; RFC 6962 gives the empty tree SHA-256(""). */
static void root_of(const unsigned char (*leaves)[QUN_HASH], uint64_t size, unsigned char out[QUN_HASH]) {
    if (size == 0) {
        crypto_hash_sha256(out, (const unsigned char *)"", 0);
        return;
    }
    leaves_t t = {leaves};
    qun_err_t err;
    qun_merkle_range(perfect_from_leaves, &t, 0, size, out, &err);
}

/* ---- audit key ---- */

static int audit_key(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "audit key", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/ledger/key", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    const char *v = qun_jstr_or(out, "verifier_key", NULL);
    if (!v)
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.no_verifier_key");
    else if (c->json)
        qun_print_json(out);
    else
        printf("%s\n", v);
    json_decref(out);
    return rc;
}

/* ---- audit verify ---- */

/* What verify found: problems in the order found, and the lowest entry index named. */
typedef struct {
    json_t *problems; /* [{index, problem}], problem in English: --json is the same in every language */
    json_t *shown;    /* the problems in the user's language, for stderr */
    int64_t first_bad;
} findings_t;

/* Record a problem: the words of key, each %s replaced by the next string argument. */
static void problem(findings_t *f, int64_t index, const char *key, ...) {
    char text[512];
    va_list ap;
    va_start(ap, key);
    qun_vwf(text, sizeof text, true, key, ap);
    va_end(ap);
    json_array_append_new(
        f->problems,
        json_pack("{s:o, s:s}", "index", index >= 0 ? json_integer(index) : json_null(), "problem", text));
    va_start(ap, key);
    json_array_append_new(f->shown, json_string(qun_vwf(text, sizeof text, false, key, ap)));
    va_end(ap);
    if (index >= 0 && (f->first_bad < 0 || index < f->first_bad)) f->first_bad = index;
}

/* Record a library's refusal: its English detail en in --json, shown (its words in the
 * user's language) on stderr; key takes what (may be NULL) and the detail. */
static void problem_lib(findings_t *f, const char *key, const char *what, const char *en, const char *shown) {
    char text[512];
    if (what)
        qun_wf_en(text, sizeof text, key, what, en);
    else
        qun_wf_en(text, sizeof text, key, en);
    json_array_append_new(f->problems, json_pack("{s:n, s:s}", "index", "problem", text));
    if (what)
        qun_wf(text, sizeof text, key, what, shown);
    else
        qun_wf(text, sizeof text, key, shown);
    json_array_append_new(f->shown, json_string(text));
}

/* u in decimal, for a %s of the words (a ring of buffers: several in one call). */
static const char *num(uint64_t u) {
    static char ring[8][24];
    static int next;
    char *out = ring[next++ % 8];
    snprintf(out, 24, "%llu", (unsigned long long)u);
    return out;
}

/* Fetch the entries [0, size) page by page, record their leaf hashes and check every
 * entry whose text is visible: it must hash to its leaf hash and name its own index
 * as seq.  *complete is false when the listing skipped an index (then no root can be
 * computed from it). */
static int check_entries(qun_cli_t *c, uint64_t size, unsigned char (*leaves)[QUN_HASH], findings_t *f,
                         int64_t *texts, bool *complete) {
    int rc = QUN_EXIT_OK;
    *texts = 0;
    *complete = true;
    for (uint64_t start = 0; start < size && rc == QUN_EXIT_OK; start += PAGE) {
        uint64_t end = start + PAGE < size ? start + PAGE : size, want = start;
        char path[128];
        json_t *page = NULL, *it;
        size_t i;
        rc = qun_pathf(path, sizeof path, "/v1/ledger/entries?start=%I&end=%I", (int64_t)start, (int64_t)end);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &page);
        if (rc != QUN_EXIT_OK) break;
        json_array_foreach(json_object_get(page, "items"), i, it) {
            json_t *jidx = json_object_get(it, "index");
            int64_t idx = json_is_integer(jidx) ? json_integer_value(jidx) : -1;
            if (idx < (int64_t)want || idx >= (int64_t)end) {
                problem(f, (int64_t)want, "cli.audit.misplaced", num(want),
                        idx < 0 ? "-1" : num((uint64_t)idx));
                *complete = false;
                continue;
            }
            if ((uint64_t)idx > want) {
                problem(f, (int64_t)want, "cli.audit.jump", num(want), num((uint64_t)idx));
                *complete = false;
            }
            want = (uint64_t)idx + 1;
            if (!hash_from_hex(qun_jstr_or(it, "leaf_hash", NULL), leaves[idx])) {
                problem(f, idx, "cli.audit.leaf_hex", num((uint64_t)idx));
                *complete = false;
                continue;
            }
            const char *text = qun_jstr_or(it, "entry", NULL);
            if (!text) continue; /* hidden from this user; its leaf hash still counts */
            (*texts)++;
            unsigned char h[QUN_HASH];
            qun_merkle_leaf(h, text, strlen(text));
            if (sodium_memcmp(h, leaves[idx], QUN_HASH) != 0) {
                problem(f, idx, "cli.audit.text_hash", num((uint64_t)idx));
                continue;
            }
            /* The hash matches, so the text is what was logged at some index; seq says
             * which.  Entries swapped together with their leaf hashes show up here. */
            json_t *e = json_loads(text, 0, NULL);
            json_t *seq = json_object_get(e, "seq");
            if (!json_is_integer(seq))
                problem(f, idx, "cli.audit.no_seq", num((uint64_t)idx));
            else if (json_integer_value(seq) != idx) {
                char s[24];
                problem(f, idx, "cli.audit.moved", num((uint64_t)idx),
                        qun_fmt_int(json_integer_value(seq), s));
            }
            json_decref(e);
        }
        if (want < end) {
            problem(f, (int64_t)want, "cli.audit.short_page", num(want), num(want - start), num(end - start),
                    num(start), num(end));
            *complete = false;
        }
        json_decref(page);
    }
    return rc;
}

/* Fetch every stored subtree hash above the leaves (GET /v1/ledger/nodes, level by
 * level) and compare each with the hash recomputed here from the leaf hashes.  The
 * server builds its roots and proofs from these stored nodes, not from the leaves, so
 * a damaged one would make it serve proofs that fail while every entry and leaf looks
 * fine; this names it.  Needs the complete list of leaves; *checked counts the nodes. */
static int check_nodes(qun_cli_t *c, uint64_t size, const unsigned char (*leaves)[QUN_HASH], findings_t *f,
                       int64_t *checked) {
    int rc = QUN_EXIT_OK;
    *checked = 0;
    unsigned char(*cur)[QUN_HASH] = malloc((size / 2 ? size / 2 : 1) * QUN_HASH);
    if (!cur) return qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem_nodes", num(size / 2));
    const unsigned char(*below)[QUN_HASH] = leaves;
    for (int level = 1; level < 63 && (size >> level) > 0 && rc == QUN_EXIT_OK; level++) {
        uint64_t count = size >> level;
        /* In place: node i of this level only reads nodes 2i and 2i + 1 of the level
         * below, which sit at or after i. */
        for (uint64_t i = 0; i < count; i++)
            qun_merkle_node(cur[i], below[2 * i], below[2 * i + 1]);
        below = (const unsigned char(*)[QUN_HASH])cur;
        for (uint64_t start = 0; start < count && rc == QUN_EXIT_OK; start += PAGE) {
            uint64_t end = start + PAGE < count ? start + PAGE : count, want = start;
            char path[128];
            json_t *page = NULL, *it;
            size_t i;
            rc = qun_pathf(path, sizeof path, "/v1/ledger/nodes?level=%I&start=%I&end=%I", (int64_t)level,
                           (int64_t)start, (int64_t)end);
            if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &page);
            if (rc != QUN_EXIT_OK) break;
            json_array_foreach(json_object_get(page, "items"), i, it) {
                json_t *jidx = json_object_get(it, "index");
                int64_t idx = json_is_integer(jidx) ? json_integer_value(jidx) : -1;
                unsigned char stored[QUN_HASH];
                if (idx < (int64_t)want || idx >= (int64_t)end) continue; /* reported as missing below */
                for (; want < (uint64_t)idx; want++)
                    problem(f, -1, "cli.audit.node_missing", num((uint64_t)level), num(want),
                            num(want << level), num(((want + 1) << level) - 1));
                want = (uint64_t)idx + 1;
                (*checked)++;
                if (!hash_from_hex(qun_jstr_or(it, "hash", NULL), stored) ||
                    sodium_memcmp(stored, cur[idx], QUN_HASH) != 0)
                    problem(f, -1, "cli.audit.node_damaged", num((uint64_t)level), num((uint64_t)idx),
                            num((uint64_t)idx << level), num((((uint64_t)idx + 1) << level) - 1));
            }
            for (; want < end; want++)
                problem(f, -1, "cli.audit.node_missing", num((uint64_t)level), num(want), num(want << level),
                        num(((want + 1) << level) - 1));
            json_decref(page);
        }
    }
    free(cur);
    return rc;
}

/* Check a saved checkpoint against the current (size, root): signature, no shrinking,
 * the same root at the same size, our own prefix root, and the server's consistency
 * proof.  *summary receives what the saved checkpoint says. */
static int check_saved(qun_cli_t *c, const qun_note_key_t *key, const char *file, uint64_t size,
                       const unsigned char root[QUN_HASH], const unsigned char (*leaves)[QUN_HASH],
                       bool complete, findings_t *f, json_t **summary) {
    char *text = NULL;
    uint64_t old;
    unsigned char old_root[QUN_HASH], mine[QUN_HASH];
    qun_err_t err = {0};
    *summary = NULL;
    int rc = read_text(file, &text);
    if (rc != QUN_EXIT_OK) return rc;
    qun_rc vrc = qun_note_verify(key, text, &old, old_root, &err);
    if (vrc != QUN_OK) {
        problem_lib(f, "cli.audit.saved_bad", file, err.msg, qun_detail_words(qun_rc_name(vrc), err.msg));
        free(text);
        return QUN_EXIT_OK;
    }
    free(text);
    bool consistent = false;
    if (old > size) {
        if (old - size == 1)
            problem(f, (int64_t)size, "cli.audit.shrank_one", num(old), num(size), num(size));
        else
            problem(f, (int64_t)size, "cli.audit.shrank", num(old), num(size), num(size), num(old - 1));
    } else if (old == size) {
        consistent = sodium_memcmp(old_root, root, QUN_HASH) == 0;
        if (!consistent) problem(f, -1, "cli.audit.rewritten", num(old));
    } else if (old == 0) {
        consistent = true; /* every tree extends the empty one */
    } else {
        bool prefix_ok = true;
        if (complete) {
            root_of(leaves, old, mine);
            prefix_ok = sodium_memcmp(mine, old_root, QUN_HASH) == 0;
            if (!prefix_ok) problem(f, -1, "cli.audit.prefix_changed", num(old), num(old));
        }
        char path[128];
        json_t *ans = NULL, *h;
        size_t i;
        unsigned char proof[QUN_PROOF_MAX][QUN_HASH];
        int n = 0;
        bool parsed = true;
        rc = qun_pathf(path, sizeof path, "/v1/ledger/proof/consistency?old=%I&new=%I", (int64_t)old,
                       (int64_t)size);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &ans);
        if (rc != QUN_EXIT_OK) return rc;
        json_array_foreach(json_object_get(ans, "proof"), i, h) {
            if (n == QUN_PROOF_MAX || !hash_from_hex(json_string_value(h), proof[n]))
                parsed = false;
            else
                n++;
        }
        json_decref(ans);
        bool proof_ok = parsed && qun_merkle_verify_consistency(old, size, old_root, root,
                                                                (const unsigned char(*)[QUN_HASH])proof, n);
        /* The server builds its proof from its stored subtree hashes, which can agree
         * with both roots while the entries under them changed; the prefix root
         * computed here from the listed leaf hashes catches that. */
        consistent = proof_ok && prefix_ok;
        if (!proof_ok) problem(f, -1, "cli.audit.not_extension", num(old), num(size));
    }
    char hex[2 * QUN_HASH + 1];
    hex_of(hex, old_root);
    *summary = json_pack("{s:s, s:I, s:s, s:b}", "file", file, "tree_size", (json_int_t)old, "root", hex,
                         "consistent", consistent);
    return QUN_EXIT_OK;
}

static int audit_verify(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--key", NULL, true}, {"--checkpoint-file", NULL, true}, {"--save", NULL, true}, {0}};
    static const char usage[] = "audit verify --key K [--checkpoint-file OLD] [--save NEW]";
    qun_args_t a;
    qun_note_key_t key;
    qun_err_t err = {0};
    char *note = NULL;
    unsigned char(*leaves)[QUN_HASH] = NULL;
    unsigned char root[QUN_HASH] = {0}, mine[QUN_HASH];
    uint64_t size = 0;
    json_t *saved = NULL;
    findings_t f = {json_array(), json_array(), -1};
    int64_t texts = 0, nodes = 0;
    bool complete = false, root_ok = false;
    int rc = qun_args_parse(argc, argv, opts, 0, 0, usage, &a);
    if (rc != QUN_EXIT_OK) goto out;
    if (!a.val[0]) {
        /* The key fetched from the server it should check would prove nothing. */
        rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.verify_needs_key");
        goto out;
    }
    rc = parse_key(a.val[0], &key);
    if (rc == QUN_EXIT_OK) rc = fetch_checkpoint(c, &note);
    if (rc != QUN_EXIT_OK) goto out;
    qun_rc vrc = qun_note_verify(&key, note, &size, root, &err);
    if (vrc != QUN_OK) {
        /* Nothing else can be trusted without the signed root. */
        problem_lib(&f, "cli.audit.checkpoint_bad", NULL, err.msg,
                    qun_detail_words(qun_rc_name(vrc), err.msg));
        goto report;
    }
    leaves = calloc(size ? size : 1, QUN_HASH);
    if (!leaves) {
        rc = qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem_leaves", num(size));
        goto out;
    }
    rc = check_entries(c, size, leaves, &f, &texts, &complete);
    if (rc != QUN_EXIT_OK) goto out;
    if (complete) {
        root_of((const unsigned char(*)[QUN_HASH])leaves, size, mine);
        root_ok = sodium_memcmp(mine, root, QUN_HASH) == 0;
        if (!root_ok) problem(&f, -1, "cli.audit.root_differs", num(size));
        rc = check_nodes(c, size, (const unsigned char(*)[QUN_HASH])leaves, &f, &nodes);
        if (rc != QUN_EXIT_OK) goto out;
    }
    if (a.val[1])
        rc = check_saved(c, &key, a.val[1], size, root, (const unsigned char(*)[QUN_HASH])leaves, complete,
                         &f, &saved);
    if (rc != QUN_EXIT_OK) goto out;

report:;
    bool ok = json_array_size(f.problems) == 0;
    /* Only a checkpoint that passed every check is worth pinning for the next run. */
    if (ok && a.val[2]) rc = write_text(a.val[2], note);
    if (rc != QUN_EXIT_OK) goto out;
    char hex[2 * QUN_HASH + 1];
    hex_of(hex, root);
    if (c->json) {
        json_t *j =
            json_pack("{s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:b, s:o, s:o, s:O, s:o}", "ok", ok, "origin",
                      key.name, "tree_size", (json_int_t)size, "root", hex, "entries_checked",
                      (json_int_t)texts, "entries_hidden", (json_int_t)(complete ? (int64_t)size - texts : 0),
                      "nodes_checked", (json_int_t)nodes, "root_matches", root_ok, "first_bad_index",
                      f.first_bad >= 0 ? json_integer(f.first_bad) : json_null(), "saved_checkpoint",
                      saved ? json_incref(saved) : json_null(), "problems", f.problems, "saved_to",
                      ok && a.val[2] ? json_string(a.val[2]) : json_null());
        qun_print_json(j);
        json_decref(j);
    } else if (note && leaves) {
        char n1[24], n2[24], line[300], hidden[80] = "";
        qun_say("cli.audit_checkpoint", key.name, qun_fmt_int((int64_t)size, n1));
        if (complete && (int64_t)size > texts)
            qun_wf(hidden, sizeof hidden, "cli.audit_hidden", qun_fmt_int((int64_t)size - texts, n2));
        printf("%s%s\n", qun_wf(line, sizeof line, "cli.audit_entries", n1, qun_fmt_int(texts, n2)), hidden);
        if (complete) qun_say("cli.audit_nodes", qun_fmt_int(nodes, n2));
        qun_say("cli.audit_root", qun_w(!complete ? "cli.audit_root.missing"
                                        : root_ok ? "cli.audit_root.ok"
                                                  : "cli.audit_root.bad"));
        if (saved)
            qun_say("cli.audit_saved", qun_fmt_int(qun_jint(saved, "tree_size"), n2), a.val[1],
                    qun_w(json_is_true(json_object_get(saved, "consistent")) ? "cli.audit_saved.ok"
                                                                             : "cli.audit_saved.bad"));
        if (ok && a.val[2]) qun_say("cli.audit_saved_to", a.val[2]);
    }
    if (!ok) {
        size_t i;
        json_t *p;
        /* Every finding on stderr; the first names the first bad index when there is one. */
        json_array_foreach(f.shown, i, p)
            qun_cli_fail(QUN_EXIT_FAIL, "LEDGER_INVALID", "%s", json_string_value(p));
        char n[24];
        if (f.first_bad >= 0) qun_hint("cli.audit_first_bad", qun_fmt_int(f.first_bad, n));
        rc = QUN_EXIT_FAIL;
    } else if (!c->json) {
        qun_say("cli.audit_ok");
    }
out:
    json_decref(f.problems);
    json_decref(f.shown);
    json_decref(saved);
    free(leaves);
    free(note);
    return rc;
}

/* ---- proof bundles ---- */

/* The C2SP tlog-proof@v1 text for (index, proof, checkpoint): header, index line,
 * base64 proof hashes from the leaf's sibling up, an empty line, the checkpoint. */
static char *tlog_proof_text(uint64_t index, const unsigned char (*proof)[QUN_HASH], int n,
                             const char *checkpoint) {
    size_t cap = 128 + (size_t)n * 48 + strlen(checkpoint), len;
    char *out = malloc(cap);
    if (!out) return NULL;
    len = (size_t)snprintf(out, cap, "%s\nindex %llu\n", TLOG_PROOF_HEADER, (unsigned long long)index);
    for (int i = 0; i < n; i++) {
        sodium_bin2base64(out + len, cap - len, proof[i], QUN_HASH, sodium_base64_VARIANT_ORIGINAL);
        len += strlen(out + len);
        out[len++] = '\n';
    }
    snprintf(out + len, cap - len, "\n%s", checkpoint);
    return out;
}

/* Parse a tlog-proof@v1 text.  *checkpoint points into text.  False with *why set to
 * the words' key of any deviation from the format. */
static bool tlog_proof_parse(const char *text, uint64_t *index, unsigned char (*proof)[QUN_HASH], int *n,
                             const char **checkpoint, const char **why) {
    const char *p = text, *nl;
    *n = 0;
    size_t hl = strlen(TLOG_PROOF_HEADER);
    if (strncmp(p, TLOG_PROOF_HEADER, hl) != 0 || p[hl] != '\n') return *why = "cli.tlog.header", false;
    p += hl + 1;
    if (strncmp(p, "extra ", 6) == 0) { /* opaque and unauthenticated: skipped */
        if (!(nl = strchr(p, '\n'))) return *why = "cli.tlog.extra", false;
        p = nl + 1;
    }
    if (strncmp(p, "index ", 6) != 0) return *why = "cli.tlog.no_index", false;
    p += 6;
    size_t digits = strspn(p, "0123456789");
    int64_t v;
    char num[24];
    if (digits == 0 || digits > 18 || p[digits] != '\n' || (digits > 1 && p[0] == '0'))
        return *why = "cli.tlog.index_digits", false;
    memcpy(num, p, digits);
    num[digits] = '\0';
    if (!qun_parse_uint(num, &v)) return *why = "cli.tlog.index_range", false;
    *index = (uint64_t)v;
    p += digits + 1;
    while (*p != '\n') {
        if (!*p || !(nl = strchr(p, '\n'))) return *why = "cli.tlog.no_end", false;
        size_t got;
        if (*n == QUN_PROOF_MAX ||
            sodium_base642bin(proof[*n], QUN_HASH, p, (size_t)(nl - p), NULL, &got, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            got != QUN_HASH)
            return *why = "cli.tlog.bad_hash", false;
        (*n)++;
        p = nl + 1;
    }
    *checkpoint = p + 1;
    return true;
}

static int audit_prove(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--index", NULL, true}, {"--key", NULL, true}, {"--output", "-o", true}, {0}};
    static const char usage[] = "audit prove <group> [--index N] [--key K] [-o FILE]";
    qun_args_t a;
    qun_note_key_t key;
    qun_err_t err = {0};
    json_t *hist = NULL, *keyans = NULL, *incl = NULL, *chosen = NULL, *it, *bundle = NULL;
    char *note = NULL, *tlog = NULL, *text = NULL, path[512];
    const char *vkey;
    int64_t want = -1;
    size_t i;
    unsigned char root[QUN_HASH], leaf[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    uint64_t size;
    int n = 0;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (a.val[0] && !qun_parse_uint(a.val[0], &want))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.index");
    /* The bundle names the group by id, also when it was given by name. */
    char gid[128];
    rc = qun_group_ref(c, a.pos[0], gid, sizeof gid);
    if (rc != QUN_EXIT_OK) return rc;
    a.pos[0] = gid;
    /* The entry text: the group's history holds it for its members and owner. */
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/history", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &hist);
    if (rc != QUN_EXIT_OK) goto out;
    json_array_foreach(json_object_get(hist, "items"), i, it) if (want < 0 || qun_jint(it, "index") == want)
        chosen = it;
    if (!chosen) {
        rc = want < 0 ? qun_failw(QUN_EXIT_FAIL, "ENTRY_NOT_FOUND", "cli.err.no_entries", a.pos[0])
                      : qun_failw(QUN_EXIT_FAIL, "ENTRY_NOT_FOUND", "cli.err.entry_not_found",
                                  num((uint64_t)want), a.pos[0]);
        goto out;
    }
    const char *entry = qun_jstr_or(chosen, "entry", NULL);
    int64_t index = qun_jint(chosen, "index");
    if (!entry) {
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.no_entry_text");
        goto out;
    }
    if (a.val[1]) {
        vkey = a.val[1];
    } else {
        rc = qun_cli_json(c, "GET", "/v1/ledger/key", NULL, &keyans);
        if (rc != QUN_EXIT_OK) goto out;
        vkey = qun_jstr_or(keyans, "verifier_key", "");
    }
    rc = parse_key(vkey, &key);
    if (rc == QUN_EXIT_OK) rc = fetch_checkpoint(c, &note);
    if (rc != QUN_EXIT_OK) goto out;
    qun_rc vrc = qun_note_verify(&key, note, &size, root, &err);
    if (vrc != QUN_OK) {
        rc = qun_failw(QUN_EXIT_FAIL, "LEDGER_INVALID", "cli.err.checkpoint_bad",
                       qun_detail_words(qun_rc_name(vrc), err.msg));
        goto out;
    }
    rc = qun_pathf(path, sizeof path, "/v1/ledger/proof/inclusion?index=%I&size=%I", index, (int64_t)size);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &incl);
    if (rc != QUN_EXIT_OK) goto out;
    json_array_foreach(json_object_get(incl, "proof"), i, it) {
        if (n == QUN_PROOF_MAX || !hash_from_hex(json_string_value(it), proof[n])) {
            rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.proof_not_hashes");
            goto out;
        }
        n++;
    }
    /* Hand out only a proof that checks: the same test `audit check` applies later. */
    qun_merkle_leaf(leaf, entry, strlen(entry));
    if (!qun_merkle_verify_inclusion(leaf, (uint64_t)index, size, (const unsigned char(*)[QUN_HASH])proof, n,
                                     root)) {
        rc = qun_failw(QUN_EXIT_FAIL, "LEDGER_INVALID", "cli.err.inclusion_bad", num((uint64_t)index),
                       num(size));
        goto out;
    }
    char vtext[256];
    qun_note_verifier(&key, vtext, sizeof vtext);
    tlog = tlog_proof_text((uint64_t)index, (const unsigned char(*)[QUN_HASH])proof, n, note);
    bundle = tlog ? json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "format", BUNDLE_FORMAT, "group", a.pos[0],
                              "index", (json_int_t)index, "entry", entry, "verifier_key", vtext, "tlog_proof",
                              tlog)
                  : NULL;
    text = bundle ? json_dumps(bundle, JSON_INDENT(2)) : NULL;
    if (!text) {
        rc = qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem");
        goto out;
    }
    if (a.val[2] && strcmp(a.val[2], "-") != 0) {
        char *withnl = NULL;
        if (asprintf(&withnl, "%s\n", text) < 0) {
            rc = qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem");
            goto out;
        }
        rc = write_text(a.val[2], withnl);
        free(withnl);
        char line[1200];
        if (rc == QUN_EXIT_OK)
            fprintf(stderr, "%s\n",
                    qun_wf(line, sizeof line, "cli.proof_written", num((uint64_t)index), num(size), a.val[2],
                           a.val[2]));
    } else {
        printf("%s\n", text);
    }
out:
    free(text);
    free(tlog);
    free(note);
    json_decref(bundle);
    json_decref(incl);
    json_decref(keyans);
    json_decref(hist);
    return rc;
}

/* Verify a bundle with key; on failure *why says what is wrong.  Fills what the bundle
 * proves into *facts. */
static bool bundle_verify(json_t *b, const qun_note_key_t *key, json_t **facts, char why[300]) {
    const char *entry = qun_jstr_or(b, "entry", NULL), *tlog = qun_jstr_or(b, "tlog_proof", NULL), *cp, *w;
    json_t *jidx = json_object_get(b, "index");
    uint64_t index, size;
    unsigned char proof[QUN_PROOF_MAX][QUN_HASH], root[QUN_HASH], leaf[QUN_HASH];
    int n;
    char n1[24];
    qun_err_t err = {0};
    *facts = NULL;
    if (strcmp(qun_jstr_or(b, "format", ""), BUNDLE_FORMAT) != 0)
        return qun_wf(why, 300, "cli.bundle.format", BUNDLE_FORMAT), false;
    if (!entry || !tlog || !json_is_integer(jidx)) return qun_wf(why, 300, "cli.bundle.lacks"), false;
    if (!tlog_proof_parse(tlog, &index, proof, &n, &cp, &w))
        return qun_wf(why, 300, "cli.bundle.tlog", qun_w(w)), false;
    if ((int64_t)index != json_integer_value(jidx))
        return qun_wf(why, 300, "cli.bundle.index_differs", qun_fmt_int(json_integer_value(jidx), n1),
                      num(index)),
               false;
    qun_rc vrc = qun_note_verify(key, cp, &size, root, &err);
    if (vrc != QUN_OK)
        return qun_wf(why, 300, "cli.bundle.checkpoint", qun_detail_words(qun_rc_name(vrc), err.msg)), false;
    if (index >= size) return qun_wf(why, 300, "cli.bundle.index_size", num(index), num(size)), false;
    json_t *e = json_loads(entry, 0, NULL);
    json_t *seq = json_object_get(e, "seq");
    const char *group = qun_jstr_or(b, "group", NULL), *egroup = qun_jstr_or(e, "group", NULL);
    bool ok = false;
    if (!json_is_integer(seq) || json_integer_value(seq) != (json_int_t)index)
        qun_wf(why, 300, "cli.bundle.seq", num(index));
    else if (group && (!egroup || strcmp(group, egroup) != 0))
        qun_wf(why, 300, "cli.bundle.group", group);
    else
        ok = true;
    if (ok) {
        qun_merkle_leaf(leaf, entry, strlen(entry));
        ok = qun_merkle_verify_inclusion(leaf, index, size, (const unsigned char(*)[QUN_HASH])proof, n, root);
        if (!ok) qun_wf(why, 300, "cli.bundle.inclusion", num(size));
    }
    if (ok) {
        char hex[2 * QUN_HASH + 1];
        hex_of(hex, leaf);
        *facts = json_pack("{s:b, s:I, s:I, s:s, s:s, s:s?, s:s?, s:O}", "ok", 1, "index", (json_int_t)index,
                           "tree_size", (json_int_t)size, "origin", key->name, "leaf_hash", hex, "event",
                           qun_jstr_or(e, "event", NULL), "group", egroup, "entry", e);
    }
    json_decref(e);
    return ok;
}

static int audit_check(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--key", NULL, true}, {0}};
    qun_args_t a;
    qun_note_key_t key;
    char *text = NULL, why[300];
    json_t *b = NULL, *facts = NULL;
    json_error_t jerr;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, "audit check <bundle> [--key K]", &a);
    if (rc == QUN_EXIT_OK) rc = read_text(a.pos[0], &text);
    if (rc != QUN_EXIT_OK) return rc;
    b = json_loads(text, 0, &jerr);
    if (!json_is_object(b)) {
        rc = qun_failw(QUN_EXIT_FAIL, "PROOF_INVALID", "cli.err.bundle_json", a.pos[0],
                       qun_lang_zh() ? qun_w("cli.json_invalid") : jerr.text);
        goto out;
    }
    const char *bkey = qun_jstr_or(b, "verifier_key", NULL);
    if (a.val[0]) {
        rc = parse_key(a.val[0], &key);
        if (rc != QUN_EXIT_OK) goto out;
        char mine[256];
        qun_note_verifier(&key, mine, sizeof mine);
        if (bkey && strcmp(bkey, mine) != 0) qun_note("cli.proof_other_key");
    } else {
        qun_err_t err = {0};
        qun_rc krc = bkey ? qun_note_verifier_parse(bkey, &key, &err) : QUN_OK;
        if (!bkey || krc != QUN_OK) {
            rc = bkey ? qun_failw(QUN_EXIT_FAIL, "PROOF_INVALID", "cli.err.bundle_key_bad",
                                  qun_detail_words(qun_rc_name(krc), err.msg))
                      : qun_failw(QUN_EXIT_FAIL, "PROOF_INVALID", "cli.err.bundle_key_missing");
            goto out;
        }
    }
    if (!bundle_verify(b, &key, &facts, why)) {
        rc = qun_failw(QUN_EXIT_FAIL, "PROOF_INVALID", "cli.err.bundle_bad", a.pos[0], why);
        goto out;
    }
    if (c->json) {
        json_object_set_new(facts, "key_from", json_string(a.val[0] ? "--key" : "bundle"));
        qun_print_json(facts);
    } else {
        char n1[24], n2[24], group[200] = "";
        if (qun_jstr_or(facts, "group", NULL))
            qun_wf(group, sizeof group, "cli.proof_group", qun_jstr_or(facts, "group", ""));
        qun_say("cli.proof_ok", qun_fmt_int(qun_jint(facts, "index"), n1), qun_jstr_or(facts, "event", "?"),
                group, key.name, qun_fmt_int(qun_jint(facts, "tree_size"), n2));
    }
    if (!a.val[0]) qun_note("cli.proof_bundle_key");
out:
    json_decref(facts);
    json_decref(b);
    free(text);
    return rc;
}

int qun_cmd_audit(qun_cli_t *c, int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(qun_cli_t *c, int argc, char **argv);
    } subs[] = {{"key", audit_key}, {"verify", audit_verify}, {"prove", audit_prove}, {"check", audit_check}};
    if (argc < 1)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage_see", "audit key|verify|prove|check ...",
                         "audit");
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(subs[i].name, argv[0]) == 0) return subs[i].run(c, argc - 1, argv + 1);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.unknown_sub", "audit", argv[0], "audit");
}
