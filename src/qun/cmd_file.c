/* SPDX-License-Identifier: MIT */
/* File commands: upload streams a file as the raw request body; download streams the
 * answer into a temporary file, checks that the SHA-256 of what reached the disk is
 * the digest asked for, and only then gives it its name. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"

static const char *guess_type(const char *name) {
    static const struct {
        const char *ext, *type;
    } types[] = {{".txt", "text/plain"},      {".md", "text/markdown"},      {".csv", "text/csv"},
                 {".html", "text/html"},      {".json", "application/json"}, {".pdf", "application/pdf"},
                 {".png", "image/png"},       {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},
                 {".gif", "image/gif"},       {".webp", "image/webp"},       {".svg", "image/svg+xml"},
                 {".mp3", "audio/mpeg"},      {".mp4", "video/mp4"},         {".zip", "application/zip"},
                 {".gz", "application/gzip"}, {".tar", "application/x-tar"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* The hex SHA-256 of everything f holds from its current position to the end. */
static int hash_stream(FILE *f, char hex[65]) {
    crypto_hash_sha256_state st;
    unsigned char buf[65536], sum[32];
    size_t n;
    crypto_hash_sha256_init(&st);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    if (ferror(f)) return QUN_EXIT_FAIL;
    crypto_hash_sha256_final(&st, sum);
    sodium_bin2hex(hex, 65, sum, sizeof sum);
    return QUN_EXIT_OK;
}

int qun_cmd_upload(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    char path[1024], local[65], namebuf[1024], n[24];
    struct stat st;
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, "upload <group> <path>", &a);
    if (rc != QUN_EXIT_OK) return rc;
    FILE *f = fopen(a.pos[1], "rb");
    if (!f) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.open", a.pos[1], qun_errno_words(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.not_regular", a.pos[1]);
        goto out;
    }
    /* Hashing first lets us check that the server stored exactly these bytes. */
    if (hash_stream(f, local) != QUN_EXIT_OK || fseek(f, 0, SEEK_SET) != 0) {
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.read", a.pos[1], qun_errno_words(errno));
        goto out;
    }
    snprintf(namebuf, sizeof namebuf, "%s", a.pos[1]);
    const char *name = basename(namebuf);
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/files?name=%s", a.pos[0], name);
    if (rc != QUN_EXIT_OK) goto out;
    qun_call_t call = {.method = "POST",
                       .path = path,
                       .upload = f,
                       .upload_size = st.st_size,
                       .content_type = guess_type(name),
                       .progress = qun_w("cli.progress.upload")};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    out = resp.json;
    resp.json = NULL;
    qun_resp_free(&resp);
    if (rc != QUN_EXIT_OK) goto out;
    const char *digest = qun_jstr_or(out, "digest", "");
    if (strcmp(digest, local) != 0) {
        rc = qun_failw(QUN_EXIT_FAIL, "DIGEST_MISMATCH", "cli.err.upload_digest", digest, local);
        goto out;
    }
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.uploaded", qun_jstr_or(out, "name", name), qun_fmt_int(qun_jint(out, "size"), n),
                qun_jstr_or(out, "content_type", "?"), a.pos[0], digest);
out:
    fclose(f);
    json_decref(out);
    return rc;
}

/* The server's file name when it is safe to create in the current directory. */
static bool safe_name(const char *s) {
    return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') && strlen(s) < 256;
}

/* Give the verified temporary file its final name; without -o an existing file is
 * never replaced, since the name came from the server.  exists is the words' key of the
 * FILE_EXISTS error, which says what to do instead. */
static int place(const char *tmp, const char *final, bool overwrite, const char *exists) {
    if (overwrite) {
        if (rename(tmp, final) == 0) return QUN_EXIT_OK;
    } else if (link(tmp, final) == 0) {
        unlink(tmp);
        return QUN_EXIT_OK;
    } else if (errno == EEXIST) {
        return qun_failw(QUN_EXIT_FAIL, "FILE_EXISTS", exists, final);
    } else if (access(final, F_OK) != 0 && rename(tmp, final) == 0) {
        return QUN_EXIT_OK; /* a file system without hard links */
    }
    return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", final, qun_errno_words(errno));
}

/* Download the file of group gid with digest into output ("-": stdout; NULL: the name the
 * server gives, which never replaces a file); overwrite lets output replace a file;
 * exists is the words of the error when a file is in the way (place). */
