/* SPDX-License-Identifier: MIT */
/* qun events: follow GET /v1/events (server-sent events) and print each event as it
 * arrives, resuming after a given event id.  The stream's text is already line-based
 * and readable, so it goes to stdout as the server sends it (stdout is flushed per
 * write, so a pipe sees every event at once). */
#include <stdio.h>

#include "client.h"

int qun_cmd_events(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--after", NULL, true}, {0}};
    static const char usage[] = "events [--after EVENT_ID]";
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 0, 0, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    char path[96] = "/v1/events";
    int64_t after;
    if (a.val[0]) {
        if (!qun_parse_uint(a.val[0], &after))
            return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "usage: qun %s", usage);
        qun_pathf(path, sizeof path, "/v1/events?last_event_id=%lld", (long long)after);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    qun_call_t call = {.method = "GET", .path = path, .sink = stdout};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    if (rc == QUN_EXIT_OK && resp.status >= 400) rc = qun_cli_report(&resp);
    qun_resp_free(&resp);
    return rc;
}
