/* SPDX-License-Identifier: MIT */
/* The export job (include/qun/export.h, docs/archive-format.md); the request that
 * queues it is core/export.c.  The job's first step starts an export thread and defers; the thread opens its
 * own read-only connection, takes one read transaction (a consistent snapshot of the group, while writes go
 * on) and streams the archive through the archive writer (tar | zstd | age) into
 * <data>/exports/<id>.age.part, renamed to <id>.age when it is complete and durable.  Later steps, on the
 * writer, copy the thread's counters into the row and, once it has ended, record `done` with the digest and
 * the `export.made` ledger entry, or `failed` with the error.  The writer is never held while bytes are read,
 * compressed or encrypted.
 *
 * Member files of variable length (members.json, messages.jsonl, files.jsonl,
 * payments.jsonl) are staged (archive/stage.c) in unlinked temporary files next to the output, because
 * a tar header carries the size before the bytes; each is hashed while staged.  So the
 * memory of an export is a few buffers whatever the group's size; its extra disk use
 * is the uncompressed size of those files. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qun/archive.h"
#include "qun/core.h"
#include "qun/desensitize.h"
#include "qun/event.h"
#include "qun/export.h"
#include "qun/jobs.h"
#include "qun/ledger.h"
#include "qun/outfile.h"
#include "qun/policy.h"
#include "qun/queue.h"
#include "qun/stage.h"
#include "qun/transcript.h"
#include "qun/verify.h"

#define PAGE 1000 /* rows read per query while paging through a table */

/* ---- the export thread's shared state ---- */

/* One running export, shared by its thread and the job's steps (under mu).  The
 * thread sets `ended` as the very last thing it does with the context; after that
 * the step owns it and frees it. */
typedef struct ctx {
    struct ctx *next;
    int64_t job_id, export_id, group_id;
    char xid[QUN_ID_MAX];
    char *recipients;      /* JSON array text; "[]" with a passphrase */
    unsigned char *sealed; /* the passphrase, sealed (qun_secret_seal), or NULL */
    size_t sealed_len;
    char lang[8];               /* the transcript's language */
    bool has_tz;                /* tz_offset is known; else the transcript is in UTC */
    int tz_offset;              /* minutes east of UTC */
    bool mask;                  /* desensitize message text and memos */
    int64_t self_uid;           /* scope 'self': the member whose copy this is; 0 for the whole group */
    char requester[QUN_ID_MAX]; /* openid, the actor of the seal's ledger entry */
    _Atomic int64_t messages, files, bytes, file_bytes;
    _Atomic int64_t total_messages, total_files, total_file_bytes; /* of the snapshot, once counted */
    _Atomic int64_t started_ms, elapsed_ms; /* the thread's wall time, when it has ended */
    bool ended, ok;                         /* under mu */
    char digest[65];
    int64_t size;
    json_t *counts; /* the manifest's counts (and masked counts), set when ok */
    char error[300];
    /* Sealing, by the thread through the writer (seal()): the `export.content` entry's
     * fields, then its index and text once appended. */
    char content_digest[65];
    json_t *seal_counts;
    int64_t seal_index;
    char *seal_entry;
} ctx_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static ctx_t *running; /* the contexts of export threads this process started */
/* The writer for direct seals (qun_export_use_writer), and how many threads use it now. */
static qun_writer_t *g_writer;
static int g_writer_users;
static pthread_cond_t writer_idle_cv = PTHREAD_COND_INITIALIZER;

void qun_export_use_writer(qun_writer_t *w) {
    pthread_mutex_lock(&mu);
    g_writer = w;
    while (!w && g_writer_users > 0)
        pthread_cond_wait(&writer_idle_cv, &mu);
    pthread_mutex_unlock(&mu);
}

/* The writer for a thread's own transaction, counted so qun_export_use_writer(NULL)
 * waits for it; NULL while qund stops.  writer_give after each non-NULL take. */
static qun_writer_t *writer_take(void) {
    pthread_mutex_lock(&mu);
    qun_writer_t *wr = g_writer;
    if (wr) g_writer_users++;
    pthread_mutex_unlock(&mu);
    return wr;
}

static void writer_give(void) {
    pthread_mutex_lock(&mu);
    if (--g_writer_users == 0) pthread_cond_broadcast(&writer_idle_cv);
    pthread_mutex_unlock(&mu);
}

/* Take c out of the running list; the caller holds mu. */
static void running_remove(ctx_t *c) {
    for (ctx_t **r = &running; *r; r = &(*r)->next)
        if (*r == c) {
            *r = c->next;
            return;
        }
}

static void ctx_free(ctx_t *c) {
    if (!c) return;
    free(c->recipients);
    free(c->sealed);
    json_decref(c->counts);
    json_decref(c->seal_counts);
    free(c->seal_entry);
    free(c);
}

/* ---- an export's work ---- */

typedef struct {
    int64_t uid; /* 0: empty */
    char openid[QUN_ID_MAX];
} author_t;

typedef struct {
    int64_t size;
    char sha[65];
} blob_t;

typedef struct {
    ctx_t *c;
    qun_db_t *db;
    qun_archive_t *a;
    qun_outfile_t *out;
    qun_rc out_rc; /* the output file's first error (the age layer sees only -1) */
    qun_err_t out_err;
    char dir[600], part[700], final[700];
    int64_t now;
    qun_stage_t digests; /* "name":"hex" pairs for the manifest, comma-separated */
    int64_t ndigests;
    crypto_hash_sha256_state content; /* over "<hex>  <name>\n" per member: the content digest */
    bool over_quota;                  /* the output went past export_quota_bytes */
    uint8_t *piece;                   /* the read buffer for blobs (BLOB_PIECE bytes) */
    author_t authors[1024];           /* the message authors' openids, by a hash of the user id */
    blob_t *blobs;                    /* the group's files, listed before they stream */
    size_t nblobs, blobs_cap;
    atomic_bool stop; /* the export thread or the file streamer failed: the other stops */
    json_t *named;    /* sha256 -> the file's name under files/ */
    json_t *used;     /* the names given under files/, folded */
    qun_mask_counts_t masked;
} work_t;

static qun_rc stage_open(work_t *w, qun_stage_t *s, qun_err_t *err) {
    return qun_stage_open(s, w->dir, err);
}

/* Record a member file's digest for the manifest. */
static qun_rc note_digest(work_t *w, const char *name, const char *hex, qun_err_t *err) {
    json_t *k = json_string(name);
    char *key = json_dumps(k, JSON_ENCODE_ANY);
    json_decref(k);
    if (!key) return qun_fail(err, QUN_NOMEM, "cannot encode a name");
    char tail[80];
    snprintf(tail, sizeof tail, ":\"%s\"", hex);
    char line[80 + 300];
    int ln = snprintf(line, sizeof line, "%s  %s\n", hex, name);
    crypto_hash_sha256_update(&w->content, (const unsigned char *)line, (size_t)ln);
    qun_rc rc = qun_stage_str(&w->digests, w->ndigests++ ? "," : "", err);
    if (rc == QUN_OK) rc = qun_stage_str(&w->digests, key, err);
    if (rc == QUN_OK) rc = qun_stage_str(&w->digests, tail, err);
    free(key);
    return rc;
}

/* Add a staged file to the archive under name and close it; listed: its digest goes
 * into the manifest. */
static qun_rc stage_add(work_t *w, qun_stage_t *s, const char *name, bool listed, qun_err_t *err) {
    char hex[65];
    qun_rc rc = qun_stage_finish(s, w->a, name, w->now, hex, err);
    return rc == QUN_OK && listed ? note_digest(w, name, hex, err) : rc;
}

/* ---- reading the snapshot ---- */

