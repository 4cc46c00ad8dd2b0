/* SPDX-License-Identifier: MIT */
/* libFuzzer target for archive import, phase 1 (src/archive/import.c,
 * qun_import_stage): the zstd-compressed tar an importer sends, each member staged and
 * hashed, the digests against manifest.json both ways, the content digest, and the
 * manifest's ledger proof against this server's ledger.  The server here is an
 * in-memory SQLite store set up the same way on every start: one owner, one group with
 * the fixed id g_fuzz, and a ledger of five fixed entries, three of them the
 * `export.content` entries of three fixed archives.  So the seeds made from those
 * archives pass every check and reach the blob adoption, while mutations walk the
 * refusals.  The rebuild (phase 2) is not fuzzed: it reads only what phase 1 verified.
 *
 * After each input: a refusal carries an import code, and nothing is left staged.
 * Run with QUN_FUZZ_SEEDS=DIR to write the seed corpus into DIR and exit. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/import.h"
#include "qun/ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static qun_db_t *db;
static qun_actor_t owner;
static bool verbose; /* QUN_FUZZ_VERBOSE: say what each input came to */
static char data_dir[64], imports[96];

/* ---- the three fixed archives ---- */

#define BLOB "a file's bytes\n"
#define NMEMBERS 5

typedef struct {
    const char *name;  /* the seed file */
    const char *xid;   /* the export id */
    const char *scope; /* NULL, or "self" */
    bool with_blob;
    char *entry; /* its export.content ledger entry */
    int64_t index;
    char content[65];
    char names[NMEMBERS][80];
    const char *bytes[NMEMBERS];
    int n;
} golden_t;

static golden_t golden[] = {
    {.name = "group_with_file", .xid = "x_file", .with_blob = true},
    {.name = "group_text_only", .xid = "x_text"},
    {.name = "self_scope", .xid = "x_self", .scope = "self"},
};
#define NGOLDEN (sizeof golden / sizeof golden[0])

static const char MEMBERS[] =
    "[\n{\"joined_at\":100,\"openid\":\"u_owner\",\"role\":\"owner\",\"username\":\"owner\"},\n"
    "{\"joined_at\":200,\"openid\":\"u_member\",\"role\":\"member\",\"username\":\"member\"}\n]\n";
static const char MESSAGES[] =
    "{\"author\":\"u_owner\",\"created_at\":1001,\"kind\":\"text\",\"seq\":1,\"text\":\"hi\"}\n"
    "{\"author\":\"u_member\",\"created_at\":1002,\"kind\":\"text\",\"seq\":2,\"text\":\"你好\"}\n";
static char files_line[400];
static const char PAYMENTS[] =
    "{\"amount\":10,\"claimed_amount\":0,\"claimed_shares\":0,\"claims\":[],\"created_at\":6,"
    "\"creator\":\"u_owner\",\"id\":\"p_x\",\"kind\":\"red_packet\",\"memo\":\"\",\"shares\":2}\n";

static void sha_hex(char out[65], const void *p, size_t n) {
    unsigned char h[32];
    crypto_hash_sha256(h, p, n);
    qun_hex(out, h, 32);
}

static void golden_fill(golden_t *g) {
    char sha[65];
    sha_hex(sha, BLOB, strlen(BLOB));
    snprintf(
        files_line, sizeof files_line,
        "{\"content_type\":\"text/plain\",\"created_at\":5,\"name\":\"a.txt\",\"sha256\":\"%s\",\"size\":%zu,"
        "\"uploader\":\"u_member\"}\n",
        sha, strlen(BLOB));
    g->n = 0;
    snprintf(g->names[g->n], 80, "members.json"), g->bytes[g->n++] = MEMBERS;
    snprintf(g->names[g->n], 80, "messages.jsonl"), g->bytes[g->n++] = MESSAGES;
    if (g->with_blob) snprintf(g->names[g->n], 80, "files/%s", sha), g->bytes[g->n++] = BLOB;
    snprintf(g->names[g->n], 80, "files.jsonl"), g->bytes[g->n++] = g->with_blob ? files_line : "";
    snprintf(g->names[g->n], 80, "payments.jsonl"), g->bytes[g->n++] = PAYMENTS;
    /* The content digest: SHA-256 of "<hex>  <name>\n" per member in archive order. */
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (int i = 0; i < g->n; i++) {
        char line[200];
        sha_hex(sha, g->bytes[i], strlen(g->bytes[i]));
        int k = snprintf(line, sizeof line, "%s  %s\n", sha, g->names[i]);
        crypto_hash_sha256_update(&st, (const unsigned char *)line, (size_t)k);
    }
    unsigned char cd[32];
    crypto_hash_sha256_final(&st, cd);
    qun_hex(g->content, cd, 32);
}

