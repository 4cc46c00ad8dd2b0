/* SPDX-License-Identifier: MIT */
/* qun events: follow GET /v1/events (server-sent events) and print one readable line
 * per event as it arrives (time, group name, who, what), resuming after a given event
 * id.  Group and member names are read once before the stream opens (one connection
 * serves the stream, so none can be asked for while it runs; someone not known then
 * shows by the name the event carries, else a short openid).  --raw prints the stream
 * as the server sends it; --json prints each event's data as one JSON line. */
/* fopencookie is a GNU extension; the build defines _GNU_SOURCE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"

typedef struct {
    json_t *groups; /* gid -> name */
    json_t *names;  /* openid -> display name or username */
    bool json;
    char *buf; /* the frame read so far */
    size_t len, cap;
} sse_t;

/* Who an openid is: a known name, else the first characters of the id. */
static const char *who(sse_t *s, json_t *data, const char *key, char tmp[16]) {
    const char *id = qun_jstr_or(data, key, NULL);
    if (!id) return NULL;
    const char *name = qun_jstr_or(s->names, id, NULL);
    if (name) return name;
    snprintf(tmp, 16, "%.10s", id);
    return tmp;
}

/* Money in fen as "¥8.88". */
static const char *yuan(int64_t fen, char out[40]) {
    snprintf(out, 40, "¥%lld.%02lld", (long long)(fen / 100), (long long)(fen % 100));
    return out;
}