static void mask_text(work_t *w, char *text) {
    if (w->c->mask) qun_desensitize_inplace(text, strlen(text), &w->masked);
}

static qun_rc write_members(work_t *w, int64_t *count, qun_err_t *err) {
    qun_stage_t s;
    qun_rc rc = stage_open(w, &s, err);
    if (rc != QUN_OK) return rc;
    rc = qun_stage_str(&s, "[", err);
    int64_t after_uid = 0, n;
    do {
        qun_q_t *q;
        n = 0;
        qun_rc qrc = qun_db_run(w->db, &q, err,
                                "SELECT u.id, u.openid, u.username, m.role, m.joined_at FROM members m "
                                "JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 AND m.user_id > $2 "
                                "ORDER BY m.user_id LIMIT $3",
                                "iii", w->c->group_id, after_uid, (int64_t)PAGE);
        for (; rc == QUN_OK && qrc == QUN_ROW; qrc = qun_q_step(q, err), n++) {
            after_uid = qun_q_col_int(q, 0);
            rc = qun_stage_str(&s, s.items++ ? ",\n" : "\n", err);
            if (rc == QUN_OK)
                rc = qun_stage_json(&s,
                                    json_pack("{s:s, s:s, s:s, s:I}", "openid", qun_q_col_text(q, 1),
                                              "username", qun_q_col_text(q, 2), "role", qun_q_col_text(q, 3),
                                              "joined_at", (json_int_t)qun_q_col_int(q, 4)),
                                    err);
        }
        if (qrc == QUN_ROW)
            qun_q_done(q);
        else if (rc == QUN_OK && qrc != QUN_DONE)
            rc = qrc;
    } while (rc == QUN_OK && n == PAGE);
    if (rc == QUN_OK) rc = qun_stage_str(&s, "\n]\n", err);
    *count = s.items;
    return rc == QUN_OK ? stage_add(w, &s, "members.json", true, err) : (qun_stage_close(&s), rc);
}

/* The openid of user uid, from a small cache: a group has few authors next to its
 * messages, and a join per message row was a quarter of the read.  NULL (and err set)
 * when the user row is missing. */
static const char *author_openid(work_t *w, int64_t uid, qun_err_t *err) {
    author_t *slot = &w->authors[(uint64_t)uid * 0x9E3779B97F4A7C15ull >> 54]; /* 1024 slots */
    if (slot->uid == uid) return slot->openid;
    qun_q_t *q;
    qun_rc rc = qun_db_run(w->db, &q, err, "SELECT openid FROM users WHERE id = $1", "i", uid);
    if (rc != QUN_ROW) {
        if (rc == QUN_DONE) qun_fail(err, QUN_STORE, "message author %lld has no user row", (long long)uid);
        return NULL;
    }
    slot->uid = uid;
    snprintf(slot->openid, sizeof slot->openid, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return slot->openid;
}

#define LINES_CAP (1 << 20) /* bytes of lines handed to the staging thread at a time */

/* The file streamer failed: the export thread stops reading too (its error is the
 * streamer's, reported after the join). */
static bool stopped(work_t *w, qun_rc *rc, qun_err_t *err) {
    if (!atomic_load(&w->stop)) return false;
    *rc = qun_fail(err, QUN_INTERNAL, "the file streamer stopped");
    return true;
}

/* A member staged compressed in s from lines a helper thread writes (bg). */
static qun_rc lines_begin(work_t *w, qun_stage_t *s, qun_stage_bg_t *bg, qun_err_t *err) {
    qun_rc rc = qun_stage_open_zst(s, w->dir, err);
    if (rc == QUN_OK && (rc = qun_stage_bg_start(bg, s, err)) != QUN_OK) qun_stage_close(s);
    return rc;
}

/* End the helper and free the two line buffers; the helper's error wins when rc is
 * fine or is the helper's own (from a hand-over).  On failure s is closed. */
static qun_rc lines_end(qun_stage_bg_t *bg, qun_line_t lines[2], qun_stage_t *s, qun_rc rc, qun_err_t *err) {
    qun_err_t bg_err = {{0}, {0}};
    qun_rc brc = qun_stage_bg_finish(bg, &bg_err);
    if (brc != QUN_OK && (rc == QUN_OK || rc == brc)) {
        rc = brc;
        *err = bg_err;
    }
    free(lines[0].p);
    free(lines[1].p);
    if (rc != QUN_OK) qun_stage_close(s);
    return rc;
}

/* messages.jsonl into s (added to the archive by the caller). */
static qun_rc write_messages(work_t *w, qun_stage_t *s, int64_t *count, qun_err_t *err) {
    qun_line_t lines[2] = {{NULL, 0, 0, false}, {NULL, 0, 0, false}}, *cur = &lines[0];
    qun_stage_bg_t bg;
    qun_rc rc = lines_begin(w, s, &bg, err);
    if (rc != QUN_OK) return rc;
    int64_t after = 0, n;
    *count = 0;
    do {
        qun_q_t *q;
        n = 0;
        qun_rc qrc =
            qun_db_run(w->db, &q, err,
                       "SELECT m.seq, m.author_id, m.kind, m.body, m.created_at, "
                       "CASE WHEN m.recalled_at IS NULL THEN 0 WHEN m.recalled_by = m.author_id THEN 1 "
                       "ELSE 2 END FROM messages m "
                       "WHERE m.group_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
                       "iii", w->c->group_id, after, (int64_t)PAGE);
        for (; rc == QUN_OK && qrc == QUN_ROW; qrc = qun_q_step(q, err), n++) {
            after = qun_q_col_int(q, 0);
            char *masked = NULL;
            const char *text = qun_q_col_text(q, 3);
            if (w->c->mask) {
                if (!(masked = strdup(text))) {
                    rc = qun_fail(err, QUN_NOMEM, "out of memory");
                    break;
                }
                mask_text(w, masked);
                text = masked;
            }
            /* Written by hand, not through jansson: at a million lines the encoder's
             * allocations were a third of the export's time.  The same bytes as
             * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) would give. */
            const char *author = author_openid(w, qun_q_col_int(q, 1), err);
            if (!author) {
                free(masked);
                rc = QUN_STORE;
                break;
            }
            qun_line_put(cur, "{\"author\":", 10);
            qun_line_jstr(cur, author);
            qun_line_printf(cur, ",\"created_at\":%lld,\"kind\":", (long long)qun_q_col_int(q, 4));
            qun_line_jstr(cur, qun_q_col_text(q, 2));
            /* A recalled message's text is gone from its row (core/message.c): "".
             * removed: someone other than the author took it down. */
            if (qun_q_col_int(q, 5)) qun_line_put(cur, ",\"recalled\":true", 16);
            if (qun_q_col_int(q, 5) == 2) qun_line_put(cur, ",\"removed\":true", 15);
            qun_line_printf(cur, ",\"seq\":%lld,\"text\":", (long long)after);
            qun_line_jstr(cur, text);
            qun_line_put(cur, "}\n", 2);
            free(masked);
            if (cur->oom)
                rc = qun_fail(err, QUN_NOMEM, "out of memory");
            else if (cur->len >= LINES_CAP && (rc = qun_stage_bg_hand(&bg, cur)) == QUN_OK)
                cur = cur == &lines[0] ? &lines[1] : &lines[0];
            (*count)++;
            atomic_store(&w->c->messages, *count);
        }
        if (qrc == QUN_ROW)
            qun_q_done(q);
        else if (rc == QUN_OK && qrc != QUN_DONE)
            rc = qrc;
    } while (rc == QUN_OK && n == PAGE && !stopped(w, &rc, err));
    if (rc == QUN_OK) rc = qun_stage_bg_hand(&bg, cur);
    return lines_end(&bg, lines, s, rc, err);
}

/* One blob into the archive, read in large pieces and hashed on the way, so it is
 * checked against its content address as it streams. */
#define BLOB_PIECE (1 << 20)

static qun_rc add_blob(work_t *w, const char *sha, int64_t size, qun_err_t *err) {
    char path[1024], name[80];
    qun_blob_path(sha, path, sizeof path);
    snprintf(name, sizeof name, "files/%s", sha);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "file %s is missing from the store: %s", sha,
                        strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != size) {
        close(fd);
        return qun_fail(err, QUN_STORE, "file %s has %lld bytes on disk, %lld recorded", sha,
                        (long long)st.st_size, (long long)size);
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (!w->piece && !(w->piece = malloc(BLOB_PIECE))) {
        close(fd);
        return qun_fail(err, QUN_NOMEM, "out of memory");
    }
    qun_sha256_t h;
    qun_rc rc = qun_sha256_init(&h, err);
    if (rc == QUN_OK) rc = qun_archive_add_begin(w->a, name, size, w->now, err);
    for (int64_t left = size; rc == QUN_OK && left > 0;) {
        ssize_t got = read(fd, w->piece, left < BLOB_PIECE ? (size_t)left : BLOB_PIECE);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            rc = qun_fail(err, QUN_STORE, "cannot read file %s: %s", sha,
                          got ? strerror(errno) : "it is shorter");
            break;
        }
        qun_sha256_update(&h, w->piece, (size_t)got);
        rc = qun_archive_add_data(w->a, w->piece, (size_t)got, err);
        left -= got;
    }
    close(fd);
    if (rc != QUN_OK) {
        qun_sha256_free(&h);
        return rc;
    }
    unsigned char sum[32];
    char hex[65];
    qun_sha256_final(&h, sum);
    qun_hex(hex, sum, sizeof sum);
    if (strcmp(hex, sha) != 0)
        return qun_fail(err, QUN_STORE, "file %s does not match its digest (%s)", sha, hex);
    return note_digest(w, name, hex, err);
}

