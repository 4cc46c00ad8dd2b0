/* SPDX-License-Identifier: MIT */
/* Import (include/qun/import.h, docs/archive-format.md): the archive is read and its
 * digests checked by archive/import.c; here its manifest's ledger proof is checked
 * against this server's own ledger, the importer's standing on the archived group as
 * it is now, and then a new group is rebuilt in one writer transaction, its members
 * added through qun_member_insert like every other member. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/archive.h"
#include "qun/core.h"
#include "qun/event.h"
#include "qun/import.h"
#include "qun/ledger.h"

struct qun_import {
    qun_archive_read_t *rd; /* the staged members, files and manifest */
    json_t *manifest;       /* borrowed from rd */
    json_t *members;        /* members.json, parsed */
    char content_digest[65];
    int64_t source_index;
    int64_t source_id; /* the archived group's row here (its id is ledger-proven) */
    bool by_owner;     /* the importer owns the archived group now (else: an admin) */
};

/* Imports staged now, across threads (qun_import_staging). */
static atomic_int staged;

bool qun_import_staging(void) {
    return atomic_load(&staged) > 0;
}

void qun_import_free(qun_import_t *imp) {
    if (!imp) return;
    atomic_fetch_sub(&staged, 1);
    qun_archive_read_free(imp->rd);
    json_decref(imp->members);
    free(imp);
}

static bool is_hex64(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 64;
}

static bool unhex32(const char *s, unsigned char out[QUN_HASH]) {
    size_t n = 0;
    return s && is_hex64(s) && sodium_hex2bin(out, QUN_HASH, s, 64, NULL, &n, NULL) == 0 && n == QUN_HASH;
}

static int64_t jint(json_t *o, const char *k) {
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The manifest's `ledger` object: the entry commits to our content digest and this
 * export, its proof verifies, and this server's ledger holds it under that root. */
static qun_rc check_proof(qun_db_t *db, qun_import_t *imp, const char *content, qun_err_t *err) {
    json_t *m = imp->manifest, *l = json_object_get(m, "ledger");
    const char *xid = json_string_value(json_object_get(m, "export"));
    const char *gid = json_string_value(json_object_get(json_object_get(m, "group"), "id"));
    if (!json_is_object(l))
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the manifest carries no ledger proof of its export");
    const char *entry = json_string_value(json_object_get(l, "entry"));
    json_t *proof = json_object_get(l, "proof");
    json_int_t index = json_integer_value(json_object_get(l, "index"));
    json_int_t size = json_integer_value(json_object_get(l, "tree_size"));
    unsigned char root[QUN_HASH], leaf[QUN_HASH], path[QUN_PROOF_MAX][QUN_HASH];
    if (!entry || !json_is_array(proof) || json_array_size(proof) > QUN_PROOF_MAX || index < 0 ||
        size <= index || !unhex32(json_string_value(json_object_get(l, "root")), root))
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the manifest's ledger proof is malformed");
    size_t i;
    json_t *h;
    json_array_foreach(proof, i, h) if (!unhex32(json_string_value(h), path[i])) return qun_fail(
        err, QUN_IMPORT_PROOF_INVALID, "the manifest's ledger proof is malformed");
    if (strcmp(jstr(m, "content_digest"), content) != 0)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID,
                        "the members hash to content digest %s, the manifest says %.64s", content,
                        jstr(m, "content_digest"));
    json_t *e = json_loads(entry, JSON_REJECT_DUPLICATES, NULL);
    bool fits = e && strcmp(jstr(e, "event"), "export.content") == 0 &&
                strcmp(jstr(e, "content_digest"), content) == 0 && xid &&
                strcmp(jstr(e, "export"), xid) == 0 && gid && strcmp(jstr(e, "group"), gid) == 0;
    json_decref(e);
    if (!fits)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID,
                        "the ledgered entry is not the export.content of this export and content digest");
    qun_merkle_leaf(leaf, entry, strlen(entry));
    if (!qun_merkle_verify_inclusion(leaf, (uint64_t)index, (uint64_t)size,
                                     (const unsigned char(*)[QUN_HASH])path, (int)json_array_size(proof),
                                     root))
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID,
                        "the inclusion proof of entry %lld in a tree of %lld does not verify",
                        (long long)index, (long long)size);
    /* Against our own ledger: the same root at that size, and the same entry text. */
    uint64_t head;
    unsigned char ours[QUN_HASH];
    qun_rc rc = qun_ledger_head(db, &head, ours, err);
    if (rc == QUN_OK && (uint64_t)size > head)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID,
                        "this server's ledger has %llu entries, the proof is for %lld",
                        (unsigned long long)head, (long long)size);
    if (rc == QUN_OK) rc = qun_ledger_root_at(db, (uint64_t)size, ours, err);
    if (rc != QUN_OK) return rc;
    if (sodium_memcmp(ours, root, QUN_HASH) != 0)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "this server's ledger has another root at size %lld",
                        (long long)size);
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", (int64_t)index);
    if (rc != QUN_ROW)
        return rc == QUN_DONE
                   ? qun_fail(err, QUN_IMPORT_PROOF_INVALID, "no ledger entry %lld", (long long)index)
                   : rc;
    bool same = strcmp(qun_q_col_text(q, 0), entry) == 0;
    qun_q_done(q);
    if (!same)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "ledger entry %lld differs from the manifest's",
                        (long long)index);
    imp->source_index = index;
    return QUN_OK;
}

