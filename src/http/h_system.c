/* SPDX-License-Identifier: MIT */
/* Operational endpoints: liveness, readiness, Prometheus metrics, the test clock. */
#include <stdlib.h>
#include <string.h>

#include "http.h"

qun_rc h_none(qun_req_t *r) {
    (void)r;
    return QUN_OK;
}

qun_rc h_healthz(qun_req_t *r) {
    return qun_ok(r, 200, json_pack("{s:s}", "status", "ok"));
}

qun_rc h_readyz(qun_req_t *r) {
    if (qun_db_ping(r->db, &r->err) != QUN_OK || !qun_server_ready())
        return qun_fail(&r->err, QUN_UNAVAILABLE, "not ready");
    return qun_ok(r, 200, json_pack("{s:s, s:i}", "status", "ready", "schema", qun_db_schema_version(r->db)));
}

qun_rc h_metrics(qun_req_t *r) {
    r->out_text = qun_metrics_render();
    r->status = 200;
    snprintf(r->content_type, sizeof r->content_type, "text/plain; version=0.0.4");
    return QUN_OK;
}

/* POST /v1/test/clock {"advance": seconds}: only with QUN_TEST_CLOCK=1 in the
 * environment of qund; otherwise the route does not exist. */
qun_rc h_test_clock(qun_req_t *r) {
    static const qun_field_t fields[] = {{"advance", F_INT, true, 0, 10LL * 365 * 86400, NULL}, {0}};
    if (!qun_server_cfg.test_clock)
        return qun_fail(&r->err, QUN_TEST_CLOCK_DISABLED,
                        "start qund with QUN_TEST_CLOCK=1 to move its clock");
    qun_rc rc = qun_fields_check(r->json, fields, &r->err);
    if (rc != QUN_OK) return rc;
    qun_clock_advance(json_integer_value(json_object_get(r->json, "advance")));
    return qun_ok(r, 200, json_pack("{s:I}", "now", (json_int_t)qun_now()));
}
