/* SPDX-License-Identifier: MIT */
/* The CLI's shared layer: configuration and token files, argument parsing, HTTP
 * calls to qund (libcurl, JSON via jansson, idempotent retries, progress bars) and
 * the output conventions every command follows. */
#ifndef QUN_CLI_CLIENT_H
#define QUN_CLI_CLIENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <sodium.h>

/* Exit statuses: 0 success, 1 an API, network or local failure, 2 a usage error. */
#define QUN_EXIT_OK 0
#define QUN_EXIT_FAIL 1
#define QUN_EXIT_USAGE 2

/* The state one invocation of qun carries from main into every command. */
typedef struct {
    const char *url;     /* the server's base URL, without a trailing slash */
    bool json;           /* --json: print the server's JSON answers */
    char *token;         /* bearer token, NULL when not logged in; owned */
    bool token_from_env; /* the token came from QUN_TOKEN, not the token file */
    char dir[1024];      /* the config directory, $XDG_CONFIG_HOME/qun */
    char url_buf[1024];  /* storage behind url when it came from a file */
    void *curl;          /* a reused CURL easy handle; owned */
} qun_cli_t;

/* Resolve the config directory, the server URL (url_flag, QUN_URL, the config file,
 * the default) and the token (QUN_TOKEN, the token file).  Returns an exit status. */
int qun_cli_init(qun_cli_t *c, const char *url_flag);
/* Release what qun_cli_init and later calls acquired. */
void qun_cli_free(qun_cli_t *c);

/* Print "qun: <detail> (<code>)" on stderr and return exit; the one error format.  Only
 * for a detail that is already words ("%s" and text from words.def): every sentence of
 * the client's own goes through qun_failw, so it is in the user's language
 * (tests/api/test_63_cli_chinese.py checks that no other call is left). */