/* The importer's right is judged on the archived group as it is now, never on the
 * roles the archive recorded (docs/archive-format.md, "Who may import"): an admin
 * removed since the export, or a member of a self-export, has no standing.  The group
 * is found by the id its `export.content` entry names (check_proof holds, so the id
 * is this server's).  A group that is dissolved (or purging, purged) is not rebuilt:
 * its content follows the disposition, and the owner restores it within the grace.
 * While a dissolution is open only the owner, who could cancel it, may import. */
static qun_rc check_importer(qun_db_t *db, qun_import_t *imp, const qun_actor_t *a, qun_err_t *err) {
    const char *gid = jstr(json_object_get(imp->manifest, "group"), "id");
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT g.id, g.state, COALESCE(m.role, '') FROM groups g LEFT JOIN members m "
                           "ON m.group_id = g.id AND m.user_id = $2 WHERE g.gid = $1",
                           "si", gid, a->uid);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_IMPORT_FORBIDDEN, "the archived group %.40s is not on this server", gid);
    if (rc != QUN_ROW) return rc;
    char state[16], role[16];
    imp->source_id = qun_q_col_int(q, 0);
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 1));
    snprintf(role, sizeof role, "%s", qun_q_col_text(q, 2));
    qun_q_done(q);
    qun_group_state_t st = qun_group_state_parse(state);
    if (st == QUN_GROUP_DISSOLVED || st == QUN_GROUP_PURGING || st == QUN_GROUP_PURGED)
        return qun_fail(
            err, QUN_IMPORT_SOURCE_GONE,
            "group %s is %s: what an archive of it holds follows its dissolution's disposition%s", gid, state,
            st == QUN_GROUP_DISSOLVED ? " (its owner may restore it within the purge grace)" : "");
    imp->by_owner = strcmp(role, "owner") == 0;
    if (!imp->by_owner && strcmp(role, "admin") != 0)
        return qun_fail(err, QUN_IMPORT_FORBIDDEN,
                        "only a current owner or admin of group %s may import it; you are %s", gid,
                        role[0] ? role : "not a member");
    if (!imp->by_owner && st != QUN_GROUP_ACTIVE)
        return qun_fail(err, QUN_IMPORT_FORBIDDEN,
                        "group %s has a dissolution in %s: only its owner may import it now", gid, state);
    return QUN_OK;
}

