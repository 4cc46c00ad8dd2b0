/* SPDX-License-Identifier: MIT */
/* The gate: it stands between each connection's socket and evhttp, so that evhttp
 * only ever parses requests whose framing is unambiguous.
 *
 * evhttp 2.1 is lenient where leniency is dangerous: it takes the first of two
 * Content-Length fields, reads "+5" as 5, ignores a Transfer-Encoding it does not
 * recognize and falls back to Content-Length, reads chunk sizes with strtoll ("0x5",
 * " +5"), leaves the body of a HEAD or unknown-method request on the wire to be
 * parsed as the next request, and answers its own parse errors with HTML.  A proxy
 * in front that reads any of these differently smuggles a second request through.
 *
 * The gate follows the message boundaries of RFC 9112 itself (the head, then a
 * Content-Length body or chunks, then the next head) and checks each head before
 * evhttp sees it: the request line, every field line, and the framing rules of
 * §6.1-§6.3.  A chunked request is held back whole (evhttp would buffer it whole
 * anyway) until its last chunk and trailer section are read: chunk-size lines are
 * checked and passed on in canonical form, and trailers are dropped (§7.1.2 allows
 * it).  When something is wrong, no byte of the request reaches evhttp.  Instead the
 * gate hands evhttp a request of its own that carries the refusal in the reserved
 * field Qun-Gate-Refusal, and drops everything after it.  The router answers it like any other
 * error (problem+json, with Connection: close) and in order: evhttp answers the
 * requests of a connection one after the other.  Clients cannot send the reserved
 * field: the gate refuses a head that has it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http.h"
#include "qun/util.h"

#define GATE_FIELD "Qun-Gate-Refusal"
#define FIELDS_MAX 100      /* header fields per request (browsers send about 20) */
#define CHUNK_LINE_MAX 1024 /* a chunk-size line with its extensions */

/* Why the gate refused a request; the value travels in GATE_FIELD. */
enum {
    W_LINE,
    W_SHORT,
    W_VERSION,
    W_TARGET,
    W_CONNECT,
    W_CRLF,
    W_FIELD,
    W_FOLD,
    W_RESERVED,
    W_HOST,
    W_HEAD_LARGE,
    W_FIELDS_MANY,
    W_CL_DUP,
    W_CL_BAD,
    W_TE_CL,
    W_TE_BAD,
    W_TE_OLD,
    W_BODYLESS,
    W_EXPECT,
    W_BODY_LARGE,
    W_CHUNK_LINE,
    W_CHUNK_END,
    W_TRAILER,
    W_COUNT
};

static const struct {
    qun_rc rc;
    const char *detail;
} reasons[W_COUNT] = {
    [W_LINE] = {QUN_REQUEST_INVALID, "the request line must be: method, space, target, space, HTTP version"},
    [W_SHORT] = {QUN_REQUEST_INVALID, "a method of one or two letters is not served"},
    [W_VERSION] = {QUN_REQUEST_INVALID, "only HTTP/1.0 and HTTP/1.1 requests are served (HTTP/0.9 is not)"},
    [W_TARGET] = {QUN_REQUEST_INVALID, "the request target must be an absolute path (or * for OPTIONS)"},
    [W_CONNECT] = {QUN_REQUEST_INVALID, "CONNECT is not served: this server is not a proxy"},
    [W_CRLF] = {QUN_REQUEST_INVALID, "the lines of a request head must end with CRLF"},
    [W_FIELD] = {QUN_REQUEST_INVALID,
                 "a header field must be a token, a colon and a value without NUL or CR"},
    [W_FOLD] = {QUN_REQUEST_INVALID, "obsolete line folding is not accepted in header fields"},
    [W_RESERVED] = {QUN_REQUEST_INVALID, "the header field " GATE_FIELD " is reserved"},
    [W_HOST] = {QUN_REQUEST_INVALID, "a request has at most one Host field"},
    [W_HEAD_LARGE] = {QUN_HEADERS_TOO_LARGE, "the request line and header fields are limited to 65536 bytes"},
    [W_FIELDS_MANY] = {QUN_HEADERS_TOO_LARGE, "a request has at most 100 header fields"},
    [W_CL_DUP] = {QUN_FRAMING_INVALID, "a request has at most one Content-Length field"},
    [W_CL_BAD] = {QUN_FRAMING_INVALID, "Content-Length must be one decimal number"},
    [W_TE_CL] = {QUN_FRAMING_INVALID, "a request must not have both Content-Length and Transfer-Encoding"},
    [W_TE_BAD] = {QUN_FRAMING_INVALID, "the only Transfer-Encoding accepted is a single chunked"},
    [W_TE_OLD] = {QUN_FRAMING_INVALID, "an HTTP/1.0 request must not have Transfer-Encoding"},
    [W_BODYLESS] = {QUN_FRAMING_INVALID, "this method takes no body, but the request announces one"},
    [W_EXPECT] = {QUN_EXPECTATION_FAILED, "the only expectation understood is Expect: 100-continue"},
    [W_BODY_LARGE] = {QUN_BODY_TOO_LARGE, "the body is larger than the upload limit"},
    [W_CHUNK_LINE] = {QUN_FRAMING_INVALID,
                      "a chunk size must be hexadecimal digits, with optional extensions, and CRLF"},
    [W_CHUNK_END] = {QUN_FRAMING_INVALID, "chunk data must end with CRLF"},
    [W_TRAILER] = {QUN_FRAMING_INVALID, "a trailer field is malformed"},
};

