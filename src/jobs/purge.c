/* SPDX-License-Identifier: MIT */
/* Reclamation after a dissolution.  purge_group removes, in this order and at most
 * purge_batch rows per transaction (a step goes on into the next phase while its rows
 * last): messages (when the owner chose delete), the group's
 * file references (dropping blobs whose count reaches zero, queueing their unlink and
 * a CDN-purge outbox event each) and its Matrix media links, the server copies of its exports (whole-group
 * archives and members' own copies alike: each holds the group's messages and file
 * bytes), its storage grants, the message events that carry message text, its
 * invitations, what Matrix clients stored about it, and memberships with the group's
 * remaining event rows; then it writes the purge receipt and moves the group to `purged`.
 * A legal hold defers all of it (gate).  purge_payments, due when the retention ends,
 * removes the group's payment records; personal bill lines are never touched.
 * Every batch updates the job's progress counters in its own transaction, so the
 * counts in the receipt are exact even across kill -9. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/desensitize.h"
#include "qun/event.h"
#include "qun/jobs.h"
#include "qun/ledger.h"
#include "qun/matrix.h"
#include "qun/queue.h"
#include "qun/writer.h"

/* Progress is a JSON object of counters kept in jobs.progress; *out is owned by the
 * caller.  A failed read is an error, never empty progress: a step that started its
 * counters over would commit wrong counts into the receipt. */
static qun_rc load_progress(qun_db_t *db, int64_t job_id, json_t **out, qun_err_t *err) {
    return qun_queue_progress(db, job_id, out, err);
}

static qun_rc save_progress(qun_db_t *db, int64_t job_id, json_t *p, qun_err_t *err) {
    return qun_queue_set_progress(db, job_id, p, err);
}

/* Write a purge receipt (the job's counters) to the ledger. */
static qun_rc ledger_receipt(qun_db_t *db, int64_t group_id, const char *event, const char *old_state,
                             const char *new_state, json_t *p, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gid, state FROM groups WHERE id = $1", "i", group_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    char gid[QUN_ID_MAX], state[16];
    snprintf(gid, sizeof gid, "%s", qun_q_col_text(q, 0));
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    json_t *receipt = json_deep_copy(p);
    json_object_del(receipt, "phase");
    json_object_del(receipt, "desensitize_cursor");
    json_t *f = receipt ? json_pack("{s:o}", "receipt", receipt) : NULL;
    if (!f) return qun_fail(err, QUN_NOMEM, "cannot build the %s receipt", event);
    rc = qun_ledger_append(db, event, gid, NULL, old_state ? old_state : state, new_state ? new_state : state,
                           f, NULL, err);
    json_decref(f);
    return rc;
}

/* Add n to counter key of p; -1 when it could not be stored for want of memory (a
 * counter that silently kept its old value would make the receipt wrong). */
static int bump(json_t *p, const char *key, int64_t n) {
    return json_object_set_new(p, key, json_integer(json_integer_value(json_object_get(p, key)) + n));
}

static qun_rc no_memory(qun_err_t *err) {
    return qun_fail(err, QUN_NOMEM, "out of memory for the purge's progress");
}

/* The rows a step may delete, fixed for the whole step (plan_step): purge_batch, or
 * purge_batch_busy while people write (a foreground write queued in the last second), so
 * that a post queued behind a step waits for a short one (bench/README.md, "Benchmark 7:
 * shorter steps while people write"). */
static _Thread_local int64_t g_rows;

/* The rows the phase that just ran deleted, masked or released: what it spent of the
 * step's g_rows (qun_purge_group_step carries on into the next phase with the rest). */
static _Thread_local int64_t g_used;

/* qun_purge_take_scrub: set by a step on the writer's thread, taken by the jobs
 * thread once that step's commit returned (one step runs at a time). */
static atomic_bool g_scrub;
#define SCRUB_TRIES 30 /* steps that ask for it before a purge ends without it */

bool qun_purge_take_scrub(void) {
    return atomic_exchange(&g_scrub, false);
}

