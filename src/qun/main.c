/* SPDX-License-Identifier: MIT */
/* qun, the command-line client of qund: takes the global options, finds the command
 * and hands it the rest of the arguments.  Commands live in cmd_<area>.c. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client.h"
#include "qun/version.h"

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
     "create an account"},
    {"login", qun_cmd_login, "login <username> [--password P] [--device ID] [--platform cli]",
     "log in and save the token"},
    {"logout", qun_cmd_logout, "logout", "revoke this session and forget the token"},
    {"whoami", qun_cmd_whoami, "whoami", "show who the saved token belongs to"},
    {"display-name", qun_cmd_display_name, "display-name <name> | display-name --clear",
     "set or clear the name shown for you"},
    {"sessions", qun_cmd_sessions, "sessions", "list your active sessions"},
    {"password", qun_cmd_password, "password [--stdin]",
     "change your password (other sessions are logged out)"},
    {"group", qun_cmd_group, "group create <name> [--kind K] [--org O]", "create a group"},
    {"group", NULL, "group list", "list your groups"},
    {"group", NULL, "group show <group>", "show a group"},
    {"group", NULL, "group members <group>", "list a group's members"},
    {"group", NULL, "group add <group> <person> [--role admin|member]", "add a member"},
    {"group", NULL, "group remove <group> <person> [--confirm-name N] [--totp-code C] [--key FILE]",
     "remove a member"},
    {"group", NULL, "group role <group> <person> admin|member", "change a member's role"},
    {"group", NULL, "group rename <group> <name>", "rename a group"},
    {"invite", qun_cmd_invite, "invite <group> <username> [--role admin|member] [--openid]",
     "invite someone; they join by accepting"},
    {"invitations", qun_cmd_invitations, "invitations", "list your pending invitations"},
    {"invitation", qun_cmd_invitation, "invitation accept|decline <invitation-id>", "answer an invitation"},
    {"invitation", NULL, "invitation revoke <invitation-id>", "revoke an invitation you made"},
    {"post", qun_cmd_post, "post <group> <text...>", "post a message"},
    {"history", qun_cmd_history, "history <group> [--after N] [--limit N]", "read messages"},
    {"recall", qun_cmd_recall, "recall <group> <seq> [--reason TEXT]",
     "recall your message, or remove one as an owner or admin"},
    {"search", qun_cmd_search, "search <group> <words...> [--limit N]",
     "find messages that contain the words, newest first"},
    {"upload", qun_cmd_upload, "upload <group> <path>", "upload a file"},
    {"download", qun_cmd_download, "download <group> <digest> [-o FILE]",
     "download a file and verify its SHA-256"},
    {"files", qun_cmd_files, "files <group>", "list a group's files"},
    {"file", qun_cmd_file, "file get <group> <name|digest-prefix> [-o PATH] [--force]",
     "download a file by name or digest prefix"},
    {"transfer", qun_cmd_transfer,
     "transfer <group> <person> [--confirm-name NAME] [--totp-code C] [--key FILE]",
     "offer ownership to a member"},
    {"transfer", NULL, "transfer accept <group>", "accept an ownership offer"},
    {"transfer", NULL, "transfer decline <group>", "decline an ownership offer"},
    {"transfer", NULL, "transfer withdraw <group>", "withdraw your open ownership offer"},
    {"leave", qun_cmd_leave, "leave <group>", "leave a group"},
    {"pay", qun_cmd_pay, "pay <group> <amount> <shares> [--memo M]", "send a red packet"},
    {"claim", qun_cmd_claim, "claim <group> <pid>", "claim a share of a red packet"},
    {"payments", qun_cmd_payments, "payments <group>", "list a group's red packets and their claims"},
    {"bill", qun_cmd_bill, "bill", "show your personal bill"},
    {"dissolve", qun_cmd_dissolve,
     "dissolve <group> --messages keep|delete [--successor NAME] [--confirm-name N] [--password P] "
     "[--totp-code C] [--key FILE] [--no-wait]",
     "preview, confirm and dissolve a group"},
    {"status", qun_cmd_status, "status <group>", "show a group's dissolution and purge progress"},
    {"events", qun_cmd_events, "events [--after EVENT_ID] [--raw]",
     "follow your live events (messages, notices, approvals)"},
    {"cancel", qun_cmd_cancel, "cancel <group>", "cancel a dissolution under review or in its cooling-off"},
    {"restore", qun_cmd_restore, "restore <group> [--password P] [--totp-code C] [--key FILE]",
     "restore a dissolved group within the grace"},
    {"approvals", qun_cmd_approvals, "approvals list", "list the dissolutions waiting for your approval"},
    {"approvals", NULL, "approvals approve <aid> [--reason R]", "approve a dissolution"},
    {"approvals", NULL, "approvals reject <aid> --reason R", "reject a dissolution"},
    {"hold", qun_cmd_hold, "hold place <group> --reason R", "place a legal hold (compliance role)"},
    {"hold", NULL, "hold list <group>", "list a group's legal holds"},
    {"hold", NULL, "hold release <group> <hid>", "release a legal hold"},
    {"org", qun_cmd_org, "org protection <oid> on|off", "switch an enterprise org's dissolve protection"},
    {"audit", qun_cmd_audit, "audit key", "print the server's ledger verifier key"},
    {"audit", NULL, "audit verify --key K [--checkpoint-file OLD] [--save NEW]",
     "verify the whole ledger against a signed checkpoint"},
    {"audit", NULL, "audit prove <group> [--index N] [--key K] [-o FILE]",
     "write an offline proof bundle for a group's ledger entry"},
    {"audit", NULL, "audit check <bundle> [--key K]", "verify a proof bundle offline"},
    {"age", qun_cmd_age, "age keygen [-o FILE]", "make an age X25519 identity and recipient"},
    {"age", NULL, "age encrypt -r RECIPIENT... [-o OUT] [IN]", "encrypt to age recipients"},
    {"age", NULL, "age decrypt -i IDENTITY_FILE [-o OUT] [IN]", "decrypt an age file"},
    {"export", qun_cmd_export,
     "export <group> (--to RECIPIENT[,RECIPIENT...] | --passphrase) -o FILE [--self] [--progress]",
     "export a group to an age-encrypted archive (owner; --self: your own copy during a notice)"},
    {"grant", qun_cmd_grant, "grant export <group> --expires 7d [--label L]",
     "let another application download the group's exports (owner)"},
    {"grant", NULL, "grant list <group>", "list a group's storage grants"},
    {"grant", NULL, "grant revoke <group> <grant-id>", "revoke a storage grant"},
    {"import", qun_cmd_import, "import <archive.age> --identity IDENTITY_FILE",
     "decrypt an archive locally and rebuild it as a new group"},
    {"device", qun_cmd_device, "device key register [--key FILE] [--challenge ID]",
     "make an Ed25519 key for this device (file 0600) and register it"},
    {"approve", qun_cmd_approve, "approve <challenge-id|qun://challenge/...> --key FILE [--nonce N]",
     "approve a challenge of yours by signing it with a device key"},
    {"totp", qun_cmd_totp, "totp enrol [--code C]",
     "set up an authenticator app (QR code and secret), then confirm with a code"},
    {"totp", NULL, "totp confirm <code>", "confirm a pending TOTP enrollment"},
    {"passkeys", qun_cmd_passkeys, "passkeys [list]", "list your passkeys (registered in the console)"},
    {"passkeys", NULL, "passkeys remove <id>", "remove one of your passkeys"},
    {"risk", qun_cmd_risk, "risk explain <r_...|g_...|a_...>",
     "show a risk evaluation: level, score and each reason"},
    {"review", qun_cmd_review, "review list", "list dissolutions waiting for a risk review (server admins)"},
    {"review", NULL, "review approve <aid> [--reason R]", "approve a dissolution under risk review"},
    {"review", NULL, "review reject <aid> --reason R", "reject a dissolution under risk review"},
    {"locks", qun_cmd_locks, "locks list [--all]", "list brute-force locks (server admins)"},
    {"locks", NULL, "locks clear <id>", "end a brute-force lock now (server admins)"},
    {"admin", qun_cmd_admin, "admin migrate --from sqlite:PATH --to postgres://...",
     "copy an installation from SQLite to PostgreSQL (one transaction, same ledger)"},
    {"admin", NULL, "admin username-collisions",
     "list accounts whose usernames were one name once case-folded (server admins)"},
    {"admin", NULL, "admin users [PREFIX]",
     "list accounts, or those whose username starts with PREFIX (server admins)"},
    {"admin", NULL, "admin user USER", "show an account and its groups (server admins)"},
    {"admin", NULL, "admin disable USER", "disable an account and log out its sessions (server admins)"},
    {"admin", NULL, "admin enable USER", "enable a disabled account again (server admins)"},
    {"admin", NULL, "admin reset-password USER",
     "reset a password to a one-time code shown once (server admins)"},
    {"admin", NULL, "admin backup DIR [--data DATA_DIR] [--config FILE] [--store URL]",
     "copy a data directory while qund serves: database snapshot, blobs, exports, keys, manifest"},
    {"admin", NULL, "admin restore DIR DATA_DIR",
     "rebuild a data directory from a backup whose digests all match"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

/* What qun help <command> adds to the usage lines: the arguments and an example. */
static const struct {
    const char *name, *args, *example;
} details[] = {
    {"register",
     "  <username>  the name you log in with\n  --password P  else $QUN_PASSWORD, else asked twice\n  "
     "--display-name NAME  the name others see (any script)\n",
     "qun register alice --display-name 'Alice Wang'"},
    {"login",
     "  <username>  your username\n  --password P  else $QUN_PASSWORD, else asked\n  --device ID  this "
     "machine's device id (default: made once)\n",
     "qun login alice"},
    {"logout", "  (no arguments)\n", "qun logout"},
    {"whoami", "  (no arguments)\n", "qun whoami"},
    {"display-name", "  <name>  the name others see; --clear removes it\n", "qun display-name 王小明"},
    {"sessions", "  (no arguments)\n", "qun sessions"},
    {"password",
     "  (asks for the current password, then the new one twice)\n  --stdin  read the current password "
     "and the new one from two lines of standard input\n",
     "printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | qun password --stdin"},
    {"group",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <person>  an openid (u_...) or a "
     "username (in a group: also a display name)\n  --role admin|member  the role of an added member\n",
     "qun group add \"book club\" bob"},
    {"invite",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <username>  whom to invite "
     "(--openid: an openid instead)\n  --role admin|member  the role they join with\n",
     "qun invite \"book club\" carol"},
    {"invitations", "  (no arguments)\n", "qun invitations"},
    {"invitation", "  <invitation-id>  from qun invitations\n", "qun invitation accept i_0123456789abcdef"},
    {"post",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <text...>  the message; several "
     "words are joined by spaces\n",
     "qun post \"book club\" see you on Friday"},
    {"history",
     "  <group>  a group id (g_...) or the name of one of your groups\n  --after N  start after message N\n  "
     "--limit N  at most N messages\n",
     "qun history \"book club\" --limit 20"},
    {"recall",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <seq>  the message number (see qun "
     "history)\n  --reason TEXT  why (needed to remove someone else's message)\n",
     "qun recall \"book club\" 42 --reason \"off topic\""},
    {"search",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <words...>  what to find (joined by "
     "spaces; Chinese or English, 1 to 200 characters)\n  --limit N  at most N messages (default 20)\n",
     "qun search \"book club\" 作业"},
    {"upload",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <path>  the file to upload; its "
     "name is kept\n",
     "qun upload \"book club\" notes.pdf"},
    {"download",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <digest>  the file's full SHA-256 "
     "(see qun files)\n  -o FILE  where to save (- for stdout; replaces FILE)\n",
     "qun download \"book club\" 9f86d081...15b0f00a08 -o notes.pdf"},
    {"files", "  <group>  a group id (g_...) or the name of one of your groups\n", "qun files \"book club\""},
    {"file",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <name|digest-prefix>  the file's "
     "name, or the start of its digest\n  -o PATH  where to save (default: the file's own name; - for "
     "stdout)\n  --force  replace PATH if it exists\n",
     "qun file get \"book club\" notes.pdf"},
    {"transfer",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <person>  an openid (u_...) or a "
     "username (in a group: also a display name)\n  --confirm-name NAME  the group's name typed back\n",
     "qun transfer \"book club\" bob"},
    {"leave", "  <group>  a group id (g_...) or the name of one of your groups\n", "qun leave \"book club\""},
    {"pay",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <amount>  the total, in the "
     "smallest currency unit\n  <shares>  how many members can claim\n  --memo M  a note shown with the red "
     "packet\n",
     "qun pay \"book club\" 500 5 --memo 红包"},
    {"claim",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <pid>  the red packet's id (see qun "
     "payments)\n",
     "qun claim \"book club\" p_0123456789abcdef"},
    {"payments", "  <group>  a group id (g_...) or the name of one of your groups\n",
     "qun payments \"book club\""},
    {"bill", "  (no arguments)\n", "qun bill"},
    {"dissolve",
     "  <group>  a group id (g_...) or the name of one of your groups\n  --messages keep|delete  what "
     "happens to the messages\n  --successor NAME  a new group for those who stay\n  --confirm-name N  the "
     "group's name typed back\n  --password P  step-up password\n  --totp-code C  a code from your "
     "authenticator app, when asked for one (else asked)\n  --key FILE  this device's key file, when a "
     "device key is asked for\n  --no-wait  do not wait for the outcome\n",
     "qun dissolve \"book club\" --messages keep"},
    {"status", "  <group>  a group id (g_...) or the name of one of your groups\n",
     "qun status \"book club\""},
    {"events",
     "  --after EVENT_ID  resume after this event\n  --raw  the stream as the server sends it (else one "
     "line per event: time, group, who, what; --json: one JSON object per line)\n",
     "qun events"},
    {"cancel", "  <group>  a group id (g_...) or the name of one of your groups\n",
     "qun cancel \"book club\""},
    {"restore",
     "  <group>  a group id (g_...) or the name of one of your groups\n  --password P  step-up password\n"
     "  --totp-code C  a code from your authenticator app, when asked for one (else asked)\n  --key FILE  "
     "this device's key file, when a device key is asked for\n",
     "qun restore \"book club\""},
    {"approvals", "  <aid>  an approval id from qun approvals list\n  --reason R  why (required to reject)\n",
     "qun approvals approve a_0123456789abcdef"},
    {"hold",
     "  <group>  a group id (g_...) or the name of one of your groups\n  <hid>  a hold id from qun hold "
     "list\n  --reason R  why the hold is placed\n",
     "qun hold place \"book club\" --reason 'case 42'"},
    {"org", "  <oid>  the organization's id\n  on|off  dissolve protection\n",
     "qun org protection o_0123456789abcdef on"},
    {"audit",
     "  <group>  a group id (g_...) or the name of one of your groups\n  --key K  the verifier key (from qun "
     "audit key)\n  <bundle>  a proof bundle file\n",
     "qun audit verify --key $(qun audit key)"},
    {"age",
     "  -r RECIPIENT  an age1... recipient\n  -i IDENTITY_FILE  the identity to decrypt with\n  -o OUT  "
     "output file (default stdout)\n",
     "qun age keygen -o me.key"},
    {"export",
     "  <group>  a group id (g_...) or the name of one of your groups\n  --to RECIPIENT  age1... recipients, "
     "comma-separated\n  --passphrase  protect it with a passphrase instead (asked twice; or "
     "QUN_PASSPHRASE)\n  -o FILE  the archive to write\n  --self  your own copy during a notice\n",
     "qun export \"book club\" --passphrase -o club.age"},
    {"grant",
     "  <group>  a group id (g_...) or the name of one of your groups\n  --expires 7d  how long the grant "
     "lasts\n  <grant-id>  from qun grant list\n",
     "qun grant export \"book club\" --expires 7d"},
    {"import",
     "  <archive.age>  an archive made by qun export\n  --identity IDENTITY_FILE  the age identity that "
     "opens it\n",
     "qun import club.age --identity me.key"},
    {"device",
     "  --key FILE  where to keep the key (mode 0600)\n  --challenge ID  approve this challenge at once\n",
     "qun device key register"},
    {"approve", "  <challenge-id|qun://challenge/...>  the challenge to sign\n  --key FILE  the device key\n",
     "qun approve c_0123456789abcdef --key device.key"},
    {"totp",
     "  --code C  the 6-digit code from the app (else asked, with no echo)\n  <code>  the 6-digit code from "
     "the app\n",
     "qun totp enrol"},
    {"passkeys", "  <id>  a passkey id from qun passkeys\n", "qun passkeys remove pk_0123456789abcdef"},
    {"risk", "  <r_...|g_...|a_...>  an evaluation, group or approval id\n",
     "qun risk explain a_0123456789abcdef"},
    {"review", "  <aid>  an approval id from qun review list\n  --reason R  why (required to reject)\n",
     "qun review list"},
    {"locks", "  --all  include ended locks\n  <id>  a lock id from qun locks list\n", "qun locks list"},
    {"admin", "  USER  a username\n  DIR  a backup directory\n  --from/--to  the stores to copy between\n",
     "qun admin users al"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: qun [--url URL] [--json] <command> [arguments]\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-68s %s\n", commands[i].usage, commands[i].summary);
    fprintf(f, "\n  %-68s %s\n  %-68s %s\n", "help [command]", "show this help or one command's", "--version",
            "print the version");
    fprintf(f,
            "\nglobal options (anywhere before \"--\"):\n"
            "  --url URL   server (else $QUN_URL, else url = in the config file, else %s)\n"
            "  --json      print the server's JSON answers instead of text\n"
            "\nfiles: $XDG_CONFIG_HOME/qun/{config,token,device_id} (default ~/.config/qun);\n"
            "QUN_TOKEN overrides the token file, QUN_PASSWORD supplies passwords, QUN_TOTP_CODE a code\n"
            "from your authenticator app, QUN_STEP_UP the step-up method to use (totp, device_key, qr);\n"
            "LC_ALL, LC_MESSAGES or LANG starting with zh: messages in Chinese.\n"
            "exit status: 0 ok, 1 the request failed, 2 usage error.\n",
            "http://127.0.0.1:8080");
}

static int help(const char *topic) {
    if (!topic) {
        usage(stdout);
        return QUN_EXIT_OK;
    }
    bool found = false;
    for (int i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, topic) != 0) continue;
        if (!found) printf("usage:\n");
        printf("  qun %-60s %s\n", commands[i].usage, commands[i].summary);
        found = true;
    }
    if (!found) return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "no command %s; see: qun help", topic);
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++) {
        if (strcmp(details[i].name, topic) != 0) continue;
        printf("\narguments:\n%s\nexample:\n  %s\n", details[i].args, details[i].example);
    }
    printf("\nsee docs/cli.md for details.\n");
    return QUN_EXIT_OK;
}

int main(int argc, char **argv) {
    /* The global options may come anywhere before "--"; take them out of argv so each
     * command sees only its own arguments. */
    const char *url_flag = NULL;
    bool json = false, want_help = false, dashdash = false;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n = 0, rc;
    if (!rest) return qun_cli_fail(QUN_EXIT_FAIL, "INTERNAL", "out of memory");
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
                return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "--url needs a value");
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
        rc = qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "unknown command %s; see: qun help", rest[0]);
        free(rest);
        return rc;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(rest);
        return qun_cli_fail(QUN_EXIT_FAIL, "INTERNAL", "cannot initialise libsodium or libcurl");
    }
    qun_cli_t c;
    rc = qun_cli_init(&c, url_flag);
    c.json = json;
    if (rc == QUN_EXIT_OK) rc = cmd->run(&c, n - 1, rest + 1);
    qun_cli_free(&c);
    curl_global_cleanup();
    free(rest);
    fflush(stdout);
    if (ferror(stdout) && rc == QUN_EXIT_OK)
        rc = qun_cli_fail(QUN_EXIT_FAIL, "IO", "cannot write the output");
    return rc;
}