typedef enum {
    S_HEAD,     /* reading a request head */
    S_BODY,     /* passing a Content-Length body: left bytes to go */
    S_SIZE,     /* reading a chunk-size line */
    S_DATA,     /* passing chunk data: left bytes to go */
    S_DATA_END, /* reading the CRLF after chunk data */
    S_TRAILER,  /* reading the trailer section after the last chunk */
    S_SHUT,     /* refused: everything else is dropped */
} state_t;

typedef struct {
    state_t st;
    bool busy; /* the gate is changing evhttp's input itself */
    uint64_t left;
    uint64_t total;          /* a chunked body's size so far */
    size_t seen;             /* S_HEAD, S_TRAILER: bytes already searched for the section's end */
    struct evbuffer *hold;   /* bytes not yet looked at */
    struct evbuffer *staged; /* a chunked request checked so far, passed on once whole */
} gate_t;

/* What a head says about the message; methods evhttp reads no body for are "bodyless". */
typedef struct {
    bool bodyless;
    bool http10;
    bool chunked;
    int cl_count;
    uint64_t cl;
} head_t;

static bool is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field value byte as far as framing goes: anything but NUL, CR and LF, which RFC 9110
 * §5.5 has a recipient reject (evhttp's strings would end at a NUL, hiding the rest
 * of the value from us but not from a proxy).  Other controls reach the handlers,
 * which refuse them where a value matters. */
static bool is_vbyte(unsigned char c) {
    return c != '\0' && c != '\r' && c != '\n';
}

/* The length of the section (a head or a trailer section) at the start of src up to
 * and including its empty line, or -1 while it is incomplete.  *seen keeps the
 * start of the first line not yet searched, so slow input is searched once. */
static ev_ssize_t section_end(struct evbuffer *src, size_t *seen) {
    struct evbuffer_ptr p;
    if (evbuffer_ptr_set(src, &p, *seen, EVBUFFER_PTR_SET) != 0) return -1;
    for (;;) {
        struct evbuffer_ptr lf = evbuffer_search(src, "\n", 1, &p);
        if (lf.pos < 0) return -1;
        size_t len = (size_t)(lf.pos - p.pos);
        char c = 0;
        if (len == 1) evbuffer_copyout_from(src, &p, &c, 1);
        if (len == 0 || (len == 1 && c == '\r')) return lf.pos + 1;
        *seen = (size_t)lf.pos + 1;
        if (evbuffer_ptr_set(src, &p, *seen, EVBUFFER_PTR_SET) != 0) return -1;
    }
}

/* Split the line at *pos of h[0..n) (it ends with CRLF: the caller found the section's
 * end); returns its length without CRLF, or -1 when it ends with a bare LF. */
static ev_ssize_t next_line(const char *h, size_t n, size_t *pos, const char **line) {
    const char *s = h + *pos, *lf = memchr(s, '\n', n - *pos);
    *line = s;
    *pos = (size_t)(lf - h) + 1;
    if (lf == s || lf[-1] != '\r') return -1;
    return lf - 1 - s;
}