/* files.jsonl into s, and the list of blobs to stream (w->blobs): the export thread
 * reads the whole list first, so the blobs can stream on their own thread while this
 * one goes on to the messages. */
static qun_rc list_files(work_t *w, qun_stage_t *s, int64_t *count, qun_err_t *err) {
    qun_rc rc = stage_open(w, s, err);
    if (rc != QUN_OK) return rc;
    int64_t after = 0, n;
    *count = 0;
    do {
        qun_q_t *q;
        n = 0;
        qun_rc qrc =
            qun_db_run(w->db, &q, err,
                       "SELECT f.id, f.sha256, f.name, f.content_type, f.size, u.openid, f.created_at "
                       "FROM group_files f JOIN users u ON u.id = f.uploader_id WHERE f.group_id = $1 "
                       "AND f.id > $2 ORDER BY f.id LIMIT $3",
                       "iii", w->c->group_id, after, (int64_t)PAGE);
        for (; rc == QUN_OK && qrc == QUN_ROW; qrc = qun_q_step(q, err), n++) {
            after = qun_q_col_int(q, 0);
            if (w->nblobs == w->blobs_cap) {
                size_t cap = w->blobs_cap ? 2 * w->blobs_cap : 64;
                blob_t *more = realloc(w->blobs, cap * sizeof *more);
                if (!more) {
                    rc = qun_fail(err, QUN_NOMEM, "out of memory");
                    break;
                }
                w->blobs = more;
                w->blobs_cap = cap;
            }
            blob_t *b = &w->blobs[w->nblobs++];
            b->size = qun_q_col_int(q, 4);
            snprintf(b->sha, sizeof b->sha, "%s", qun_q_col_text(q, 1));
            char *fname = strdup(qun_q_col_text(q, 2));
            if (!fname) {
                rc = qun_fail(err, QUN_NOMEM, "out of memory");
                break;
            }
            mask_text(w, fname);
            /* The file under its own name too: a hard link to files/<sha256>. */
            char safe[200];
            qun_tr_safe_name(fname, w->used, safe, sizeof safe);
            json_object_set_new(w->named, b->sha, json_string(safe));
            rc = qun_stage_line(s,
                                json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "sha256", b->sha, "name", fname,
                                          "content_type", qun_q_col_text(q, 3), "size", (json_int_t)b->size,
                                          "uploader", qun_q_col_text(q, 5), "created_at",
                                          (json_int_t)qun_q_col_int(q, 6)),
                                err);
            free(fname);
            (*count)++;
        }
        if (qrc == QUN_ROW)
            qun_q_done(q);
        else if (rc == QUN_OK && qrc != QUN_DONE)
            rc = qrc;
    } while (rc == QUN_OK && n == PAGE);
    if (rc != QUN_OK) qun_stage_close(s);
    return rc;
}

/* The file streamer: every listed blob and its link into the archive.  It owns the
 * archive, w->digests and w->content until it is joined; w->named is only read. */
typedef struct {
    work_t *w;
    qun_rc rc;
    qun_err_t err;
} streamer_t;

static void *stream_files(void *arg) {
    streamer_t *st = arg;
    work_t *w = st->w;
    int64_t bytes = 0;
    qun_rc rc = QUN_OK;
    for (size_t i = 0; rc == QUN_OK && i < w->nblobs; i++) {
        if (atomic_load(&w->stop)) break;
        const blob_t *b = &w->blobs[i];
        rc = add_blob(w, b->sha, b->size, &st->err);
        const char *safe = json_string_value(json_object_get(w->named, b->sha));
        if (rc == QUN_OK && safe) {
            char link[260], target[80];
            snprintf(link, sizeof link, "files/%s", safe);
            snprintf(target, sizeof target, "files/%s", b->sha);
            rc = qun_archive_add_link(w->a, link, target, w->now, &st->err);
        }
        bytes += b->size;
        atomic_store(&w->c->files, (int64_t)i + 1);
        atomic_store(&w->c->file_bytes, bytes);
    }
    st->rc = rc;
    if (rc != QUN_OK) atomic_store(&w->stop, true);
    return NULL;
}

#define PAY_COLS                                                                                             \
    "p.id, p.pid, p.kind, p.amount, p.shares, p.claimed_amount, p.claimed_shares, p.memo, u.openid, "        \
    "p.created_at "                                                                                          \
    "FROM payments p JOIN users u ON u.id = p.creator_id"