qun_rc qun_import_stage(qun_db_t *db, const qun_actor_t *a, const void *buf, size_t len, qun_import_t **out,
                        qun_err_t *err) {
    qun_import_t *imp = qun_xcalloc(1, sizeof *imp);
    atomic_fetch_add(&staged, 1); /* until qun_import_free */
    char top[700], dir[700], rnd[QUN_ID_MAX];
    snprintf(top, sizeof top, "%s/imports", qun_core_cfg.data_dir);
    qun_id_new(rnd, "i");
    qun_rc rc = QUN_OK;
    if (mkdir(top, 0700) != 0 && errno != EEXIST)
        rc = qun_fail(err, QUN_STORE, "cannot create %s: %s", top, strerror(errno));
    if (rc == QUN_OK) {
        snprintf(dir, sizeof dir, "%.600s/%s", top, rnd);
        if (mkdir(dir, 0700) != 0)
            rc = qun_fail(err, QUN_STORE, "cannot create %s: %s", dir, strerror(errno));
    }
    /* The reader owns the staging directory from here, and removes it on failure. */
    if (rc == QUN_OK) rc = qun_archive_read(buf, len, dir, qun_core_cfg.import_limit, &imp->rd, err);
    if (rc == QUN_OK) {
        imp->manifest = imp->rd->manifest;
        snprintf(imp->content_digest, sizeof imp->content_digest, "%s", imp->rd->content_digest);
    }
    if (rc == QUN_OK) rc = check_proof(db, imp, imp->content_digest, err);
    if (rc == QUN_OK) { /* the entry is this server's own (check_proof): its scope is trusted */
        json_t *e = json_loads(jstr(json_object_get(imp->manifest, "ledger"), "entry"), 0, NULL);
        const char *scope = json_string_value(json_object_get(e, "scope"));
        if (scope && strcmp(scope, "self") == 0)
            rc = qun_fail(
                err, QUN_IMPORT_ARCHIVE_INVALID,
                "this archive is one member's own copy (scope self): it lacks the others' payment lines "
                "and cannot rebuild the group");
        json_decref(e);
    }
    if (rc == QUN_OK) {
        rewind(imp->rd->part[QUN_ARCHIVE_MEMBERS]);
        imp->members = json_loadf(imp->rd->part[QUN_ARCHIVE_MEMBERS], JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_array(imp->members))
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "members.json is not a JSON array");
    }
    if (rc == QUN_OK) rc = check_importer(db, imp, a, err); /* early, before any byte is adopted */
    /* Verified: the bytes move into the blob store (as an upload's do before its row). */
    for (size_t i = 0; rc == QUN_OK && i < imp->rd->nblobs; i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s", imp->rd->dir, imp->rd->blobs[i].sha);
        rc = qun_blob_adopt(path, imp->rd->blobs[i].sha, imp->rd->blobs[i].size, err);
    }
    if (rc == QUN_OK) imp->rd->keep_blobs = true;
    if (rc != QUN_OK) {
        qun_import_free(imp);
        return rc;
    }
    *out = imp;
    return QUN_OK;
}

/* ---- phase 2: rebuild ---- */

/* Row id of the user openid into *uid; 0 when there is none. */
static qun_rc user_id(qun_db_t *db, const char *openid, int64_t *uid, qun_err_t *err) {
    qun_q_t *q;
    *uid = 0;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT id FROM users WHERE openid = $1", "s", openid ? openid : "");
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    *uid = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

/* The author of a line, who must be a user here (the archive came from this server). */
static qun_rc known_user(qun_db_t *db, const char *openid, int64_t *uid, qun_err_t *err) {
    qun_rc rc = user_id(db, openid, uid, err);
    if (rc == QUN_OK && !*uid)
        rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "%.40s is not a user of this server",
                      openid ? openid : "(none)");
    return rc;
}

/* The next line of a staged .jsonl member as a JSON object into *o (NULL at the end). */
static qun_rc next_line(FILE *f, const char *name, char **line, size_t *cap, json_t **o, qun_err_t *err) {
    *o = NULL;
    ssize_t n = getline(line, cap, f);
    if (n < 0) return QUN_OK;
    *o = json_loadb(*line, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    return json_is_object(*o)
               ? QUN_OK
               : qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "a line of %s is not a JSON object", name);
}