/* One event as a sentence into out, in the user's words. */
static void what(sse_t *s, const char *type, json_t *d, char *out, size_t size) {
    char t1[16], t2[16], tm[32], n[3][24], money[40], piece[300] = "";
    const char *by = who(s, d, "by", t1), *subject = who(s, d, "openid", t2);
    const char *dn = qun_jstr_or(d, "display_name", NULL), *someone = qun_w("cli.ev.someone");
    if (dn && subject && qun_jstr_or(d, "openid", NULL)) subject = dn;
    if (strcmp(type, "message.created") == 0) {
        char line[480];
        const char *text = qun_jstr_or(d, "text", "");
        if (strcmp(qun_jstr_or(d, "kind", ""), "system") == 0 &&
            qun_notice_line(text, s->names, line, sizeof line))
            snprintf(out, size, "** %s", line);
        else {
            const char *author = qun_jstr_or(d, "author_display_name", NULL);
            if (!author) author = who(s, d, "author", t1);
            snprintf(out, size, "%s: %s", author ? author : "?", text);
        }
    } else if (strcmp(type, "dissolution.requested") == 0)
        qun_wf(
            out, size, "cli.ev.requested", who(s, d, "requested_by", t1) ?: qun_w("cli.ev.the_owner"),
            qun_w(strcmp(qun_jstr_or(d, "state", ""), "review") == 0 ? "cli.ev.waiting" : "cli.ev.pending"));
    else if (strcmp(type, "dissolution.pending") == 0)
        qun_wf(out, size, "cli.ev.will_dissolve", qun_fmt_time(qun_jint(d, "dissolves_at"), tm));
    else if (strncmp(type, "dissolution.", 12) == 0)
        qun_dissolution_was(out, size, type + 12, by, "");
    else if (strcmp(type, "group.dissolved") == 0) {
        const char *succ = qun_jstr_or(d, "successor", NULL);
        if (succ)
            qun_wf(piece, sizeof piece, "cli.ev.continued",
                   qun_jstr_or(d, "successor_name", qun_jstr_or(s->groups, succ, succ)));
        qun_wf(out, size, "cli.ev.dissolved", qun_fmt_time(qun_jint(d, "restorable_until"), tm), piece);
    } else if (strcmp(type, "group.restored") == 0)
        qun_wf(out, size,
               strcmp(qun_jstr_or(d, "by", ""), "server_admin") == 0 ? "cli.ev.restored_admin"
                                                                     : "cli.ev.restored_owner");
    else if (strcmp(type, "group.purged") == 0)
        qun_wf(out, size, "cli.ev.purged");
    else if (strcmp(type, "group.renamed") == 0)
        qun_wf(out, size, "cli.ev.renamed", by ? by : someone, qun_jstr_or(d, "old_name", ""),
               qun_jstr_or(d, "name", ""));
    else if (strcmp(type, "member.added") == 0)
        qun_wf(out, size, "cli.ev.joined", subject ? subject : someone, qun_jstr_or(d, "role", "member"));
    else if (strcmp(type, "member.removed") == 0) {
        bool other = by && strcmp(qun_jstr_or(d, "by", ""), qun_jstr_or(d, "openid", "")) != 0;
        if (qun_jstr_or(d, "reason", NULL))
            qun_wf(piece, sizeof piece, "cli.notice.reason", qun_jstr_or(d, "reason", ""));
        other ? qun_wf(out, size, "cli.ev.removed_by", subject ? subject : someone, by, piece)
              : qun_wf(out, size, "cli.ev.removed", subject ? subject : someone, piece);
    } else if (strcmp(type, "member.role_changed") == 0)
        qun_wf(out, size, "cli.ev.role", subject ? subject : someone, qun_jstr_or(d, "role", "?"),
               qun_jstr_or(d, "old_role", "?"));
    else if (strcmp(type, "member.display_name_changed") == 0)
        qun_wf(out, size, "cli.ev.renamed_member", who(s, d, "openid", t2) ?: someone,
               qun_jstr_or(d, "display_name", qun_w("cli.ev.no_display_name")));
    else if (strcmp(type, "member.invited") == 0)
        qun_wf(out, size, "cli.ev.invited", by ? by : someone, subject ? subject : someone);
    else if (strcmp(type, "receipt.read") == 0)
        qun_wf(out, size, "cli.ev.read", who(s, d, "user", t1) ?: someone,
               qun_fmt_int(qun_jint(d, "seq"), n[0]));
    else if (strcmp(type, "payment.created") == 0) {
        const char *memo = qun_jstr_or(d, "memo", "");
        if (*memo) qun_wf(piece, sizeof piece, "cli.ev.memo", memo);
        qun_wf(out, size, "cli.ev.red_packet", who(s, d, "creator", t1) ?: someone,
               yuan(qun_jint(d, "amount"), money), qun_fmt_int(qun_jint(d, "shares"), n[0]), piece);
    } else if (strcmp(type, "payment.claimed") == 0)
        qun_wf(out, size, "cli.ev.claimed", who(s, d, "claimer", t1) ?: someone,
               yuan(qun_jint(d, "amount"), money), qun_fmt_int(qun_jint(d, "claimed_shares"), n[0]),
               qun_fmt_int(qun_jint(d, "shares"), n[1]));
    else if (strcmp(type, "member.typing") == 0)
        qun_wf(out, size,
               json_is_true(json_object_get(d, "typing")) ? "cli.ev.typing" : "cli.ev.typing_stopped",
               dn ? dn : (who(s, d, "user", t1) ?: someone));
    else if (strncmp(type, "approval.", 9) == 0) {
        char key[96];
        snprintf(key, sizeof key, "cli.ev.approval.%.60s", type + 9);
        by ? qun_wf(out, size, "cli.ev.approval_by", qun_jstr_or(d, "id", "?"), qun_w_or(key, type + 9), by)
           : qun_wf(out, size, "cli.ev.approval", qun_jstr_or(d, "id", "?"), qun_w_or(key, type + 9));
    } else if (strcmp(type, "session.ended") == 0)
        qun_wf(out, size, "cli.ev.session_ended", qun_jstr_or(d, "reason", "?"));
    else if (strcmp(type, "stream.resync") == 0)
        qun_wf(out, size, "cli.ev.resync", qun_jstr_or(d, "reason", "?"));
    else if (strcmp(type, "message.recalled") == 0) {
        const char *author = qun_jstr_or(d, "author_display_name", NULL),
                   *reason = qun_jstr_or(d, "reason", NULL);
        if (!author) author = who(s, d, "author", t2) ?: someone;
        const char *remover = qun_jstr_or(d, "by_display_name", qun_jstr_or(d, "by_username", by));
        if (reason) qun_wf(piece, sizeof piece, "cli.notice.reason", reason);
        qun_fmt_int(qun_jint(d, "seq"), n[0]);
        if (!json_is_true(json_object_get(d, "removed")))
            qun_wf(out, size, "cli.ev.recalled", author, n[0]);
        else
            qun_wf(out, size, "cli.ev.removed_message", remover ? remover : someone, author, n[0], piece);
    } else if (strcmp(type, "group.created") == 0)
        qun_wf(out, size, "cli.ev.created");
    else if (strcmp(type, "transfer.proposed") == 0)
        qun_wf(out, size, "cli.ev.transfer_offered", who(s, d, "from", t1) ?: someone,
               qun_jstr_or(d, "group", "?"));
    else if (strcmp(type, "transfer.withdrawn") == 0)
        qun_wf(out, size, "cli.ev.transfer_withdrawn", who(s, d, "from", t1) ?: someone);
    else if (strcmp(type, "passkey.added") == 0)
        qun_wf(out, size, "cli.ev.passkey_added", qun_jstr_or(d, "label", ""));
    else if (strcmp(type, "passkey.removed") == 0)
        qun_wf(out, size, "cli.ev.passkey_removed");
    else if (strcmp(type, "receipt.private") == 0)
        qun_wf(out, size, "cli.ev.read_private", qun_fmt_int(qun_jint(d, "seq"), n[0]));
    else if (strcmp(type, "notification.created") == 0) {
        /* Each one repeats an event of its own (approval.requested, dissolution.…) to
         * one person; here it says only that the bell has something. */
        char key[96];
        json_t *p = json_object_get(d, "params");
        snprintf(key, sizeof key, "cli.ev.note.%.60s", qun_jstr_or(d, "kind", ""));
        qun_wf(out, size, "cli.ev.note", qun_w_or(key, qun_w("cli.ev.note_other")),
               qun_jstr_or(p, "group_name", qun_jstr_or(p, "group", "-")));
    } else if (strncmp(type, "matrix.", 7) == 0)
        *out = '\0'; /* a Matrix client's own data: nothing a person reads */
    else
        qun_wf(out, size, "cli.ev.other", type);
}