/* payments.jsonl into s (added by the caller). */
static qun_rc write_payments(work_t *w, qun_stage_t *s, int64_t *count, qun_err_t *err) {
    int64_t self = w->c->self_uid;
    qun_rc rc = stage_open(w, s, err);
    if (rc != QUN_OK) return rc;
    int64_t after = 0, n;
    *count = 0;
    do {
        qun_q_t *q;
        n = 0;
        /* A member's own copy holds the payments they made or claimed from. */
        qun_rc qrc =
            self
                ? qun_db_run(
                      w->db, &q, err,
                      "SELECT " PAY_COLS " WHERE p.group_id = $1 AND p.id > $2 AND (p.creator_id = $4 OR "
                      "EXISTS (SELECT 1 FROM payment_claims c WHERE c.payment_id = p.id AND c.user_id = $4)) "
                      "ORDER BY p.id LIMIT $3",
                      "iiii", w->c->group_id, after, (int64_t)PAGE, self)
                : qun_db_run(w->db, &q, err,
                             "SELECT " PAY_COLS " WHERE p.group_id = $1 AND p.id > $2 ORDER BY p.id LIMIT $3",
                             "iii", w->c->group_id, after, (int64_t)PAGE);
        for (; rc == QUN_OK && qrc == QUN_ROW; qrc = qun_q_step(q, err), n++) {
            after = qun_q_col_int(q, 0);
            char *memo = strdup(qun_q_col_text(q, 7));
            if (!memo) {
                rc = qun_fail(err, QUN_NOMEM, "out of memory");
                break;
            }
            mask_text(w, memo);
            json_t *claims = json_array();
            qun_q_t *cq;
            /* ... and of the claims, only their own. */
            qun_rc crc =
                self
                    ? qun_db_run(w->db, &cq, err,
                                 "SELECT u.openid, c.amount, c.created_at FROM payment_claims c JOIN users u "
                                 "ON u.id = c.user_id WHERE c.payment_id = $1 AND c.user_id = $2 "
                                 "ORDER BY c.created_at, u.id",
                                 "ii", after, self)
                    : qun_db_run(w->db, &cq, err,
                                 "SELECT u.openid, c.amount, c.created_at FROM payment_claims c JOIN users u "
                                 "ON u.id = c.user_id WHERE c.payment_id = $1 ORDER BY c.created_at, u.id",
                                 "i", after);
            for (; crc == QUN_ROW; crc = qun_q_step(cq, err))
                json_array_append_new(claims, json_pack("{s:s, s:I, s:I}", "openid", qun_q_col_text(cq, 0),
                                                        "amount", (json_int_t)qun_q_col_int(cq, 1),
                                                        "created_at", (json_int_t)qun_q_col_int(cq, 2)));
            if (crc != QUN_DONE) rc = crc;
            json_t *line = json_pack(
                "{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:I, s:o}", "id", qun_q_col_text(q, 1), "kind",
                qun_q_col_text(q, 2), "amount", (json_int_t)qun_q_col_int(q, 3), "shares",
                (json_int_t)qun_q_col_int(q, 4), "claimed_amount", (json_int_t)qun_q_col_int(q, 5),
                "claimed_shares", (json_int_t)qun_q_col_int(q, 6), "memo", memo, "creator",
                qun_q_col_text(q, 8), "created_at", (json_int_t)qun_q_col_int(q, 9), "claims", claims);
            free(memo);
            if (rc == QUN_OK)
                rc = qun_stage_line(s, line, err);
            else
                json_decref(line);
            (*count)++;
        }
        if (qrc == QUN_ROW)
            qun_q_done(q);
        else if (rc == QUN_OK && qrc != QUN_DONE)
            rc = qrc;
    } while (rc == QUN_OK && n == PAGE && !stopped(w, &rc, err));
    if (rc != QUN_OK) qun_stage_close(s);
    return rc;
}

static json_t *hex_json(const unsigned char *h) {
    char hex[2 * QUN_HASH + 1];
    qun_hex(hex, h, QUN_HASH);
    return json_string(hex);
}

/* The stored text of ledger entry index into a malloc'd string (NULL when absent). */
static qun_rc entry_text(qun_db_t *db, int64_t index, char **out, qun_err_t *err) {
    qun_q_t *q;
    *out = NULL;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", index);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    *out = qun_xstrdup(qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

/* Append the `export.content` entry of c (content_digest, seal_counts) as its requester;
 * seal_index and seal_entry receive its index and text. */
static qun_rc append_content(qun_db_t *db, ctx_t *c, qun_err_t *err) {
    qun_q_t *q;
    char gid[QUN_ID_MAX], gstate[16];
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gid, state FROM groups WHERE id = $1", "i", c->group_id);
    if (rc != QUN_ROW)
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "the group of export %s is gone", c->xid) : rc;
    snprintf(gid, sizeof gid, "%s", qun_q_col_text(q, 0));
    snprintf(gstate, sizeof gstate, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    /* The scope is in the sealed entry, so an importer can trust it (the manifest itself
     * is outside the content digest). */
    json_t *f = json_pack("{s:s, s:s, s:O, s:s}", "export", c->xid, "content_digest", c->content_digest,
                          "counts", c->seal_counts, "scope", c->self_uid ? "self" : "group");
    int64_t index = -1;
    rc = qun_ledger_append(db, "export.content", gid, c->requester, gstate, gstate, f, &index, err);
    json_decref(f);
    char *text = NULL;
    if (rc == QUN_OK) rc = entry_text(db, index, &text, err);
    if (rc != QUN_OK) return rc;
    free(c->seal_entry);
    c->seal_entry = text;
    c->seal_index = index;
    return QUN_OK;
}

/* The manifest's `ledger` member for c's committed seal entry: its inclusion proof in
 * the tree of size index + 1. */
static qun_rc prove_content(qun_db_t *db, ctx_t *c, json_t **ledger, qun_err_t *err) {
    uint64_t size = (uint64_t)c->seal_index + 1;
    unsigned char root[QUN_HASH], leaf[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int n = 0;
    qun_rc rc = qun_ledger_root_at(db, size, root, err);
    if (rc == QUN_OK) rc = qun_ledger_inclusion(db, (uint64_t)c->seal_index, size, proof, &n, err);
    if (rc != QUN_OK) return rc;
    qun_merkle_leaf(leaf, c->seal_entry, strlen(c->seal_entry));
    json_t *hashes = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(hashes, hex_json(proof[i]));
    *ledger = json_pack("{s:s, s:I, s:I, s:o, s:o, s:s, s:o}", "event", "export.content", "index",
                        (json_int_t)c->seal_index, "tree_size", (json_int_t)size, "root", hex_json(root),
                        "leaf_hash", hex_json(leaf), "entry", c->seal_entry, "proof", hashes);
    return *ledger ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the seal's proof");
}

static qun_rc append_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    return append_content(db, arg, err);
}

typedef struct {
    ctx_t *c;
    json_t *ledger;
} prove_t;

static qun_rc prove_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    prove_t *p = arg;
    return prove_content(db, p->c, &p->ledger, err);
}

/* Have the content digest ledgered as `export.content` through the writer, from this
 * thread (the append's commit is known when qun_writer_run returns, so the proof
 * follows at once), and hand back its proof:
 * *ledger = {event, index, tree_size, root, leaf_hash, entry, proof} (caller owns).
 * While qund stops no writer may be used: the export fails, and the job, still
 * `running`, starts it over after the restart. */
static qun_rc seal(work_t *w, const char *digest, json_t *counts, json_t **ledger, qun_err_t *err) {
    ctx_t *c = w->c;
    snprintf(c->content_digest, sizeof c->content_digest, "%s", digest);
    c->seal_counts = json_incref(counts);
    qun_writer_t *wr = writer_take();
    if (!wr)
        return qun_fail(err, QUN_UNAVAILABLE, "qund is stopping; the export starts over after the restart");
    prove_t p = {c, NULL};
    qun_rc rc = qun_writer_run(wr, append_txn, c, err);
    if (rc == QUN_OK) rc = qun_writer_run(wr, prove_txn, &p, err);
    writer_give();
    if (rc == QUN_OK)
        *ledger = p.ledger;
    else
        json_decref(p.ledger);
    return rc;
}

/* ---- the transcript ---- */

#define PUTS(l, lit) qun_line_put(l, lit, sizeof lit - 1)

/* Hand l's bytes to the stage s once it holds a good piece, and at the end. */
/* Hand the lines to the staging helper once there are LINES_CAP bytes of them (all:
 * whatever there is) and go on in the other buffer; the helper's error so far. */
static qun_rc tr_flush(qun_stage_bg_t *bg, qun_line_t lines[2], qun_line_t **l, bool all, qun_err_t *err) {
    if ((*l)->oom) return qun_fail(err, QUN_NOMEM, "out of memory");
    if ((*l)->len == 0 || (!all && (*l)->len < LINES_CAP)) return QUN_OK;
    qun_rc rc = qun_stage_bg_hand(bg, *l);
    *l = *l == &lines[0] ? &lines[1] : &lines[0];
    return rc;
}

