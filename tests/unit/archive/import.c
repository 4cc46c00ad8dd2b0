/* SPDX-License-Identifier: MIT */
/* Unit tests of import (src/archive/import.c reads, src/core/import.c rebuilds) on an in-memory store: an
 * archive plaintext built here (pax tar + zstd, with a manifest whose ledger proof is taken from the store's
 * own ledger) is staged and rebuilt; then every byte of it is flipped in turn, and it
 * is cut at many lengths, and each variant must be refused with an import code (or,
 * where the change only touched bytes a tar reader ignores, accepted with the same
 * content digest), never crash, and leave nothing staged and no blob stored. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/import.h"
#include "qun/ledger.h"
#include "unit.h"
#include "unit_archive.h"
#include "unit_store.h"

static qun_db_t *db;

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int64_t count(const char *sql) {
    return unit_count(db, sql);
}

static qun_actor_t owner, member;
static buf_t members, messages, files, payments, blob, list, manifest, plain;
static char content[65], imports[600], blobs[600], *entry;
static int64_t ledger_before;

/* Two users, the archived group, and an archive plaintext of it (pax tar + zstd) whose
 * manifest proves its content digest by the store's own ledger. */
static void build_archive(void) {
    qun_err_t err;
    json_t *out;
    CHECK(qun_user_create(db, "owner", "x", &out, &err) == QUN_OK);
    snprintf(owner.openid, sizeof owner.openid, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    CHECK(qun_user_id(db, owner.openid, &owner.uid, &err) == QUN_OK);
    CHECK(qun_user_create(db, "member", "x", &out, &err) == QUN_OK);
    snprintf(member.openid, sizeof member.openid, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    CHECK(qun_user_id(db, member.openid, &member.uid, &err) == QUN_OK);

    /* The archived group: the importer's standing is judged on it as it is now. */
    CHECK(qun_group_create(db, &owner, "src", "standard", NULL, NULL, &out, &err) == QUN_OK);
    char src[QUN_ID_MAX];
    snprintf(src, sizeof src, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &owner, src, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);

    /* The members of an archive of group src, export x_src. */
    /* (the parts are the static buffers above) */
    char line[600], sha[65];
    snprintf(line, sizeof line,
             "[\n{\"joined_at\":100,\"openid\":\"%s\",\"role\":\"owner\",\"username\":\"owner\"},\n"
             "{\"joined_at\":200,\"openid\":\"%s\",\"role\":\"member\",\"username\":\"member\"}\n]\n",
             owner.openid, member.openid);
    puts_(&members, line);
    for (int i = 1; i <= 50; i++) {
        snprintf(line, sizeof line,
                 "{\"author\":\"%s\",\"created_at\":%d,\"kind\":\"text\",\"seq\":%d,\"text\":\"m%d\"}\n",
                 i % 2 ? owner.openid : member.openid, 1000 + i, i, i);
        puts_(&messages, line);
    }
    for (int i = 0; i < 3000; i++)
        put(&blob, &(unsigned char){(unsigned char)(i * 7)}, 1);
    hex_of(&blob, sha);
    snprintf(line, sizeof line,
             "{\"content_type\":\"a/b\",\"created_at\":5,\"name\":\"f\",\"sha256\":\"%s\",\"size\":3000,"
             "\"uploader\":\"%s\"}\n",
             sha, member.openid);
    puts_(&files, line);
    snprintf(line, sizeof line,
             "{\"amount\":10,\"claimed_amount\":5,\"claimed_shares\":1,\"claims\":[{\"amount\":5,"
             "\"created_at\":7,\"openid\":\"%s\"}],\"created_at\":6,\"creator\":\"%s\",\"id\":\"p_x\","
             "\"kind\":\"red_packet\","
             "\"memo\":\"\",\"shares\":2}\n",
             member.openid, owner.openid);
    puts_(&payments, line);
    char blob_name[80];
    snprintf(blob_name, sizeof blob_name, "files/%s", sha);
    const char *names[] = {"members.json", "messages.jsonl", blob_name, "files.jsonl", "payments.jsonl"};
    const buf_t *parts[] = {&members, &messages, &blob, &files, &payments};
    json_t *digests = json_object();
    for (int i = 0; i < 5; i++) {
        char h[65];
        hex_of(parts[i], h);
        json_object_set_new(digests, names[i], json_string(h));
        snprintf(line, sizeof line, "%s  %s\n", h, names[i]);
        puts_(&list, line);
    }

    hex_of(&list, content);

    /* Ledger the content, then prove it as the export would. */
    json_t *f = json_pack("{s:s, s:s}", "export", "x_src", "content_digest", content);
    int64_t index;
    CHECK(qun_ledger_append(db, "export.content", src, owner.openid, "active", "active", f, &index, &err) ==
          QUN_OK);
    json_decref(f);
    qun_q_t *q;
    entry = NULL;
    if (qun_db_run(db, &q, &err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", index) == QUN_ROW) {
        entry = strdup(qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    CHECK(entry != NULL);
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int np = 0;
    CHECK(qun_ledger_root_at(db, (uint64_t)index + 1, root, &err) == QUN_OK);
    CHECK(qun_ledger_inclusion(db, (uint64_t)index, (uint64_t)index + 1, proof, &np, &err) == QUN_OK);
    char hex[65];
    json_t *path = json_array();
    for (int i = 0; i < np; i++) {
        qun_hex(hex, proof[i], QUN_HASH);
        json_array_append_new(path, json_string(hex));
    }
    qun_hex(hex, root, QUN_HASH);
    json_t *m = json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s}, s:o, s:s, s:{s:s, s:I, s:I, s:s, s:s, s:o}}",
                          "format", "qun-group-archive", "format_version", 1, "export", "x_src", "group",
                          "id", src, "name", "src", "kind", "standard", "digests", digests, "content_digest",
                          content, "ledger", "event", "export.content", "index", (json_int_t)index,
                          "tree_size", (json_int_t)index + 1, "root", hex, "entry", entry, "proof", path);
    char *mtext = json_dumps(m, JSON_COMPACT);
    json_decref(m);

    puts_(&manifest, mtext);
    free(mtext);

    struct archive *ar = archive_write_new();
    CHECK(archive_write_set_format_pax_restricted(ar) == ARCHIVE_OK);
    CHECK(archive_write_add_filter_zstd(ar) == ARCHIVE_OK);
    CHECK(archive_write_set_bytes_in_last_block(ar, 1) == ARCHIVE_OK);
    CHECK(archive_write_open(ar, &plain, NULL, ar_write, NULL) == ARCHIVE_OK);
    for (int i = 0; i < 5; i++)
        ar_add(ar, names[i], parts[i]);
    ar_add(ar, "manifest.json", &manifest);
    CHECK(archive_write_close(ar) == ARCHIVE_OK);
    archive_write_free(ar);

    snprintf(imports, sizeof imports, "%s/imports", qun_core_cfg.data_dir);
    snprintf(blobs, sizeof blobs, "%s/blobs", qun_core_cfg.data_dir);
    ledger_before = count("SELECT COUNT(*) FROM ledger_entries");
}

/* Every flipped byte and many cuts: refused with an import code, or (bytes a tar
 * reader ignores) accepted with the same content; nothing staged, no blob stored. */
static void damaged_archives_refused(void) {
    qun_err_t err;
    unsigned char *copy = malloc(plain.n);
    int refused = 0, accepted = 0, bad = 0;
    for (size_t i = 0; i < plain.n * 2; i++) {
        size_t len = plain.n;
        memcpy(copy, plain.p, plain.n);
        if (i < plain.n)
            copy[i] ^= 0x20;
        else
            len = i - plain.n; /* a cut after len bytes */
        qun_import_t *imp = NULL;
        qun_rc rc = qun_import_stage(db, &owner, copy, len, &imp, &err);
        if (rc == QUN_OK) {
            accepted++;
            qun_import_free(imp);
            continue;
        }
        if (rc == QUN_IMPORT_ARCHIVE_INVALID || rc == QUN_IMPORT_DIGEST_MISMATCH ||
            rc == QUN_IMPORT_PROOF_INVALID)
            refused++;
        else
            bad++, fprintf(stderr, "variant %zu: %s %s\n", i, qun_rc_name(rc), err.msg);
    }
    free(copy);
    CHECK(bad == 0);
    CHECK(refused > (int)plain.n); /* nearly all */
    printf("import variants: %d refused, %d accepted (changes a tar reader ignores)\n", refused, accepted);
    CHECK(entries(imports) == 0);
    CHECK(count("SELECT COUNT(*) FROM groups") == 1); /* the archived group only */
    CHECK(count("SELECT COUNT(*) FROM ledger_entries") == ledger_before);
}

/* A member may not import; the owner may, and the rebuild restores everything. */
static void rebuild_restores(void) {
    qun_err_t err;
    json_t *out;
    qun_import_t *imp = NULL;
    CHECK(qun_import_stage(db, &member, plain.p, plain.n, &imp, &err) == QUN_IMPORT_FORBIDDEN);
    CHECK(qun_import_stage(db, &owner, plain.p, plain.n, &imp, &err) == QUN_OK);
    CHECK(entries(blobs) == 1);
    CHECK(qun_import_rebuild(db, &owner, imp, &out, &err) == QUN_OK);
    qun_import_free(imp);
    json_t *counts = json_object_get(out, "counts");
    CHECK(json_integer_value(json_object_get(counts, "members")) == 2);
    CHECK(json_integer_value(json_object_get(counts, "messages")) == 50);
    CHECK(json_integer_value(json_object_get(counts, "files")) == 1);
    CHECK(json_integer_value(json_object_get(counts, "payments")) == 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(out, "source"), "content_digest")), content);
    json_decref(out);
    CHECK(count("SELECT COUNT(*) FROM messages WHERE created_at > 1000 AND created_at <= 1050") == 50);
    CHECK(count("SELECT COUNT(*) FROM members WHERE role = 'owner'") == 2); /* of src and of the copy */
    CHECK(count("SELECT MAX(next_seq) FROM groups") == 51);
    CHECK(count("SELECT refcount FROM blobs") == 1);
    CHECK(count("SELECT COUNT(*) FROM payment_claims WHERE amount = 5") == 1);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'import.made'") == 1);
    CHECK(entries(imports) == 0);
}

int main(void) {
    qun_err_t err;
    char dir[] = "/tmp/qun-import-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    qun_core_cfg.data_dir = dir;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(build_archive);
    RUN(damaged_archives_refused);
    RUN(rebuild_restores);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(entry);
    free(members.p), free(messages.p), free(files.p), free(payments.p), free(blob.p), free(list.p);
    free(manifest.p), free(plain.p);
    qun_db_close(db);
    return unit_done("archive/import");
}