int qun_cli_fail(int exit, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- files in the config directory ---- */

/* Store the token in <dir>/token with mode 0600 (the directory 0700), atomically. */
int qun_cli_token_save(qun_cli_t *c, const char *token);
/* Remove <dir>/token; a missing file is not an error. */
int qun_cli_token_remove(qun_cli_t *c);
/* This machine's device id for logins, created once in <dir>/device_id.  Writes at
 * most size bytes into out. */
int qun_cli_device_id(qun_cli_t *c, char *out, size_t size);
/* The device secret the server gave this machine's device `device` of account username
 * on this server at its first login, from <dir>/device_secrets (mode 0600), into out
 * ("" when none is recorded).  The server recognizes a known device by this secret
 * only, never by its id. */
int qun_cli_device_secret(qun_cli_t *c, const char *username, const char *device, char *out, size_t size);
/* Record the device secret of a login that enrolled a new device. */
int qun_cli_device_secret_save(qun_cli_t *c, const char *username, const char *device, const char *secret);

/* ---- arguments ---- */

/* One option a command accepts: name like "--limit", an optional short alias like
 * "-o", and whether it takes a value ("--limit 5" or "--limit=5"). */
typedef struct {
    const char *name;
    const char *alias;
    bool has_value;
} qun_opt_t;

#define QUN_MAX_OPTS 8
#define QUN_MAX_POS 64

/* The parsed arguments of a command; the strings borrow from argv. */
typedef struct {
    int npos;
    const char *pos[QUN_MAX_POS];
    const char *val[QUN_MAX_OPTS]; /* by index in the option table; "" for flags */
} qun_args_t;

/* Split argv into positionals and the options of opts (terminated by a zero row).
 * "--" ends the options.  Checks min_pos <= positionals <= max_pos (max_pos < 0: no
 * limit) and prints a usage error naming usage otherwise.  Returns an exit status. */
int qun_args_parse(int argc, char **argv, const qun_opt_t *opts, int min_pos, int max_pos, const char *usage,
                   qun_args_t *a);
/* Parse a non-negative decimal integer of at most 18 digits. */
bool qun_parse_uint(const char *s, int64_t *out);

/* ---- HTTP ---- */

/* One HTTP exchange with qund.  Paths are relative to the server URL. */
typedef struct {
    const char *method;
    const char *path;
    json_t *body; /* JSON request body, borrowed; NULL for none */
    FILE *upload; /* raw request body streamed from here, instead of body */
    int64_t upload_size;
    const char *content_type;            /* of the raw body */
    FILE *sink;                          /* a 2xx answer's body is written here, not kept */
    crypto_hash_sha256_state *sink_hash; /* updated with every byte written to sink */
    const char *progress;                /* label of a progress bar on stderr (tty only); NULL none */
    bool no_auth;                        /* send no bearer token */
    bool quiet;                          /* do not print error answers (the caller copes) */
} qun_call_t;

/* What came back. */
typedef struct {
    long status;
    json_t *json; /* the parsed JSON answer, or NULL; owned */
    char *raw;    /* the body unless it went to a sink; owned, NUL-terminated */
    size_t raw_len;
    int64_t sink_bytes; /* bytes written to the sink */
    char filename[256]; /* from Content-Disposition, "" when absent */
} qun_resp_t;

/* Perform call.  POSTs carry a fresh random Idempotency-Key; a connection failure or a
 * 503 is retried once with the same key, so the server runs the request at most once.
 * Any HTTP answer is returned in resp (free it with qun_resp_free), with exit status
 * 0 for 2xx; non-2xx answers and transport failures are printed in the one error
 * format and give exit status 1. */
int qun_cli_call(qun_cli_t *c, const qun_call_t *call, qun_resp_t *resp);
void qun_resp_free(qun_resp_t *resp);
/* Print the error answer in resp (of a call made with quiet) in the one error format,
 * with the requirements it lists.  Returns QUN_EXIT_FAIL. */
int qun_cli_report(qun_resp_t *resp);

/* The common case: a JSON request whose body is stolen (may be NULL), answer in *out
 * (owned by the caller; NULL when the answer has no body).  Returns an exit status. */
int qun_cli_json(qun_cli_t *c, const char *method, const char *path, json_t *body, json_t **out);

/* GET a paginated list from path (which may hold a query) starting after the cursor after
 * (NULL: from the start) and following next_cursor until the end; *out is
 * {"items": [...all...], "next_cursor": null}. */
int qun_cli_get_all(qun_cli_t *c, const char *path, const char *after, json_t **out);

/* Format a path: every %s is replaced by its argument percent-encoded as one path
 * segment or query value, %d by an int64_t.  Fails (usage) when it does not fit.
 * In a path that starts "/v1/groups/%s" the group may be given by name, and in
 * "/v1/groups/%s/members/%s" the member by username: both are resolved to ids here
 * (qun_group_ref, qun_member_ref), so every command accepts names. */
int qun_pathf(char *out, size_t size, const char *fmt, ...);

/* ---- names (names.c) ---- */

/* The id of the group arg names: an id ("g_...") as it is, else the one of the caller's
 * groups with that name (ASCII case ignored); none or several is an error that lists
 * them.  Writes at most size bytes into out.  Returns an exit status. */
int qun_group_ref(qun_cli_t *c, const char *arg, char *out, size_t size);
/* The openid of the member of group gid that arg names: an openid ("u_...") as it is,
 * else the member with that username, else the one with that display name. */
int qun_member_ref(qun_cli_t *c, const char *gid, const char *arg, char *out, size_t size);
/* Names of group gid's members by openid (the display name, else the username), owned
 * by the caller, so that messages read like a chat.  Best effort (an empty object when
 * the list cannot be read: after a dissolution the owner may read messages but not list
 * members); a message's own author_display_name comes first. */
json_t *qun_member_names(qun_cli_t *c, const char *gid);
/* The columns the UTF-8 text s takes on a terminal (CJK and fullwidth count two). */
size_t qun_text_width(const char *s);
/* Print s on stdout padded with spaces to width columns. */
void qun_print_cell(const char *s, size_t width);
/* Print s on stdout padded to width columns and one space, as printf's "%-*s " does
 * for ASCII: a table's column. */
void qun_print_col(const char *s, size_t width);
/* Print s on stdout right-aligned in width columns. */
void qun_print_cell_right(const char *s, size_t width);
/* The width of a table column: at least min, and as wide as the words of the header key
 * (a Chinese header may be wider than the English one). */
size_t qun_col_width(const char *key, size_t min);
/* One line of a table whose columns are left-aligned: cells[i] padded to widths[i]
 * columns and a space (qun_print_col), the last cell as it is, then a newline. */
void qun_print_row(const char *const cells[], const size_t widths[], size_t n);
/* A table's header line: first widths[i] is raised to the width of the words of keys[i]
 * (qun_col_width), then those words are printed as a row. */
void qun_print_header(const char *const keys[], size_t widths[], size_t n);
/* A size in bytes as "512 B", "1.5 KiB", "20 MiB". */
const char *qun_fmt_size(int64_t bytes, char out[32]);

/* ---- output ---- */

/* Print j as indented JSON on stdout, followed by a newline. */
void qun_print_json(json_t *j);
/* A string member of o, or fallback when absent or not a string. */
const char *qun_jstr_or(json_t *o, const char *key, const char *fallback);
/* An integer member of o, or 0. */
int64_t qun_jint(json_t *o, const char *key);
/* Format a Unix time in local time ("2024-05-01 13:05") into out[32]; "-" for 0. */
const char *qun_fmt_time(int64_t t, char out[32]);

/* Read a password: flag, else QUN_PASSWORD, else a no-echo prompt on the terminal
 * (twice when confirm).  Writes at most size bytes.  Returns an exit status. */
int qun_read_password(const char *flag, bool confirm, char *out, size_t size);

/* Read an archive passphrase: QUN_PASSPHRASE, else asked twice with no echo on the
 * terminal.  Writes at most size bytes.  Returns an exit status. */
int qun_read_passphrase(char *out, size_t size);

/* Print prompt on stderr and read one line from stdin, without its line end; "" at end
 * of input.  Returns a malloc'd string the caller frees (NULL only without memory). */
char *qun_prompt_line(const char *prompt);

/* ---- words (words.c, words.def) ---- */

/* Whether the locale (LC_ALL, else LC_MESSAGES, else LANG) asks for Chinese. */
bool qun_lang_zh(void);
/* The words of key in the user's language; fallback when the table has no such key. */
const char *qun_w_or(const char *key, const char *fallback);
/* The words of key, or the key itself (a gap shows). */
const char *qun_w(const char *key);
/* The words of key with each %s replaced by the next string argument, into out;
 * returns out. */
const char *qun_wf(char *out, size_t size, const char *key, ...);
/* Print the words of key, each %s replaced by the next string argument, and a newline:
 * qun_say on stdout (what a command did), qun_note on stderr after "qun: " (a remark
 * beside the answer), qun_hint on stderr after "qun:   " (a line under an error). */
void qun_say(const char *key, ...);
void qun_note(const char *key, ...);
void qun_hint(const char *key, ...);
/* qun_wf in English whatever the locale, for text that machine-readable output carries
 * (--json stays the same in every language). */
const char *qun_wf_en(char *out, size_t size, const char *key, ...);
/* qun_wf (english false) or qun_wf_en (true) with the arguments in ap. */
const char *qun_vwf(char *out, size_t size, bool english, const char *key, va_list ap);
/* The one error format with the words of key, each %s replaced by the next string
 * argument: "qun: <words> (<code>)" on stderr.  Returns exit. */
int qun_failw(int exit, const char *code, const char *key, ...);
/* What errno value e means, in the user's language for the errors people meet with their
 * own files (missing, not allowed, full disk ...), else strerror's English.  Borrowed. */
const char *qun_errno_words(int e);
/* A library failure's detail for the screen: in English detail itself (the library's own
 * sentence), in Chinese the words of its code ("error.<code>", every code has a row),
 * falling back to detail.  Borrowed; valid until the next call. */
const char *qun_detail_words(const char *code, const char *detail);
/* The columns a block of "label: value" lines needs for its labels: the widest label of
 * keys (in the user's language) plus one space, at least min. */
size_t qun_label_width(const char *const keys[], size_t n, size_t min);
/* One "  label value" line of such a block on stdout: the words of key padded to width
 * columns (so CJK labels align too), then value. */
void qun_field(size_t width, const char *key, const char *value);
/* v in decimal into out[24], for a %s of the words; returns out. */
const char *qun_fmt_int(int64_t v, char out[24]);

/* ---- proofs (proofs.c): answering a 428 ---- */

/* What a command offers towards the proofs a protected action may ask for. */
typedef struct {
    const char *password;  /* --password, else QUN_PASSWORD, else asked (terminal, no echo) */
    const char *totp_code; /* --totp-code, else QUN_TOTP_CODE, else asked */
    const char *key_file;  /* --key: the device key file (default <config>/device_key) */
    bool eager_password;   /* send the password with the first request */
    bool step_up_field;    /* the route takes a second challenge as step_up_challenge_id */
} qun_proofs_t;

/* Send body (stolen) to path with method; while the answer is a 428, collect what its
 * requirements name (every method has a CLI form, see proofs.c) and send it again.
 * The answer goes to *out (owned; NULL without a body).  Returns an exit status. */
int qun_send_proved(qun_cli_t *c, const char *method, const char *path, json_t *body, const qun_proofs_t *o,
                    json_t **out);
/* Sign challenge id (with nonce) with the device key file at key_path and send the
 * approval; quiet prints nothing on success.  Returns an exit status. */
int qun_challenge_sign(qun_cli_t *c, const char *id, const char *nonce, const char *key_path, bool quiet);
/* Print text as a QR code on stdout (UTF-8 half blocks). */
void qun_print_qr(const char *text);

/* ---- commands (cmd_*.c); each returns an exit status ---- */
/* A dissolution notice (a system message whose text is JSON, docs/events.md) as one
 * readable sentence into out, naming people by names (openid -> name, may be NULL);
 * false when text is not one. */
bool qun_notice_line(const char *text, json_t *names, char *out, size_t size);
/* "the dissolution was <stage>" into out, in words: by (may be NULL) who did it, why ("" or
 * the words of cli.notice.reason) what they said.  Returns out. */
const char *qun_dissolution_was(char *out, size_t size, const char *stage, const char *by, const char *why);
/* Ask for a password on the terminal (echo off) with prompt.  Returns an exit status. */
int qun_prompt_password(const char *prompt, char *out, size_t size);
int qun_cmd_password(qun_cli_t *c, int argc, char **argv);
int qun_cmd_register(qun_cli_t *c, int argc, char **argv);
int qun_cmd_login(qun_cli_t *c, int argc, char **argv);
int qun_cmd_logout(qun_cli_t *c, int argc, char **argv);
int qun_cmd_whoami(qun_cli_t *c, int argc, char **argv);
int qun_cmd_display_name(qun_cli_t *c, int argc, char **argv);
int qun_cmd_sessions(qun_cli_t *c, int argc, char **argv);
int qun_cmd_group(qun_cli_t *c, int argc, char **argv);
int qun_cmd_transfer(qun_cli_t *c, int argc, char **argv);
int qun_cmd_leave(qun_cli_t *c, int argc, char **argv);
int qun_cmd_invite(qun_cli_t *c, int argc, char **argv);
int qun_cmd_invitations(qun_cli_t *c, int argc, char **argv);
int qun_cmd_invitation(qun_cli_t *c, int argc, char **argv);
int qun_cmd_post(qun_cli_t *c, int argc, char **argv);
int qun_cmd_history(qun_cli_t *c, int argc, char **argv);
int qun_cmd_recall(qun_cli_t *c, int argc, char **argv);
int qun_cmd_events(qun_cli_t *c, int argc, char **argv);
int qun_cmd_upload(qun_cli_t *c, int argc, char **argv);
int qun_cmd_download(qun_cli_t *c, int argc, char **argv);
int qun_cmd_pay(qun_cli_t *c, int argc, char **argv);
int qun_cmd_claim(qun_cli_t *c, int argc, char **argv);
int qun_cmd_bill(qun_cli_t *c, int argc, char **argv);
int qun_cmd_dissolve(qun_cli_t *c, int argc, char **argv);
int qun_cmd_status(qun_cli_t *c, int argc, char **argv);
int qun_cmd_cancel(qun_cli_t *c, int argc, char **argv);
int qun_cmd_restore(qun_cli_t *c, int argc, char **argv);
int qun_cmd_approvals(qun_cli_t *c, int argc, char **argv);
int qun_cmd_hold(qun_cli_t *c, int argc, char **argv);
int qun_cmd_org(qun_cli_t *c, int argc, char **argv);
int qun_cmd_audit(qun_cli_t *c, int argc, char **argv);
int qun_cmd_files(qun_cli_t *c, int argc, char **argv);
int qun_cmd_file(qun_cli_t *c, int argc, char **argv);
int qun_cmd_payments(qun_cli_t *c, int argc, char **argv);

#endif
