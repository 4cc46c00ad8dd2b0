/* SPDX-License-Identifier: MIT */
/* qun, the command-line client of qund: takes the global options, finds the command
 * and hands it the rest of the arguments.  Commands live in cmd_<area>.c. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client.h"
#include "qun/version.h"

/* A command: its name, runner (NULL on the further usage lines of a family), usage
 * synopsis (as typed, in every language) and the words' key of its one-line summary. */
typedef struct {
    const char *name;
    int (*run)(qun_cli_t *c, int argc, char **argv);
    const char *usage;
    const char *summary;
} command_t;

int qun_cmd_age(qun_cli_t *c, int argc, char **argv);
int qun_cmd_export(qun_cli_t *c, int argc, char **argv);
int qun_cmd_import(qun_cli_t *c, int argc, char **argv);
int qun_cmd_device(qun_cli_t *c, int argc, char **argv);
int qun_cmd_approve(qun_cli_t *c, int argc, char **argv);
int qun_cmd_totp(qun_cli_t *c, int argc, char **argv);
int qun_cmd_passkeys(qun_cli_t *c, int argc, char **argv);
int qun_cmd_risk(qun_cli_t *c, int argc, char **argv);
int qun_cmd_review(qun_cli_t *c, int argc, char **argv);
int qun_cmd_locks(qun_cli_t *c, int argc, char **argv);
int qun_cmd_grant(qun_cli_t *c, int argc, char **argv);
int qun_cmd_admin(qun_cli_t *c, int argc, char **argv);
int qun_cmd_search(qun_cli_t *c, int argc, char **argv);