/* One sentence of the transcript, its single %s filled with arg (HTML-escaped). */
static void tr_say(work_t *w, qun_line_t *l, qun_tr_id_t id, const char *arg) {
    const char *fmt = qun_tr_str(w->c->lang, id), *at = strstr(fmt, "%s");
    if (!at) {
        qun_tr_html(l, fmt);
        return;
    }
    if (at > fmt) qun_line_put(l, fmt, (size_t)(at - fmt));
    qun_tr_html(l, arg ? arg : "");
    if (at[2]) qun_line_put(l, at + 2, strlen(at + 2));
}

/* A system message's body as a sentence: its notice kind, never its JSON. */
static void tr_notice(work_t *w, qun_line_t *l, const char *body) {
    json_t *j = json_loads(body, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "notice"));
    tr_say(w, l, QUN_TR_NOTICE, NULL);
    PUTS(l, " ");
    if (kind && strncmp(kind, "dissolution.", 12) == 0) {
        tr_say(w, l, QUN_TR_DISSOLUTION, NULL);
        PUTS(l, " (");
        qun_tr_html(l, kind + 12);
        PUTS(l, ")");
    } else {
        qun_tr_html(l, kind ? kind : body);
    }
    json_decref(j);
}

/* messages.html: every message in seq order with its local time, its author's name
 * and, for a file message, the file's name under files/; then the files.  Not listed
 * in the manifest: it is a view of messages.jsonl and files.jsonl, for people. */
static qun_rc write_transcript(work_t *w, json_t *group, qun_stage_t *s, qun_err_t *err) {
    ctx_t *c = w->c;
    qun_stage_bg_t bg;
    qun_rc rc = lines_begin(w, s, &bg, err);
    if (rc != QUN_OK) return rc;
    qun_line_t lines[2] = {{NULL, 0, 0, false}, {NULL, 0, 0, false}}, *l = &lines[0];
    char when[40], zone[16];
    const char *gname = json_string_value(json_object_get(group, "name"));
    qun_tr_zone(c->has_tz, c->tz_offset, zone, sizeof zone);
    qun_tr_time(w->now, c->has_tz, c->tz_offset, when, sizeof when);
    PUTS(l, "<!DOCTYPE html>\n<html lang=\"");
    qun_line_put(l, c->lang, strlen(c->lang));
    PUTS(l, "\">\n<head><meta charset=\"utf-8\"><title>");
    tr_say(w, l, QUN_TR_TITLE, gname);
    static const char style[] =
        "</title>\n<style>body{font-family:sans-serif;max-width:50em;margin:1em auto;padding:0 1em}"
        "li{margin:.4em 0}time{color:#555;font-size:.9em}.text{white-space:pre-wrap}"
        ".gone{color:#777;font-style:italic}</style></head>\n<body>\n<h1>";
    qun_line_put(l, style, sizeof style - 1);
    tr_say(w, l, QUN_TR_TITLE, gname);
    PUTS(l, "</h1>\n<p>");
    tr_say(w, l, QUN_TR_EXPORTED, when);
    PUTS(l, " ");
    tr_say(w, l, QUN_TR_TIMES, zone);
    PUTS(l, "</p>\n<h2>");
    tr_say(w, l, QUN_TR_MESSAGES, NULL);
    PUTS(l, "</h2>\n<ol>\n");
    int64_t after = 0, n, count = 0;
    do {
        qun_q_t *q;
        n = 0;
        qun_rc qrc = qun_db_run(w->db, &q, err,
                                "SELECT m.seq, COALESCE(u.display_name, u.username), m.kind, m.body, "
                                "m.created_at, m.file_sha256, f.name, "
                                "CASE WHEN m.recalled_at IS NULL THEN 0 ELSE 1 END FROM messages m "
                                "JOIN users u ON u.id = m.author_id "
                                "LEFT JOIN group_files f ON f.group_id = m.group_id "
                                "AND f.sha256 = m.file_sha256 "
                                "WHERE m.group_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
                                "iii", c->group_id, after, (int64_t)PAGE);
        for (; rc == QUN_OK && qrc == QUN_ROW; qrc = qun_q_step(q, err), n++) {
            after = qun_q_col_int(q, 0);
            qun_tr_time(qun_q_col_int(q, 4), c->has_tz, c->tz_offset, when, sizeof when);
            qun_line_printf(l, "<li id=\"m%lld\"><time>", (long long)after);
            qun_line_put(l, when, strlen(when));
            PUTS(l, "</time> <b>");
            qun_tr_html(l, qun_q_col_text(q, 1));
            PUTS(l, "</b>: ");
            const char *kind = qun_q_col_text(q, 2);
            const char *named = qun_q_col_null(q, 5)
                                    ? NULL
                                    : json_string_value(json_object_get(w->named, qun_q_col_text(q, 5)));
            if (qun_q_col_int(q, 7)) { /* its text is gone from the row (core/message.c) */
                PUTS(l, "<span class=\"gone\">");
                tr_say(w, l, QUN_TR_RECALLED, NULL);
                PUTS(l, "</span>");
            } else if (strcmp(kind, "system") == 0) {
                PUTS(l, "<span class=\"gone\">");
                tr_notice(w, l, qun_q_col_text(q, 3));
                PUTS(l, "</span>");
            } else if (named) {
                tr_say(w, l, QUN_TR_FILE, NULL);
                PUTS(l, " <a href=\"files/");
                qun_tr_html(l, named);
                PUTS(l, "\">");
                qun_tr_html(l, named);
                PUTS(l, "</a>");
            } else {
                char *masked = NULL;
                const char *text = qun_q_col_text(q, 3);
                if (c->mask && !(masked = strdup(text))) {
                    rc = qun_fail(err, QUN_NOMEM, "out of memory");
                    break;
                }
                if (masked) {
                    /* Masked as in messages.jsonl, but counted there only. */
                    qun_mask_counts_t again;
                    memset(&again, 0, sizeof again);
                    qun_desensitize_inplace(masked, strlen(masked), &again);
                    text = masked;
                }
                PUTS(l, "<span class=\"text\">");
                qun_tr_html(l, text);
                PUTS(l, "</span>");
                free(masked);
            }
            PUTS(l, "</li>\n");
            count++;
            rc = tr_flush(&bg, lines, &l, false, err);
        }
        if (qrc == QUN_ROW)
            qun_q_done(q);
        else if (rc == QUN_OK && qrc != QUN_DONE)
            rc = qrc;
    } while (rc == QUN_OK && n == PAGE && !stopped(w, &rc, err));
    if (count == 0) {
        PUTS(l, "<li class=\"gone\">");
        tr_say(w, l, QUN_TR_NONE, NULL);
        PUTS(l, "</li>\n");
    }
    PUTS(l, "</ol>\n<h2>");
    tr_say(w, l, QUN_TR_FILES, NULL);
    PUTS(l, "</h2>\n<p>");
    tr_say(w, l, QUN_TR_FILES_DIR, NULL);
    PUTS(l, "</p>\n<ul>\n");
    const char *sha;
    json_t *v;
    json_object_foreach(w->named, sha, v) {
        PUTS(l, "<li><a href=\"files/");
        qun_tr_html(l, json_string_value(v));
        PUTS(l, "\">");
        qun_tr_html(l, json_string_value(v));
        PUTS(l, "</a></li>\n");
    }
    if (json_object_size(w->named) == 0) {
        PUTS(l, "<li class=\"gone\">");
        tr_say(w, l, QUN_TR_NONE, NULL);
        PUTS(l, "</li>\n");
    }
    PUTS(l, "</ul>\n</body>\n</html>\n");
    if (rc == QUN_OK) rc = tr_flush(&bg, lines, &l, true, err);
    return lines_end(&bg, lines, s, rc, err);
}