/* Why an archived member is not added (the "skipped" list of the answer). */
static void skip(json_t *skipped, const char *openid, const char *reason) {
    json_array_append_new(skipped, json_pack("{s:s, s:s}", "openid", openid, "reason", reason));
}

/* The members of the rebuilt group, added by today's rules for adding members
 * (qun_member_add) through qun_member_insert: only people who are members of the archived group now (someone
 * who left or was removed since the export is not put back; someone who joined since was never in the
 * archive), each with the role the importer may give today: their current role when the importer owns the
 * group (its owner's seat is the importer's), and `member` when an admin imports, since admins appoint no
 * admins. */
static qun_rc add_members(qun_db_t *db, const qun_actor_t *a, qun_import_t *imp, int64_t gid_id,
                          json_t *skipped, int64_t *count, qun_err_t *err) {
    size_t i;
    json_t *m;
    qun_rc rc = QUN_OK;
    *count = 1; /* the importer, owner since the group was created */
    json_array_foreach(imp->members, i, m) {
        const char *openid = jstr(m, "openid");
        if (strcmp(openid, a->openid) == 0) {
            rc = qun_db_run(db, NULL, err,
                            "UPDATE members SET joined_at = $3 WHERE group_id = $1 AND user_id = $2", "iii",
                            gid_id, a->uid, jint(m, "joined_at"));
            if (rc != QUN_DONE) return rc;
            continue;
        }
        int64_t uid;
        rc = user_id(db, openid, &uid, err);
        if (rc != QUN_OK) return rc;
        if (!uid) {
            skip(skipped, openid, "no_account");
            continue;
        }
        qun_q_t *q;
        char role[16];
        rc = qun_db_run(db, &q, err, "SELECT role FROM members WHERE group_id = $1 AND user_id = $2", "ii",
                        imp->source_id, uid);
        if (rc == QUN_DONE) {
            skip(skipped, openid, "not_a_member_now");
            continue;
        }
        if (rc != QUN_ROW) return rc;
        snprintf(role, sizeof role, "%s",
                 imp->by_owner && strcmp(qun_q_col_text(q, 0), "admin") == 0 ? "admin" : "member");
        qun_q_done(q);
        rc = qun_member_insert(db, gid_id, uid, role, jint(m, "joined_at"), err);
        if (rc == QUN_OK) rc = qun_event_member(db, "member.added", gid_id, uid, err);
        if (rc != QUN_OK) return rc;
        (*count)++;
    }
    return QUN_OK;
}