/* Check one field line; its name and trimmed value go to the out-parameters. */
static bool field_ok(const char *s, size_t len, size_t *name_len, const char **val, size_t *val_len) {
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i == len || s[i] != ':') return false;
    *name_len = i++;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    for (size_t k = i; k < end; k++)
        if (!is_vbyte((unsigned char)s[k])) return false;
    *val = s + i;
    *val_len = end - i;
    return true;
}

static bool name_is(const char *s, size_t n, const char *name) {
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

static bool value_is(const char *v, size_t n, const char *want) {
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* The request line: method SP target SP HTTP-version (RFC 9112 §3). */
static int parse_request_line(const char *s, size_t len, head_t *hd) {
    static const char *with_body[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    const char *sp1 = memchr(s, ' ', len);
    if (!sp1 || sp1 == s) return W_LINE;
    for (const char *c = s; c < sp1; c++)
        if (!is_tchar((unsigned char)*c)) return W_LINE;
    size_t mlen = (size_t)(sp1 - s);
    const char *t = sp1 + 1, *end = s + len;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2) return W_VERSION;
    if (sp2 == t) return W_LINE;
    for (const char *c = t; c < sp2; c++)
        if (*c < 0x21 || *c > 0x7e) return W_TARGET;
    const char *v = sp2 + 1;
    if (end - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9') return W_VERSION;
    hd->http10 = v[7] == '0';
    if (len < 14) return W_SHORT; /* evhttp refuses, in HTML, lines shorter than "GET / HTTP/1.0" */
    if (mlen == 7 && memcmp(s, "CONNECT", 7) == 0) return W_CONNECT;
    bool star = sp2 - t == 1 && *t == '*';
    if (star ? !(mlen == 7 && memcmp(s, "OPTIONS", 7) == 0) : (*t != '/' || (sp2 - t > 1 && t[1] == '/')))
        return W_TARGET; /* "//x" would read as an authority to evhttp */
    hd->bodyless = true;
    for (size_t k = 0; k < sizeof with_body / sizeof with_body[0]; k++)
        if (mlen == strlen(with_body[k]) && memcmp(s, with_body[k], mlen) == 0) hd->bodyless = false;
    return -1;
}

/* Check a whole head h[0..n) (which ends with its empty line); -1 when it is sound. */
static int parse_head(const char *h, size_t n, head_t *hd) {
    size_t pos = 0, nfields = 0;
    int hosts = 0, te_count = 0;
    bool te_ok = true;
    const char *line;
    ev_ssize_t len = next_line(h, n, &pos, &line);
    if (len < 0) return W_CRLF;
    int why = parse_request_line(line, (size_t)len, hd);
    if (why >= 0) return why;
    while ((len = next_line(h, n, &pos, &line)) != 0) {
        size_t nl, vl;
        const char *v;
        if (len < 0) return W_CRLF;
        if (line[0] == ' ' || line[0] == '\t') return W_FOLD;
        if (!field_ok(line, (size_t)len, &nl, &v, &vl)) return W_FIELD;
        if (++nfields > FIELDS_MAX) return W_FIELDS_MANY;
        if (name_is(line, nl, "Content-Length")) {
            if (++hd->cl_count > 1) return W_CL_DUP;
            if (vl == 0 || vl > 18) return W_CL_BAD;
            hd->cl = 0;
            for (size_t k = 0; k < vl; k++) {
                if (v[k] < '0' || v[k] > '9') return W_CL_BAD;
                hd->cl = hd->cl * 10 + (uint64_t)(v[k] - '0');
            }
        } else if (name_is(line, nl, "Transfer-Encoding")) {
            te_count++;
            te_ok = te_ok && value_is(v, vl, "chunked");
        } else if (name_is(line, nl, "Expect")) {
            if (!hd->http10 && !value_is(v, vl, "100-continue")) return W_EXPECT;
        } else if (name_is(line, nl, "Host")) {
            if (++hosts > 1) return W_HOST;
        } else if (name_is(line, nl, GATE_FIELD)) {
            return W_RESERVED;
        }
    }
    if (te_count > 0) { /* RFC 9112 §6.1 and §6.3 items 3 and 4 */
        if (hd->http10) return W_TE_OLD;
        if (hd->cl_count) return W_TE_CL;
        if (te_count > 1 || !te_ok) return W_TE_BAD;
        hd->chunked = true;
    }
    if (hd->bodyless && (hd->chunked || hd->cl > 0)) return W_BODYLESS;
    if (hd->cl > qun_server_cfg.upload_limit) return W_BODY_LARGE;
    return -1;
}

/* S_HEAD: pass one sound head on, or say why not (-1 with *progress false: more input). */
static int step_head(gate_t *g, struct evbuffer *src, struct evbuffer *dst, bool *progress) {
    char c[2];
    /* RFC 9112 §2.2: empty lines before a request line are ignored. */
    while (g->seen == 0 && evbuffer_copyout(src, c, 2) == 2 && c[0] == '\r' && c[1] == '\n') {
        evbuffer_drain(src, 2);
        *progress = true;
    }
    ev_ssize_t n = section_end(src, &g->seen);
    if (n < 0) return evbuffer_get_length(src) > QUN_HEAD_MAX ? W_HEAD_LARGE : -1;
    if (n > QUN_HEAD_MAX) return W_HEAD_LARGE;
    head_t hd = {0};
    int why = parse_head((const char *)evbuffer_pullup(src, n), (size_t)n, &hd);
    if (why >= 0) return why;
    evbuffer_remove_buffer(src, hd.chunked ? g->staged : dst, (size_t)n);
    g->seen = 0;
    g->total = 0;
    g->left = hd.cl;
    g->st = hd.chunked ? S_SIZE : hd.cl > 0 ? S_BODY : S_HEAD;
    *progress = true;
    return -1;
}

/* S_SIZE: one chunk-size line (RFC 9112 §7.1), staged without its extensions. */
static int step_size(gate_t *g, struct evbuffer *src, bool *progress) {
    struct evbuffer_ptr lf = evbuffer_search(src, "\n", 1, NULL);
    if (lf.pos < 0) return evbuffer_get_length(src) > CHUNK_LINE_MAX ? W_CHUNK_LINE : -1;
    size_t n = (size_t)lf.pos + 1;
    char line[CHUNK_LINE_MAX + 1];
    if (n > CHUNK_LINE_MAX || n < 3) return W_CHUNK_LINE;
    evbuffer_copyout(src, line, n);
    if (line[n - 2] != '\r') return W_CHUNK_LINE;
    size_t i = 0;
    uint64_t size = 0;
    for (; i < n - 2 && line[i] && strchr("0123456789abcdefABCDEF", line[i]); i++) {
        if (i == 15) return W_CHUNK_LINE; /* 60 bits is beyond any upload limit */
        unsigned char d = (unsigned char)line[i];
        size = size * 16 + (uint64_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
    }
    if (i == 0) return W_CHUNK_LINE;
    size_t k = i;
    while (k < n - 2 && (line[k] == ' ' || line[k] == '\t'))
        k++;
    if (k < n - 2 && line[k] != ';') return W_CHUNK_LINE;
    for (; k < n - 2; k++)
        if (!is_vbyte((unsigned char)line[k])) return W_CHUNK_LINE;
    if (size > qun_server_cfg.upload_limit - g->total) return W_BODY_LARGE;
    evbuffer_drain(src, n);
    *progress = true;
    g->total += size;
    if (size == 0) { /* the last chunk: passed on once its trailer section is read */
        g->st = S_TRAILER;
        g->seen = 0;
        return -1;
    }
    evbuffer_add_printf(g->staged, "%llx\r\n", (unsigned long long)size);
    g->left = size;
    g->st = S_DATA;
    return -1;
}

/* S_TRAILER: check the trailer fields, drop them, end the body and pass the request on. */
static int step_trailer(gate_t *g, struct evbuffer *src, struct evbuffer *dst, bool *progress) {
    ev_ssize_t n = section_end(src, &g->seen);
    if (n < 0) return evbuffer_get_length(src) > QUN_HEAD_MAX ? W_TRAILER : -1;
    if (n > QUN_HEAD_MAX) return W_TRAILER;
    const char *h = (const char *)evbuffer_pullup(src, n), *line;
    size_t pos = 0, nl, vl;
    const char *v;
    ev_ssize_t len;
    while ((len = next_line(h, (size_t)n, &pos, &line)) != 0)
        if (len < 0 || !field_ok(line, (size_t)len, &nl, &v, &vl)) return W_TRAILER;
    evbuffer_drain(src, (size_t)n);
    evbuffer_add(g->staged, "0\r\n\r\n", 5);
    evbuffer_add_buffer(dst, g->staged);
    g->st = S_HEAD;
    g->seen = 0;
    *progress = true;
    return -1;
}

/* Hand evhttp the refusal instead of the rest of the connection's bytes (evhttp waits
 * for a request line: nothing of the refused request reached it). */
static void refuse(gate_t *g, struct evbuffer *src, struct evbuffer *dst, int why) {
    evbuffer_add_printf(dst, "GET / HTTP/1.1\r\n" GATE_FIELD ": %d\r\nConnection: close\r\n\r\n", why);
    evbuffer_drain(src, evbuffer_get_length(src));
    evbuffer_drain(g->staged, evbuffer_get_length(g->staged));
    g->st = S_SHUT;
}

/* Pass on from src (the bytes held back) to dst (evhttp's input) all that is sound. */
static void pass(gate_t *g, struct evbuffer *src, struct evbuffer *dst) {
    for (;;) {
        size_t avail = evbuffer_get_length(src);
        if (g->st == S_SHUT) {
            evbuffer_drain(src, avail);
            return;
        }
        if (avail == 0) return;
        bool progress = false;
        int why = -1;
        switch (g->st) {
        case S_HEAD: why = step_head(g, src, dst, &progress); break;
        case S_SIZE: why = step_size(g, src, &progress); break;
        case S_TRAILER: why = step_trailer(g, src, dst, &progress); break;
        case S_BODY:
        case S_DATA: {
            size_t n = avail < g->left ? avail : (size_t)g->left;
            evbuffer_remove_buffer(src, g->st == S_BODY ? dst : g->staged, n);
            g->left -= n;
            if (g->left == 0) g->st = g->st == S_BODY ? S_HEAD : S_DATA_END;
            progress = true;
            break;
        }
        case S_DATA_END: {
            char crlf[2];
            if (avail < 2) break;
            evbuffer_copyout(src, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n') {
                why = W_CHUNK_END;
                break;
            }
            evbuffer_remove_buffer(src, g->staged, 2);
            g->st = S_SIZE;
            progress = true;
            break;
        }
        case S_SHUT: break;
        }
        if (why >= 0) {
            refuse(g, src, dst, why);
            return;
        }
        if (!progress) return;
    }
}

/* ---- wiring: where the gate sits ----
 * A bufferevent filter would be the obvious place, but evhttp 2.1 writes its answers
 * while the filter's writing is disabled, and takes the filter's write callback for
 * "sent" while the bytes still wait in the socket's bufferevent.  So evhttp gets a
 * plain socket bufferevent, and the gate is a callback on its input buffer: libevent
 * runs it as soon as a read appended bytes, before evhttp's read callback.  The gate
 * takes the new bytes back out, holds them in its own buffer, and returns what is
 * sound.  A connection's state lives in its loop's table, indexed by descriptor
 * (nothing tells the gate when a connection ends; a new connection on a reused
 * descriptor announces itself through its fresh callback, which resets the slot). */
struct qun_gate_loop {
    gate_t *slots;
    size_t nslots;
    struct evbuffer *tmp; /* bytes evhttp has yet to read, set aside for a moment */
};

static _Thread_local qun_gate_loop_t *t_loop;

qun_gate_loop_t *qun_gate_loop_new(void) {
    qun_gate_loop_t *l = qun_xcalloc(1, sizeof *l);
    l->tmp = evbuffer_new();
    return l;
}

void qun_gate_loop_free(qun_gate_loop_t *l) {
    if (!l) return;
    for (size_t i = 0; i < l->nslots; i++) {
        if (l->slots[i].hold) evbuffer_free(l->slots[i].hold);
        if (l->slots[i].staged) evbuffer_free(l->slots[i].staged);
    }
    evbuffer_free(l->tmp);
    free(l->slots);
    free(l);
}

static gate_t *slot_of(struct bufferevent *bev) {
    qun_gate_loop_t *l = t_loop;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (!l || fd < 0) return NULL;
    if ((size_t)fd >= l->nslots) {
        size_t n = l->nslots ? l->nslots : 64;
        while (n <= (size_t)fd)
            n *= 2;
        gate_t *s = realloc(l->slots, n * sizeof *s);
        if (!s) return NULL;
        memset(s + l->nslots, 0, (n - l->nslots) * sizeof *s);
        l->slots = s;
        l->nslots = n;
    }
    gate_t *g = &l->slots[fd];
    if (!g->hold) g->hold = evbuffer_new();
    if (!g->staged) g->staged = evbuffer_new();
    return g->hold && g->staged ? g : NULL;
}

static void gate_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg);

/* The usual case of a request: it arrived alone (with at most part of its body), in
 * one piece of memory, with CRLF line ends.  Its head is checked where it lies and
 * nothing moves; false sends everything else down the general path. */
static bool in_place(gate_t *g, struct evbuffer *in, size_t total) {
    if (total > QUN_HEAD_MAX || evbuffer_get_contiguous_space(in) != total) return false;
    const char *p = (const char *)evbuffer_pullup(in, -1); /* contiguous: no copy */
    const char *end = p ? memmem(p, total, "\r\n\r\n", 4) : NULL;
    if (!end || p[0] == '\r') return false;
    size_t n = (size_t)(end - p) + 4;
    head_t hd = {0};
    if (parse_head(p, n, &hd) >= 0 || hd.chunked || total - n > hd.cl) return false;
    g->left = hd.cl - (total - n);
    g->st = g->left > 0 ? S_BODY : S_HEAD;
    return true;
}

static void gate_run(struct evbuffer *in, const struct evbuffer_cb_info *info, struct bufferevent *bev,
                     bool fresh) {
    gate_t *g = slot_of(bev);
    if (!g) { /* no memory for the slot: the connection cannot be gated, so it ends */
        evbuffer_drain(in, evbuffer_get_length(in));
        shutdown(bufferevent_getfd(bev), SHUT_RDWR);
        return;
    }
    if (fresh) {
        evbuffer_drain(g->hold, evbuffer_get_length(g->hold));
        evbuffer_drain(g->staged, evbuffer_get_length(g->staged));
        *g = (gate_t){.hold = g->hold, .staged = g->staged};
    } else if (g->busy) { /* our own change to in, made below */
        return;
    }
    g->busy = true;
    size_t total = evbuffer_get_length(in), front = total - info->n_added;
    /* The usual case of a body: the new bytes all belong to it and may stay. */
    if (g->st == S_BODY && evbuffer_get_length(g->hold) == 0 && info->n_added < g->left) {
        g->left -= info->n_added;
        g->busy = false;
        return;
    }
    if (g->st == S_HEAD && front == 0 && evbuffer_get_length(g->hold) == 0 && in_place(g, in, total)) {
        g->busy = false;
        return;
    }
    if (front == 0) {
        evbuffer_add_buffer(g->hold, in);
    } else { /* keep the bytes evhttp has yet to read in front of the new ones */
        evbuffer_remove_buffer(in, t_loop->tmp, front);
        evbuffer_add_buffer(g->hold, in);
        evbuffer_add_buffer(in, t_loop->tmp);
    }
    pass(g, g->hold, in);
    g->busy = false;
}

static void gate_fresh_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg) {
    if (info->n_added == 0) return;
    evbuffer_remove_cb(in, gate_fresh_cb, arg);
    evbuffer_add_cb(in, gate_cb, arg);
    gate_run(in, info, arg, true);
}

static void gate_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg) {
    if (info->n_added == 0) return;
    gate_run(in, info, arg, false);
}

struct bufferevent *qun_gate_bev(struct event_base *base, void *arg) {
    return qun_gate_attach(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE), arg);
}

struct bufferevent *qun_gate_attach(struct bufferevent *bev, void *arg) {
    t_loop = arg; /* evhttp calls this on the loop's own thread */
    if (!bev || !evbuffer_add_cb(bufferevent_get_input(bev), gate_fresh_cb, bev)) {
        /* NULL would have evhttp make an ungated bufferevent of its own */
        qun_log("error", "out of memory for a connection's bufferevent");
        abort();
    }
    return bev;
}

qun_rc qun_gate_refusal(struct evhttp_request *ev, qun_err_t *err) {
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(ev), GATE_FIELD);
    if (!v) return QUN_OK;
    int why = atoi(v);
    if (why < 0 || why >= W_COUNT) why = W_FIELD;
    if (reasons[why].rc == QUN_BODY_TOO_LARGE)
        return qun_fail(err, QUN_BODY_TOO_LARGE, "the body is larger than the upload limit of %zu bytes",
                        qun_server_cfg.upload_limit);
    return qun_fail(err, reasons[why].rc, "%s", reasons[why].detail);
}