/* manifest.json, last in the archive because it lists the digests of all the others
 * and the ledger proof of the content they make up. */
static qun_rc write_manifest(work_t *w, json_t *group, json_t *counts, const char *content_digest,
                             json_t *ledger, qun_err_t *err) {
    json_t *m =
        json_pack("{s:s, s:i, s:s, s:O, s:O, s:b, s:I, s:s, s:O, s:s}", "format", "qun-group-archive",
                  "format_version", QUN_EXPORT_FORMAT_VERSION, "export", w->c->xid, "group", group, "counts",
                  counts, "desensitized", w->c->mask, "created_at", (json_int_t)w->now, "content_digest",
                  content_digest, "ledger", ledger, "scope", w->c->self_uid ? "self" : "group");
    char *head = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    if (!head) return qun_fail(err, QUN_NOMEM, "cannot encode the manifest");
    qun_stage_t s;
    qun_rc rc = stage_open(w, &s, err);
    if (rc == QUN_OK) rc = qun_stage_put(&s, head, strlen(head) - 1, err); /* without the closing brace */
    if (rc == QUN_OK) rc = qun_stage_str(&s, ",\"digests\":{", err);
    char buf[65536];
    size_t got;
    if (rc == QUN_OK && (fflush(w->digests.f) != 0 || fseek(w->digests.f, 0, SEEK_SET) != 0))
        rc = qun_fail(err, QUN_STORE, "cannot rewind the digest list: %s", strerror(errno));
    while (rc == QUN_OK && (got = fread(buf, 1, sizeof buf, w->digests.f)) > 0)
        rc = qun_stage_put(&s, buf, got, err);
    if (rc == QUN_OK) rc = qun_stage_str(&s, "}}\n", err);
    free(head);
    if (rc != QUN_OK) {
        qun_stage_close(&s);
        return rc;
    }
    return stage_add(w, &s, "manifest.json", false, err);
}

static int out_write(void *arg, const void *buf, size_t len) {
    work_t *w = arg;
    int64_t quota = qun_core_cfg.export_quota_bytes;
    if (quota > 0 && atomic_load(&w->c->bytes) + (int64_t)len > quota) {
        w->over_quota = true;
        return -1;
    }
    if ((w->out_rc = qun_outfile_write(w->out, buf, len, &w->out_err)) != QUN_OK) return -1;
    atomic_fetch_add(&w->c->bytes, (int64_t)len);
    return 0;
}

static qun_rc fsync_dir(const char *dir, qun_err_t *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot open %s: %s", dir, strerror(errno));
    int r = fsync(fd);
    close(fd);
    return r == 0 ? QUN_OK : qun_fail(err, QUN_STORE, "cannot fsync %s: %s", dir, strerror(errno));
}

/* The snapshot's totals, so progress can be shown as a fraction.  Best effort: a
 * failed count leaves the totals at zero. */
static void count_totals(work_t *w) {
    qun_q_t *q;
    if (qun_db_run(w->db, &q, NULL, "SELECT COUNT(*) FROM messages WHERE group_id = $1", "i",
                   w->c->group_id) == QUN_ROW) {
        atomic_store(&w->c->total_messages, qun_q_col_int(q, 0));
        qun_q_done(q);
    }
    if (qun_db_run(w->db, &q, NULL,
                   "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM group_files WHERE group_id = $1", "i",
                   w->c->group_id) == QUN_ROW) {
        atomic_store(&w->c->total_files, qun_q_col_int(q, 0));
        atomic_store(&w->c->total_file_bytes, qun_q_col_int(q, 1));
        qun_q_done(q);
    }
}