static qun_rc add_messages(qun_db_t *db, qun_import_t *imp, int64_t gid_id, int64_t *count, qun_err_t *err) {
    char *line = NULL, last[QUN_ID_MAX] = "";
    size_t cap = 0;
    int64_t last_uid = 0, max_seq = 0;
    json_t *o;
    qun_rc rc;
    *count = 0;
    while ((rc = next_line(imp->rd->part[QUN_ARCHIVE_MESSAGES], "messages.jsonl", &line, &cap, &o, err)) ==
               QUN_OK &&
           o) {
        const char *author = jstr(o, "author");
        int64_t seq = jint(o, "seq");
        if (strcmp(author, last) != 0) {
            rc = known_user(db, author, &last_uid, err);
            snprintf(last, sizeof last, "%s", author);
        }
        if (rc == QUN_OK && (seq <= max_seq || !json_is_string(json_object_get(o, "text"))))
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID,
                          "messages.jsonl is not in increasing seq order with text");
        if (rc == QUN_OK) {
            const char *kind = json_string_value(json_object_get(o, "kind"));
            /* A recalled message comes back recalled, with no text (a hand-edited archive's
             * text is dropped).  The archive names no one for a removal: its by is null. */
            bool recalled = json_is_true(json_object_get(o, "recalled"));
            bool removed = recalled && json_is_true(json_object_get(o, "removed"));
            int64_t created = jint(o, "created_at");
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO messages(group_id, seq, author_id, kind, body, created_at, "
                            "recalled_at, recalled_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            "iiissizz", gid_id, seq, last_uid, kind ? kind : "text",
                            recalled ? "" : jstr(o, "text"), created, recalled ? created : 0,
                            recalled && !removed ? last_uid : 0);
            rc = rc == QUN_DONE ? QUN_OK : rc == QUN_OK ? QUN_STORE : rc;
        }
        json_decref(o);
        if (rc != QUN_OK) break;
        max_seq = seq;
        (*count)++;
    }
    free(line);
    if (rc != QUN_OK) return rc;
    rc =
        qun_db_run(db, NULL, err, "UPDATE groups SET next_seq = $2 WHERE id = $1", "ii", gid_id, max_seq + 1);
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc add_files(qun_db_t *db, qun_import_t *imp, int64_t gid_id, int64_t *count, qun_err_t *err) {
    char *line = NULL;
    size_t cap = 0;
    json_t *o;
    qun_rc rc;
    int64_t now = qun_now();
    *count = 0;
    while ((rc = next_line(imp->rd->part[QUN_ARCHIVE_FILES], "files.jsonl", &line, &cap, &o, err)) ==
               QUN_OK &&
           o) {
        const char *sha = jstr(o, "sha256");
        int64_t size = jint(o, "size"), uid = 0;
        char path[1024];
        struct stat st;
        rc = known_user(db, jstr(o, "uploader"), &uid, err);
        qun_blob_path(sha, path, sizeof path);
        /* Unlinks of dropped blobs run on this writer, so this check cannot race one. */
        if (rc == QUN_OK && (stat(path, &st) != 0 || st.st_size != size))
            rc = qun_fail(err, QUN_UNAVAILABLE, "the bytes of %s were reclaimed meanwhile; retry the import",
                          sha);
        if (rc == QUN_OK)
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO blobs(sha256, size, refcount, created_at) VALUES ($1, $2, 1, $3) "
                            "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1",
                            "sii", sha, size, now);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err, "DELETE FROM unlink_queue WHERE sha256 = $1", "s", sha);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO group_files(group_id, sha256, name, content_type, size, "
                            "uploader_id, created_at) "
                            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            "isssiii", gid_id, sha, jstr(o, "name"), jstr(o, "content_type"), size, uid,
                            jint(o, "created_at"));
        json_decref(o);
        if (rc != QUN_DONE && rc != QUN_OK) break;
        rc = QUN_OK;
        (*count)++;
    }
    free(line);
    return rc;
}

static qun_rc add_payments(qun_db_t *db, qun_import_t *imp, int64_t gid_id, int64_t *count, qun_err_t *err) {
    char *line = NULL;
    size_t cap = 0;
    json_t *o;
    qun_rc rc;
    *count = 0;
    while ((rc = next_line(imp->rd->part[QUN_ARCHIVE_PAYMENTS], "payments.jsonl", &line, &cap, &o, err)) ==
               QUN_OK &&
           o) {
        int64_t uid = 0, pid_id = 0;
        char pid[QUN_ID_MAX];
        qun_id_new(pid, "p");
        qun_q_t *q;
        rc = known_user(db, jstr(o, "creator"), &uid, err);
        if (rc == QUN_OK) {
            rc = qun_db_run(
                db, &q, err,
                "INSERT INTO payments(pid, group_id, creator_id, kind, amount, shares, claimed_amount, "
                "claimed_shares, memo, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                "RETURNING id",
                "siisiiiisi", pid, gid_id, uid, jstr(o, "kind"), jint(o, "amount"), jint(o, "shares"),
                jint(o, "claimed_amount"), jint(o, "claimed_shares"), jstr(o, "memo"), jint(o, "created_at"));
            if (rc == QUN_ROW) {
                pid_id = qun_q_col_int(q, 0);
                qun_q_done(q);
                rc = QUN_OK;
            } else if (rc == QUN_DONE) {
                rc = QUN_STORE;
            }
        }
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(o, "claims"), i, c) {
            int64_t cuid = 0;
            if (rc == QUN_OK) rc = known_user(db, jstr(c, "openid"), &cuid, err);
            if (rc == QUN_OK)
                rc = qun_db_run(db, NULL, err,
                                "INSERT INTO payment_claims(payment_id, user_id, amount, created_at) VALUES "
                                "($1, $2, $3, $4)",
                                "iiii", pid_id, cuid, jint(c, "amount"), jint(c, "created_at"));
            if (rc == QUN_DONE) rc = QUN_OK;
        }
        json_decref(o);
        if (rc != QUN_OK) break;
        (*count)++;
    }
    free(line);
    return rc;
}

