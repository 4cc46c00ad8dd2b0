/* SPDX-License-Identifier: MIT */
/* Search within a group's messages (core/search.c over store/search.c): the members
 * find the text messages that contain some words, Chinese or English, newest first.
 * The text index is kept by the database in the transaction that writes the message
 * row, so what a search finds is what GET .../messages shows: a message whose text is
 * recalled or masked is found by its new text only (a NULL text never), and a purged
 * group's messages are gone from it with their rows. */
#ifndef QUN_SEARCH_H
#define QUN_SEARCH_H

#include <jansson.h>
#include <stdint.h>

#include "qun/core.h"

/* The longest query, in characters. */
#define QUN_SEARCH_MAX_CHARS 200

/* The member a searches group gid for text (the query q: 1 to 200 characters of UTF-8
 * without control characters once spaces around it are trimmed; else
 * SEARCH_QUERY_INVALID), case-insensitively for ASCII letters.  after: a next_cursor
 * of an earlier page (0: from the newest message); limit 1 to 200.  *out (owned by the
 * caller) is {items: [message as GET .../messages shows it], next_cursor}, newest
 * first; next_cursor is null once the search has covered the group.  A query of one or
 * two characters is answered by a bounded scan (store.h QUN_SEARCH_WINDOW), so its
 * page may hold fewer items than limit while next_cursor is set.  Access as
 * qun_message_list: non-members GROUP_NOT_FOUND. */
qun_rc qun_message_search(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *q, int64_t after,
                          int limit, json_t **out, qun_err_t *err);

/* Whether q is a valid query (as above); its trimmed bytes into [*start, *start + *len). */
bool qun_search_query_ok(const char *q, const char **start, size_t *len);

#endif
