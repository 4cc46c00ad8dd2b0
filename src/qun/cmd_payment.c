/* SPDX-License-Identifier: MIT */
/* Payment commands: send a red packet to a group, claim a share of one, and read
 * your personal bill.  The API counts in the smallest currency unit (fen); people
 * type and read yuan: `qun pay club 8.88 3`, "claimed ¥2.96". */
#include <string.h>

#include "client.h"

/* An amount as a person types it, in yuan: "8", "8.8", "8.88", with or without a
 * leading "¥".  Stored in *fen; false for anything else (a third decimal, a sign,
 * more than a billion yuan). */
static bool parse_yuan(const char *s, int64_t *fen) {
    int64_t yuan = 0, cents = 0;
    int digits = 0, decimals = 0;
    if (strncmp(s, "\xc2\xa5", 2) == 0) s += 2; /* ¥ */
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (digits == 10) return false;
        yuan = yuan * 10 + (*s - '0');
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, decimals++) {
            if (decimals == 2) return false;
            cents = cents * 10 + (*s - '0');
        }
        if (decimals == 0) return false;
        if (decimals == 1) cents *= 10;
    }
    if (*s != '\0' || digits == 0) return false;
    *fen = yuan * 100 + cents;
    return true;
}

/* An amount in fen (the smallest unit) as yuan, "¥8.88"; with sign, "+¥0.25" or
 * "-¥5.00".  The console shows amounts the same way (web/js/views/payments.js). */
static const char *fmt_money(int64_t fen, bool sign, char out[40]) {
    uint64_t v = fen < 0 ? -(uint64_t)fen : (uint64_t)fen;
    snprintf(out, 40, "%s¥%llu.%02llu",
             fen < 0 ? "-"
             : sign  ? "+"
                     : "",
             (unsigned long long)(v / 100), (unsigned long long)(v % 100));
    return out;
}