static const command_t commands[] = {
    {"register", qun_cmd_register, "register <username> [--password P] [--display-name NAME]",
     "cli.sum.register"},
    {"login", qun_cmd_login, "login <username> [--password P] [--device ID] [--platform cli]",
     "cli.sum.login"},
    {"logout", qun_cmd_logout, "logout", "cli.sum.logout"},
    {"whoami", qun_cmd_whoami, "whoami", "cli.sum.whoami"},
    {"display-name", qun_cmd_display_name, "display-name <name> | display-name --clear",
     "cli.sum.display_name"},
    {"sessions", qun_cmd_sessions, "sessions", "cli.sum.sessions"},
    {"password", qun_cmd_password, "password [--stdin]", "cli.sum.password"},
    {"group", qun_cmd_group, "group create <name> [--kind K] [--org O]", "cli.sum.group_create"},
    {"group", NULL, "group list", "cli.sum.group_list"},
    {"group", NULL, "group show <group>", "cli.sum.group_show"},
    {"group", NULL, "group members <group>", "cli.sum.group_members"},
    {"group", NULL, "group add <group> <person> [--role admin|member]", "cli.sum.group_add"},
    {"group", NULL, "group remove <group> <person> [--confirm-name N] [--totp-code C] [--key FILE]",
     "cli.sum.group_remove"},
    {"group", NULL, "group role <group> <person> admin|member", "cli.sum.group_role"},
    {"group", NULL, "group rename <group> <name>", "cli.sum.group_rename"},
    {"invite", qun_cmd_invite, "invite <group> <username> [--role admin|member] [--openid]",
     "cli.sum.invite"},
    {"invitations", qun_cmd_invitations, "invitations", "cli.sum.invitations"},
    {"invitation", qun_cmd_invitation, "invitation accept|decline <invitation-id>",
     "cli.sum.invitation_accept"},
    {"invitation", NULL, "invitation revoke <invitation-id>", "cli.sum.invitation_revoke"},
    {"post", qun_cmd_post, "post <group> <text...>", "cli.sum.post"},
    {"history", qun_cmd_history, "history <group> [--after N] [--limit N]", "cli.sum.history"},
    {"recall", qun_cmd_recall, "recall <group> <seq> [--reason TEXT]", "cli.sum.recall"},
    {"search", qun_cmd_search, "search <group> <words...> [--limit N]", "cli.sum.search"},
    {"upload", qun_cmd_upload, "upload <group> <path>", "cli.sum.upload"},
    {"download", qun_cmd_download, "download <group> <digest> [-o FILE]", "cli.sum.download"},
    {"files", qun_cmd_files, "files <group>", "cli.sum.files"},
    {"file", qun_cmd_file, "file get <group> <name|digest-prefix> [-o PATH] [--force]", "cli.sum.file_get"},
    {"transfer", qun_cmd_transfer,
     "transfer <group> <person> [--confirm-name NAME] [--totp-code C] [--key FILE]", "cli.sum.transfer"},
    {"transfer", NULL, "transfer accept <group>", "cli.sum.transfer_accept"},
    {"transfer", NULL, "transfer decline <group>", "cli.sum.transfer_decline"},
    {"transfer", NULL, "transfer withdraw <group>", "cli.sum.transfer_withdraw"},
    {"leave", qun_cmd_leave, "leave <group>", "cli.sum.leave"},
    {"pay", qun_cmd_pay, "pay <group> <amount> <shares> [--memo M]", "cli.sum.pay"},
    {"claim", qun_cmd_claim, "claim <group> <pid>", "cli.sum.claim"},
    {"payments", qun_cmd_payments, "payments <group>", "cli.sum.payments"},
    {"bill", qun_cmd_bill, "bill", "cli.sum.bill"},
    {"dissolve", qun_cmd_dissolve,
     "dissolve <group> --messages keep|delete [--successor NAME] [--confirm-name N] [--password P] "
     "[--totp-code C] [--key FILE] [--no-wait]",
     "cli.sum.dissolve"},
    {"status", qun_cmd_status, "status <group>", "cli.sum.status"},
    {"events", qun_cmd_events, "events [--after EVENT_ID] [--raw]", "cli.sum.events"},
    {"cancel", qun_cmd_cancel, "cancel <group>", "cli.sum.cancel"},
    {"restore", qun_cmd_restore, "restore <group> [--password P] [--totp-code C] [--key FILE]",
     "cli.sum.restore"},
    {"approvals", qun_cmd_approvals, "approvals list", "cli.sum.approvals_list"},
    {"approvals", NULL, "approvals approve <aid> [--reason R]", "cli.sum.approvals_approve"},
    {"approvals", NULL, "approvals reject <aid> --reason R", "cli.sum.approvals_reject"},
    {"hold", qun_cmd_hold, "hold place <group> --reason R", "cli.sum.hold_place"},
    {"hold", NULL, "hold list <group>", "cli.sum.hold_list"},
    {"hold", NULL, "hold release <group> <hid>", "cli.sum.hold_release"},
    {"org", qun_cmd_org, "org protection <oid> on|off", "cli.sum.org_protection"},
    {"audit", qun_cmd_audit, "audit key", "cli.sum.audit_key"},
    {"audit", NULL, "audit verify --key K [--checkpoint-file OLD] [--save NEW]", "cli.sum.audit_verify"},
    {"audit", NULL, "audit prove <group> [--index N] [--key K] [-o FILE]", "cli.sum.audit_prove"},
    {"audit", NULL, "audit check <bundle> [--key K]", "cli.sum.audit_check"},
    {"age", qun_cmd_age, "age keygen [-o FILE]", "cli.sum.age_keygen"},
    {"age", NULL, "age encrypt -r RECIPIENT... [-o OUT] [IN]", "cli.sum.age_encrypt"},
    {"age", NULL, "age decrypt -i IDENTITY_FILE [-o OUT] [IN]", "cli.sum.age_decrypt"},
    {"export", qun_cmd_export,
     "export <group> (--to RECIPIENT[,RECIPIENT...] | --passphrase) -o FILE [--self] [--progress]",
     "cli.sum.export"},
    {"grant", qun_cmd_grant, "grant export <group> --expires 7d [--label L]", "cli.sum.grant_export"},
    {"grant", NULL, "grant list <group>", "cli.sum.grant_list"},
    {"grant", NULL, "grant revoke <group> <grant-id>", "cli.sum.grant_revoke"},
    {"import", qun_cmd_import, "import <archive.age> --identity IDENTITY_FILE", "cli.sum.import"},
    {"device", qun_cmd_device, "device key register [--key FILE] [--challenge ID]", "cli.sum.device_key"},
    {"approve", qun_cmd_approve, "approve <challenge-id|qun://challenge/...> --key FILE [--nonce N]",
     "cli.sum.approve"},
    {"totp", qun_cmd_totp, "totp enrol [--code C]", "cli.sum.totp_enrol"},
    {"totp", NULL, "totp confirm <code>", "cli.sum.totp_confirm"},
    {"passkeys", qun_cmd_passkeys, "passkeys [list]", "cli.sum.passkeys"},
    {"passkeys", NULL, "passkeys remove <id>", "cli.sum.passkeys_remove"},
    {"risk", qun_cmd_risk, "risk explain <r_...|g_...|a_...>", "cli.sum.risk_explain"},
    {"review", qun_cmd_review, "review list", "cli.sum.review_list"},
    {"review", NULL, "review approve <aid> [--reason R]", "cli.sum.review_approve"},
    {"review", NULL, "review reject <aid> --reason R", "cli.sum.review_reject"},
    {"locks", qun_cmd_locks, "locks list [--all]", "cli.sum.locks_list"},
    {"locks", NULL, "locks clear <id>", "cli.sum.locks_clear"},
    {"admin", qun_cmd_admin, "admin migrate --from sqlite:PATH --to postgres://...", "cli.sum.admin_migrate"},
    {"admin", NULL, "admin username-collisions", "cli.sum.admin_username_collisions"},
    {"admin", NULL, "admin users [PREFIX]", "cli.sum.admin_users"},
    {"admin", NULL, "admin user USER", "cli.sum.admin_user"},
    {"admin", NULL, "admin disable USER", "cli.sum.admin_disable"},
    {"admin", NULL, "admin enable USER", "cli.sum.admin_enable"},
    {"admin", NULL, "admin reset-password USER", "cli.sum.admin_reset_password"},
    {"admin", NULL, "admin backup DIR [--data DATA_DIR] [--config FILE] [--store URL]",
     "cli.sum.admin_backup"},
    {"admin", NULL, "admin restore DIR DATA_DIR", "cli.sum.admin_restore"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

/* What qun help <command> adds to the usage lines: the words' key of the arguments, and
 * an example (in Chinese the row cli.example.<name> where there is one). */
static const struct {
    const char *name, *args, *example;
} details[] = {
    {"register", "cli.args.register", "qun register alice --display-name 'Alice Wang'"},
    {"login", "cli.args.login", "qun login alice"},
    {"logout", "cli.args.logout", "qun logout"},
    {"whoami", "cli.args.whoami", "qun whoami"},
    {"display-name", "cli.args.display_name", "qun display-name 王小明"},
    {"sessions", "cli.args.sessions", "qun sessions"},
    {"password", "cli.args.password", "printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | qun password --stdin"},
    {"group", "cli.args.group", "qun group add \"book club\" bob"},
    {"invite", "cli.args.invite", "qun invite \"book club\" carol"},
    {"invitations", "cli.args.invitations", "qun invitations"},
    {"invitation", "cli.args.invitation", "qun invitation accept i_0123456789abcdef"},
    {"post", "cli.args.post", "qun post \"book club\" see you on Friday"},
    {"history", "cli.args.history", "qun history \"book club\" --limit 20"},
    {"recall", "cli.args.recall", "qun recall \"book club\" 42 --reason \"off topic\""},
    {"search", "cli.args.search", "qun search \"book club\" 作业"},
    {"upload", "cli.args.upload", "qun upload \"book club\" notes.pdf"},
    {"download", "cli.args.download", "qun download \"book club\" 9f86d081...15b0f00a08 -o notes.pdf"},
    {"files", "cli.args.files", "qun files \"book club\""},
    {"file", "cli.args.file", "qun file get \"book club\" notes.pdf"},
    {"transfer", "cli.args.transfer", "qun transfer \"book club\" bob"},
    {"leave", "cli.args.leave", "qun leave \"book club\""},
    {"pay", "cli.args.pay", "qun pay \"book club\" 500 5 --memo 红包"},
    {"claim", "cli.args.claim", "qun claim \"book club\" p_0123456789abcdef"},
    {"payments", "cli.args.payments", "qun payments \"book club\""},
    {"bill", "cli.args.bill", "qun bill"},
    {"dissolve", "cli.args.dissolve", "qun dissolve \"book club\" --messages keep"},
    {"status", "cli.args.status", "qun status \"book club\""},
    {"events", "cli.args.events", "qun events"},
    {"cancel", "cli.args.cancel", "qun cancel \"book club\""},
    {"restore", "cli.args.restore", "qun restore \"book club\""},
    {"approvals", "cli.args.approvals", "qun approvals approve a_0123456789abcdef"},
    {"hold", "cli.args.hold", "qun hold place \"book club\" --reason 'case 42'"},
    {"org", "cli.args.org", "qun org protection o_0123456789abcdef on"},
    {"audit", "cli.args.audit", "qun audit verify --key $(qun audit key)"},
    {"age", "cli.args.age", "qun age keygen -o me.key"},
    {"export", "cli.args.export", "qun export \"book club\" --passphrase -o club.age"},
    {"grant", "cli.args.grant", "qun grant export \"book club\" --expires 7d"},
    {"import", "cli.args.import", "qun import club.age --identity me.key"},
    {"device", "cli.args.device", "qun device key register"},
    {"approve", "cli.args.approve", "qun approve c_0123456789abcdef --key device.key"},
    {"totp", "cli.args.totp", "qun totp enrol"},
    {"passkeys", "cli.args.passkeys", "qun passkeys remove pk_0123456789abcdef"},
    {"risk", "cli.args.risk", "qun risk explain a_0123456789abcdef"},
    {"review", "cli.args.review", "qun review list"},
    {"locks", "cli.args.locks", "qun locks list"},
    {"admin", "cli.args.admin", "qun admin users al"},
};

static void usage(FILE *f) {
    char text[2048];
    fprintf(f, "%s\n\n%s\n", qun_w("cli.help.synopsis"), qun_w("cli.help.commands"));
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-68s %s\n", commands[i].usage, qun_w(commands[i].summary));
    fprintf(f, "\n  %-68s %s\n  %-68s %s\n", "help [command]", qun_w("cli.sum.help"), "--version",
            qun_w("cli.sum.version"));
    fputs(qun_wf(text, sizeof text, "cli.help.global", "http://127.0.0.1:8080"), f);
}

static int help(const char *topic) {
    if (!topic) {
        usage(stdout);
        return QUN_EXIT_OK;
    }
    bool found = false;
    for (int i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, topic) != 0) continue;
        if (!found) printf("%s\n", qun_w("cli.help.usage"));
        printf("  qun %-60s %s\n", commands[i].usage, qun_w(commands[i].summary));
        found = true;
    }
    if (!found) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.no_command", topic);
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++) {
        if (strcmp(details[i].name, topic) != 0) continue;
        char key[64];
        snprintf(key, sizeof key, "cli.example.%s", details[i].name);
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        printf("\n%s\n%s\n%s\n  %s\n", qun_w("cli.help.arguments"), qun_w(details[i].args),
               qun_w("cli.help.example"), qun_w_or(key, details[i].example));
    }
    printf("\n%s\n", qun_w("cli.help.see_docs"));
    return QUN_EXIT_OK;
}