static void plan_step(void) {
    g_rows = qun_core_cfg.purge_batch;
    if (qun_core_cfg.purge_batch_busy < g_rows && qun_writer_foreground_within(1000))
        g_rows = qun_core_cfg.purge_batch_busy;
}

static qun_rc purge_messages(qun_db_t *db, int64_t group_id, json_t *p, bool *more, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE group_id = $1 "
                           "ORDER BY seq LIMIT $2)",
                           "ii", group_id, g_rows);
    if (rc != QUN_DONE) return rc;
    int64_t n = qun_db_changes(db);
    g_used += n;
    if (bump(p, "messages_deleted", n)) return no_memory(err);
    *more = n == g_rows;
    return QUN_OK;
}

/* The group's people, purge_batch rows a step: its other event rows (membership and
 * group state, kept past the events' 24 hours for the Matrix adapter's /sync:
 * docs/events.md; the receipt counts the message events only, and group.purged, appended
 * at the end, is left to housekeeping), then the read positions and receipts
 * (include/qun/read.h), then the memberships.  A 100 000-member group has that many of
 * each: in one statement they held the writer, and every write queued behind it, for the
 * whole group.  QUN_OK with *more while rows were deleted; QUN_DONE once none is left. */
static qun_rc purge_people(qun_db_t *db, int64_t group_id, json_t *p, bool *more, qun_err_t *err) {
    static const struct {
        const char *sql, *counter;
    } batches[] = {
        {"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE group_id = $1 ORDER BY id LIMIT $2)",
         NULL},
        {"DELETE FROM read_marks WHERE group_id = $1 AND user_id IN (SELECT user_id FROM read_marks "
         "WHERE group_id = $1 ORDER BY user_id LIMIT $2)",
         "read_marks_deleted"},
        {"DELETE FROM members WHERE group_id = $1 AND user_id IN (SELECT user_id FROM members "
         "WHERE group_id = $1 ORDER BY user_id LIMIT $2)",
         "members_removed"},
    };
    int64_t budget = g_rows;
    for (size_t i = 0; i < sizeof batches / sizeof batches[0] && budget > 0; i++) {
        qun_rc rc = qun_db_run(db, NULL, err, batches[i].sql, "ii", group_id, budget);
        if (rc != QUN_DONE) return rc;
        int64_t n = qun_db_changes(db);
        if (batches[i].counter && bump(p, batches[i].counter, n)) return no_memory(err);
        budget -= n;
        g_used += n;
    }
    *more = budget == 0;
    return *more ? QUN_OK : QUN_DONE;
}

/* Finance groups keep no personal numbers in a retained copy: mask the kept messages
 * one batch per transaction, resuming after the last id the progress recorded. */
static qun_rc desensitize_messages(qun_db_t *db, int64_t group_id, json_t *p, bool *more, qun_err_t *err) {
    qun_q_t *q;
    int64_t cursor = json_integer_value(json_object_get(p, "desensitize_cursor"));
    int64_t batch = g_rows, n = 0;
    qun_mask_counts_t counts = {0, 0, 0};
    typedef struct {
        int64_t id;
        char *text;
    } row_t;
    row_t *rows = calloc((size_t)batch, sizeof *rows);
    if (!rows) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT seq, body FROM messages WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        "iii", group_id, cursor, batch);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        rows[n].id = qun_q_col_int(q, 0);
        rows[n++].text = strdup(qun_q_col_text(q, 1));
    }
    for (int64_t i = 0; rc == QUN_DONE && i < n; i++) {
        if (!rows[i].text) {
            rc = qun_fail(err, QUN_NOMEM, "out of memory");
            break;
        }
        qun_mask_counts_t before = counts;
        qun_desensitize_inplace(rows[i].text, strlen(rows[i].text), &counts);
        if (memcmp(&before, &counts, sizeof counts) != 0)
            rc = qun_db_run(db, NULL, err, "UPDATE messages SET body = $3 WHERE group_id = $1 AND seq = $2",
                            "iis", group_id, rows[i].id, rows[i].text);
        cursor = rows[i].id;
    }
    for (int64_t i = 0; i < n; i++)
        free(rows[i].text);
    free(rows);
    if (rc != QUN_DONE) return rc;
    int bad = bump(p, "masked_phones", (int64_t)counts.phones);
    bad |= bump(p, "masked_national_ids", (int64_t)counts.national_ids);
    bad |= bump(p, "masked_bank_cards", (int64_t)counts.bank_cards);
    bad |= json_object_set_new(p, "desensitize_cursor", json_integer(cursor));
    if (bad) return no_memory(err);
    g_used += n;
    *more = n == batch;
    return QUN_OK;
}