static void die(const char *what, const qun_err_t *err) {
    fprintf(stderr, "archive_import: %s: %s\n", what, err ? err->msg : "");
    abort();
}

/* The fixed ledger, written row by row as qun_ledger_append stores it, but with fixed
 * times, so its root is the same on every start and the seeds' proofs keep holding. */
static void ledger_setup(void) {
    qun_err_t err = {0};
    if (qun_db_run(db, NULL, &err, "DELETE FROM ledger_nodes", "") != QUN_DONE ||
        qun_db_run(db, NULL, &err, "DELETE FROM ledger_entries", "") != QUN_DONE)
        die("clearing the ledger", &err);
    enum { N = 5 };
    char *text[N];
    for (int i = 0; i < N; i++) {
        json_t *e;
        golden_t *g = i >= 1 && i <= (int)NGOLDEN ? &golden[i - 1] : NULL;
        if (g) {
            e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:I}", "actor", "u_owner",
                          "content_digest", g->content, "event", "export.content", "export", g->xid, "group",
                          "g_fuzz", "new_state", "active", "old_state", "active", "scope", g->scope, "seq",
                          (json_int_t)i, "time", (json_int_t)1700000000 + i);
            g->index = i;
        } else {
            e = json_pack("{s:s, s:s, s:s, s:n, s:s, s:I, s:I}", "actor", "u_owner", "event", "group.created",
                          "group", "g_fuzz", "old_state", "new_state", "active", "seq", (json_int_t)i, "time",
                          (json_int_t)1700000000 + i);
        }
        text[i] = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(e);
        if (g) g->entry = text[i];
        if (qun_db_run(
                db, NULL, &err,
                "INSERT INTO ledger_entries(idx, event, group_openid, actor_openid, entry, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                "issssi", (int64_t)i, g ? "export.content" : "group.created", "g_fuzz", "u_owner", text[i],
                (int64_t)1700000000 + i) != QUN_DONE)
            die("writing the ledger", &err);
    }
    /* Every complete perfect subtree, level by level. */
    unsigned char level[N][QUN_HASH];
    int width = N;
    for (int i = 0; i < N; i++)
        qun_merkle_leaf(level[i], text[i], strlen(text[i]));
    for (int lv = 0; width > 0; lv++, width /= 2) {
        for (int i = 0; i < width; i++) {
            qun_q_t *q;
            if (qun_q_prepare(db, "INSERT INTO ledger_nodes(level, idx, hash) VALUES ($1, $2, $3)", &q,
                              &err) != QUN_OK)
                die("writing the ledger nodes", &err);
            qun_q_int(q, 1, lv);
            qun_q_int(q, 2, i);
            qun_q_blob(q, 3, level[i], QUN_HASH);
            if (qun_q_step(q, &err) != QUN_DONE) die("writing a ledger node", &err);
        }
        for (int i = 0; i < width / 2; i++)
            qun_merkle_node(level[i], level[2 * i], level[2 * i + 1]);
    }
    for (int i = 0; i < N; i++)
        if (!(i >= 1 && i <= (int)NGOLDEN)) free(text[i]);
}