/* The whole export, on the export thread. */
static qun_rc run_export(work_t *w, qun_err_t *err) {
    ctx_t *c = w->c;
    uint8_t pks[QUN_EXPORT_MAX_RECIPIENTS][32];
    size_t npk = 0, i;
    json_t *recips = json_loads(c->recipients, 0, NULL), *e;
    qun_rc rc =
        json_is_array(recips) ? QUN_OK : qun_fail(err, QUN_INTERNAL, "bad recipients on export %s", c->xid);
    json_array_foreach(recips, i, e) {
        if (rc != QUN_OK || npk == QUN_EXPORT_MAX_RECIPIENTS) break;
        rc = qun_age_recipient_parse(json_string_value(e), pks[npk++], err);
    }
    json_decref(recips);
    if (rc == QUN_OK && npk == 0 && !c->sealed)
        rc = qun_fail(err, QUN_INTERNAL, "export %s has no recipient", c->xid);
    if (rc != QUN_OK) return rc;

    json_t *group = NULL;
    qun_q_t *q;
    rc = qun_db_run(w->db, &q, err, "SELECT gid, name, kind FROM groups WHERE id = $1", "i", c->group_id);
    if (rc == QUN_ROW) {
        group = json_pack("{s:s, s:s, s:s}", "id", qun_q_col_text(q, 0), "name", qun_q_col_text(q, 1), "kind",
                          qun_q_col_text(q, 2));
        qun_q_done(q);
        rc = QUN_OK;
    } else if (rc == QUN_DONE) {
        rc = qun_fail(err, QUN_GROUP_NOT_FOUND, "the group is gone");
    }
    if (rc != QUN_OK) return rc;

    rc = qun_outfile_open(w->part, true, &w->out, err);
    if (rc == QUN_OK) rc = stage_open(w, &w->digests, err);
    crypto_hash_sha256_init(&w->content);
    if (rc == QUN_OK && c->sealed) {
        /* The passphrase exists in the clear only here, in locked memory, while the
         * scrypt stanza is made. */
        unsigned char *pass = sodium_malloc(QUN_EXPORT_PASSPHRASE_MAX + 1);
        size_t plen = 0;
        rc = pass ? qun_secret_open(c->sealed, c->sealed_len, pass, QUN_EXPORT_PASSPHRASE_MAX, &plen, err)
                  : qun_fail(err, QUN_NOMEM, "out of memory");
        if (rc == QUN_OK) rc = qun_archive_new_passphrase((const char *)pass, plen, out_write, w, &w->a, err);
        if (pass) sodium_free(pass); /* wipes */
    } else if (rc == QUN_OK) {
        rc = qun_archive_new((const uint8_t(*)[32])pks, npk, out_write, w, &w->a, err);
    }
    w->named = json_object();
    w->used = json_object();
    int64_t members = 0, messages = 0, files = 0, file_bytes = 0, payments = 0;
    if (rc == QUN_OK) count_totals(w);
    if (rc == QUN_OK) rc = write_members(w, &members, err);
    /* The blobs stream on their own thread (read, hashed, tar, zstd; age on the
     * archive's encrypting thread) while this one reads and stages the messages, the
     * payments and the transcript; those follow the files in the archive, which a tar
     * reader does not mind (docs/archive-format.md). */
    qun_stage_t s_files = {0}, s_msgs = {0}, s_pay = {0}, s_html = {0};
    if (rc == QUN_OK) rc = list_files(w, &s_files, &files, err);
    streamer_t st = {w, QUN_OK, {{0}, {0}}};
    pthread_t streamer;
    bool streaming = false;
    if (rc == QUN_OK) {
        streaming = pthread_create(&streamer, NULL, stream_files, &st) == 0;
        if (!streaming) rc = qun_fail(err, QUN_INTERNAL, "cannot start the file streamer");
    }
    if (rc == QUN_OK) rc = write_messages(w, &s_msgs, &messages, err);
    if (rc == QUN_OK) rc = write_payments(w, &s_pay, &payments, err);
    if (rc == QUN_OK) rc = write_transcript(w, group, &s_html, err);
    if (streaming) {
        if (rc != QUN_OK) atomic_store(&w->stop, true);
        pthread_join(streamer, NULL);
        if (st.rc != QUN_OK) { /* the cause: this thread's error is then "stopped" */
            rc = st.rc;
            *err = st.err;
        }
    }
    file_bytes = atomic_load(&c->file_bytes);
    if (rc == QUN_OK) rc = stage_add(w, &s_files, "files.jsonl", true, err);
    if (rc == QUN_OK) rc = stage_add(w, &s_msgs, "messages.jsonl", true, err);
    if (rc == QUN_OK) rc = stage_add(w, &s_pay, "payments.jsonl", true, err);
    if (rc == QUN_OK) {
        char hex[65];
        rc = qun_stage_finish(&s_html, w->a, "messages.html", w->now, hex, err);
    }
    qun_stage_close(&s_files);
    qun_stage_close(&s_msgs);
    qun_stage_close(&s_pay);
    qun_stage_close(&s_html);
    json_t *counts = json_pack("{s:I, s:I, s:I, s:I, s:I}", "members", (json_int_t)members, "messages",
                               (json_int_t)messages, "files", (json_int_t)files, "file_bytes",
                               (json_int_t)file_bytes, "payments", (json_int_t)payments);
    if (c->mask) json_object_set_new(counts, "masked", qun_mask_counts_json(&w->masked));
    unsigned char ch[32];
    char content_digest[65];
    crypto_hash_sha256_final(&w->content, ch);
    qun_hex(content_digest, ch, sizeof ch);
    json_t *ledger = NULL;
    if (rc == QUN_OK) rc = seal(w, content_digest, counts, &ledger, err);
    if (rc == QUN_OK) rc = write_manifest(w, group, counts, content_digest, ledger, err);
    json_decref(ledger);
    if (rc == QUN_OK) rc = qun_archive_finish(w->a, c->digest, &c->size, err);
    if (rc != QUN_OK && w->over_quota)
        rc = qun_fail(err, QUN_EXPORT_QUOTA_EXCEEDED, "the archive would exceed export_quota_bytes (%lld)",
                      (long long)qun_core_cfg.export_quota_bytes);
    else if (rc != QUN_OK && w->out_rc != QUN_OK) { /* the disk's own words, e.g. it is full */
        rc = w->out_rc;
        *err = w->out_err;
    }
    if (rc == QUN_OK) {
        rc = qun_outfile_close(w->out, err);
        w->out = NULL;
    }
    if (rc == QUN_OK && rename(w->part, w->final) != 0)
        rc = qun_fail(err, QUN_STORE, "cannot rename %s: %s", w->part, strerror(errno));
    if (rc == QUN_OK) rc = fsync_dir(w->dir, err);
    if (rc == QUN_OK) c->counts = json_incref(counts);
    json_decref(counts);
    json_decref(group);
    json_decref(w->named);
    json_decref(w->used);
    return rc;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static qun_rc record_end(qun_db_t *db, ctx_t *c, const char *requester, qun_err_t *err);

typedef struct {
    ctx_t *c;
    bool live;
} end_t;

/* The end of the export, recorded in one transaction if its row still says running
 * (a cancellation or a restart may have ended it otherwise). */
static qun_rc end_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    end_t *e = arg;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT state FROM exports WHERE id = $1", "i", e->c->export_id);
    e->live = false;
    if (rc == QUN_ROW) {
        e->live = strcmp(qun_q_col_text(q, 0), "running") == 0;
        qun_q_done(q);
        rc = QUN_DONE;
    }
    if (rc != QUN_DONE) return rc;
    return e->live ? record_end(db, e->c, e->c->requester, err) : QUN_OK;
}

/* Record the end from this thread, through the writer, as the seal is: the archive is
 * `done` (and a dissolution waiting for it goes on) when it is written, not at the
 * job's next look up to a second later (bench/README.md, benchmark 10).  True when the
 * end is recorded, or was already: c is then this thread's to free, and the job's next
 * step finds the row ended and finishes.  False (qund stopping, a failed commit): the
 * step records it as before. */
static bool end_direct(ctx_t *c) {
    qun_writer_t *wr = writer_take();
    if (!wr) return false;
    end_t e = {c, false};
    qun_err_t err = {{0}, {0}};
    qun_rc rc = qun_writer_run(wr, end_txn, &e, &err);
    writer_give();
    if (rc != QUN_OK)
        qun_log("warn", "export %s: recording its end failed, the job's next step will: %s", c->xid, err.msg);
    return rc == QUN_OK;
}

/* An export is somebody waiting for their archive.  Its thread is started by a job step,
 * whose SCHED_IDLE it inherits when background work yields (docs/architecture.md,
 * "Background work"): on cores busy with requests that left it almost nothing (55 s
 * for an export of 1.5 s).  It runs at the normal policy instead, niced by QUN_GENTLE_NICE
 * (about a tenth of a busy core's turns), and so do the threads it starts. */

static void export_priority(void) {
    int policy;
    struct sched_param sp;
    if (pthread_getschedparam(pthread_self(), &policy, &sp) == 0 && policy == SCHED_IDLE)
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &(struct sched_param){0});
    setpriority(PRIO_PROCESS, (id_t)gettid(), QUN_GENTLE_NICE);
}

static void *export_main(void *arg) {
    ctx_t *c = arg;
    pthread_setname_np(pthread_self(), "qun-export");
    export_priority();
    atomic_store(&c->started_ms, mono_ms());
    work_t w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.now = qun_now();
    snprintf(w.dir, sizeof w.dir, "%s/exports", qun_core_cfg.data_dir);
    snprintf(w.part, sizeof w.part, "%s/%s.age.part", w.dir, c->xid);
    snprintf(w.final, sizeof w.final, "%s/%s.age", w.dir, c->xid);
    qun_err_t err = {{0}, {0}};
    const char *db_path = qun_core_cfg.store; /* the same store qund uses, SQLite or PostgreSQL */
    qun_rc rc = QUN_OK;
    if (mkdir(w.dir, 0700) != 0 && errno != EEXIST)
        rc = qun_fail(&err, QUN_STORE, "cannot create %s: %s", w.dir, strerror(errno));
    if (rc == QUN_OK) rc = qun_db_open(db_path, true, false, &w.db, &err);
    bool reading = false;
    if (rc == QUN_OK) reading = (rc = qun_db_read_begin(w.db, &err)) == QUN_OK;
    if (rc == QUN_OK) rc = run_export(&w, &err);
    if (reading) qun_db_read_end(w.db);
    qun_db_close(w.db);
    qun_archive_free(w.a);
    free(w.piece);
    free(w.blobs);
    qun_outfile_abandon(w.out);
    qun_stage_close(&w.digests);
    if (rc != QUN_OK) {
        unlink(w.part);
        qun_log("warn", "export %s failed: %s %s", c->xid, qun_rc_name(rc), err.msg);
    }
    atomic_store(&c->elapsed_ms, mono_ms() - atomic_load(&c->started_ms));
    pthread_mutex_lock(&mu);
    c->ok = rc == QUN_OK;
    snprintf(c->error, sizeof c->error, "%s: %s", qun_rc_name(rc), err.msg);
    pthread_mutex_unlock(&mu);
    if (end_direct(c)) { /* recorded: no step looks at c again */
        pthread_mutex_lock(&mu);
        running_remove(c);
        pthread_mutex_unlock(&mu);
        ctx_free(c);
        return NULL;
    }
    pthread_mutex_lock(&mu);
    c->ended = true; /* from here on the step owns c, and records the end */
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* ---- the job step (writer thread) ---- */

static json_t *progress_json(ctx_t *c) {
    int64_t ms = atomic_load(&c->elapsed_ms), t0 = atomic_load(&c->started_ms);
    if (!ms && t0) ms = mono_ms() - t0;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}}", "elapsed_ms", (json_int_t)ms, "messages",
                     (json_int_t)atomic_load(&c->messages), "files", (json_int_t)atomic_load(&c->files),
                     "bytes", (json_int_t)atomic_load(&c->bytes), "file_bytes",
                     (json_int_t)atomic_load(&c->file_bytes), "total", "messages",
                     (json_int_t)atomic_load(&c->total_messages), "files",
                     (json_int_t)atomic_load(&c->total_files), "file_bytes",
                     (json_int_t)atomic_load(&c->total_file_bytes));
}