static qun_rc purge_files(qun_db_t *db, int64_t group_id, json_t *p, bool *more, qun_err_t *err) {
    qun_q_t *q;
    char(*shas)[65] = calloc((size_t)g_rows, 65);
    int n = 0;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT sha256 FROM group_files WHERE group_id = $1 ORDER BY sha256 LIMIT $2",
                   "ii", group_id, g_rows);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        snprintf(shas[n++], 65, "%s", qun_q_col_text(q, 0));
    for (int i = 0; rc == QUN_DONE && i < n; i++) {
        rc = qun_db_run(db, NULL, err, "DELETE FROM group_files WHERE group_id = $1 AND sha256 = $2", "is",
                        group_id, shas[i]);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, &q, err,
                            "UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = $1 RETURNING refcount",
                            "s", shas[i]);
        if (rc != QUN_ROW) break;
        bool last = qun_q_col_int(q, 0) == 0;
        qun_q_done(q);
        rc = bump(p, "files_removed", 1) ? no_memory(err) : QUN_DONE;
        if (rc != QUN_DONE) break;
        if (!last) continue;
        rc = qun_db_run(db, NULL, err, "DELETE FROM blobs WHERE sha256 = $1", "s", shas[i]);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO unlink_queue(sha256, queued_at) VALUES ($1, $2) "
                            "ON CONFLICT DO NOTHING",
                            "si", shas[i], qun_now());
        if (rc == QUN_DONE) {
            char payload[160];
            snprintf(payload, sizeof payload, "{\"digest\":\"%s\",\"reason\":\"dissolution\"}", shas[i]);
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO outbox(topic, payload, created_at) VALUES ('cdn.purge', $1, $2)",
                            "si", payload, qun_now());
        }
        if (rc == QUN_DONE && (bump(p, "blobs_released", 1) | bump(p, "cdn_purges_queued", 1)))
            rc = no_memory(err);
    }
    free(shas);
    g_used += n;
    *more = n == g_rows;
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Remove a file the purge owns; a file already gone (a step retried after a crash
 * between the unlink and its commit) is fine. */
static qun_rc remove_file(const char *path, qun_err_t *err) {
    if (unlink(path) != 0 && errno != ENOENT)
        return qun_fail(err, QUN_STORE, "cannot unlink %s: %s", path, strerror(errno));
    return QUN_OK;
}

/* The server copies of the group's exports, one batch: each archive's file goes, and
 * its row is marked purged in the same transaction as the count, so a crash between
 * the unlink and the commit only makes the retried step find the file gone.  An
 * export still being written would leave its file behind after its row was passed:
 * the step waits for it (*defer) instead. */