static void server_setup(void) {
    qun_err_t err = {0};
    json_t *out = NULL;
    snprintf(data_dir, sizeof data_dir, "/dev/shm/qun-fuzz-import-XXXXXX");
    if (!mkdtemp(data_dir)) {
        snprintf(data_dir, sizeof data_dir, "/tmp/qun-fuzz-import-XXXXXX");
        if (!mkdtemp(data_dir)) die("mkdtemp", NULL);
    }
    snprintf(imports, sizeof imports, "%s/imports", data_dir);
    qun_core_cfg.data_dir = data_dir;
    qun_core_cfg.import_limit = 8 << 20; /* a zstd bomb stops here, as in qund */
    if (qun_db_open(":memory:", false, true, &db, &err) != QUN_OK) die("opening the store", &err);
    if (qun_user_create(db, "owner", "x", &out, &err) != QUN_OK) die("creating the owner", &err);
    snprintf(owner.openid, sizeof owner.openid, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    if (qun_user_id(db, owner.openid, &owner.uid, &err) != QUN_OK) die("the owner's id", &err);
    if (qun_group_create(db, &owner, "src", "standard", NULL, NULL, &out, &err) != QUN_OK)
        die("creating the group", &err);
    if (qun_db_run(db, NULL, &err, "UPDATE groups SET gid = 'g_fuzz' WHERE gid = $1", "s",
                   json_string_value(json_object_get(out, "id"))) != QUN_DONE)
        die("fixing the group id", &err);
    json_decref(out);
    for (size_t i = 0; i < NGOLDEN; i++)
        golden_fill(&golden[i]);
    ledger_setup();
}

static void remove_tree(void) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    if (system(cmd) != 0) fprintf(stderr, "archive_import: cannot remove %s\n", data_dir);
}

/* ---- per input ---- */

static bool imports_empty(void) {
    DIR *d = opendir(imports);
    if (!d) return true;
    bool empty = true;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qun_import_t *imp = NULL;
    qun_err_t err = {0};
    qun_rc rc = qun_import_stage(db, &owner, data, size, &imp, &err);
    if (verbose) fprintf(stderr, "archive_import: %s %s\n", qun_rc_name(rc), err.msg);
    switch (rc) {
    case QUN_OK:
        if (!imp) abort();
        qun_import_free(imp);
        break;
    case QUN_IMPORT_ARCHIVE_INVALID:
    case QUN_IMPORT_DIGEST_MISMATCH:
    case QUN_IMPORT_PROOF_INVALID:
    case QUN_IMPORT_TOO_LARGE:
    case QUN_IMPORT_NOT_ZSTD:
        if (imp || !err.msg[0]) abort();
        break;
    default: /* FORBIDDEN, SOURCE_GONE cannot happen to this owner; STORE would be a staging bug */
        fprintf(stderr, "archive_import: unexpected %s: %s\n", qun_rc_name(rc), err.msg);
        abort();
    }
    if (!imports_empty()) {
        fprintf(stderr, "archive_import: something is left staged in %s\n", imports);
        abort();
    }
    return 0;
}

