/* SPDX-License-Identifier: MIT */
/* What the Matrix adapter (src/http/h_matrix*.c, docs/matrix.md) keeps that qun itself
 * does not need: clients' sync filters, their account data and the rooms they forgot,
 * and the lookups that turn Matrix user ids into qun accounts.  Rooms, members and
 * messages are qun's own groups, members and messages, changed only through the same
 * core functions as /v1. */
#ifndef QUN_MATRIX_H
#define QUN_MATRIX_H

#include <jansson.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/event.h"

#define QUN_MX_LOCAL_MAX 128       /* a Matrix localpart, NUL included */
#define QUN_MX_DATA_MAX (64 << 10) /* account data and filters, bytes of JSON */

/* The account whose Matrix localpart is local: its row id, openid and username
 * (QUN_USER_NOT_FOUND when none). */
qun_rc qun_mx_user_by_local(qun_db_t *db, const char *local, int64_t *uid, char openid[QUN_ID_MAX],
                            char username[QUN_USERNAME_MAX], qun_err_t *err);
/* The Matrix localpart of user uid into local. */
qun_rc qun_mx_local_of(qun_db_t *db, int64_t uid, char local[QUN_MX_LOCAL_MAX], qun_err_t *err);

/* The Matrix profile of user uid as caller may see it: {displayname} into *out, and
 * *shared: whether caller is uid or shares a group with uid (only then may the caller
 * be told).  QUN_USER_NOT_FOUND when uid does not exist. */
qun_rc qun_mx_profile(qun_db_t *db, int64_t caller, int64_t uid, json_t **out, bool *shared, qun_err_t *err);

/* Store a filter of user uid (json: its text) and give its id. */
qun_rc qun_mx_filter_put(qun_db_t *db, int64_t uid, const char *json, int64_t *id, qun_err_t *err);
/* The text of user uid's filter id into *json (malloc'd), or QUN_NOT_FOUND. */
qun_rc qun_mx_filter_get(qun_db_t *db, int64_t uid, int64_t id, char **json, qun_err_t *err);

/* Set user uid's account data of type (json: an object's text), global when group_id
 * is 0, else for that group, and append the per-user event `matrix.account_data`
 * {type, group?} so the user's syncs learn of it. */
qun_rc qun_mx_data_put(qun_db_t *db, int64_t uid, int64_t group_id, const char *type, const char *json,
                       qun_err_t *err);
/* The text of one account data entry into *json (malloc'd), or QUN_NOT_FOUND. */
qun_rc qun_mx_data_get(qun_db_t *db, int64_t uid, int64_t group_id, const char *type, char **json,
                       qun_err_t *err);
/* Every account data entry of user uid for group_id (0: the global ones) as Matrix
 * events [{type, content}] into *out. */
qun_rc qun_mx_data_list(qun_db_t *db, int64_t uid, int64_t group_id, json_t **out, qun_err_t *err);

/* Hide group_id from user uid's later initial syncs (POST /rooms/{id}/forget): only
 * a group the user is no longer a member of. */
qun_rc qun_mx_forget(qun_db_t *db, int64_t uid, int64_t group_id, qun_err_t *err);
/* Whether user uid forgot group_id. */
qun_rc qun_mx_forgotten(qun_db_t *db, int64_t uid, int64_t group_id, bool *yes, qun_err_t *err);

/* ---- the read side: what /sync and the room read routes render (core/matrix_view.c) ----
 * Every Matrix event is a rendering of committed rows: groups, members, messages,
 * dissolutions and the `events` rows of group-state changes.  These functions only
 * read; the HTTP layer (src/http/mx_render.c) turns their answers into Matrix JSON. */

/* A group as the Matrix views see it, with the viewing user's role in it. */
typedef struct {
    int64_t id;
    char gid[QUN_ID_MAX];
    char name[256];
    char kind[16];
    char state[16];       /* the group's state (active ... purged) */
    char org[QUN_ID_MAX]; /* the org's public id, "" for none */
    char regions[512];    /* the JSON array text */
    int64_t owner_id;
    char owner_local[QUN_MX_LOCAL_MAX];
    int64_t created_at;
    int64_t last_seq; /* the highest message seq (0: none yet) */
    char role[8];     /* the user's role, "" when not a member */
} qun_mx_room_t;