static qun_rc purge_exports(qun_db_t *db, int64_t group_id, json_t *p, bool *more, int64_t *defer,
                            qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT COUNT(*) FROM exports WHERE group_id = $1 AND state = 'running'", "i", group_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t running = qun_q_col_int(q, 0);
    qun_q_done(q);
    if (running > 0) {
        *defer = qun_now() + 2;
        *more = true;
        return QUN_OK;
    }
    int64_t batch = g_rows, n = 0;
    typedef struct {
        int64_t id, size;
        char xid[QUN_ID_MAX];
    } row_t;
    row_t *rows = calloc((size_t)batch, sizeof *rows);
    if (!rows) return qun_fail(err, QUN_NOMEM, "out of memory");
    rc =
        qun_db_run(db, &q, err,
                   "SELECT id, xid, COALESCE(size, 0) FROM exports WHERE group_id = $1 AND purged_at IS NULL "
                   "ORDER BY id LIMIT $2",
                   "ii", group_id, batch);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        rows[n].id = qun_q_col_int(q, 0);
        snprintf(rows[n].xid, sizeof rows[n].xid, "%s", qun_q_col_text(q, 1));
        rows[n++].size = qun_q_col_int(q, 2);
    }
    for (int64_t i = 0; rc == QUN_DONE && i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/exports/%s.age", qun_core_cfg.data_dir, rows[i].xid);
        rc = remove_file(path, err);
        snprintf(path, sizeof path, "%s/exports/%s.age.part", qun_core_cfg.data_dir, rows[i].xid);
        if (rc == QUN_OK) rc = remove_file(path, err);
        if (rc == QUN_OK)
            rc = qun_db_run(db, NULL, err,
                            "UPDATE exports SET purged_at = $2, passphrase_sealed = NULL WHERE id = $1", "ii",
                            rows[i].id, qun_now());
        if (rc != QUN_DONE) break;
        if (bump(p, "exports_deleted", 1) | bump(p, "export_bytes_deleted", rows[i].size))
            rc = no_memory(err);
    }
    free(rows);
    g_used += n;
    *more = n == batch;
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Whether the purge may run now: a restored group ends the job, a hold defers it. */
static qun_rc gate(qun_db_t *db, int64_t group_id, int64_t ref_id, bool *finished, int64_t *defer, bool *go,
                   qun_err_t *err) {
    bool ok, held;
    qun_rc rc = qun_diss_purgeable(db, ref_id, group_id, &ok, &held, err);
    *go = rc == QUN_OK && ok;
    if (rc == QUN_OK && held)
        *defer = qun_now() + 60;
    else if (rc == QUN_OK && !ok)
        *finished = true;
    return rc;
}

/* QUN_ROW while a notice to group_id's members is still being written (a
 * notice_fanouts row whose job is queued or running: one that failed for good holds
 * nothing back), QUN_DONE when none is, or a store error. */
static qun_rc notices_pending(qun_db_t *db, int64_t group_id, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT 1 FROM notice_fanouts f JOIN jobs j ON j.ref_id = f.id AND j.kind = $2 "
                           "WHERE f.group_id = $1 AND j.state IN ('queued', 'running') LIMIT 1",
                           "is", group_id, qun_job_kind_name(QUN_JOB_NOTIFY_FANOUT));
    if (rc == QUN_ROW) qun_q_done(q);
    return rc;
}

