/* SPDX-License-Identifier: MIT */
/* Search within a group's messages: GET /v1/groups/{id}/messages/search?q=, paged as
 * GET /v1/groups/{id}/messages is (after, limit), newest first. */
#include "http.h"
#include "qun/search.h"

qun_rc h_message_search(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK)
        rc = qun_message_search(r->db, &r->actor, r->params[0], qun_query(r, "q"), after, limit, &out,
                                &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