static int fetch(qun_cli_t *c, const char *gid, const char *digest, const char *output, bool overwrite,
                 const char *exists) {
    char path[512], tmp[1100], dir[1024], got[65], want[65], n[24];
    crypto_hash_sha256_state st;
    FILE *sink = NULL;
    bool to_stdout = false, tmp_made = false;
    int rc;
    snprintf(want, sizeof want, "%s", digest);
    for (char *p = want; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/files/%s", gid, want);
    if (rc != QUN_EXIT_OK) return rc;
    if (output && strcmp(output, "-") == 0) {
        to_stdout = true;
        sink = stdout;
    } else {
        /* Stream into a temporary file next to the target, so a failed or corrupt
         * download never appears under the final name. */
        snprintf(dir, sizeof dir, "%s", output ? output : "./x");
        snprintf(tmp, sizeof tmp, "%s/.qun-download-XXXXXX", dirname(dir));
        int fd = mkstemp(tmp);
        if (fd < 0) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create_in", dir, qun_errno_words(errno));
        tmp_made = true;
        mode_t mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0666 & ~mask) != 0 || !(sink = fdopen(fd, "w+b"))) {
            close(fd);
            rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write", tmp, qun_errno_words(errno));
            goto out;
        }
    }
    crypto_hash_sha256_init(&st);
    qun_call_t call = {.method = "GET",
                       .path = path,
                       .sink = sink,
                       .sink_hash = &st,
                       .progress = qun_w("cli.progress.download")};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    int64_t bytes = resp.sink_bytes;
    char server_name[256];
    snprintf(server_name, sizeof server_name, "%s", resp.filename);
    qun_resp_free(&resp);
    if (rc != QUN_EXIT_OK) goto out;
    if (to_stdout) {
        unsigned char sum[32];
        crypto_hash_sha256_final(&st, sum);
        sodium_bin2hex(got, sizeof got, sum, sizeof sum);
    } else {
        /* Verify what is on disk, not what passed through memory. */
        bool ok = fflush(sink) == 0 && fsync(fileno(sink)) == 0 && fseek(sink, 0, SEEK_SET) == 0 &&
                  hash_stream(sink, got) == QUN_EXIT_OK;
        if (!ok) {
            rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.read_back", tmp, qun_errno_words(errno));
            goto out;
        }
    }
    if (strcmp(got, want) != 0) {
        rc = qun_failw(QUN_EXIT_FAIL, "DIGEST_MISMATCH", "cli.err.download_digest", got, want);
        goto out;
    }
    if (to_stdout) {
        qun_note("cli.download_checked", qun_fmt_int(bytes, n));
        goto out;
    }
    fclose(sink);
    sink = NULL;
    const char *final = output ? output : (safe_name(server_name) ? server_name : want);
    rc = place(tmp, final, overwrite, exists);
    if (rc != QUN_EXIT_OK) goto out;
    tmp_made = false;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:b}", "path", final, "digest", got, "size", (json_int_t)bytes,
                              "verified", 1);
        qun_print_json(o);
        json_decref(o);
    } else {
        qun_say("cli.file_saved", final, qun_fmt_int(bytes, n));
    }
out:
    if (sink && !to_stdout) fclose(sink);
    if (tmp_made) unlink(tmp);
    return rc;
}

int qun_cmd_download(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--output", "-o", true}, {0}};
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 2, 2, "download <group> <digest> [-o FILE]", &a);
    if (rc != QUN_EXIT_OK) return rc;
    return fetch(c, a.pos[0], a.pos[1], a.val[0], a.val[0] != NULL, "cli.err.exists_download");
}