qun_rc qun_import_rebuild(qun_db_t *db, const qun_actor_t *a, qun_import_t *imp, json_t **out,
                          qun_err_t *err) {
    for (int i = 0; i < QUN_ARCHIVE_PARTS; i++)
        rewind(imp->rd->part[i]); /* a retried transaction reads them again */
    /* The importer's standing again, on the writer: it may have changed since staging. */
    qun_rc rc = check_importer(db, imp, a, err);
    if (rc != QUN_OK) return rc;
    json_t *m = imp->manifest, *g = json_object_get(m, "group");
    const char *kind = jstr(g, "kind");
    /* Kinds that need an org or regions come back as standard groups. */
    const char *new_kind = strcmp(kind, "finance") == 0 ? "finance" : "standard";
    json_t *group = NULL, *skipped = json_array();
    rc = qun_group_create(db, a, jstr(g, "name"), new_kind, NULL, NULL, &group, err);
    char gid[QUN_ID_MAX] = "";
    int64_t gid_id = 0, members = 0, messages = 0, files = 0, payments = 0, index = -1;
    if (rc == QUN_OK) {
        snprintf(gid, sizeof gid, "%s", jstr(group, "id"));
        qun_q_t *q;
        rc = qun_db_run(db, &q, err, "SELECT id FROM groups WHERE gid = $1", "s", gid);
        if (rc == QUN_ROW) {
            gid_id = qun_q_col_int(q, 0);
            qun_q_done(q);
            rc = QUN_OK;
        } else if (rc == QUN_DONE) {
            rc = QUN_STORE;
        }
    }
    json_decref(group);
    if (rc == QUN_OK) rc = add_members(db, a, imp, gid_id, skipped, &members, err);
    if (rc == QUN_OK) rc = add_messages(db, imp, gid_id, &messages, err);
    if (rc == QUN_OK) rc = add_files(db, imp, gid_id, &files, err);
    if (rc == QUN_OK) rc = add_payments(db, imp, gid_id, &payments, err);
    json_t *counts =
        json_pack("{s:I, s:I, s:I, s:I}", "members", (json_int_t)members, "messages", (json_int_t)messages,
                  "files", (json_int_t)files, "payments", (json_int_t)payments);
    json_t *source =
        json_pack("{s:s, s:s, s:s, s:I}", "group", jstr(g, "id"), "export", jstr(m, "export"),
                  "content_digest", imp->content_digest, "ledger_index", (json_int_t)imp->source_index);
    if (rc == QUN_OK) {
        json_t *f = json_pack("{s:O, s:O, s:I}", "source", source, "counts", counts, "skipped_members",
                              (json_int_t)json_array_size(skipped));
        rc = qun_ledger_append(db, "import.made", gid, a->openid, QUN_GROUP_NAME(ACTIVE),
                               QUN_GROUP_NAME(ACTIVE), f, &index, err);
        json_decref(f);
    }
    if (rc != QUN_OK) {
        json_decref(counts);
        json_decref(source);
        json_decref(skipped);
        return rc;
    }
    json_t *openids = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(skipped, i, e) json_array_append(openids, json_object_get(e, "openid"));
    *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I}", "group", gid, "name", jstr(g, "name"),
                     "kind", new_kind, "original_kind", kind, "source", source, "counts", counts,
                     "skipped_members", openids, "skipped", skipped, "ledger_index", (json_int_t)index);
    return QUN_OK;
}