/* ---- the seed corpus ---- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static la_ssize_t ar_write(struct archive *a, void *arg, const void *p, size_t n) {
    buf_t *b = arg;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return (la_ssize_t)n;
}

static void ar_add(struct archive *ar, const char *name, const char *bytes) {
    struct archive_entry *e = archive_entry_new();
    size_t n = strlen(bytes);
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)n);
    if (archive_write_header(ar, e) != ARCHIVE_OK || (n && archive_write_data(ar, bytes, n) != (la_ssize_t)n))
        die(archive_error_string(ar), NULL);
    archive_entry_free(e);
}

enum {
    V_GOOD,
    V_PLAIN_TAR,
    V_NO_MANIFEST,
    V_BAD_DIGEST,
    V_TWICE,
    V_STRANGE,
    V_BAD_ROOT,
    V_TOO_BIG,
    V_NO_PROOF
};

static char *manifest_of(const golden_t *g, int variant) {
    qun_err_t err = {0};
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int np = 0;
    uint64_t size = 5;
    if (qun_ledger_root_at(db, size, root, &err) != QUN_OK ||
        qun_ledger_inclusion(db, (uint64_t)g->index, size, proof, &np, &err) != QUN_OK)
        die("proving the golden entry", &err);
    if (variant == V_BAD_ROOT) root[0] ^= 1;
    json_t *digests = json_object(), *path = json_array();
    char hex[65];
    for (int i = 0; i < g->n; i++) {
        sha_hex(hex, g->bytes[i], strlen(g->bytes[i]));
        if (variant == V_BAD_DIGEST && i == 1) hex[0] = hex[0] == '0' ? '1' : '0';
        json_object_set_new(digests, g->names[i], json_string(hex));
    }
    for (int i = 0; i < np; i++) {
        qun_hex(hex, proof[i], QUN_HASH);
        json_array_append_new(path, json_string(hex));
    }
    qun_hex(hex, root, QUN_HASH);
    json_t *ledger =
        json_pack("{s:s, s:I, s:I, s:s, s:s, s:o}", "event", "export.content", "index", (json_int_t)g->index,
                  "tree_size", (json_int_t)(variant == V_TOO_BIG ? 6 : size), "root", hex, "entry", g->entry,
                  "proof", path);
    json_t *m = json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s}, s:o, s:s}", "format", "qun-group-archive",
                          "format_version", 1, "export", g->xid, "group", "id", "g_fuzz", "name", "src",
                          "kind", "standard", "digests", digests, "content_digest", g->content);
    if (variant == V_NO_PROOF)
        json_decref(ledger);
    else
        json_object_set_new(m, "ledger", ledger);
    char *t = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(m);
    return t;
}

static void write_seed(const char *dir, const char *name, const golden_t *g, int variant) {
    buf_t out = {0};
    struct archive *ar = archive_write_new();
    if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
        (variant != V_PLAIN_TAR && archive_write_add_filter_zstd(ar) != ARCHIVE_OK) ||
        archive_write_set_bytes_in_last_block(ar, 1) != ARCHIVE_OK ||
        archive_write_open(ar, &out, NULL, ar_write, NULL) != ARCHIVE_OK)
        die("libarchive", NULL);
    for (int i = 0; i < g->n; i++)
        ar_add(ar, g->names[i], g->bytes[i]);
    if (variant == V_TWICE) ar_add(ar, g->names[0], g->bytes[0]);
    if (variant == V_STRANGE) ar_add(ar, "../etc/passwd", "x");
    char *m = manifest_of(g, variant);
    if (variant != V_NO_MANIFEST) ar_add(ar, "manifest.json", m);
    free(m);
    if (archive_write_close(ar) != ARCHIVE_OK) die("libarchive close", NULL);
    archive_write_free(ar);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out.p, 1, out.n, f) != out.n || fclose(f) != 0) die(path, NULL);
    free(out.p);
}

static void write_seeds(const char *dir) {
    for (size_t i = 0; i < NGOLDEN; i++)
        write_seed(dir, golden[i].name, &golden[i], V_GOOD);
    static const struct {
        int variant;
        const char *name;
    } v[] = {{V_PLAIN_TAR, "plain_tar"},        {V_NO_MANIFEST, "no_manifest"},
             {V_BAD_DIGEST, "digest_mismatch"}, {V_TWICE, "member_twice"},
             {V_STRANGE, "unexpected_member"},  {V_BAD_ROOT, "wrong_root"},
             {V_TOO_BIG, "tree_beyond_ledger"}, {V_NO_PROOF, "no_proof"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        write_seed(dir, v[i].name, &golden[i % 2], v[i].variant);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (sodium_init() < 0) abort();
    qun_log_quiet = true;
    verbose = getenv("QUN_FUZZ_VERBOSE") != NULL;
    server_setup();
    atexit(remove_tree);
    const char *seeds = getenv("QUN_FUZZ_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}