/* The purge's last step: the receipt, the purged state, its ledger entry and event. */
static qun_rc finish(qun_db_t *db, int64_t group_id, int64_t ref_id, json_t *p, int *bad, bool *finished,
                     qun_err_t *err) {
    *bad |= json_object_set_new(p, "phase", json_string("done"));
    json_t *receipt = *bad ? NULL : json_deep_copy(p);
    json_object_del(receipt, "phase");
    json_object_del(receipt, "desensitize_cursor");
    char *text = qun_json_dumps(receipt, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(receipt);
    qun_rc rc = !text ? no_memory(err)
                      : qun_db_run(db, NULL, err,
                                   "UPDATE dissolutions SET receipt = $2, purged_at = $3 WHERE id = $1",
                                   "isi", ref_id, text, qun_now());
    free(text);
    if (rc == QUN_DONE) rc = qun_diss_transition(db, ref_id, QUN_DISS_PURGING, QUN_DISS_PURGED, err);
    if (rc == QUN_OK) *finished = true;
    rc = rc == QUN_DONE ? QUN_OK : rc;
    if (rc == QUN_OK)
        rc = ledger_receipt(db, group_id, "group.purged", QUN_GROUP_NAME(PURGING), QUN_GROUP_NAME(PURGED), p,
                            err);
    if (rc == QUN_OK)
        rc = qun_event_group(db, "group.purged", group_id, QUN_EVENT_OWNER,
                             json_pack("{s:s}", "state", QUN_GROUP_NAME(PURGED)), err);
    return rc;
}

/* Whether the database keeps files of its own that a purge must scrub (SQLite's WAL);
 * PostgreSQL's are the server's. */
static bool own_files(qun_db_t *db) {
    return strcmp(qun_db_backend(db), "sqlite") == 0;
}

/* The start of a step of either purge: its rows planned, the gate passed and its
 * progress loaded into *p; *p NULL when the step has nothing to do (or failed). */
static qun_rc begin(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                    int64_t *defer, json_t **p, qun_err_t *err) {
    plan_step();
    bool go;
    *finished = false;
    *p = NULL;
    qun_rc rc = gate(db, group_id, ref_id, finished, defer, &go, err);
    if (rc != QUN_OK || !go) return rc;
    return load_progress(db, job_id, p, err);
}

/* One phase of purge_group's steps: the one named phase ("" for the first step), one
 * batch of at most g_rows rows (noted in g_used); the next phase is set in p when this
 * one has no more. */
static qun_rc run_phase(qun_db_t *db, int64_t group_id, int64_t ref_id, const char *phase, json_t *p,
                        bool *more, bool *finished, int64_t *defer, int *bad, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = QUN_OK;
    if (!*phase) {
        /* First step: decide what this purge covers. */
        rc = qun_db_run(db, &q, err, "SELECT messages, rules FROM dissolutions WHERE id = $1", "i", ref_id);
        if (rc != QUN_ROW) return rc;
        bool del = strcmp(qun_q_col_text(q, 0), "delete") == 0;
        json_t *rules = json_loads(qun_q_col_text(q, 1), 0, NULL);
        if (!rules) { /* (always an object): guessing "no masking" would keep numbers */
            qun_q_done(q);
            return no_memory(err);
        }
        bool mask = json_is_true(
            json_object_get(json_object_get(json_object_get(rules, "policy"), "desensitize"), "value"));
        json_decref(rules);
        qun_q_done(q);
        *bad |= json_object_set_new(p, "phase",
                                    json_string(del    ? "messages"
                                                : mask ? "desensitize"
                                                       : "files"));
        if (mask && !del) {
            *bad |= json_object_set_new(p, "masked_phones", json_integer(0));
            *bad |= json_object_set_new(p, "masked_national_ids", json_integer(0));
            *bad |= json_object_set_new(p, "masked_bank_cards", json_integer(0));
        }
        *bad |= json_object_set_new(p, "messages_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "files_removed", json_integer(0));
        *bad |= json_object_set_new(p, "blobs_released", json_integer(0));
        *bad |= json_object_set_new(p, "cdn_purges_queued", json_integer(0));
        *bad |= json_object_set_new(p, "media_links_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "media_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "exports_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "export_bytes_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "grants_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "message_events_deleted", json_integer(0));
        *bad |= json_object_set_new(p, "members_removed", json_integer(0));
        *bad |= json_object_set_new(p, "invitations_deleted", json_integer(0));
        rc = qun_diss_transition(db, ref_id, QUN_DISS_DISSOLVED, QUN_DISS_PURGING, err);
        if (rc == QUN_OK && *bad) rc = no_memory(err);
        if (rc == QUN_OK)
            rc = ledger_receipt(db, group_id, "group.purging", QUN_GROUP_NAME(DISSOLVED),
                                QUN_GROUP_NAME(PURGING), p, err);
    } else if (strcmp(phase, "messages") == 0) {
        rc = purge_messages(db, group_id, p, more, err);
        if (rc == QUN_OK && !*more) *bad |= json_object_set_new(p, "phase", json_string("files"));
    } else if (strcmp(phase, "desensitize") == 0) {
        rc = desensitize_messages(db, group_id, p, more, err);
        if (rc == QUN_OK && !*more) *bad |= json_object_set_new(p, "phase", json_string("files"));
    } else if (strcmp(phase, "files") == 0) {
        rc = purge_files(db, group_id, p, more, err);
        if (rc == QUN_OK && !*more) *bad |= json_object_set_new(p, "phase", json_string("media"));
    } else if (strcmp(phase, "media") == 0) {
        /* Matrix media linked to the group: the links go, and media no other group
         * links go with their blob reference (core/mx_media.c). */
        qun_mx_media_purged_t c = {0, 0, 0};
        rc = qun_mx_media_purge_group(db, group_id, &c, more, err);
        if (rc == QUN_OK) {
            g_used += c.links_deleted;
            *bad |=
                bump(p, "media_links_deleted", c.links_deleted) | bump(p, "media_deleted", c.media_deleted);
            *bad |=
                bump(p, "blobs_released", c.blobs_released) | bump(p, "cdn_purges_queued", c.blobs_released);
            if (!*more) *bad |= json_object_set_new(p, "phase", json_string("exports"));
        }
    } else if (strcmp(phase, "exports") == 0) {
        rc = purge_exports(db, group_id, p, more, defer, err);
        if (rc == QUN_OK && !*more) *bad |= json_object_set_new(p, "phase", json_string("grants"));
    } else if (strcmp(phase, "grants") == 0) {
        /* A grant reaches nothing once the exports are gone; its row (label, secret
         * hash) goes too.  Issuing and revoking stay in the ledger. */
        rc = qun_db_run(db, NULL, err, "DELETE FROM export_grants WHERE group_id = $1", "i", group_id);
        if (rc == QUN_DONE) {
            g_used += qun_db_changes(db);
            *bad |= bump(p, "grants_deleted", qun_db_changes(db));
            *bad |= json_object_set_new(p, "phase", json_string("message_events"));
        }
        rc = rc == QUN_DONE ? QUN_OK : rc;
    } else if (strcmp(phase, "message_events") == 0) {
        /* The replayable message events carry the text (GET /v1/events); a busy group
         * has as many as messages, so they go in batches like the messages did. */
        int64_t batch = g_rows;
        rc = qun_db_run(db, NULL, err,
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE group_id = $1 "
                        "AND topic = 'message.created' ORDER BY id LIMIT $2)",
                        "ii", group_id, batch);
        if (rc == QUN_DONE) {
            int64_t n = qun_db_changes(db);
            g_used += n;
            *bad |= bump(p, "message_events_deleted", n);
            *more = n == batch;
            if (!*more) *bad |= json_object_set_new(p, "phase", json_string("members"));
        }
        rc = rc == QUN_DONE ? QUN_OK : rc;
    } else if (strcmp(phase, "members") == 0 && (rc = notices_pending(db, group_id, err)) != QUN_DONE) {
        /* QUN_ROW: notices still being written to the members (a large group's, by the
         * notify_fanout job) need the memberships, so this step waits for the next round. */
        rc = rc == QUN_ROW ? QUN_OK : rc;
    } else if (strcmp(phase, "members") == 0 && (rc = purge_people(db, group_id, p, more, err)) != QUN_DONE) {
        /* QUN_OK: a batch of a large group's events, read marks or memberships went;
         * the rest in the next steps, so no step holds the writer for the whole group. */
    } else if (strcmp(phase, "members") == 0) {
        /* Invitations name the group and its people (who invited whom), and Matrix
         * clients' per-room account data and forget marks name it too: they go as well,
         * every state alike. */
        rc = qun_db_run(db, NULL, err, "DELETE FROM invitations WHERE group_id = $1", "i", group_id);
        if (rc == QUN_DONE) {
            *bad |= bump(p, "invitations_deleted", qun_db_changes(db));
            rc = qun_db_run(db, NULL, err, "DELETE FROM mx_account_data WHERE group_id = $1", "i", group_id);
        }
        if (rc == QUN_DONE) {
            int64_t n = qun_db_changes(db);
            rc = qun_db_run(db, NULL, err, "DELETE FROM mx_forgotten WHERE group_id = $1", "i", group_id);
            if (rc == QUN_DONE) *bad |= bump(p, "matrix_rows_deleted", n + qun_db_changes(db));
        }
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err, "UPDATE groups SET member_count = 0 WHERE id = $1", "i", group_id);
        /* Every COMMIT that took this group's text out of the search index is counted by
         * now: the next phase waits for a rewrite of the index that covers them all. */
        int64_t gone = 0, scrubbed;
        if (rc == QUN_DONE && (rc = qun_db_search_gone(db, &gone, &scrubbed, err)) == QUN_OK) {
            *bad |= json_object_set_new(p, "phase", json_string("search_index"));
            *bad |= json_object_set_new(p, "search_gone", json_integer(gone));
        }
    } else if (strcmp(phase, "search_index") == 0) {
        /* The purged (or masked) text left the index when its rows changed, but FTS5 only
         * hid it: its trigrams stay in the file until the index is rewritten (migration
         * 0039), a bounded piece a step.  Other purges' steps and the jobs thread rewrite
         * the same index, so any rewrite that covers this purge's COMMITs ends it. */
        int64_t covered;
        rc = qun_db_search_scrub(db, QUN_SCRUB_PAGES, &covered, err);
        if (rc == QUN_OK && covered >= json_integer_value(json_object_get(p, "search_gone"))) {
            json_object_del(p, "search_gone");
            *bad |= json_object_set_new(p, "phase", json_string("files_scrub"));
            *bad |= json_object_set_new(p, "scrubs", json_integer((json_int_t)qun_db_scrubs()));
            atomic_store(&g_scrub, true);
        }
    } else if (strcmp(phase, "files_scrub") == 0) {
        /* The database's own files (the SQLite WAL's old page images) are scrubbed
         * after the commit of the step before (qun_purge_take_scrub): purged means
         * no copy is left.  A reader in the way, or a restart, asks again; after
         * SCRUB_TRIES the purge ends all the same, as it did before, and the log says
         * so (the next purge or rewrite of the index truncates the WAL). */
        int64_t tries = json_integer_value(json_object_get(p, "scrub_tries"));
        bool done = qun_db_scrubs() > (uint64_t)json_integer_value(json_object_get(p, "scrubs")) ||
                    !own_files(db); /* nothing to wait for */
        if (done || tries >= SCRUB_TRIES) {
            if (!done)
                qun_log("warn", "purge: the WAL could not be truncated; group %lld purged all the same",
                        (long long)group_id);
            json_object_del(p, "scrubs");
            json_object_del(p, "scrub_tries");
            rc = finish(db, group_id, ref_id, p, bad, finished, err);
        } else {
            *bad |= json_object_set_new(p, "scrubs", json_integer((json_int_t)qun_db_scrubs()));
            *bad |= json_object_set_new(p, "scrub_tries", json_integer(tries + 1));
            atomic_store(&g_scrub, true);
        }
    } else {
        *finished = true;
    }
    return rc;
}

/* Whether a step that moved the purge into phase `to` may go on with it in the same
 * transaction.  Not into members: its search_gone must count the COMMITs that took the
 * group's text out of the search index, this step's own included, and the members wait
 * for a large group's notices anyway.  Not into files_scrub where the database has files
 * of its own: their scrub follows the COMMIT of the step before. */
static bool goes_on(qun_db_t *db, const char *to) {
    if (strcmp(to, "members") == 0) return false;
    if (strcmp(to, "files_scrub") == 0) return !own_files(db);
    return true;
}

qun_rc qun_purge_group_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                            int64_t *defer, qun_err_t *err) {
    json_t *p;
    qun_rc grc = begin(db, job_id, group_id, ref_id, finished, defer, &p, err);
    if (grc != QUN_OK || !p) return grc;
    /* A step spends g_rows rows at most, across phases: one whose batch was not full
     * leaves the rest to the next (a small group's purge takes two or three
     * transactions, not one a phase: each is a round of the jobs thread and its pause). */
    int64_t budget = g_rows;
    bool more = false;
    qun_rc rc;
    int bad = 0; /* a progress field that could not be set for want of memory */
    for (;;) {
        const char *now = json_string_value(json_object_get(p, "phase"));
        char phase[32];
        snprintf(phase, sizeof phase, "%s", now ? now : "");
        g_used = 0;
        rc = run_phase(db, group_id, ref_id, phase, p, &more, finished, defer, &bad, err);
        budget -= g_used;
        const char *next = json_string_value(json_object_get(p, "phase"));
        if (rc != QUN_OK || bad || more || *finished || *defer || budget <= 0 || !next ||
            strcmp(next, phase) == 0 || !goes_on(db, next))
            break;
        g_rows = budget;
    }
    if (rc == QUN_OK && bad) rc = no_memory(err);
    if (rc == QUN_OK) rc = save_progress(db, job_id, p, err);
    json_decref(p);
    return rc;
}

qun_rc qun_purge_payments_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                               int64_t *defer, qun_err_t *err) {
    json_t *p;
    qun_rc grc = begin(db, job_id, group_id, ref_id, finished, defer, &p, err);
    if (grc != QUN_OK || !p) return grc;
    int64_t batch = g_rows;
    qun_rc rc = qun_db_run(
        db, NULL, err,
        "DELETE FROM payment_claims WHERE payment_id IN (SELECT id FROM payments WHERE group_id = $1 "
        "ORDER BY id LIMIT $2)",
        "ii", group_id, batch);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "DELETE FROM payments WHERE id IN (SELECT id FROM payments WHERE group_id = $1 ORDER "
                        "BY id LIMIT $2)",
                        "ii", group_id, batch);
    if (rc == QUN_DONE) {
        int64_t n = qun_db_changes(db);
        bump(p, "payments_deleted", n);
        *finished = n < batch;
        rc = save_progress(db, job_id, p, err);
    }
    if (rc == QUN_OK && *finished) { /* add the count to the dissolution's receipt */
        qun_q_t *q;
        json_t *receipt = NULL;
        rc = qun_db_run(db, &q, err, "SELECT receipt FROM dissolutions WHERE id = $1", "i", ref_id);
        if (rc == QUN_ROW) {
            receipt = json_loads(qun_q_col_text(q, 0), 0, NULL);
            qun_q_done(q);
        }
        if (!receipt) receipt = json_object();
        json_object_set(receipt, "payments_deleted", json_object_get(p, "payments_deleted"));
        char *text = qun_json_dumps(receipt, JSON_COMPACT | JSON_SORT_KEYS);
        rc = qun_db_run(db, NULL, err, "UPDATE dissolutions SET receipt = $2 WHERE id = $1", "is", ref_id,
                        text);
        free(text);
        json_decref(receipt);
        rc = rc == QUN_DONE ? QUN_OK : rc;
        if (rc == QUN_OK) rc = ledger_receipt(db, group_id, "group.payments_purged", NULL, NULL, p, err);
    }
    json_decref(p);
    return rc;
}

qun_rc qun_blob_unlink_queued(qun_db_t *db, int *unlinked, qun_err_t *err) {
    qun_q_t *q;
    char shas[64][65];
    int n = 0;
    *unlinked = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT u.sha256 FROM unlink_queue u WHERE NOT EXISTS "
                           "(SELECT 1 FROM blobs b WHERE b.sha256 = u.sha256) LIMIT 64",
                           "");
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        snprintf(shas[n++], 65, "%s", qun_q_col_text(q, 0));
    for (int i = 0; rc == QUN_DONE && i < n; i++) {
        char path[1024];
        qun_blob_path(shas[i], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            return qun_fail(err, QUN_STORE, "cannot unlink %s: %s", path, strerror(errno));
        rc = qun_db_run(db, NULL, err, "DELETE FROM unlink_queue WHERE sha256 = $1", "s", shas[i]);
        (*unlinked)++;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}