static void print_files(json_t *items) {
    size_t i, wname = qun_col_width("cli.col.name", 4), wtype = qun_col_width("cli.col.type", 4),
              wwho = qun_col_width("cli.col.uploaded_by", 11), wsize = qun_col_width("cli.col.size", 10),
              wwhen = qun_col_width("cli.col.when", 16);
    json_t *f;
    char t[32], sz[32];
    json_array_foreach(items, i, f) {
        const char *who = qun_jstr_or(f, "uploader_display_name", qun_jstr_or(f, "uploader", "?"));
        size_t w = qun_text_width(qun_jstr_or(f, "name", ""));
        wname = w > wname ? w : wname;
        w = qun_text_width(qun_jstr_or(f, "content_type", ""));
        wtype = w > wtype ? w : wtype;
        w = qun_text_width(who);
        wwho = w > wwho ? w : wwho;
    }
    qun_print_cell(qun_w("cli.col.name"), wname + 2);
    qun_print_cell_right(qun_w("cli.col.size"), wsize);
    fputs("  ", stdout);
    qun_print_cell(qun_w("cli.col.type"), wtype + 2);
    qun_print_cell(qun_w("cli.col.uploaded_by"), wwho + 2);
    qun_print_cell(qun_w("cli.col.when"), wwhen + 2);
    printf("%s\n", qun_w("cli.col.digest"));
    json_array_foreach(items, i, f) {
        qun_print_cell(qun_jstr_or(f, "name", ""), wname + 2);
        qun_print_cell_right(qun_fmt_size(qun_jint(f, "size"), sz), wsize);
        fputs("  ", stdout);
        qun_print_cell(qun_jstr_or(f, "content_type", "?"), wtype + 2);
        qun_print_cell(qun_jstr_or(f, "uploader_display_name", qun_jstr_or(f, "uploader", "?")), wwho + 2);
        qun_print_cell(qun_fmt_time(qun_jint(f, "created_at"), t), wwhen + 2);
        printf("%.12s\n", qun_jstr_or(f, "digest", "?"));
    }
}

int qun_cmd_files(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "files <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/files", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *items = json_object_get(out, "items");
    if (c->json)
        qun_print_json(out);
    else if (json_array_size(items) == 0)
        qun_say("cli.files_none", a.pos[0], a.pos[0]);
    else
        print_files(items);
    json_decref(out);
    return QUN_EXIT_OK;
}

/* The group's file that what names: by exact name, else by a prefix of its digest.
 * Several matches are an error that lists them. */
static int find_file(json_t *items, const char *what, json_t **hit) {
    size_t i, n = 0, len = strlen(what);
    json_t *f;
    char t[32], sz[32];
    *hit = NULL;
    json_array_foreach(items, i, f) if (strcmp(qun_jstr_or(f, "name", ""), what) == 0) {
        *hit = f;
        n++;
    }
    bool by_name = n > 0;
    if (!by_name)
        json_array_foreach(items, i,
                           f) if (len > 0 && strncasecmp(qun_jstr_or(f, "digest", ""), what, len) == 0) {
            *hit = f;
            n++;
        }
    if (n == 1) return QUN_EXIT_OK;
    if (n == 0) return qun_failw(QUN_EXIT_FAIL, "FILE_NOT_FOUND", "cli.err.file_not_found", what);
    char line[300], count[24];
    fprintf(stderr, "%s\n",
            qun_wf(line, sizeof line, "cli.files_match", qun_fmt_int((int64_t)n, count), what));
    json_array_foreach(items, i, f) {
        bool match = by_name ? strcmp(qun_jstr_or(f, "name", ""), what) == 0
                             : strncasecmp(qun_jstr_or(f, "digest", ""), what, len) == 0;
        if (match)
            fprintf(stderr, "  %s  %s  %s  %s\n", qun_jstr_or(f, "digest", "?"), qun_jstr_or(f, "name", ""),
                    qun_fmt_size(qun_jint(f, "size"), sz), qun_fmt_time(qun_jint(f, "created_at"), t));
    }
    return qun_failw(QUN_EXIT_FAIL, "FILE_AMBIGUOUS", "cli.err.file_ambiguous", what);
}

int qun_cmd_file(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--output", "-o", true}, {"--force", "-f", false}, {0}};
    static const char usage[] = "file get <group> <name|digest-prefix> [-o PATH] [--force]";
    qun_args_t a;
    json_t *out, *hit;
    char path[512], gid[128], name[256];
    if (argc < 1 || strcmp(argv[0], "get") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage_see", usage, "file");
    int rc = qun_args_parse(argc - 1, argv + 1, opts, 2, 2, usage, &a);
    if (rc == QUN_EXIT_OK) rc = qun_group_ref(c, a.pos[0], gid, sizeof gid);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/files", gid);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    rc = find_file(json_object_get(out, "items"), a.pos[1], &hit);
    if (rc == QUN_EXIT_OK) {
        const char *own = qun_jstr_or(hit, "name", "");
        snprintf(name, sizeof name, "%s", safe_name(own) ? own : qun_jstr_or(hit, "digest", "download"));
        rc = fetch(c, gid, qun_jstr_or(hit, "digest", ""), a.val[0] ? a.val[0] : name, a.val[1] != NULL,
                   "cli.err.exists_file_get");
    }
    json_decref(out);
    return rc;
}