/* A whole frame (its lines, without the blank line that ends it): one output line. */
static void frame(sse_t *s, char *f) {
    char type[64] = "message", *data = NULL;
    for (char *line = strtok(f, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "event:", 6) == 0)
            snprintf(type, sizeof type, "%s", line + 6 + (line[6] == ' '));
        else if (strncmp(line, "data:", 5) == 0)
            data = line + 5 + (line[5] == ' ');
    }
    if (!data) return; /* a comment (keep-alive) or an id alone */
    json_t *d = json_loads(data, 0, NULL);
    if (!json_is_object(d)) {
        json_decref(d);
        return;
    }
    if (s->json) {
        json_object_set_new(d, "event", json_string(type));
        char *text = json_dumps(d, JSON_COMPACT);
        if (text) printf("%s\n", text);
        free(text);
        json_decref(d);
        return;
    }
    char tm[32], line[640];
    int64_t at = qun_jint(d, "created_at");
    const char *gid = qun_jstr_or(d, "group", NULL);
    /* Groups joined since the stream opened are learnt from the events that name them. */
    if (gid && qun_jstr_or(d, "group_name", NULL) && !json_object_get(s->groups, gid))
        json_object_set_new(s->groups, gid, json_string(qun_jstr_or(d, "group_name", "")));
    const char *gname = gid ? qun_jstr_or(d, "group_name", qun_jstr_or(s->groups, gid, gid)) : "-";
    what(s, type, d, line, sizeof line);
    if (*line) printf("%s  %s  %s\n", qun_fmt_time(at > 0 ? at : (int64_t)time(NULL), tm), gname, line);
    json_decref(d);
}

static ssize_t sse_write(void *cookie, const char *p, size_t n) {
    sse_t *s = cookie;
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *b = realloc(s->buf, cap);
        if (!b) return -1;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
    /* Frames end with a blank line; the server writes "\n" line ends. */
    char *end;
    while ((end = strstr(s->buf, "\n\n"))) {
        *end = '\0';
        size_t used = (size_t)(end - s->buf) + 2;
        frame(s, s->buf);
        memmove(s->buf, s->buf + used, s->len - used + 1);
        s->len -= used;
    }
    return (ssize_t)n;
}

/* Names of the caller's groups and of their members, read before the stream opens. */
static void learn_names(qun_cli_t *c, sse_t *s) {
    json_t *page = NULL, *g, *m;
    size_t i, j;
    if (qun_cli_get_all(c, "/v1/groups", NULL, &page) != QUN_EXIT_OK) return;
    json_array_foreach(json_object_get(page, "items"), i, g) {
        const char *gid = qun_jstr_or(g, "id", NULL);
        if (!gid) continue;
        json_object_set_new(s->groups, gid, json_string(qun_jstr_or(g, "name", gid)));
        if (i >= 50) continue; /* enough for a person; the rest by the names events carry */
        char path[512];
        if (qun_pathf(path, sizeof path, "/v1/groups/%s/members?limit=200", gid) != QUN_EXIT_OK) continue;
        qun_call_t call = {.method = "GET", .path = path, .quiet = true};
        qun_resp_t resp;
        if (qun_cli_call(c, &call, &resp) == QUN_EXIT_OK && resp.status == 200)
            json_array_foreach(json_object_get(resp.json, "items"), j, m) {
                const char *id = qun_jstr_or(m, "openid", NULL);
                if (id)
                    json_object_set_new(
                        s->names, id,
                        json_string(qun_jstr_or(m, "display_name", qun_jstr_or(m, "username", id))));
            }
        qun_resp_free(&resp);
    }
    json_decref(page);
}

int qun_cmd_events(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--after", NULL, true}, {"--raw", NULL, false}, {0}};
    static const char usage[] = "events [--after EVENT_ID] [--raw]";
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 0, 0, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    char path[96] = "/v1/events";
    int64_t after;
    if (a.val[0]) {
        if (!qun_parse_uint(a.val[0], &after))
            return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", usage);
        qun_pathf(path, sizeof path, "/v1/events?last_event_id=%lld", (long long)after);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    sse_t s = {.groups = json_object(), .names = json_object(), .json = c->json};
    FILE *sink = stdout;
    if (!a.val[1]) {
        if (!c->json) learn_names(c, &s);
        sink = fopencookie(&s, "w", (cookie_io_functions_t){.write = sse_write});
        if (!sink)
            rc = qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.event_reader");
        else
            setvbuf(sink, NULL, _IONBF, 0);
    }
    if (rc == QUN_EXIT_OK) {
        qun_call_t call = {.method = "GET", .path = path, .sink = sink};
        qun_resp_t resp;
        rc = qun_cli_call(c, &call, &resp);
        if (rc == QUN_EXIT_OK && resp.status >= 400) rc = qun_cli_report(&resp);
        qun_resp_free(&resp);
    }
    if (sink && sink != stdout) fclose(sink);
    free(s.buf);
    json_decref(s.groups);
    json_decref(s.names);
    return rc;
}