int main(int argc, char **argv) {
    /* The global options may come anywhere before "--"; take them out of argv so each
     * command sees only its own arguments. */
    const char *url_flag = NULL;
    bool json = false, want_help = false, dashdash = false;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n = 0, rc;
    if (!rest) return qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem");
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (dashdash) {
            rest[n++] = argv[i];
        } else if (strcmp(s, "--") == 0) {
            dashdash = true;
            rest[n++] = argv[i];
        } else if (strcmp(s, "--json") == 0) {
            json = true;
        } else if (strcmp(s, "--url") == 0) {
            if (i + 1 == argc) {
                free(rest);
                return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.url_value");
            }
            url_flag = argv[++i];
        } else if (strncmp(s, "--url=", 6) == 0) {
            url_flag = s + 6;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            want_help = true;
        } else if (strcmp(s, "--version") == 0 || strcmp(s, "-V") == 0) {
            printf("qun %s\n", QUN_VERSION);
            free(rest);
            return QUN_EXIT_OK;
        } else {
            rest[n++] = argv[i];
        }
    }
    if (want_help || (n > 0 && strcmp(rest[0], "help") == 0)) {
        const char *topic = want_help ? (n > 0 ? rest[0] : NULL) : (n > 1 ? rest[1] : NULL);
        rc = help(topic);
        free(rest);
        return rc;
    }
    if (n == 0) {
        usage(stderr);
        free(rest);
        return QUN_EXIT_USAGE;
    }
    const command_t *cmd = NULL;
    for (int i = 0; i < NCOMMANDS && !cmd; i++)
        if (commands[i].run && strcmp(commands[i].name, rest[0]) == 0) cmd = &commands[i];
    if (!cmd) {
        rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.unknown_command", rest[0]);
        free(rest);
        return rc;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(rest);
        return qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.init");
    }
    qun_cli_t c;
    rc = qun_cli_init(&c, url_flag);
    c.json = json;
    if (rc == QUN_EXIT_OK) rc = cmd->run(&c, n - 1, rest + 1);
    qun_cli_free(&c);
    curl_global_cleanup();
    free(rest);
    fflush(stdout);
    if (ferror(stdout) && rc == QUN_EXIT_OK) rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.output");
    return rc;
}
