/* SPDX-License-Identifier: MIT */
/* HTTPS on qund's own port: one OpenSSL context, shared read-only by every loop,
 * from which each new connection takes an SSL object for its libevent OpenSSL
 * bufferevent (the gate then sits on the decrypted input, as on plain connections).
 * SIGHUP loads the pair again into a fresh context and swaps it in under a lock:
 * connections already open keep the context they hold a reference to, new ones get
 * the new pair, and a pair that fails to load leaves the old one in place. */
#include <pthread.h>
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "http.h"
#include "qun/util.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *g_ctx; /* guarded by g_mu; each SSL holds its own reference */

/* The last OpenSSL error's text into err (its queue emptied), after what. */
static qun_rc ssl_fail(qun_err_t *err, const char *what, const char *path) {
    char why[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    return qun_fail(err, QUN_INTERNAL, "%s %s: %s", what, path, why);
}

/* A context with the pair loaded and checked, and modern defaults: TLS 1.2 or later,
 * the server's cipher order (OpenSSL's default list has no weak suites), no TLS
 * compression (CRIME), no renegotiation, HTTP/1.1 only. */
static qun_rc ctx_new(SSL_CTX **out, qun_err_t *err) {
    const char *cert = qun_server_cfg.tls_cert, *key = qun_server_cfg.tls_key;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return ssl_fail(err, "cannot create a TLS context", "");
    qun_rc rc = QUN_OK;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        rc = ssl_fail(err, "cannot load the certificate (tls_cert)", cert);
    else if (!(bio = BIO_new_file(key, "r")) || !(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)))
        rc = ssl_fail(err, "cannot load the private key (tls_key)", key);
    else if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        rc = ssl_fail(err, "the private key does not match the certificate:", key);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (rc != QUN_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return QUN_OK;
}

qun_rc qun_tls_init(qun_err_t *err) {
    const char *cert = qun_server_cfg.tls_cert, *key = qun_server_cfg.tls_key;
    if (!cert && !key) return QUN_OK;
    if (!cert || !key)
        return qun_fail(err, QUN_BAD_REQUEST, "HTTPS needs both tls_cert and tls_key (only %s is set)",
                        cert ? "tls_cert" : "tls_key");
    SSL_CTX *ctx;
    qun_rc rc = ctx_new(&ctx, err);
    if (rc == QUN_OK) g_ctx = ctx;
    return rc;
}

void qun_tls_reload(void) {
    if (!g_ctx) return;
    SSL_CTX *ctx;
    qun_err_t err;
    if (ctx_new(&ctx, &err) != QUN_OK) {
        qun_log("warn", "TLS: keeping the current certificate: %s", err.msg);
        return;
    }
    pthread_mutex_lock(&g_mu);
    SSL_CTX *old = g_ctx;
    g_ctx = ctx;
    pthread_mutex_unlock(&g_mu);
    SSL_CTX_free(old); /* connections using it hold their own reference */
    qun_log("info", "TLS: loaded %s again; new connections use it", qun_server_cfg.tls_cert);
}

struct bufferevent *qun_tls_bev(struct event_base *base, void *arg) {
    pthread_mutex_lock(&g_mu);
    SSL *ssl = SSL_new(g_ctx);
    pthread_mutex_unlock(&g_mu);
    struct bufferevent *bev =
        ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
            : NULL;
    if (!bev) { /* NULL would have evhttp make a plain (and ungated) bufferevent */
        qun_log("error", "out of memory for a TLS connection");
        abort();
    }
    /* A client that closes without close_notify has still sent whole requests. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return qun_gate_attach(bev, arg);
}

void qun_tls_free(void) {
    SSL_CTX_free(g_ctx);
    g_ctx = NULL;
}