/* The groups user uid is a member of (any state), by row id, into *rooms (malloc'd,
 * *n of them; the caller frees it; NULL when none). */
qun_rc qun_mx_view_rooms(qun_db_t *db, int64_t uid, qun_mx_room_t **rooms, size_t *n, qun_err_t *err);
/* One group, by row id (group_id != 0) or by public id gid, with uid's role in it
 * (role "" when not a member): QUN_GROUP_NOT_FOUND when no such group. */
qun_rc qun_mx_view_room(qun_db_t *db, int64_t uid, int64_t group_id, const char *gid, qun_mx_room_t *room,
                        qun_err_t *err);
/* The events rows with after < id <= upto that concern user uid, oldest first: its own
 * rows, those of the groups it is a member of, and those of the groups it left or was
 * removed from after `after` (the leave itself included).  Into *rows (malloc'd, *n;
 * qun_event_rows_free then free()). */
qun_rc qun_mx_view_rows(qun_db_t *db, int64_t uid, int64_t after, int64_t upto, qun_event_row_t **rows,
                        int *n, qun_err_t *err);
/* One events row by id into *row (strings owned: qun_event_rows_free(row, 1)), or
 * QUN_NOT_FOUND when it is not (or no longer) there or not about group_id. */
qun_rc qun_mx_view_row(qun_db_t *db, int64_t group_id, int64_t id, qun_event_row_t *row, qun_err_t *err);
/* The members of group_id, by join time: [{local, openid, role, name, joined_at}]
 * into *out (owned by the caller). */
qun_rc qun_mx_view_members(qun_db_t *db, int64_t group_id, json_t **out, qun_err_t *err);
/* The Matrix localpart of the user with public id openid into local ("" and QUN_OK
 * when none). */
qun_rc qun_mx_view_local(qun_db_t *db, const char *openid, char local[QUN_MX_LOCAL_MAX], qun_err_t *err);
/* The latest dissolution of group_id as {state, messages, requested_by (a localpart),
 * requested_at, dissolves_at?, dissolved_at?, restorable_until?, successor? (gid),
 * successor_name?, ledger_index?}, and the group it succeeds, when it is a successor,
 * as {predecessor (gid), predecessor_event (the events row id of its group.dissolved,
 * 0 when no longer kept)}: both into *out (NULL members omitted; an empty object when
 * neither applies; owned by the caller). */
qun_rc qun_mx_view_dissolution(qun_db_t *db, int64_t group_id, json_t **out, qun_err_t *err);

/* A message as the Matrix views render it. */
typedef struct {
    int64_t seq;
    int64_t created_at;
    char kind[16];    /* text, system */
    char msgtype[16]; /* the stored Matrix msgtype, "" for m.text */
    char author_local[QUN_MX_LOCAL_MAX];
    int64_t session_id;     /* the session that sent it (0: not recorded) */
    char txn_id[256];       /* its Matrix transaction id, "" for none */
    int64_t stream_id;      /* its message.created row (0: from before stream positions) */
    char *body;             /* malloc'd */
    char media_msgtype[16]; /* m.image, m.file, m.audio, m.video for a file message, else "" */
    char media_id[65];      /* the media id it was sent as, "" for none */
    bool recalled;          /* recalled or removed (core/message.c): body "", rendered redacted */
    char file_type[97];     /* the group file's content type, "" when the group no longer has it */
    int64_t file_size;
} qun_mx_msg_t;

/* The messages of group_id with lo < seq <= hi, at most limit of them: the last ones
 * when from_end, else the first; ascending into *msgs (malloc'd, *n;
 * qun_mx_msgs_free).  hi < 0 means no upper bound. */
qun_rc qun_mx_view_messages(qun_db_t *db, int64_t group_id, int64_t lo, int64_t hi, int limit, bool from_end,
                            qun_mx_msg_t **msgs, int *n, qun_err_t *err);