int qun_cmd_pay(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--memo", "-m", true}, {0}};
    static const char usage[] = "pay <group> <amount> <shares> [--memo M]";
    qun_args_t a;
    int64_t amount, shares;
    json_t *out;
    char path[512], money[40];
    int rc = qun_args_parse(argc, argv, opts, 3, 3, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!parse_yuan(a.pos[1], &amount) || !qun_parse_uint(a.pos[2], &shares))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.amount", usage);
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/payments", a.pos[0]);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *body = json_pack("{s:I, s:I}", "amount", (json_int_t)amount, "shares", (json_int_t)shares);
    if (a.val[0]) json_object_set_new(body, "memo", json_string(a.val[0]));
    rc = qun_cli_json(c, "POST", path, body, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else {
        const char *memo = qun_jstr_or(out, "memo", "");
        char n[24], note[300] = "";
        if (*memo) qun_wf(note, sizeof note, "cli.memo", memo);
        qun_say("cli.red_packet", qun_jstr_or(out, "id", "?"),
                fmt_money(qun_jint(out, "amount"), false, money), qun_fmt_int(qun_jint(out, "shares"), n),
                note);
        qun_say("cli.claim_with", a.pos[0], qun_jstr_or(out, "id", "?"));
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_claim(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    char path[512], money[40];
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, "claim <group> <pid>", &a);
    if (rc == QUN_EXIT_OK)
        rc = qun_pathf(path, sizeof path, "/v1/groups/%s/payments/%s/claim", a.pos[0], a.pos[1]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_object(), &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.claimed", fmt_money(qun_jint(out, "amount"), false, money),
                qun_jstr_or(out, "payment", a.pos[1]));
    json_decref(out);
    return QUN_EXIT_OK;
}

/* What a bill line's kind means, as a person says it. */
static const char *bill_kind(const char *kind) {
    char key[64];
    snprintf(key, sizeof key, "cli.bill.%s", kind);
    return qun_w_or(key, kind);
}

/* Print s right-aligned in width columns ("¥" is two bytes but one column), then a newline. */
static void print_right(const char *s, size_t width) {
    for (size_t w = qun_text_width(s); w < width; w++)
        putchar(' ');
    printf("%s\n", s);
}

int qun_cmd_bill(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out, *line;
    size_t i, wgroup = 5;
    int64_t total = 0;
    char t[32], money[40];
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "bill", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, "/v1/me/bill", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
        json_decref(out);
        return QUN_EXIT_OK;
    }
    json_t *items = json_object_get(out, "items");
    if (json_array_size(items) == 0) {
        qun_say("cli.bill_empty");
        json_decref(out);
        return QUN_EXIT_OK;
    }
    wgroup = qun_col_width("cli.col.group", wgroup);
    json_array_foreach(items, i, line) {
        size_t w = qun_text_width(qun_jstr_or(line, "group_name", "?"));
        wgroup = w > wgroup ? w : wgroup;
    }
    size_t wwhen = qun_col_width("cli.col.when", 16), wwhat = qun_col_width("cli.col.what", 26),
           wamount = qun_col_width("cli.col.amount", 12);
    /* Group names may be Chinese: cells are padded by display width, not bytes. */
    qun_print_cell(qun_w("cli.col.when"), wwhen + 2);
    qun_print_cell(qun_w("cli.col.group"), wgroup + 2);
    qun_print_col(qun_w("cli.col.what"), wwhat);
    print_right(qun_w("cli.col.amount"), wamount);
    json_array_foreach(items, i, line) {
        int64_t amount = qun_jint(line, "amount");
        total += amount;
        qun_print_cell(qun_fmt_time(qun_jint(line, "created_at"), t), wwhen + 2);
        qun_print_cell(qun_jstr_or(line, "group_name", "?"), wgroup + 2);
        qun_print_cell(bill_kind(qun_jstr_or(line, "kind", "?")), wwhat + 1);
        print_right(fmt_money(amount, true, money), wamount);
    }
    qun_print_cell(qun_w("cli.bill_total"), wwhen + 2);
    qun_print_cell("", wgroup + 2);
    qun_print_col("", wwhat);
    print_right(fmt_money(total, true, money), wamount);
    json_decref(out);
    return QUN_EXIT_OK;
}

/* The person a JSON object names: display name, else username (an account made through
 * Matrix registration has one too), else "someone": never the openid. */
static const char *who(json_t *o, const char *prefix) {
    char k[64];
    snprintf(k, sizeof k, "%s_display_name", prefix);
    const char *s = qun_jstr_or(o, k, NULL);
    snprintf(k, sizeof k, "%s_username", prefix);
    if (!s) s = qun_jstr_or(o, k, NULL);
    return s ? s : qun_w("cli.ev.someone");
}

int qun_cmd_payments(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out, *p, *cl;
    char path[512], t[32], claimed[96], money[40], got[40];
    size_t i, j, wfrom = qun_col_width("cli.col.from", 4), wmemo = qun_col_width("cli.col.memo", 4),
                 wwhen = qun_col_width("cli.col.when", 16), wamount = qun_col_width("cli.col.amount", 10),
                 wshares = qun_col_width("cli.col.shares", 7),
                 wclaimed = qun_col_width("cli.col.claimed", 22);
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "payments <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/payments", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *items = json_object_get(out, "items");
    if (c->json) {
        qun_print_json(out);
        json_decref(out);
        return QUN_EXIT_OK;
    }
    if (json_array_size(items) == 0) qun_say("cli.red_packets_none", a.pos[0]);
    json_array_foreach(items, i, p) {
        size_t w = qun_text_width(who(p, "creator"));
        wfrom = w > wfrom ? w : wfrom;
        w = qun_text_width(qun_jstr_or(p, "memo", ""));
        wmemo = w > wmemo ? w : wmemo;
    }
    if (json_array_size(items) > 0) {
        qun_print_cell(qun_w("cli.col.when"), wwhen + 2);
        qun_print_cell(qun_w("cli.col.from"), wfrom + 2);
        qun_print_cell(qun_w("cli.col.memo"), wmemo + 2);
        qun_print_cell_right(qun_w("cli.col.amount"), wamount);
        putchar(' ');
        qun_print_cell_right(qun_w("cli.col.shares"), wshares);
        fputs("  ", stdout);
        qun_print_cell(qun_w("cli.col.claimed"), wclaimed);
        printf("%s\n", qun_w("cli.col.id"));
    }
    json_array_foreach(items, i, p) {
        char n[3][24];
        qun_print_cell(qun_fmt_time(qun_jint(p, "created_at"), t), wwhen + 2);
        qun_print_cell(who(p, "creator"), wfrom + 2);
        qun_print_cell(qun_jstr_or(p, "memo", ""), wmemo + 2);
        qun_wf(claimed, sizeof claimed, "cli.claimed_of", qun_fmt_int(qun_jint(p, "claimed_shares"), n[0]),
               qun_fmt_int(qun_jint(p, "shares"), n[1]),
               fmt_money(qun_jint(p, "claimed_amount"), false, got));
        /* "¥" is one column but two bytes: pad by display width, not printf's bytes. */
        qun_print_cell_right(fmt_money(qun_jint(p, "amount"), false, money), wamount);
        putchar(' ');
        qun_print_cell_right(qun_fmt_int(qun_jint(p, "shares"), n[2]), wshares);
        fputs("  ", stdout);
        qun_print_cell(claimed, wclaimed);
        printf("%s\n", qun_jstr_or(p, "id", "?"));
        /* Who claimed what, when the server lists the claims. */
        json_array_foreach(json_object_get(p, "claims"), j, cl) {
            char line[300];
            qun_print_cell("", wwhen + 4);
            printf("%s\n", qun_wf(line, sizeof line, "cli.claim_line", who(cl, "claimer"),
                                  fmt_money(qun_jint(cl, "amount"), false, money)));
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}