static qun_rc save_progress(qun_db_t *db, int64_t export_id, ctx_t *c, qun_err_t *err) {
    json_t *p = progress_json(c);
    char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(p);
    qun_rc rc =
        qun_db_run(db, NULL, err, "UPDATE exports SET progress = $2 WHERE id = $1", "is", export_id, text);
    free(text);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Record the end of an export whose thread has ended. */
static qun_rc record_end(qun_db_t *db, ctx_t *c, const char *requester, qun_err_t *err) {
    qun_rc rc = save_progress(db, c->export_id, c, err);
    if (rc != QUN_OK) return rc;
    if (!c->ok) {
        rc = qun_db_run(db, NULL, err,
                        "UPDATE exports SET state = 'failed', error = $2, finished_at = $3, "
                        "passphrase_sealed = NULL WHERE id = $1",
                        "isi", c->export_id, c->error, qun_now());
        if (rc == QUN_DONE)
            rc = qun_event_group(db, "export.failed", c->group_id, QUN_EVENT_OWNER,
                                 json_pack("{s:s, s:s}", "export", c->xid, "error", c->error), err);
        /* A dissolution waiting for this archive does not proceed. */
        if (rc == QUN_OK) rc = qun_diss_archived(db, c->export_id, false, NULL, -1, c->error, err);
        return rc;
    }
    qun_q_t *q;
    char gid[QUN_ID_MAX], state[16];
    rc = qun_db_run(db, &q, err, "SELECT gid, state FROM groups WHERE id = $1", "i", c->group_id);
    if (rc != QUN_ROW)
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "the group of export %s is gone", c->xid) : rc;
    snprintf(gid, sizeof gid, "%s", qun_q_col_text(q, 0));
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    json_t *recips = json_loads(c->recipients, 0, NULL);
    json_t *f = json_pack("{s:s, s:s, s:I, s:I, s:O, s:s, s:I, s:s}", "export", c->xid, "digest", c->digest,
                          "size", (json_int_t)c->size, "recipients", (json_int_t)json_array_size(recips),
                          "counts", c->counts, "content_digest", c->content_digest, "content_index",
                          (json_int_t)c->seal_index, "scope", c->self_uid ? "self" : "group");
    json_decref(recips);
    int64_t index = -1;
    rc = qun_ledger_append(db, "export.made", gid, requester, state, state, f, &index, err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(
        db, NULL, err,
        "UPDATE exports SET state = 'done', digest = $2, size = $3, ledger_index = $4, finished_at = $5, "
        "passphrase_sealed = NULL WHERE id = $1",
        "isiii", c->export_id, c->digest, c->size, index, qun_now());
    /* The archive is complete and its digest ledgered: a dissolution waiting for it
     * proceeds, in this same transaction. */
    if (rc == QUN_DONE) rc = qun_diss_archived(db, c->export_id, true, c->digest, index, NULL, err);
    return rc;
}

qun_rc qun_export_group_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                             int64_t *defer, qun_err_t *err) {
    *finished = false;
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT e.xid, e.state, e.recipients, e.desensitize, u.openid, e.scope, e.requester_id, "
                   "e.passphrase_sealed, e.lang, e.tz_offset FROM exports e "
                   "JOIN users u ON u.id = e.requester_id WHERE e.id = $1",
                   "i", ref_id);
    if (rc == QUN_DONE) {
        *finished = true;
        return QUN_OK;
    }
    if (rc != QUN_ROW) return rc;
    bool live = strcmp(qun_q_col_text(q, 1), "running") == 0;
    char xid[QUN_ID_MAX], requester[QUN_ID_MAX];
    snprintf(xid, sizeof xid, "%s", qun_q_col_text(q, 0));
    snprintf(requester, sizeof requester, "%s", qun_q_col_text(q, 4));
    char *recipients = qun_xstrdup(qun_q_col_text(q, 2));
    bool mask = qun_q_col_int(q, 3) != 0;
    int64_t self_uid = strcmp(qun_q_col_text(q, 5), "self") == 0 ? qun_q_col_int(q, 6) : 0;
    size_t sealed_len = 0;
    const void *sb = qun_q_col_null(q, 7) ? NULL : qun_q_col_blob(q, 7, &sealed_len);
    unsigned char *sealed = sb && sealed_len ? qun_xmalloc(sealed_len) : NULL;
    if (sealed) memcpy(sealed, sb, sealed_len);
    char lang[8];
    snprintf(lang, sizeof lang, "%s", qun_q_col_text(q, 8));
    bool has_tz = !qun_q_col_null(q, 9);
    int tz_offset = has_tz ? (int)qun_q_col_int(q, 9) : 0;
    qun_q_done(q);
    if (!live) {
        free(recipients);
        free(sealed);
        *finished = true;
        /* An ended export keeps no passphrase, whatever ended it. */
        rc = qun_db_run(db, NULL, err,
                        "UPDATE exports SET passphrase_sealed = NULL "
                        "WHERE id = $1 AND passphrase_sealed IS NOT NULL",
                        "i", ref_id);
        return rc == QUN_DONE ? QUN_OK : rc;
    }

    pthread_mutex_lock(&mu);
    ctx_t **pp = &running, *c;
    while ((c = *pp) && c->job_id != job_id)
        pp = &c->next;
    if (!c) { /* first step, or the daemon restarted: (re)start the export */
        c = qun_xcalloc(1, sizeof *c);
        c->job_id = job_id;
        c->export_id = ref_id;
        c->group_id = group_id;
        snprintf(c->xid, sizeof c->xid, "%s", xid);
        c->recipients = recipients;
        recipients = NULL;
        c->mask = mask;
        c->self_uid = self_uid;
        c->sealed = sealed;
        c->sealed_len = sealed_len;
        sealed = NULL;
        snprintf(c->lang, sizeof c->lang, "%s", lang);
        c->has_tz = has_tz;
        c->tz_offset = tz_offset;
        snprintf(c->requester, sizeof c->requester, "%s", requester);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, export_main, c) != 0) {
            c->ended = true;
            snprintf(c->error, sizeof c->error, "INTERNAL: cannot start the export thread");
        }
        pthread_attr_destroy(&attr);
        c->next = running;
        running = c;
    }
    bool ended = c->ended;
    if (ended) running_remove(c); /* the step takes c out of the list, and owns it */
    pthread_mutex_unlock(&mu);
    free(recipients);
    free(sealed);

    if (!ended) {
        *defer = qun_now() + 1;
        return save_progress(db, ref_id, c, err);
    }
    rc = record_end(db, c, requester, err);
    ctx_free(c);
    if (rc == QUN_OK) *finished = true;
    return rc;
}