void qun_mx_msgs_free(qun_mx_msg_t *msgs, int n);
/* The group-state rows (every topic but message.created) of group_id with after < id <=
 * upto, oldest first, into *rows (malloc'd, *n; qun_event_rows_free then free()). */
qun_rc qun_mx_view_group_rows(qun_db_t *db, int64_t group_id, int64_t after, int64_t upto,
                              qun_event_row_t **rows, int *n, qun_err_t *err);
/* The stream position of message seq of group_id into *pos (0 when it has none). */
qun_rc qun_mx_view_stream_of(qun_db_t *db, int64_t group_id, int64_t seq, int64_t *pos, qun_err_t *err);
/* The seq of the last message of group_id at stream position pos (an events row id)
 * into *seq: the messages committed up to that row. */
qun_rc qun_mx_view_seq_at(qun_db_t *db, int64_t group_id, int64_t pos, int64_t *seq, qun_err_t *err);

/* ---- media (core/mx_media.c, docs/matrix.md "Media") ----
 * Uploads are staged under a random media id (mx_media, holding one blob reference
 * while the row lives) and attached to a group when a message references them
 * (group_files through qun_file_add, plus an mx_media_links row per group). */
#define QUN_MX_MEDIA_ID_LEN 32 /* characters of a media id we hand out */
#define QUN_MX_MEDIA_ID_MAX 65 /* a media id we accept, NUL included */

typedef struct {
    char media_id[QUN_MX_MEDIA_ID_MAX];
    char sha256[65];
    int64_t size;
    int64_t uploader_id;
    char content_type[97];
    char name[129];
    int64_t created_at;
} qun_mx_media_t;

/* Whether id has the shape of a media id (1 to 64 of [A-Za-z0-9_-]). */
bool qun_mx_media_id_ok(const char *id);
/* Stage media uploaded by user uid whose bytes are blob sha (stored by qun_blob_put
 * beforehand): take a blob reference and insert its row under a new random id, given
 * in media_id.  QUN_UNAVAILABLE when the bytes were reclaimed meanwhile. */
qun_rc qun_mx_media_stage(qun_db_t *db, int64_t uid, const char *sha, int64_t size, const char *name,
                          const char *content_type, char media_id[QUN_MX_MEDIA_ID_MAX], qun_err_t *err);
/* In the transaction of a's message to group gid: attach media_id to the group.  The
 * uploader adds the file to the group (qun_file_add: membership of the live group,
 * dedupe by digest) and links the media; anyone referencing media already linked to
 * this group adds nothing.  Its row goes to *m.  QUN_FILE_NOT_FOUND for unknown ids
 * and other people's media; qun_group_access's refusals otherwise. */
qun_rc qun_mx_media_attach(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *media_id,
                           qun_mx_media_t *m, qun_err_t *err);
/* Media media_id into *m when user uid may download it: a member of a live group
 * (active, review, pending) linked to it, or its uploader while nothing links it.
 * QUN_FILE_NOT_FOUND otherwise (no disclosure of whether it exists). */
qun_rc qun_mx_media_get(qun_db_t *db, int64_t uid, const char *media_id, qun_mx_media_t *m, qun_err_t *err);
/* Housekeeping: delete up to a batch of staged media created before `before` that no
 * message linked, releasing their blob references; *expired counts them. */
qun_rc qun_mx_media_expire(qun_db_t *db, int64_t before, int64_t *expired, qun_err_t *err);

/* What a group's purge removed of its media (counters added to, not reset). */
typedef struct {
    int64_t links_deleted;  /* mx_media_links rows of the group */
    int64_t media_deleted;  /* mx_media rows that then had no link left */
    int64_t blobs_released; /* of which the last reference to their blob */
} qun_mx_media_purged_t;
/* One batch of group_id's purge: delete its media links, and the media no other
 * group links (a CDN purge is queued for every blob released).  *more when another
 * batch may remain. */
qun_rc qun_mx_media_purge_group(qun_db_t *db, int64_t group_id, qun_mx_media_purged_t *c, bool *more,
                                qun_err_t *err);

#endif
